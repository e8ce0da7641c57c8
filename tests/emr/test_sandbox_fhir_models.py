"""Everything the sandbox EMR serves, fetched over HTTP from the running site, parses with the
official FHIR R4 models, so the sandbox cannot drift from what a real EMR sends.

The models are ``fhir.resources`` 6.4.0: the last release whose models are FHIR R4 (4.0.1, the
version the sandbox's CapabilityStatement declares). Later releases model R5, with R4B (4.3.0) and
STU3 as subpackages and no R4. Its models refuse unknown elements, missing required elements,
elements of the wrong type or cardinality and malformed primitives (ids, dates, instants, uris);
they do not check codes against value sets, so the codes with required bindings that the sandbox
uses are checked here against R4's value sets.

The token endpoint is left out: its answers are OAuth 2.0 JSON (SMART Backend Services), not FHIR.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import httpx
import jwt
import pytest
from fhir.resources import __fhir_version__ as MODELS_FHIR_VERSION
from fhir.resources import construct_fhir_element

from emr.models import SandboxClient
from emr.sandbox import data
from emr.services.connections import rsa_keypair_new

PEM, JWK = rsa_keypair_new()
FHIR_JSON = "application/fhir+json"

# R4 value sets of required bindings, for the elements the sandbox fills in.
REQUIRED_CODES = {
    ("Appointment", "status"): {"proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow",
                                "entered-in-error", "checked-in", "waitlist"},
    ("Appointment.participant", "required"): {"required", "optional", "information-only"},
    ("Appointment.participant", "status"): {"accepted", "declined", "tentative", "needs-action"},
    ("Slot", "status"): {"busy", "free", "busy-unavailable", "busy-tentative", "entered-in-error"},
    ("Location", "status"): {"active", "suspended", "inactive"},
    ("Location", "mode"): {"instance", "kind"},
    ("Patient", "gender"): {"male", "female", "other", "unknown"},
    ("Bundle", "type"): {"document", "message", "transaction", "transaction-response", "batch", "batch-response",
                         "history", "searchset", "collection"},
    ("Bundle.entry.search", "mode"): {"match", "include", "outcome"},
    ("OperationOutcome.issue", "severity"): {"fatal", "error", "warning", "information"},
    ("CapabilityStatement", "status"): {"draft", "active", "retired", "unknown"},
    ("CapabilityStatement", "kind"): {"instance", "capability", "requirements"},
    ("CapabilityStatement.rest", "mode"): {"client", "server"},
    ("CapabilityStatement.rest.resource.interaction", "code"): {"read", "vread", "update", "patch", "delete",
                                                                "history-instance", "history-type", "create",
                                                                "search-type"},
    ("CapabilityStatement.rest.resource.searchParam", "type"): {"number", "date", "string", "token", "reference",
                                                                "composite", "quantity", "uri", "special"},
}
# R4's issue-type codes (OperationOutcome.issue.code, a required binding).
ISSUE_TYPES = {
    "invalid", "structure", "required", "value", "invariant", "security", "login", "unknown", "expired", "forbidden",
    "suppressed", "processing", "not-supported", "duplicate", "multiple-matches", "not-found", "deleted", "too-long",
    "code-invalid", "extension", "too-costly", "business-rule", "conflict", "transient", "lock-error", "no-store",
    "exception", "timeout", "incomplete", "throttled", "informational",
}


def codes_check(resource: dict) -> None:
    """Assert the required-binding codes of one served resource (and those it contains)."""
    kind = resource["resourceType"]

    def check(path: str, node: dict) -> None:
        for (where, element), allowed in REQUIRED_CODES.items():
            if where == path and element in node:
                assert node[element] in allowed, f"{path}.{element} = {node[element]!r} is not an R4 code"

    check(kind, resource)
    if kind == "Appointment":
        for participant in resource["participant"]:
            check("Appointment.participant", participant)
    elif kind == "Bundle":
        for entry in resource.get("entry", []):
            check("Bundle.entry.search", entry["search"])
            codes_check(entry["resource"])
    elif kind == "OperationOutcome":
        for issue in resource["issue"]:
            check("OperationOutcome.issue", issue)
            assert issue["code"] in ISSUE_TYPES, f"issue code {issue['code']!r} is not an R4 issue type"
    elif kind == "CapabilityStatement":
        for rest in resource["rest"]:
            check("CapabilityStatement.rest", rest)
            for item in rest["resource"]:
                for interaction in item["interaction"]:
                    check("CapabilityStatement.rest.resource.interaction", interaction)
                for param in item.get("searchParam", []):
                    check("CapabilityStatement.rest.resource.searchParam", param)


def validated(response: httpx.Response, resource_type: str):
    """The answer parsed with the R4 model of ``resource_type`` (which it must be)."""
    assert response.headers["Content-Type"].startswith(FHIR_JSON), response.headers
    body = response.json()
    assert body["resourceType"] == resource_type, body
    model = construct_fhir_element(resource_type, body)  # raises on anything R4 does not allow
    codes_check(body)
    return model


@pytest.fixture
def fhir(sandbox_url):
    """An HTTP client of the sandbox on the live server, with a bearer token from its token
    endpoint (SMART Backend Services: a signed client assertion)."""
    SandboxClient.objects.create(client_id="models-client", jwks={"keys": [JWK]})
    token_url = f"{sandbox_url}/auth/token"
    now = int(time.time())
    signed = jwt.encode(
        {"iss": "models-client", "sub": "models-client", "aud": token_url, "iat": now, "exp": now + 240,
         "jti": uuid.uuid4().hex},
        PEM, algorithm="RS384", headers={"kid": JWK["kid"]},
    )
    with httpx.Client(base_url=sandbox_url + "/", timeout=30) as http:
        answer = http.post(token_url, data={
            "grant_type": "client_credentials", "scope": "system/*.read",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": signed,
        })
        assert answer.status_code == 200, answer.text
        http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        yield http


# The type R4 gives each search parameter the sandbox supports (its SearchParameter resources).
R4_SEARCH_PARAMETER_TYPES = {
    "Appointment": {"date": "date", "patient": "reference", "practitioner": "reference", "actor": "reference",
                    "location": "reference", "status": "token", "patient.identifier": "token"},
    "Patient": {"identifier": "token", "name": "string"},
    "Practitioner": {"identifier": "token", "active": "token", "name": "string"},
    "Location": {"status": "token", "name": "string"},
    "Schedule": {"actor": "reference", "active": "token"},
    "Slot": {"schedule": "reference", "start": "date", "status": "token"},
    "Provenance": {"target": "reference"},
}


def test_the_models_are_the_r4_the_sandbox_declares(fhir):
    capability = validated(fhir.get("metadata"), "CapabilityStatement")
    assert MODELS_FHIR_VERSION == "4.0.1" == capability.fhirVersion
    served = {item.type for item in capability.rest[0].resource}
    assert {"Appointment", "Practitioner", "Schedule", "Slot", "Location", "Patient"} <= served
    declared = {item.type: {p.name: p.type for p in item.searchParam} for item in capability.rest[0].resource}
    assert declared == R4_SEARCH_PARAMETER_TYPES


def search_pages(fhir: httpx.Client, resource_type: str, query: dict) -> list[dict]:
    """Every page of a search, following the ``next`` links the sandbox gives, each page
    validated as an R4 searchset Bundle."""
    pages = []
    response = fhir.get(resource_type, params=query)
    while True:
        assert response.status_code == 200, response.text
        bundle = validated(response, "Bundle")
        assert bundle.type == "searchset"
        pages.append(response.json())
        following = [link.url for link in bundle.link if link.relation == "next"]
        if not following:
            return pages
        response = fhir.get(following[0])


@pytest.mark.parametrize(
    "resource_type,query",
    [
        ("Practitioner", {"_count": 4}),
        ("Location", {"_count": 1}),
        ("Patient", {"_count": 150}),
        ("Schedule", {"_count": 3}),
        ("Slot", "one day"),
        ("Appointment", "one day"),
    ],
)
def test_every_searchset_page_is_a_valid_r4_bundle(fhir, resource_type, query):
    ds = data.SandboxDataset.for_now()
    day = ds.today + timedelta(days=(7 - ds.today.weekday()) % 7 or 7)  # next Monday: a working day
    if query == "one day":
        field = "start" if resource_type == "Slot" else "date"
        query = {field: [f"ge{day.isoformat()}", f"lt{(day + timedelta(days=1)).isoformat()}"], "_count": 25}
        if resource_type == "Appointment":
            query |= {"_include": ["Appointment:patient", "Appointment:practitioner", "Appointment:location"],
                      "_revinclude": "Provenance:target"}
    pages = search_pages(fhir, resource_type, query)
    matches = [e["resource"] for page in pages for e in page.get("entry", []) if e["search"]["mode"] == "match"]
    included = {e["resource"]["resourceType"] for page in pages for e in page.get("entry", []) if e["search"]["mode"] == "include"}
    assert len(pages) >= 2, "the search should need more than one page"
    assert {page["total"] for page in pages} == {len(matches)} and matches
    assert len({m["id"] for m in matches}) == len(matches) and {m["resourceType"] for m in matches} == {resource_type}
    if resource_type == "Appointment":
        assert included == {"Patient", "Practitioner", "Location", "Provenance"}


def test_every_read_is_a_valid_r4_resource(fhir):
    ds = data.SandboxDataset.for_now()
    day = ds.today + timedelta(days=(7 - ds.today.weekday()) % 7 or 7)
    appointment = ds.appointments(first=day, last=day)[0]
    slot = ds.slots(first=day, last=day)[0]
    reads = {
        "Appointment": appointment["id"],
        "Slot": slot["id"],
        "Schedule": ds.schedules()[0]["id"],
        "Practitioner": ds.practitioners()[0]["id"],
        "Location": ds.locations()[1]["id"],
        "Patient": data.patients()[0]["id"],
        "Provenance": f"PRV-CREATE-{appointment['id']}",
    }
    for resource_type, resource_id in reads.items():
        response = fhir.get(f"{resource_type}/{resource_id}")
        assert response.status_code == 200, (resource_type, response.text)
        assert validated(response, resource_type).id == resource_id


@pytest.mark.parametrize(
    "method,path,headers,status",
    [
        ("GET", "Practitioner", {"Authorization": ""}, 401),
        ("GET", "Practitioner", {"Authorization": "Bearer nonsense"}, 401),
        ("GET", "Appointment?colour=blue", {}, 400),
        ("GET", "Appointment?date=ge2025-13-45", {}, 400),
        ("GET", "Appointment?date=ge2025-01-01T10:00", {}, 400),
        ("GET", "Appointment?date=sa2025-01-01", {}, 400),
        ("GET", "Patient?_count=0", {}, 400),
        ("GET", "Patient?_getpagesoffset=x", {}, 400),
        ("GET", "Practitioner?_include=Appointment:patient", {}, 400),
        ("GET", "Provenance", {}, 400),
        ("GET", "Observation", {}, 404),
        ("GET", "Observation/1", {}, 404),
        ("GET", "Patient/pat-9999", {}, 404),
        ("POST", "Patient", {}, 405),
        ("DELETE", "Patient/pat-0001", {}, 405),
        ("PUT", "metadata", {}, 405),
        ("GET", "patient", {}, 404),
    ],
)
def test_every_error_answer_is_a_valid_r4_operation_outcome(fhir, method, path, headers, status):
    response = fhir.request(method, path, headers=headers)
    assert response.status_code == status, response.text
    outcome = validated(response, "OperationOutcome")
    assert outcome.issue and all(issue.severity == "error" and issue.diagnostics for issue in outcome.issue)


def test_a_disabled_sandbox_answers_with_an_operation_outcome(fhir, settings):
    settings.SANDBOX_ENABLED = False
    for path in ("metadata", "Practitioner", "Patient/pat-0001"):
        response = fhir.get(path)
        assert response.status_code == 404
        validated(response, "OperationOutcome")


def test_an_invalid_resource_is_refused_by_the_models():
    """The check can fail: what R4 does not allow raises."""
    good = data.public(data.SandboxDataset.for_now().appointments()[0])
    construct_fhir_element("Appointment", good)
    for broken in (
        {**good, "reasonReference": "not a list of references"},
        {**good, "start": "2025-01-01"},  # an instant needs a time and a zone
        {**good, "colour": "blue"},
        {k: v for k, v in good.items() if k != "participant"},
    ):
        with pytest.raises(ValueError):
            construct_fhir_element("Appointment", broken)
    with pytest.raises(AssertionError):
        codes_check({**good, "status": "confirmed"})
