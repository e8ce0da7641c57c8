"""The query kit (``tenants.api.query``): each strict field's valid and invalid values, its message
in each family's wording, and the error body each family renders."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from django.http import QueryDict

from booking.api.base import v3_exception_handler
from emr.api.base import v1_exception_handler
from tenants.api import query as q
from tenants.api.errors import directory_exception_handler

A = "0b0f6bde-6c4e-4c51-9a43-5f2f0d6f9c11"
B = "7d1c5a4e-2f33-4b8e-a3f0-1c2d3e4f5a6b"


def _filter(family, **fields):
    return type(f"Filter{family.name}", (q.QueryFilter,), {"family": family, **fields})


def _raised(cls, query: str) -> Exception:
    with pytest.raises(Exception) as caught:
        cls.parse(QueryDict(query))
    return caught.value


def v3_errors(field, query: str) -> dict:
    """The ``errors`` of the /v3/ body, by parameter."""
    exc = _raised(_filter(q.V3, value=field), query)
    response = v3_exception_handler(exc, {})
    assert response.status_code == 400
    assert response.data["statusCode"] == 400 and response.data["name"] == "BadRequestError"
    out = {}
    for item in response.data["errors"]:
        out.setdefault(item["field"], []).append(item["message"])
    return out


def v1_message(field, query: str) -> str:
    exc = _raised(_filter(q.V1, value=field), query)
    response = v1_exception_handler(exc, {})
    assert response.status_code == 400
    assert set(response.data) == {"success", "message"} and response.data["success"] is False
    return response.data["message"]


def directory_error(field, query: str) -> str:
    exc = _raised(_filter(q.DIRECTORY, value=field), query)
    response = directory_exception_handler(exc, {})
    assert response.status_code == 400
    assert {k: v for k, v in response.data.items() if k != "error"} == {
        "status": 400, "success": False, "message": "Invalid request",
    }
    return response.data["error"]


def value(field, query: str, family=q.V3):
    return _filter(family, value=field).parse(QueryDict(query))["value"]


# --- each field: valid values -------------------------------------------------------------


@pytest.mark.parametrize(
    "field,query,expected",
    [
        (q.DateField(), "value=2025-03-21", date(2025, 3, 21)),
        (q.DateField(), "value=%202025-03-21%20", date(2025, 3, 21)),  # stripped
        (q.DateOrInstantField(), "value=2025-03-21", date(2025, 3, 21)),
        (q.DateOrInstantField(), "value=2025-03-21T09:00:00-04:00", datetime(2025, 3, 21, 13, tzinfo=UTC)),
        (q.DateOrInstantField(allow_naive=True), "value=2025-03-21T09:00:00", datetime(2025, 3, 21, 9)),
        (q.InstantField(), "value=2025-03-21T09:00:00Z", datetime(2025, 3, 21, 9, tzinfo=UTC)),
        (q.InstantField(), "value=2025-03-21T09:00:00%2B05:30", datetime(2025, 3, 21, 3, 30, tzinfo=UTC)),
        # an unencoded '+' arrives as a space; it is read as the '+' it was
        (q.InstantField(), "value=2025-03-21T09:00:00+05:30", datetime(2025, 3, 21, 3, 30, tzinfo=UTC)),
        (q.UUIDField(), f"value={A}", uuid.UUID(A)),
        (q.BoolField(), "value=TRUE", True),
        (q.BoolField(), "value=0", False),
        (q.BoolField(default=False), "", False),
        (q.BoundedIntField(min_value=1, max_value=1440), "value=1440", 1440),
        (q.BoundedIntField(min_value=-5), "value=-5", -5),
        (q.MultipleOfField(multiple=5, min_value=5, max_value=60), "value=35", 35),
        (q.ListField(child=q.UUIDField()), f"value={A},{B}", (uuid.UUID(A), uuid.UUID(B))),
        (q.ListField(child=q.UUIDField()), f"value={A}&value={B},{A}", (uuid.UUID(A), uuid.UUID(B))),
        (q.ListField(child=q.StateField()), "value=ca,%20ny%20,,DC", ("CA", "NY", "DC")),
        (q.ListField(child=q.TextField()), "value=", None),
        (q.TimezoneField(), "value=America/New_York", "America/New_York"),
        (q.TimezoneField(default="UTC"), "value=%20", "UTC"),
        (q.StateField(), "value=pr", "PR"),
        (q.ChoiceField(choices=["NONE", "RANDOM"], case_insensitive=True), "value=random", "RANDOM"),
        (q.TextField(max_length=5), "value=abcde", "abcde"),
        (q.TextField(), "", None),
    ],
)
def test_valid_values(field, query, expected):
    assert value(field, query) == expected
    assert value(field.__class__(*field._args, **field._kwargs), query, family=q.V1) == expected


# --- each field: invalid values and the /v3/ message ----------------------------------------

DATE_OR_INSTANT = (
    "Must be a date (YYYY-MM-DD) or an ISO 8601 date-time with offset, e.g. 2025-03-21T09:00:00-04:00 "
    "(encode '+' as %2B), between 1970 and 2200."
)

V3_CASES = [
    (q.DateField(), "value=2025-02-30", "Must be a date (YYYY-MM-DD) between 1970 and 2200."),
    (q.DateField(), "value=1969-12-31", "Must be a date (YYYY-MM-DD) between 1970 and 2200."),
    (q.DateField(), "value=%EF%BC%92025-01-01", "Must be a date (YYYY-MM-DD) between 1970 and 2200."),  # fullwidth digit
    (q.DateField(), "value=2025-01-01T00:00:00Z", "Must be a date (YYYY-MM-DD) between 1970 and 2200."),
    (q.DateOrInstantField(), "value=tomorrow", DATE_OR_INSTANT),
    (q.DateOrInstantField(), "value=2025-03-21T09:00:00", DATE_OR_INSTANT),  # no offset
    (q.DateOrInstantField(), "value=2201-01-01", DATE_OR_INSTANT),
    (q.InstantField(), "value=2025-03-21", "Must be an ISO 8601 date-time with offset, e.g. 2025-03-21T09:00:00-04:00 (encode '+' as %2B)."),
    (q.InstantField(), "value=9999-12-31T23:00:00-05:00", "Must be an ISO 8601 date-time with offset, e.g. 2025-03-21T09:00:00-04:00 (encode '+' as %2B)."),
    (q.UUIDField(), "value=12", "Must be a UUID."),
    (q.UUIDField(required=True), "", "This parameter is required."),
    (q.UUIDField(required=True), "value=%20%20", "This parameter is required."),
    (q.BoolField(), "value=yes", "Must be true or false."),
    (q.BoundedIntField(min_value=1), "value=1.5", "Must be an integer."),
    (q.BoundedIntField(min_value=1), "value=%EF%BC%93%EF%BC%90", "Must be an integer."),  # fullwidth 30
    (q.BoundedIntField(min_value=1), "value=0", "Must be at least 1."),
    (q.BoundedIntField(max_value=1440, unit=" (minutes)"), "value=1441", "Must be at most 1440 (minutes)."),
    (q.BoundedIntField(max_value=100), f"value={10**40}", "Must be an integer."),
    (q.MultipleOfField(multiple=5, min_value=5, max_value=60), "value=7", "Must be a multiple of 5."),
    (q.MultipleOfField(multiple=5, min_value=5, max_value=60), "value=65", "Must be at most 60."),
    (q.TimezoneField(), "value=Mars/Olympus_Mons", "'Mars/Olympus_Mons' is not a known IANA time zone."),
    (q.TimezoneField(), "value=localtime", "'localtime' is not a known IANA time zone."),
    (q.StateField(), "value=ZZ", "'ZZ' is not a US state code (the 50 states, DC, PR, VI, GU, AS, MP)."),
    (q.ChoiceField(choices=["NONE", "RANDOM"]), "value=random", "Must be one of NONE, RANDOM."),
    (q.TextField(max_length=3), "value=abcd", "At most 3 characters."),
    (q.TextField(), "value=a%00b", "Must not contain a NUL character."),
]


@pytest.mark.parametrize("field,query,message", V3_CASES, ids=[f"{c[0].__class__.__name__}-{i}" for i, c in enumerate(V3_CASES)])
def test_v3_messages_name_the_parameter(field, query, message):
    assert v3_errors(field, query) == {"value": [message]}


def test_v3_list_reports_every_bad_item_and_the_limit():
    field = q.ListField(child=q.UUIDField(), max_items=2, noun="resources")
    assert v3_errors(field, f"value=nope,{A}&value=bad&value={B}") == {
        "value": ["At most 2 resources.", "'nope' is not a UUID."],
    }
    assert v3_errors(q.ListField(child=q.StateField()), "value=CA,zz") == {
        "value": ["'zz' is not a US state code (the 50 states, DC, PR, VI, GU, AS, MP)."],
    }
    assert v3_errors(q.ListField(child=q.TextField(max_length=2)), "value=ok,long") == {
        "value": ["'long': At most 2 characters."],
    }
    assert v3_errors(q.ListField(child=q.StateField(), required=True), "value=,%20") == {
        "value": ["This parameter is required."],
    }


def test_v3_reports_every_parameter_at_once():
    cls = _filter(q.V3, first=q.UUIDField(required=True), second=q.BoolField(), third=q.DateField())
    exc = _raised(cls, "second=maybe&third=2025-01-01")
    body = v3_exception_handler(exc, {}).data
    assert body["errors"] == [
        {"field": "first", "message": "This parameter is required."},
        {"field": "second", "message": "Must be true or false."},
    ]
    assert body["message"] == "first: This parameter is required."


def test_v3_ignores_unknown_and_keeps_the_last_repeated_value():
    cls = _filter(q.V3, flag=q.BoolField())
    assert cls.parse(QueryDict("flag=false&flag=true&colour=teal")) == {"flag": True}


# --- /v1/: one message, the spec's words -------------------------------------------------------

V1_CASES = [
    (q.DateField(), "value=2025/01/01", "Invalid date format. Use ISO format (YYYY-MM-DD)."),
    (q.DateOrInstantField(), "value=tomorrow", "Invalid date format. Use ISO format (YYYY-MM-DD)."),
    (q.InstantField(), "value=2025-01-01", "Invalid value: must be an ISO 8601 date-time with offset, e.g. 2025-03-21T09:00:00-04:00."),
    (q.UUIDField(), "value=x", "Invalid value: must be a UUID."),
    (q.BoolField(), "value=yes", "Invalid value: must be true or false."),
    (q.BoundedIntField(min_value=0, max_value=59), "value=x", "Invalid value: must be an integer."),
    (q.BoundedIntField(min_value=0, max_value=59), "value=-1", "Invalid value: must be at least 0."),
    (q.BoundedIntField(min_value=0, max_value=59), "value=60", "Invalid value: must be at most 59."),
    (q.MultipleOfField(multiple=5, min_value=5, max_value=60), "value=12", "Invalid value: must be a multiple of 5."),
    (q.ListField(child=q.TextField(), max_items=2, noun="providers"), "value=a,b,c", "Invalid value: at most 2 providers."),
    (q.ListField(child=q.UUIDField()), "value=x", "Invalid value: 'x' is not a UUID."),
    (q.ListField(child=q.StateField()), "value=CA,XX", "Invalid value: 'XX' is not a US state code."),
    (q.TimezoneField(), "value=Nowhere", "Invalid value: 'Nowhere' is not a known IANA time zone."),
    (q.StateField(), "value=QQ", "Invalid value: 'QQ' is not a US state code."),
    (q.ChoiceField(choices=["gaps", "slots"]), "value=x", "Invalid value. Use one of: gaps, slots."),
    (q.TextField(max_length=64), "value=" + "1" * 65, "Invalid value: at most 64 characters."),
    (q.TextField(), "value=a%00b", "Invalid value."),
    (q.DateField(required=True), "", "Missing required parameters: value."),
    (q.DateField(), "value=2025-01-01&value=2025-01-02", "Parameter value may be given only once."),
    (q.DateField(), "colour=blue", "Unknown parameter: colour."),
    (q.DateField(), "colour=blue&size=2", "Unknown parameters: colour, size."),
]


@pytest.mark.parametrize("field,query,message", V1_CASES, ids=[f"{c[0].__class__.__name__}-{i}" for i, c in enumerate(V1_CASES)])
def test_v1_messages_are_exact(field, query, message):
    assert v1_message(field, query) == message


def test_v1_names_every_missing_parameter_in_declared_order_before_anything_else():
    cls = _filter(q.V1, start_date=q.DateField(required=True), flag=q.BoolField(), end_date=q.DateField(required=True))
    exc = _raised(cls, "flag=maybe")
    assert v1_exception_handler(exc, {}).data == {
        "success": False, "message": "Missing required parameters: start_date, end_date.",
    }


def test_checks_across_parameters_run_once_every_parameter_parses():
    class Window(q.QueryFilter):
        family = q.V1
        start_date = q.DateField(required=True)
        end_date = q.DateField(required=True)

        def validate(self, attrs):
            if attrs["end_date"] < attrs["start_date"]:
                raise q.ValidationError({"end_date": "end_date must be after start_date."})
            return attrs

    assert v1_exception_handler(_raised(Window, "start_date=2025-01-02&end_date=2025-01-01"), {}).data["message"] == (
        "end_date must be after start_date."
    )
    assert Window.parse(QueryDict("start_date=2025-01-01&end_date=2025-01-02")) == {
        "start_date": date(2025, 1, 1), "end_date": date(2025, 1, 2),
    }


def test_a_field_may_word_one_code_its_own_way():
    field = q.ListField(child=q.UUIDField(), messages={"list_max": "At most {max_items} resources, please."}, max_items=1)
    assert v3_errors(field, f"value={A},{B}") == {"value": ["At most 1 resources, please."]}


# --- the provider directory ---------------------------------------------------------------


@pytest.mark.parametrize(
    "field,query,error",
    [
        (q.ListField(child=q.StateField(), required=True), "", "value: This parameter is required."),
        (q.ListField(child=q.StateField(), required=True), "value=CA,Narnia",
         "value: 'Narnia' is not a US state code (the 50 states, DC, PR, VI, GU, AS, MP)."),
        (q.InstantField(), "value=soon", "value: Must be an ISO 8601 date-time with offset, e.g. 2025-03-21T09:00:00-04:00 (encode '+' as %2B)."),
    ],
)
def test_directory_errors_are_one_line_in_its_shape(field, query, error):
    assert directory_error(field, query) == error


# --- the schema comes from the same fields --------------------------------------------------


def test_each_field_documents_what_it_enforces():
    assert q.BoundedIntField(min_value=1, max_value=100).schema() == {"type": "integer", "minimum": 1, "maximum": 100}
    assert q.MultipleOfField(multiple=5, min_value=5, max_value=60).schema() == {
        "type": "integer", "minimum": 5, "maximum": 60, "multipleOf": 5,
    }
    assert q.UUIDField().schema() == {"type": "string", "format": "uuid"}
    assert q.ListField(child=q.UUIDField(), max_items=3).schema() == {
        "type": "array", "items": {"type": "string", "format": "uuid"}, "maxItems": 3,
    }
    assert q.ChoiceField(choices=["A", "B"]).schema() == {"type": "string", "enum": ["A", "B"]}
    assert "CA" in q.StateField().schema()["enum"] and "ZZ" not in q.StateField().schema()["enum"]


# --- a JSON body through the same kit -----------------------------------------------------------


class _Search(q.QueryFilter):
    family = q.V1
    body = True
    mode = q.ChoiceField(choices=["day", "patient"], default="day")
    mrn = q.TextField(max_length=8)
    ids = q.ListField(child=q.TextField(max_length=4), max_items=2, split=False)
    day = q.DateField()

    def required_for(self, values):
        return ("mrn",) if values.get("mode") == "patient" else ("day",)

    def ignored_for(self, values):
        return ("day",) if values.get("mode") == "patient" else ("mrn",)


def _body_message(body) -> str:
    with pytest.raises(Exception) as caught:
        _Search.parse(body)
    return v1_exception_handler(caught.value, {}).data["message"]


@pytest.mark.parametrize(
    "body,message",
    [
        ([], "Request body must be a JSON object."),
        (None, "Request body must be a JSON object."),
        ("text", "Request body must be a JSON object."),
        ({}, "Missing required parameters: day."),
        ({"mode": "patient", "mrn": "   "}, "Missing required parameters: mrn."),
        ({"mode": "patient", "mrn": 12}, "Invalid mrn: must be a string."),
        ({"mode": 3, "day": "2025-01-01"}, "Invalid mode. Use one of: day, patient."),
        ({"day": 20250101}, "Invalid date format. Use ISO format (YYYY-MM-DD)."),
        ({"day": "2025-01-01", "ids": "a,b"}, "Invalid ids: must be an array."),
        ({"day": "2025-01-01", "ids": ["a", 1]}, "Invalid ids: must be a string."),
        ({"day": "2025-01-01", "ids": ["a", " "]}, "Invalid ids: must not be blank."),
        ({"day": "2025-01-01", "ids": ["a", "b", "c"]}, "Invalid ids: at most 2 values."),
        ({"day": "2025-01-01", "colour": "teal"}, "Unknown parameter: colour."),
    ],
)
def test_a_json_body_keeps_its_types_and_the_family_words(body, message):
    assert _body_message(body) == message


def test_a_json_body_reads_only_what_its_mode_needs():
    assert _Search.parse({"day": "2025-01-01", "mrn": ["not read in this mode"], "ids": [" a ", "a"]}) == {
        "mode": "day", "mrn": None, "ids": ("a",), "day": date(2025, 1, 1),
    }
    assert _Search.parse({"mode": "patient", "mrn": " 123 ", "day": "not read either"})["mrn"] == "123"
