"""Query parameters, declared: one set of strict fields and one filter class per endpoint.

Every API family (``/v3/``, ``/v1/``, the provider directory) reads its query string through a
filter class built from the fields below. The class validates, and drf-spectacular documents it,
so the OpenAPI parameters are the ones that are enforced. Each field fails with a message code;
the family (``V3``, ``V1``, ``DIRECTORY``) owns the text of every code and how the errors are
raised (all at once naming each parameter for ``/v3/``, the first one as ``{"message"}`` for
``/v1/``)::

    from tenants.api import query as q

    class VisitQuery(q.QueryFilter):
        family = q.V1
        start_date = q.DateOrInstantField(required=True)
        end_date = q.DateOrInstantField(required=True)
        provider_ids = q.ListField(child=q.TextField(max_length=128), max_items=10, noun="providers")
        buffer = q.BoundedIntField(min_value=0, max_value=59)

        def validate(self, attrs):  # checks across parameters, once every parameter parses
            if attrs["end_date"] < attrs["start_date"]:
                raise q.ValidationError({"end_date": "end_date must be after start_date."})
            return attrs

    class VisitView(V1APIView):
        @extend_schema(parameters=[VisitQuery], ...)
        def get(self, request):
            params = VisitQuery.parse(request.query_params)  # a dict with every declared name
            ...

An absent or blank parameter reads as its ``default`` (None unless given); a parameter the
family does not know is refused (``/v1/``) or ignored (``/v3/``). Values are stripped of
surrounding spaces first.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, date, datetime
from typing import ClassVar

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, ValidationError

from tenants.api.errors import BadRequest
from tenants.api.storable import storable, unstorable_names
from tenants.models import available_timezones
from tenants.us_states import US_STATE_CODES

__all__ = [
    "DIRECTORY", "V1", "V3", "BoolField", "BoundedIntField", "ChoiceField", "DateField", "DateOrInstantField",
    "Family", "InstantField", "ListField", "MultipleOfField", "QueryFilter", "StateField", "StorableInput", "TextField",
    "TimezoneField", "UUIDField", "ValidationError", "parse_date", "parse_instant", "refuse_unstorable",
]

MIN_YEAR, MAX_YEAR = 1970, 2200
# ASCII digits only (``\d`` also matches other scripts' digits), matched with ``fullmatch`` (``$``
# also matches before a trailing newline).
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
MAX_VALUE_IN_MESSAGE = 64  # a value quoted back in a message is cut to this length


# --- parsers (also used by body fields) ------------------------------------------------------


def parse_date(value) -> date | None:
    """``YYYY-MM-DD`` between 1970 and 2200, or None."""
    if not isinstance(value, str) or DATE.fullmatch(value) is None:
        return None
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        return None
    return parsed if MIN_YEAR <= parsed.year <= MAX_YEAR else None


def parse_instant(value, *, allow_naive: bool = False) -> datetime | None:
    """An ISO 8601 date-time WITH offset between 1970 and 2200, in UTC; or None.

    With ``allow_naive`` a date-time without offset is returned naive, for the caller to read in
    its own zone.
    """
    if not isinstance(value, str) or not 10 < len(value) <= 40 or "T" not in value.upper():
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed if allow_naive and MIN_YEAR <= parsed.year <= MAX_YEAR else None
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        return None
    return parsed if MIN_YEAR <= parsed.year <= MAX_YEAR else None


def _plus_restored(value: str) -> str:
    # An unencoded '+' in a query string arrives as a space: "09:00:00 05:30" meant "+05:30".
    return re.sub(r" ([0-9]{2}:?[0-9]{2})\Z", r"+\1", value)


# --- families --------------------------------------------------------------------------------


def _raise_all(errors: Mapping, order: list[str]) -> None:
    raise ValidationError(errors)


def _raise_first(errors: Mapping, order: list[str]) -> None:
    """``/v1/``: one message. Missing parameters first, all of them in declared order; else the
    first failing parameter's message, shown exactly."""
    missing = [name for name in order if any(getattr(e, "code", None) == "required" for e in _items(errors.get(name)))]
    if missing:
        raise BadRequest(f"Missing required parameters: {', '.join(missing)}.")
    for name in [*order, *(k for k in errors if k not in order)]:
        items = _items(errors.get(name))
        if items:
            raise BadRequest(str(items[0]))


