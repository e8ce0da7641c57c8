"""The built-in sandbox EMR: a small FHIR R4 server with SMART Backend Services auth that serves a
deterministic demo practice (``data``), mounted at ``/sandbox/fhir/r4/`` when ``SANDBOX_ENABLED``.

``data`` builds the resources, ``server`` answers searches and reads, ``tokens`` verifies client
assertions and issues access tokens; ``views`` wires them to Django. The demo organization's
connection reaches it over real HTTP through the same FHIR adapter as any EMR.
"""

PREFIX = "sandbox/fhir/r4"
