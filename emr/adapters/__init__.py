"""EMR adapters: one interface (``base.EmrAdapter``), one implementation per protocol.

``ADAPTER_VENDORS`` lists the vendors that have a live-fetch adapter, eClinicalWorks first (the
order of the "Currently supported" list in error messages).
"""

from __future__ import annotations

from emr.adapters.base import ConnectionConfig, EmrAdapter, EmrNotConfigured

ADAPTER_VENDORS: tuple[str, ...] = ("ecw", "fhir", "sandbox")

# Calls per minute each vendor allows per practice (None: no published limit).
VENDOR_RATE_LIMITS: dict[str, int | None] = {"ecw": 250, "fhir": None, "sandbox": None}


def vendor_has_adapter(vendor: str) -> bool:
    return vendor in ADAPTER_VENDORS


def adapter_build(config: ConnectionConfig, *, throttle=None, **kwargs) -> EmrAdapter:
    if config.vendor not in ADAPTER_VENDORS:
        raise EmrNotConfigured(f"There is no adapter for the EMR vendor {config.vendor!r}.")
    from emr.adapters.fhir import FhirAdapter

    return FhirAdapter(config, throttle=throttle, **kwargs)
