"""The sandbox EMR as a FHIR server: discovery, the SMART token endpoint verifying client
assertions, searches with paging, and its rolling deterministic data."""

from __future__ import annotations

import time
import uuid
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

import jwt
import pytest
from django.test import Client, override_settings

from emr.models import SandboxClient
from emr.sandbox import data, server, tokens
from emr.services.connections import rsa_keypair_new
from tests.emr.conftest import day_with_secondary_only, performers, practitioners

BASE = "http://testserver/sandbox/fhir/r4"
TOKEN_URL = f"{BASE}/auth/token"
PEM, JWK = rsa_keypair_new()
OTHER_PEM, OTHER_JWK = rsa_keypair_new()


def assertion(*, client_id="sbx-client", pem=PEM, kid=JWK["kid"], aud=TOKEN_URL, exp_in=240, jti=None, alg="RS384", **claims):
    now = int(time.time())
    payload = {"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + exp_in, "jti": jti or uuid.uuid4().hex, **claims}
    return jwt.encode(payload, pem, algorithm=alg, headers={"kid": kid})


@pytest.fixture
def registered(db):
    return SandboxClient.objects.create(client_id="sbx-client", jwks={"keys": [JWK]})


def token_request(client: Client, **overrides):
    form = {
        "grant_type": "client_credentials",
        "scope": "system/*.read",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion(),
        **overrides,
    }
    return client.post("/sandbox/fhir/r4/auth/token", form)


def access_token(client: Client) -> str:
    response = token_request(client)
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def test_discovery_documents(client):
    smart = client.get("/sandbox/fhir/r4/.well-known/smart-configuration").json()
    assert smart["token_endpoint"] == TOKEN_URL
    assert smart["token_endpoint_auth_signing_alg_values_supported"] == ["RS384"]
    assert smart["grant_types_supported"] == ["client_credentials"]
    metadata = client.get("/sandbox/fhir/r4/metadata")
    assert metadata["Content-Type"] == "application/fhir+json"
    capability = metadata.json()
    assert capability["resourceType"] == "CapabilityStatement" and capability["fhirVersion"] == "4.0.1"
    types = {r["type"]: r for r in capability["rest"][0]["resource"]}
    assert {"Appointment", "Patient", "Practitioner", "Location", "Schedule", "Slot"} <= set(types)
    assert {"date", "patient", "patient.identifier", "practitioner", "actor"} <= {p["name"] for p in types["Appointment"]["searchParam"]}


def test_token_endpoint_issues_a_token_for_a_valid_assertion(client, registered):
    response = token_request(client)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 300 and body["scope"] == "system/*.read"
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "signed,overrides,error,description",
    [
        ({"pem": OTHER_PEM}, {}, "invalid_client", "signature does not verify"),
        ({"kid": "other-kid"}, {}, "invalid_client", "No registered key with kid"),
        ({"client_id": "nobody"}, {}, "invalid_client", "Unknown client 'nobody'"),
        ({"aud": "https://elsewhere.example/token"}, {}, "invalid_client", "aud must be the token endpoint"),
        ({"exp_in": -120}, {}, "invalid_client", "expired"),
        ({"exp_in": 3600}, {}, "invalid_client", "more than five minutes"),
        ({"sub": "someone-else"}, {}, "invalid_client", "sub must equal iss"),
        ({"alg": "RS256"}, {}, "invalid_client", "must be signed RS384"),
        (None, {"client_assertion": "not-a-jwt"}, "invalid_client", "not a JWT"),
        (None, {"grant_type": "authorization_code"}, "unsupported_grant_type", "client_credentials"),
        (None, {"client_assertion_type": "urn:other"}, "invalid_request", "client_assertion_type"),
        (None, {"scope": "system/*.write"}, "invalid_scope", "system/*.write"),
    ],
)
def test_token_endpoint_refuses_bad_assertions(client, registered, signed, overrides, error, description):
    # Signed now, not at collection: an assertion lives 240 s, and a run may take longer than that.
    if signed is not None:
        overrides = {"client_assertion": assertion(**signed), **overrides}
    response = token_request(client, **overrides)
    assert response.status_code == (401 if error == "invalid_client" else 400)
    body = response.json()
    assert body["error"] == error and description in body["error_description"]