def _items(detail) -> list:
    if detail is None:
        return []
    if isinstance(detail, dict):
        return [item for value in detail.values() for item in _items(value)]
    if isinstance(detail, list):
        return [item for value in detail for item in _items(value)]
    return [detail]


@dataclass(frozen=True)
class Family:
    """How one API family words and raises query errors.

    ``messages`` maps each failure code to its text (``str.format`` with ``name``, the parameter,
    and the code's own values); ``unknown`` and ``repeated`` say whether an undeclared parameter,
    or a single-valued one given twice, is refused (``"refuse"``) or not (``"ignore"``/``"last"``).
    """

    name: str
    messages: Mapping[str, str]
    raise_errors: Callable[[Mapping, list[str]], None]
    unknown: str = "ignore"
    repeated: str = "last"
    extra: Mapping[str, str] = dataclass_field(default_factory=dict)


V3_MESSAGES = {
    "required": "This parameter is required.",
    "repeated": "Give this parameter only once.",
    "unknown": "Unknown parameter.",
    "nul": "Must not contain a NUL character.",
    "date": "Must be a date (YYYY-MM-DD) between 1970 and 2200.",
    "date_or_instant": "Must be a date (YYYY-MM-DD) or an ISO 8601 date-time with offset, e.g. "
    "2025-03-21T09:00:00-04:00 (encode '+' as %2B), between 1970 and 2200.",
    "instant": "Must be an ISO 8601 date-time with offset, e.g. 2025-03-21T09:00:00-04:00 (encode '+' as %2B).",
    "uuid": "Must be a UUID.",
    "uuid_item": "'{value}' is not a UUID.",
    "bool": "Must be true or false.",
    "int": "Must be an integer.",
    "min": "Must be at least {min_value}{unit}.",
    "max": "Must be at most {max_value}{unit}.",
    "multiple": "Must be a multiple of {multiple}{unit}.",
    "list_max": "At most {max_items} {noun}.",
    "item": "'{value}': {message}",
    "choice": "Must be one of {choices}.",
    "choice_item": "'{value}' is not one of {choices}.",
    "zone": "'{value}' is not a known IANA time zone.",
    "zone_item": "'{value}' is not a known IANA time zone.",
    "state": "'{value}' is not a US state code (the 50 states, DC, PR, VI, GU, AS, MP).",
    "state_item": "'{value}' is not a US state code (the 50 states, DC, PR, VI, GU, AS, MP).",
    "max_length": "At most {max_length} characters.",
    "blank": "Must not be blank.",
    "type": "Must be a string.",
    "list_type": "Must be a list.",
    "not_object": "Must be a JSON object.",
}

# emr-api.md: "Missing required parameters: start_date, end_date." and "Invalid date format. Use
# ISO format (YYYY-MM-DD)." exactly; every other message names its parameter.
V1_MESSAGES = {
    "required": "Missing required parameters: {name}.",
    "repeated": "Parameter {name} may be given only once.",
    "unknown": "Unknown parameter: {name}.",
    "nul": "Invalid {name}.",
    "date": "Invalid date format. Use ISO format (YYYY-MM-DD).",
    "date_or_instant": "Invalid date format. Use ISO format (YYYY-MM-DD).",
    "instant": "Invalid {name}: must be an ISO 8601 date-time with offset, e.g. 2025-03-21T09:00:00-04:00.",
    "uuid": "Invalid {name}: must be a UUID.",
    "uuid_item": "Invalid {name}: '{value}' is not a UUID.",
    "bool": "Invalid {name}: must be true or false.",
    "int": "Invalid {name}: must be an integer.",
    "min": "Invalid {name}: must be at least {min_value}{unit}.",
    "max": "Invalid {name}: must be at most {max_value}{unit}.",
    "multiple": "Invalid {name}: must be a multiple of {multiple}{unit}.",
    "list_max": "Invalid {name}: at most {max_items} {noun}.",
    "item": "{message}",
    "choice": "Invalid {name}. Use one of: {choices}.",
    "choice_item": "Invalid {name}: '{value}' is not one of {choices}.",
    "zone": "Invalid {name}: '{value}' is not a known IANA time zone.",
    "zone_item": "Invalid {name}: '{value}' is not a known IANA time zone.",
    "state": "Invalid {name}: '{value}' is not a US state code.",
    "state_item": "Invalid {name}: '{value}' is not a US state code.",
    "max_length": "Invalid {name}: at most {max_length} characters.",
    "blank": "Invalid {name}: must not be blank.",
    "type": "Invalid {name}: must be a string.",
    "list_type": "Invalid {name}: must be an array.",
    "not_object": "Request body must be a JSON object.",
}

