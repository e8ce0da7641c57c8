"""``/v1/webhook`` and ``/v1/webhook-events``: behaviour, validation, and an isolation table."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from emr.models import Job
from emr.services import emr_connection_create
from tenants.crypto import decrypt_text
from tenants.errors import NotFound
from tenants.events import event_emit
from tenants.models import Delivery, Event, WebhookEndpoint
from tenants.services import api_client_create, api_client_revoke
from tenants.webhooks.selectors import webhook_endpoint_get
from tenants.webhooks.services import delivery_attempt_run
from tests.conftest import make_tenant


def post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def test_register_returns_the_secret_once_and_it_signs_deliveries(tenant, receiver):
    response = post(tenant.v1(), "/v1/webhook", {"url": receiver.url()})
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    webhook = body["webhook"]
    assert webhook["url"] == receiver.url() and webhook["id"].startswith("wh_")
    assert webhook["secret"].startswith("whsec_") and webhook["status"] == "active"
    endpoint = WebhookEndpoint.objects.get(pk=webhook["id"])
    assert endpoint.organization_id == tenant.organization.pk
    assert decrypt_text(endpoint.secret_encrypted) == webhook["secret"]

    listed = tenant.v1().get("/v1/webhook").json()
    assert listed["success"] is True
    assert [w["id"] for w in listed["webhooks"]] == [webhook["id"]]
    assert "secret" not in listed["webhooks"][0]

    event = event_emit(organization=tenant.organization, type="appointment.created", data={"x": 1})
    delivery_attempt_run()
    [request] = receiver.wait_for(1)
    assert Webhook(webhook["secret"]).verify(request.body, request.headers) == event.payload


def test_register_with_an_event_type_filter(tenant, receiver):
    response = post(tenant.v1(), "/v1/webhook", {"url": receiver.url(), "event_types": ["appointment.cancelled"]})
    assert response.status_code == 200 and response.json()["webhook"]["event_types"] == ["appointment.cancelled"]
    event_emit(organization=tenant.organization, type="appointment.created", data={})
    assert not Delivery.objects.exists()


@pytest.mark.parametrize(
    "body,message",
    [
        ({}, "url: This field is required."),
        ({"url": 12}, "url: Must be a string."),
        ({"url": None}, "url: This field may not be null."),
        ({"url": "notaurl"}, "url: must start with https://."),
        ({"url": "not a url"}, "url: must not contain spaces"),
        ({"url": "ftp://example.com/x"}, "url: must start with https://."),
        ({"url": "https://" + "a" * 2000}, "url: Ensure this field has no more than 2000 characters."),
        ({"url": "http://127.0.0.1/x", "event_types": ["nope"]}, "event_types[0]:"),
        ({"url": "http://127.0.0.1/x", "event_types": "appointment.created"}, "event_types:"),
        ([{"url": "http://127.0.0.1/x"}], "Invalid data"),
    ],
)
def test_register_rejects_bad_input_naming_the_field_and_writes_nothing(tenant, body, message):
    response = post(tenant.v1(), "/v1/webhook", body)
    assert response.status_code == 400
    assert response.json()["success"] is False
    assert response.json()["message"].startswith(message)
    assert not WebhookEndpoint.objects.exists()


def test_register_rejects_malformed_json(tenant):
    response = tenant.v1().post("/v1/webhook", data=b'{"url": ', content_type="application/json")
    assert response.status_code == 400 and response.json()["success"] is False
    assert not WebhookEndpoint.objects.exists()


@override_settings(WEBHOOK_ALLOW_PRIVATE_URLS=False)
def test_register_refuses_private_addresses_in_production_mode(tenant):
    response = post(tenant.v1(), "/v1/webhook", {"url": "https://127.0.0.1/hook"})
    assert response.status_code == 400
    assert response.json()["message"].startswith("url: must resolve to public addresses only")
    response = post(tenant.v1(), "/v1/webhook", {"url": "http://93.184.215.14/hook"})
    assert response.json()["message"] == "url: must use https:// (plain http is not allowed unless WEBHOOK_ALLOW_PRIVATE_URLS=true)."
    assert not WebhookEndpoint.objects.exists()


def test_registering_the_same_url_twice_is_a_conflict(tenant, receiver):
    assert post(tenant.v1(), "/v1/webhook", {"url": receiver.url()}).status_code == 200
    response = post(tenant.v1(), "/v1/webhook", {"url": receiver.url()})
    assert response.status_code == 409
    assert response.json() == {"success": False, "message": "A webhook with this URL is already registered."}
    assert WebhookEndpoint.objects.count() == 1


def test_delete_stops_deliveries_and_hides_the_webhook(tenant, receiver):
    webhook = post(tenant.v1(), "/v1/webhook", {"url": receiver.url()}).json()["webhook"]
    response = tenant.v1().delete(f"/v1/webhook/{webhook['id']}")
    assert response.status_code == 200 and response.json() == {"success": True, "message": "Webhook deleted."}
    assert tenant.v1().get("/v1/webhook").json()["webhooks"] == []
    assert tenant.v1().delete(f"/v1/webhook/{webhook['id']}").status_code == 404
    event_emit(organization=tenant.organization, type="appointment.created", data={})
    assert not Delivery.objects.exists()
    # the same URL may be registered again
    assert post(tenant.v1(), "/v1/webhook", {"url": receiver.url()}).status_code == 200


def test_rotate_secret_returns_a_new_secret_and_keeps_the_old_one_for_24_hours(tenant, receiver):
    webhook = post(tenant.v1(), "/v1/webhook", {"url": receiver.url()}).json()["webhook"]
    before = timezone.now()
    response = tenant.v1().post(f"/v1/webhook/{webhook['id']}/rotate-secret")
    assert response.status_code == 200
    rotated = response.json()["webhook"]
    assert rotated["id"] == webhook["id"] and rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != webhook["secret"]
    expires = WebhookEndpoint.objects.get(pk=webhook["id"]).previous_secret_expires_at
    assert 24 * 3600 - 5 < (expires - before).total_seconds() < 24 * 3600 + 5

    event_emit(organization=tenant.organization, type="appointment.created", data={})
    delivery_attempt_run()
    [request] = receiver.wait_for(1)
    for secret in (webhook["secret"], rotated["secret"]):
        Webhook(secret).verify(request.body, request.headers)


def test_unknown_webhook_ids_are_404_in_the_v1_shape(tenant):
    for method, url in (("delete", "/v1/webhook/wh_nope"), ("post", "/v1/webhook/wh_nope/rotate-secret")):
        response = getattr(tenant.v1(), method)(url)
        assert response.status_code == 404
        assert response.json() == {"success": False, "message": "Webhook not found."}


def test_the_endpoint_selector_raises_the_domain_not_found(tenant):
    other = make_tenant("Elsewhere")
    theirs = WebhookEndpoint.objects.create(organization=other.organization, url="https://example.com/hook")
    for endpoint_id in ("wh_nope", theirs.pk, None):
        with pytest.raises(NotFound, match="Webhook not found."):
            webhook_endpoint_get(organization=tenant.organization, endpoint_id=endpoint_id)


def test_wrong_methods_are_405_in_the_v1_shape(tenant):
    response = tenant.v1().put("/v1/webhook", data="{}", content_type="application/json")
    assert response.status_code == 405 and response.json()["success"] is False


# --- webhook-events -----------------------------------------------------------------------------


def make_job(tenant, connection=None) -> Job:
    return Job.objects.create(
        organization=tenant.organization,
        emr_connection=connection or tenant.emr_connection,
        kind=Job.Kind.APPOINTMENTS_FETCH,
        params={"start_date": "2025-01-01", "end_date": "2025-01-01"},
    )


def test_job_events_are_listed_without_any_webhook_registered(tenant):
    job = make_job(tenant)
    reference = tenant.emr_connection.access_token_reference_id
    first = event_emit(organization=tenant.organization, type="appointment.live_fetch_completed",
                       data={"success": True, "appointment_count": 1, "appointments": [{"id": "a"}]},
                       job_id=job.pk, access_token_reference_id=reference)
    event_emit(organization=tenant.organization, type="appointment.created", data={}, job_id="job_other")
    assert not WebhookEndpoint.objects.exists()

    response = tenant.v1().get(f"/v1/webhook-events?job_id={job.pk}")
    assert response.status_code == 200
    assert response.json() == {"success": True, "webhook_events": [first.payload]}
    assert response.json()["webhook_events"][0]["job_id"] == job.pk


def test_job_events_keep_the_payload_key_order(tenant):
    job = make_job(tenant)
    event_emit(organization=tenant.organization, type="availability.live_fetch_completed",
               data={"success": True, "z": 1, "a": 2}, job_id=job.pk,
               access_token_reference_id=tenant.emr_connection.access_token_reference_id)
    raw = tenant.v1().get(f"/v1/webhook-events?job_id={job.pk}").content.decode()
    stored = Event.objects.get().body
    assert stored in raw  # byte for byte the body that is POSTed


def test_a_job_without_events_yet_is_an_empty_list(tenant):
    job = make_job(tenant)
    assert tenant.v1().get(f"/v1/webhook-events?job_id={job.pk}").json() == {"success": True, "webhook_events": []}


@pytest.mark.parametrize(
    "query,message",
    [
        ("", "Missing required parameters: job_id."),
        ("?job_id=", "Missing required parameters: job_id."),
        ("?job_id=abc", "job_id: must be a job id"),
        ("?job_id=job_" + "a" * 60, "job_id: must be a job id"),
        ("?job_id=job_a%27%20OR%201=1", "job_id: must be a job id"),
    ],
)
def test_job_id_is_validated(tenant, query, message):
    response = tenant.v1().get(f"/v1/webhook-events{query}")
    assert response.status_code == 400
    assert response.json()["success"] is False and response.json()["message"].startswith(message)


def test_unknown_job_is_404(tenant):
    response = tenant.v1().get("/v1/webhook-events?job_id=job_000000000000000000000000")
    assert response.status_code == 404 and response.json() == {"success": False, "message": "Job not found."}


def test_job_events_are_scoped_to_the_connection_that_started_the_job(tenant):
    second = emr_connection_create(organization=tenant.organization, name="Second EMR")
    job = make_job(tenant)
    event_emit(organization=tenant.organization, type="appointment.live_fetch_completed", data={"success": True},
               job_id=job.pk, access_token_reference_id=tenant.emr_connection.access_token_reference_id)
    other = APIClient()
    other.credentials(HTTP_CLIENT_ID=tenant.client_id, HTTP_CLIENT_SECRET=tenant.client_secret,
                      HTTP_ACCESS_TOKEN=second.access_token)
    assert tenant.v1().get(f"/v1/webhook-events?job_id={job.pk}").json()["webhook_events"] != []
    assert other.get(f"/v1/webhook-events?job_id={job.pk}").status_code == 404


# --- isolation table ----------------------------------------------------------------------------

ROWS = [
    # (method, url template, body, owner's status)
    ("GET", "/v1/webhook", None, 200),
    ("POST", "/v1/webhook", {"url": "http://127.0.0.1:9/new"}, 200),
    ("DELETE", "/v1/webhook/{webhook}", None, 200),
    ("POST", "/v1/webhook/{webhook}/rotate-secret", None, 200),
    ("GET", "/v1/webhook-events?job_id={job}", None, 200),
]
CREDENTIALS = ["own", "other_tenant", "none", "bad_secret", "bad_token", "revoked"]


@pytest.fixture
def world(db):
    a, b = make_tenant("A"), make_tenant("B")
    webhook = post(a.v1(), "/v1/webhook", {"url": "http://127.0.0.1:9/a"}).json()["webhook"]
    post(b.v1(), "/v1/webhook", {"url": "http://127.0.0.1:9/b"})
    job = make_job(a)
    event_emit(organization=a.organization, type="appointment.live_fetch_completed", data={"success": True},
               job_id=job.pk, access_token_reference_id=a.emr_connection.access_token_reference_id)
    revoked = api_client_create(organization=a.organization)
    api_client_revoke(api_client=revoked.api_client)

    def v1(client_id, client_secret, token):
        client = APIClient()
        client.credentials(HTTP_CLIENT_ID=client_id, HTTP_CLIENT_SECRET=client_secret, HTTP_ACCESS_TOKEN=token)
        return client

    clients = {
        "own": a.v1(),
        "other_tenant": b.v1(),
        "none": APIClient(),
        "bad_secret": v1(a.client_id, "cs_" + "x" * 50, a.access_token),
        "bad_token": v1(a.client_id, a.client_secret, "tok_" + "x" * 50),
        "revoked": v1(revoked.api_client.client_id, revoked.client_secret, a.access_token),
    }
    return {"a": a, "b": b, "webhook": webhook, "job": job, "clients": clients}


def snapshot(organization) -> list:
    return sorted(
        WebhookEndpoint.objects.filter(organization=organization).values_list(
            "id", "url", "secret_encrypted", "deleted_at", "is_active"
        )
    )


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("method,template,body,owner_status", ROWS)
def test_isolation(world, method, template, body, owner_status, credential):
    a, b = world["a"], world["b"]
    url = template.format(webhook=world["webhook"]["id"], job=world["job"].pk)
    before_a = snapshot(a.organization)
    client = world["clients"][credential]
    response = client.generic(method, url, data=json.dumps(body) if body else "", content_type="application/json")
    payload = response.json()

    if credential == "own":
        assert response.status_code == owner_status and payload["success"] is True
        return
    if credential in ("none", "bad_secret", "bad_token", "revoked"):
        assert response.status_code == 401
        assert payload["success"] is False and payload["message"].startswith("Unauthorized")
    else:  # the other tenant's valid credentials
        if "{" in template:  # names A's object
            assert response.status_code == 404 and payload["success"] is False
        else:  # a collection: B sees and creates only its own
            assert response.status_code == 200
            if method == "GET":
                assert [w["url"] for w in payload["webhooks"]] == ["http://127.0.0.1:9/b"]
            else:
                created = WebhookEndpoint.objects.get(pk=payload["webhook"]["id"])
                assert created.organization_id == b.organization.pk
    assert snapshot(a.organization) == before_a


def test_every_webhook_route_is_in_the_table():
    from emr.api.urls import webhook_urlpatterns

    routes = set()
    for pattern in webhook_urlpatterns:
        routes.add("/v1/" + str(pattern.pattern).replace("<str:webhook_id>", "{webhook}"))
    covered = {template.split("?")[0] for _, template, _, _ in ROWS}
    assert routes == covered


def test_a_nul_in_client_id_is_a_401_not_a_500(tenant):
    client = APIClient()
    client.credentials(HTTP_CLIENT_ID="cli\x00x", HTTP_CLIENT_SECRET=tenant.client_secret, HTTP_ACCESS_TOKEN=tenant.access_token)
    response = client.get("/v1/webhook")
    assert response.status_code == 401 and response.json()["success"] is False