def test_a_replayed_assertion_is_refused(client, registered):
    signed = assertion(jti="once")
    assert token_request(client, client_assertion=signed).status_code == 200
    replay = token_request(client, client_assertion=signed)
    assert replay.status_code == 401 and "already used" in replay.json()["error_description"]


def test_searches_need_a_valid_bearer_token(client, registered):
    assert client.get("/sandbox/fhir/r4/Practitioner").status_code == 401
    bad = client.get("/sandbox/fhir/r4/Practitioner", HTTP_AUTHORIZATION="Bearer nonsense")
    assert bad.status_code == 401 and bad.json()["resourceType"] == "OperationOutcome"
    expired = tokens.access_token_issue(client_id="sbx-client", scope="system/*.read", secret=__import__("django.conf").conf.settings.SECRET_KEY, now=time.time() - 600, ttl=300)
    assert client.get("/sandbox/fhir/r4/Practitioner", HTTP_AUTHORIZATION=f"Bearer {expired}").status_code == 401
    ok = client.get("/sandbox/fhir/r4/Practitioner", HTTP_AUTHORIZATION=f"Bearer {access_token(client)}")
    assert ok.status_code == 200 and ok.json()["total"] == len(data.TEMPLATES)


def test_appointment_search_pages_by_next_links(client, registered):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {access_token(client)}"}
    ds = data.SandboxDataset.for_now()
    day = ds.today + timedelta(days=(7 - ds.today.weekday()) % 7 or 7)  # next Monday
    expected = [a["id"] for a in sorted(ds.appointments(first=day, last=day), key=lambda a: (a["start"], a["id"]))]
    url = f"/sandbox/fhir/r4/Appointment?date=ge{day.isoformat()}&date=lt{(day + timedelta(days=1)).isoformat()}&_count=7"
    seen, pages = [], 0
    while url:
        bundle = client.get(url, **auth).json()
        pages += 1
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset" and bundle["total"] == len(expected)
        seen += [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"]
        nxt = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        url = (urlsplit(nxt).path + "?" + urlsplit(nxt).query) if nxt else None
    assert seen == expected and pages == -(-len(expected) // 7)


def test_search_parameters_the_adapter_uses(client, registered):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {access_token(client)}"}
    ds = data.SandboxDataset.for_now()
    # A day where PRV-1001 is the secondary performer of another provider's appointment.
    day, shared = day_with_secondary_only(ds, first=ds.today + timedelta(days=1), providers={"PRV-1001"})
    first = ds.appointments(first=day, last=day)[0]
    patient_id = first["participant"][0]["actor"]["reference"].split("/")[1]
    mrn = data.patients_by_id()[patient_id]["identifier"][0]["value"]

    def ids(query):
        response = client.get(f"/sandbox/fhir/r4/Appointment?{query}&_count=500", **auth)
        assert response.status_code == 200, response.content
        return {e["resource"]["id"] for e in response.json()["entry"] if e["search"]["mode"] == "match"}

    by_patient = ids(f"patient=Patient/{patient_id}")
    assert first["id"] in by_patient and by_patient == ids(f"patient.identifier={data.MRN_SYSTEM}|{mrn}") == ids(f"patient.identifier={mrn}")
    # FHIR's practitioner (and actor) parameters match any participant: primary or secondary.
    by_practitioner = ids(f"practitioner=Practitioner/PRV-1001&date=eq{day.isoformat()}")
    assert by_practitioner == {a["id"] for a in ds.appointments(first=day, last=day) if "PRV-1001" in practitioners(a)}
    assert shared["id"] in by_practitioner and "PRV-1001" not in performers(shared, "PPRF")
    assert by_practitioner == ids(f"actor=Practitioner/PRV-1001&date=ge{day.isoformat()}&date=le{day.isoformat()}")

    included = client.get(f"/sandbox/fhir/r4/Appointment?_id={first['id']}&_include=Appointment:patient&_revinclude=Provenance:target", **auth).json()
    kinds = {e["resource"]["resourceType"]: e["search"]["mode"] for e in included["entry"]}
    assert kinds == {"Appointment": "match", "Patient": "include", "Provenance": "include"}
    assert all(not k.startswith("_") for e in included["entry"] for k in e["resource"])

    unknown = client.get("/sandbox/fhir/r4/Appointment?colour=blue", **auth)
    assert unknown.status_code == 400 and unknown.json()["issue"][0]["diagnostics"] == "Unknown search parameter 'colour' for Appointment."
    assert client.get("/sandbox/fhir/r4/Appointment?date=ge2025-13-45", **auth).status_code == 400
    read = client.get(f"/sandbox/fhir/r4/Patient/{patient_id}", **auth)
    assert read.status_code == 200 and read.json()["id"] == patient_id
    assert client.get("/sandbox/fhir/r4/Patient/pat-9999", **auth).status_code == 404


def test_same_date_gives_the_same_appointments_whatever_the_day_it_is_asked():
    day = date(2031, 3, 4)  # a Tuesday
    seen_from_before = data.SandboxDataset(today=day - timedelta(days=10)).appointments(first=day, last=day)
    seen_from_closer = data.SandboxDataset(today=day - timedelta(days=1)).appointments(first=day, last=day)
    seen_after = data.SandboxDataset(today=day + timedelta(days=5)).appointments(first=day, last=day)
    key = lambda items: [(a["id"], a["start"], a["end"], a["participant"][0]["actor"]["reference"], a["appointmentType"]["coding"][0]["code"]) for a in items]  # noqa: E731
    assert seen_from_before and key(seen_from_before) == key(seen_from_closer) == key(seen_after)
    assert [a["status"] for a in seen_from_before] == [a["status"] for a in seen_from_closer]
    # Once the date has passed the visits are done: fulfilled (or no-show / cancelled).
    assert {a["status"] for a in seen_after} <= {"fulfilled", "noshow", "cancelled"}
    assert {a["status"] for a in seen_from_before} <= {"booked", "cancelled", "pending"}


def test_appointments_on_every_weekday_from_30_days_before_to_90_days_after_today():
    today = date(2031, 3, 4)
    ds = data.SandboxDataset(today=today)
    by_day = {}
    for appointment in ds.appointments(first=today - timedelta(days=40), last=today + timedelta(days=100)):
        day = datetime.fromisoformat(appointment["start"]).date()
        by_day[day] = by_day.get(day, 0) + 1
    weekdays = [today + timedelta(days=n) for n in range(-30, 91) if (today + timedelta(days=n)).weekday() < 5]
    assert all(by_day.get(day, 0) > 0 for day in weekdays)
    assert min(by_day) >= today - timedelta(days=30) and max(by_day) <= today + timedelta(days=90)


def test_synthetic_npis_have_valid_check_digits():
    def luhn_ok(npi: str) -> bool:
        digits = [int(c) for c in "80840" + npi]
        total = 0
        for index, digit in enumerate(reversed(digits)):
            if index % 2 == 1:
                digit *= 2
                digit -= 9 if digit > 9 else 0
            total += digit
        return total % 10 == 0

    synthetic = data.provider_templates(20)[len(data.TEMPLATES):]
    assert synthetic and all(luhn_ok(t.npi) for t in synthetic)


@override_settings(SANDBOX_ENABLED=False)
def test_disabled_sandbox_answers_404(client, registered):
    for path in ("metadata", ".well-known/smart-configuration", "Practitioner"):
        response = client.get(f"/sandbox/fhir/r4/{path}")
        assert response.status_code == 404 and response.json()["resourceType"] == "OperationOutcome"
    assert token_request(client).status_code == 404


def test_server_module_refuses_unknown_types():
    status, body = server.handle_search(data.SandboxDataset.for_now(), "Observation", [], base_url=BASE)
    assert status == 404 and "not supported" in body["issue"][0]["diagnostics"]