V3 = Family("v3", V3_MESSAGES, _raise_all)
V1 = Family("v1", V1_MESSAGES, _raise_first, unknown="refuse", repeated="refuse")
# provider-availability.md: 400 {"status", "success": false, "message": "Invalid request",
# "error": "<what is wrong>"}: the /v3/ wording, one error, "<parameter>: <message>".
DIRECTORY = Family("directory", V3_MESSAGES, _raise_all)


# --- characters the database cannot store, anywhere in a path or query ------------------------


def refuse_unstorable(family: Family, *, path: Mapping, query: Mapping) -> None:
    """Raise in ``family``'s shape when a path parameter (the URL's keyword arguments) or any query
    parameter, declared or not, holds a character the database cannot store. Bodies are checked
    by the parsers (``tenants.api.parsers``)."""
    in_path = unstorable_names(path, key_name="path")
    names = in_path + [name for name in unstorable_names(query, key_name="query") if name not in in_path]
    if names:
        template = family.messages["nul"]
        errors = {name: [ErrorDetail(template.format(name=name), code="nul")] for name in names}
        family.raise_errors(errors, names)


class StorableInput:
    """A view mixin: after authentication, permissions and the rate limit, refuse a request whose
    path or query holds a character the database cannot store, before the view reads either. Every
    API family's base view uses it, with its own ``input_family``."""

    input_family: Family = V3

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        refuse_unstorable(self.input_family, path=kwargs, query=request.query_params)


# --- fields ----------------------------------------------------------------------------------


class QueryField(serializers.Field):
    """A query parameter: a string in, a typed value out, failures worded by the family."""

    kind = "value"
    type_code = "type"  # the failure of a value that is not a string (a JSON body's number, list ...)
    # A list's items are many (up to 200 resource ids): a field may name a conversion that gives
    # exactly what its validation gives for a valid string, and raises ValueError for any other.
    quick: ClassVar[Callable[[str], object] | None] = None
    openapi: ClassVar[dict] = {"type": "string"}

    def __init__(self, *, messages: Mapping[str, str] | None = None, **kwargs):
        self.messages = dict(messages or {})
        if not kwargs.get("required"):
            kwargs.setdefault("default", None)
        super().__init__(**kwargs)

    @property
    def family(self) -> Family:
        root = self.root
        return getattr(root, "family", V3)

    @property
    def parameter(self) -> str:
        return self.field_name or (self.parent.field_name if self.parent is not None else "") or ""

    def fail(self, key, **kwargs):
        family = self.family.messages
        if isinstance(self.parent, ListField) and f"{key}_item" in family:
            key = f"{key}_item"  # an item of a list says which value is wrong
        template = self.messages.get(key) or family.get(key) or self.error_messages.get(key) or key
        kwargs.setdefault("name", self.parameter)
        raise ValidationError(template.format(**kwargs), code=key)

    def run_validation(self, data=serializers.empty):
        if data is not serializers.empty and not isinstance(data, str):
            self.fail(self.type_code, value=_quoted(data), **self.context_of_failure())
        if isinstance(data, str) and not storable(data):
            self.fail("nul")
        return super().run_validation(data)

    def context_of_failure(self) -> dict:
        """Values the messages of this field's codes may name."""
        return {}

    def to_representation(self, value):
        return value

    def schema(self) -> dict:
        return dict(self.openapi)


