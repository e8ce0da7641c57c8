"""Rule 10's answer written straight to JSON bytes.

``engine.rule_10_output`` builds the answer as dicts and lists, and ``cache.answer_bytes`` turns
them into compact UTF-8 JSON. For a month of slots that is two dicts per slot built only to be
taken apart again; ``answer_render`` writes the same bytes directly, from the strings each slot
is made of. Every string in the answer is either an instant this module formats (digits, ``-``,
``:``, ``T``, ``+``: nothing JSON escapes) or an id, which goes through ``json.dumps`` once. A test
holds it to ``answer_bytes(rule_10_output(...))``, byte for byte.
"""

from __future__ import annotations

import json
from datetime import datetime

from booking.availability.engine import Result
from booking.availability.wallclock import zone_get


def _string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def answer_render(result: Result, *, service_id: str, location_id: str, zone: str) -> bytes:
    """``answer_bytes(rule_10_output(result, ...))``, written directly."""
    tz = zone_get(zone)
    moments: dict[int, str] = {}
    id_lists: dict[tuple[str, ...], str] = {}
    location = _string(location_id)
    days: dict[str, list[str]] = {day.isoformat(): [] for day in result.days}
    times: list[str] = []
    for slot in sorted(result.slots, key=lambda s: s.start):
        start = moments.get(slot.start)
        if start is None:
            start = moments[slot.start] = datetime.fromtimestamp(slot.start, tz).isoformat()
        end = moments.get(slot.end)
        if end is None:
            end = moments[slot.end] = datetime.fromtimestamp(slot.end, tz).isoformat()
        ids = id_lists.get(slot.resource_ids)
        if ids is None:
            ids = id_lists[slot.resource_ids] = ",".join(_string(rid) for rid in slot.resource_ids)
        times.append(f'{{"start_time":"{start}","end_time":"{end}","LocationId":{location},"ResourceIds":[{ids}]}}')
        day = days.get(start[:10])
        if day is not None:
            day.append(f'{{"start_time":"{start}","end_time":"{end}","ResourceIds":[{ids}]}}')
    by_day = ",".join(f'"{day}":[{",".join(slots)}]' for day, slots in days.items())
    text = f'{{"ServiceId":{_string(service_id)},"availableTimes":[{",".join(times)}],"availableDays":{{{by_day}}}}}'
    return text.encode()
