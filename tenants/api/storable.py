"""Characters the database cannot store.

PostgreSQL ``text`` cannot hold NUL (``psycopg.DataError``), and no UTF-8 database can hold a lone
surrogate (Python can: JSON's ``"\\udc00"``). SQLite takes both, so only PostgreSQL shows the
failure; the API refuses such input before any query, on every database (``overview.md``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: str) -> bool:
    return UNSTORABLE.search(value) is None


def unstorable_names(values: Mapping, *, key_name: str) -> list[str]:
    """The names in ``values`` (a dict or a ``QueryDict``) whose value, or one of whose values,
    cannot be stored; a name that cannot be stored itself is reported as ``key_name``."""
    getlist = values.getlist if hasattr(values, "getlist") else lambda name: [values[name]]
    names = []
    for name in values:
        items: Iterable = getlist(name)
        bad_name = isinstance(name, str) and not storable(name)
        if bad_name or any(isinstance(item, str) and not storable(item) for item in items):
            label = key_name if bad_name else name
            if label not in names:
                names.append(label)
    return names