def _quoted(value) -> str:
    return str(value)[:MAX_VALUE_IN_MESSAGE]


class TextField(QueryField):
    """Free text up to ``max_length`` characters."""

    kind = "text"

    def __init__(self, *, max_length: int = 200, **kwargs):
        self.max_length = max_length
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not data.strip():
            self.fail("blank")
        if len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return data

    def schema(self):
        return {"type": "string", "maxLength": self.max_length}


class DateField(QueryField):
    """``YYYY-MM-DD`` between 1970 and 2200 → ``date``."""

    kind = "date"
    type_code = "date"
    openapi: ClassVar[dict] = {"type": "string", "format": "date"}

    def to_internal_value(self, data):
        parsed = parse_date(data)
        if parsed is None:
            self.fail("date")
        return parsed


class InstantField(QueryField):
    """An ISO 8601 date-time with offset (``Z`` or ``±HH:MM``; an unencoded ``+`` that arrived as
    a space is restored) → an aware UTC ``datetime``."""

    kind = "instant"
    type_code = "instant"
    openapi: ClassVar[dict] = {"type": "string", "format": "date-time"}

    def to_internal_value(self, data):
        parsed = parse_instant(_plus_restored(data))
        if parsed is None:
            self.fail("instant")
        return parsed


class DateOrInstantField(QueryField):
    """A date (→ ``date``, for the endpoint to read in its zone) or a date-time with offset (→ aware
    UTC ``datetime``). With ``allow_naive``, a date-time without offset is returned naive."""

    kind = "date_or_instant"
    type_code = "date_or_instant"

    def __init__(self, *, allow_naive: bool = False, **kwargs):
        self.allow_naive = allow_naive
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if DATE.fullmatch(data):
            parsed = parse_date(data)
        else:
            parsed = parse_instant(_plus_restored(data), allow_naive=self.allow_naive)
        if parsed is None:
            self.fail("date_or_instant")
        return parsed


class UUIDField(QueryField):
    kind = "uuid"
    type_code = "uuid"
    openapi: ClassVar[dict] = {"type": "string", "format": "uuid"}
    quick = uuid.UUID  # what ``to_internal_value`` does; a NUL or any other bad value raises ValueError

    def to_internal_value(self, data):
        try:
            return uuid.UUID(data)
        except ValueError:
            self.fail("uuid", value=_quoted(data))


class BoolField(QueryField):
    """``true``/``false``/``1``/``0``, any case."""

    kind = "bool"
    type_code = "bool"
    openapi: ClassVar[dict] = {"type": "boolean"}

    def to_internal_value(self, data):
        value = BOOLEANS.get(data.lower())
        if value is None:
            self.fail("bool")
        return value


class BoundedIntField(QueryField):
    """An integer (ASCII digits) within ``[min_value, max_value]``; ``unit`` is shown after a bound
    (``" (minutes)"``)."""

    kind = "int"
    type_code = "int"

    def __init__(self, *, min_value: int | None = None, max_value: int | None = None, unit: str = "", **kwargs):
        self.min_value, self.max_value, self.unit = min_value, max_value, unit
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if INTEGER.fullmatch(data) is None:
            self.fail("int")
        number = int(data)
        if self.min_value is not None and number < self.min_value:
            self.fail("min", min_value=self.min_value, unit=self.unit)
        if self.max_value is not None and number > self.max_value:
            self.fail("max", max_value=self.max_value, unit=self.unit)
        return number

    def schema(self):
        out = {"type": "integer"}
        if self.min_value is not None:
            out["minimum"] = self.min_value
        if self.max_value is not None:
            out["maximum"] = self.max_value
        return out


