"""Domain errors (``tenants.errors``) in every API family's error shape, and in the admin."""

from __future__ import annotations

import pytest
from django import forms
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.test import RequestFactory

from booking.api.base import v3_exception_handler
from emr.api.base import v1_exception_handler
from tenants.admin_errors import domain_error_message, domain_error_text, form_add_domain_error
from tenants.api.errors import directory_exception_handler
from tenants.errors import Conflict, DomainError, InvalidInput, NotFound

INVALID = InvalidInput({"startTime": "Must be in the future.", "ResourceIds": ["Unknown.", "Not linked."]})

CASES = [
    (
        INVALID,
        400,
        {
            "statusCode": 400,
            "name": "BadRequestError",
            "message": "startTime: Must be in the future.",
            "errors": [
                {"field": "startTime", "message": "Must be in the future."},
                {"field": "ResourceIds", "message": "Unknown."},
                {"field": "ResourceIds", "message": "Not linked."},
            ],
        },
        {"success": False, "message": "startTime: Must be in the future."},
        {"status": 400, "success": False, "message": "Invalid request", "error": "startTime: Must be in the future."},
    ),
    (
        InvalidInput(message="The body is wrong as a whole."),
        400,
        {
            "statusCode": 400,
            "name": "BadRequestError",
            "message": "The body is wrong as a whole.",
            "errors": [{"field": "body", "message": "The body is wrong as a whole."}],
        },
        {"success": False, "message": "The body is wrong as a whole."},
        {"status": 400, "success": False, "message": "Invalid request", "error": "The body is wrong as a whole."},
    ),
    (
        Conflict("That time is not bookable."),
        409,
        {"statusCode": 409, "name": "ConflictError", "message": "That time is not bookable.", "errors": []},
        {"success": False, "message": "That time is not bookable."},
        {"status": 409, "success": False, "message": "Conflict", "error": "That time is not bookable."},
    ),
    (
        NotFound("Location not found."),
        404,
        {"statusCode": 404, "name": "NotFoundError", "message": "Location not found.", "errors": []},
        {"success": False, "message": "Location not found."},
        {"status": 404, "success": False, "message": "Not found", "error": "Location not found."},
    ),
    (
        DomainError(),
        400,
        {
            "statusCode": 400,
            "name": "BadRequestError",
            "message": "The operation is not possible.",
            "errors": [{"field": "body", "message": "The operation is not possible."}],
        },
        {"success": False, "message": "The operation is not possible."},
        {"status": 400, "success": False, "message": "Invalid request", "error": "The operation is not possible."},
    ),
]


@pytest.mark.parametrize("error,status,v3,v1,directory", CASES, ids=[type(c[0]).__name__ + str(i) for i, c in enumerate(CASES)])
def test_each_family_renders_each_domain_error_in_its_shape(error, status, v3, v1, directory):
    for handler, body in ((v3_exception_handler, v3), (v1_exception_handler, v1), (directory_exception_handler, directory)):
        response = handler(error, {})
        assert (response.status_code, response.data) == (status, body), handler.__name__


def test_invalid_input_defaults_and_messages():
    assert NotFound().message == "Not found." and str(Conflict()) == "The request conflicts with the current state."
    assert INVALID.fields == {"startTime": ["Must be in the future."], "ResourceIds": ["Unknown.", "Not linked."]}
    assert InvalidInput().message == "Invalid input." and InvalidInput().errors == []


def _request():
    request = RequestFactory().post("/admin/")
    request.session = {}
    request._messages = FallbackStorage(request)
    return request


def test_the_admin_shows_a_domain_error_as_one_message():
    request = _request()
    domain_error_message(request, Conflict("The location has 3 upcoming appointments."), prefix="Not deleted: ")
    domain_error_message(request, INVALID)
    shown = [(m.level_tag, m.message) for m in get_messages(request)]
    assert shown == [
        ("error", "Not deleted: The location has 3 upcoming appointments."),
        ("error", "startTime: Must be in the future.; ResourceIds: Unknown.; ResourceIds: Not linked."),
    ]
    assert domain_error_text(InvalidInput({"body": "Wrong."})) == "Wrong."


class _Form(forms.Form):
    start = forms.CharField(required=False)


def test_the_admin_puts_invalid_input_on_the_form_fields():
    form = _Form(data={"start": "x"})
    assert form.is_valid()
    form_add_domain_error(form, InvalidInput({"startTime": "Must be in the future.", "notes": "Too long."}), aliases={"startTime": "start"})
    assert form.errors == {"start": ["Must be in the future."], "__all__": ["notes: Too long."]}
    other = _Form(data={})
    assert other.is_valid()
    form_add_domain_error(other, Conflict("Taken."))
    assert other.errors == {"__all__": ["Taken."]}