class MultipleOfField(BoundedIntField):
    """A bounded integer that is a multiple of ``multiple``."""

    def __init__(self, *, multiple: int, **kwargs):
        self.multiple = multiple
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        number = super().to_internal_value(data)
        if number % self.multiple:
            self.fail("multiple", multiple=self.multiple, unit=self.unit)
        return number

    def schema(self):
        return {**super().schema(), "multipleOf": self.multiple}


class ChoiceField(QueryField):
    """One of ``choices``; with ``case_insensitive`` the value is matched ignoring case and the
    declared spelling is returned."""

    kind = "choice"
    type_code = "choice"

    def __init__(self, *, choices, case_insensitive: bool = False, **kwargs):
        self.choices = tuple(choices)
        self.case_insensitive = case_insensitive
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if self.case_insensitive:
            found = {choice.lower(): choice for choice in self.choices}.get(data.lower())
        else:
            found = data if data in self.choices else None
        if found is None:
            self.fail("choice", value=_quoted(data), **self.context_of_failure())
        return found

    def context_of_failure(self):
        return {"choices": ", ".join(self.choices)}

    def schema(self):
        return {"type": "string", "enum": list(self.choices)}


class TimezoneField(QueryField):
    """An IANA zone name (not the tz database's ``localtime``, ``Factory``, ``posixrules``)."""

    kind = "zone"
    type_code = "zone"

    def to_internal_value(self, data):
        if data not in available_timezones():
            self.fail("zone", value=_quoted(data))
        return data

    def schema(self):
        return {"type": "string", "maxLength": 64, "example": "America/New_York"}


class StateField(QueryField):
    """A US state code (the 50 states, DC, PR, VI, GU, AS, MP), any case → upper case."""

    kind = "state"
    type_code = "state"

    def to_internal_value(self, data):
        code = data.upper()
        if code not in US_STATE_CODES:
            self.fail("state", value=_quoted(data))
        return code

    def schema(self):
        return {"type": "string", "enum": sorted(US_STATE_CODES)}


class ListField(QueryField):
    """Several values, comma-separated, repeated (``?id=a&id=b``) or both; blank items dropped,
    duplicates dropped (first kept), at most ``max_items`` → a tuple of the child's values.

    In a JSON body (``split=False``) the value is an array, taken item by item as given.
    """

    kind = "list"

    def __init__(self, *, child: QueryField, max_items: int = 100, noun: str = "values", split: bool = True, **kwargs):
        self.child = copy.deepcopy(child)
        self.max_items, self.noun, self.split = max_items, noun, split
        super().__init__(**kwargs)
        self.child.bind(field_name="", parent=self)

    def get_value(self, dictionary):
        return dictionary.get(self.field_name, serializers.empty)

    def run_validation(self, data=serializers.empty):
        return serializers.Field.run_validation(self, data)

    def to_internal_value(self, data):
        if not isinstance(data, list):
            self.fail("list_type")
        if self.split:
            items = [part.strip() for value in data for part in value.split(",")]
            items = [item for item in items if item]
        else:
            items = [item.strip() if isinstance(item, str) else item for item in data]
        if not items:
            if self.required:
                self.fail("required")
            return self.default
        errors, values = [], []
        if len(items) > self.max_items:
            errors.append(self._message("list_max", max_items=self.max_items, noun=self.noun))
        quick = self.child.quick
        for item in items[: self.max_items]:
            if quick is not None and type(item) is str:
                try:
                    values.append(quick(item))
                    continue
                except ValueError:
                    pass  # the field's own validation words the failure
            try:
                values.append(self.child.run_validation(item))
            except ValidationError as exc:
                errors.extend(self._item_message(item, message) for message in _items(exc.detail))
        if errors:
            raise ValidationError(errors)
        return tuple(dict.fromkeys(values))

    def _message(self, key, **kwargs) -> str:
        try:
            self.fail(key, **kwargs)
        except ValidationError as exc:
            return _items(exc.detail)[0]
        raise AssertionError("fail() always raises")  # pragma: no cover

    def _item_message(self, item, message):
        if message.code.endswith("_item") and "item" not in self.messages:
            return message  # already names the value
        return self._message("item", value=_quoted(item), message=str(message))

    def schema(self):
        return {"type": "array", "items": self.child.schema(), "maxItems": self.max_items}


class QueryFieldSchema(OpenApiSerializerFieldExtension):
    target_class = QueryField
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        return self.target.schema()


# --- the filter class ------------------------------------------------------------------------


class QueryFilter(serializers.Serializer):
    """One endpoint's query parameters. Subclasses declare fields (named as the parameters) and,
    for checks across parameters, ``validate``; ``parse`` answers a dict with every declared name
    or raises in the family's error shape."""

    family: Family = V3
    body = False  # True: the data is a JSON body (values keep their JSON types), not a query string

    def __init__(self, params=serializers.empty, **kwargs):
        if params is not serializers.empty:
            kwargs["data"] = params
        super().__init__(**kwargs)

    def run_validation(self, data=serializers.empty):
        if self.body and not isinstance(data, Mapping):  # a JSON array, string, number or null
            raise BadRequest(self.family.messages["not_object"])
        return super().run_validation(data)

    @classmethod
    def parse(cls, params, **context) -> dict:
        query = cls(params, context=context)
        if not query.is_valid():
            cls.family.raise_errors(query.errors, list(query.fields))
        return dict(query.validated_data)

    def required_for(self, values: dict) -> tuple[str, ...]:
        """Parameters required given the others (``values``: the raw values present), beyond the
        fields declared ``required``: for inputs whose mode decides what they need."""
        return ()

    def ignored_for(self, values: dict) -> tuple[str, ...]:
        """Parameters not read given the others (not validated, answered as their default)."""
        return ()

    def to_internal_value(self, data):
        values, errors = self._collect(data)
        ignored = set(self.ignored_for(values))
        values = {name: value for name, value in values.items() if name not in ignored}
        for name in self.required_for(values):
            if name not in values and name not in errors:
                errors[name] = [self._detail("required", name)]
        try:
            parsed = super().to_internal_value(values)
        except ValidationError as exc:
            # A parameter given twice, or required by the others, is reported as that, not as
            # whatever its absence from ``values`` made the field say.
            found = {**exc.detail, **errors}
            raise ValidationError({name: found[name] for name in [*self.fields, *found] if name in found}) from None
        if errors:
            raise ValidationError(errors)
        return parsed

    def _detail(self, code: str, name: str):
        return ValidationError(self.family.messages[code].format(name=name), code=code).detail[0]

    def _refuse_unknown(self, names) -> None:
        unknown = sorted(set(names) - set(self.fields))
        if unknown and self.family.unknown == "refuse":
            s = "s" if len(unknown) > 1 else ""
            raise BadRequest(f"Unknown parameter{s}: {', '.join(unknown)}.")

    def _collect(self, params) -> tuple[dict, dict]:
        return self._collect_body(params) if self.body else self._collect_query(params)

    def _collect_body(self, data) -> tuple[dict, dict]:
        """A JSON object's members; blank strings, nulls and empty arrays are absent."""
        if not isinstance(data, Mapping):
            raise BadRequest(self.family.messages["not_object"])
        self._refuse_unknown(data)
        values = {}
        for name, value in data.items():
            if isinstance(value, str):
                value = value.strip()
            if value in (None, "", []):
                continue
            values[name] = value
        return values, {}

    def _collect_query(self, params) -> tuple[dict, dict]:
        """The raw strings by parameter name: lists keep every value, single parameters one (the
        last, or an error when the family refuses repeats); blank values are absent."""
        getlist = params.getlist if hasattr(params, "getlist") else lambda name: _as_list(params.get(name))
        errors, values = {}, {}
        self._refuse_unknown(params)
        for name, field in self.fields.items():
            raw = [value.strip() for value in getlist(name) if isinstance(value, str)]
            if isinstance(field, ListField):
                if any(value for value in raw):
                    values[name] = raw
                continue
            if len(raw) > 1 and self.family.repeated == "refuse":
                errors[name] = [self._detail("repeated", name)]
                continue
            if raw and raw[-1]:
                values[name] = raw[-1]
        return values, errors


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
