"""Unit tests of the FHIR client at the HTTP boundary (respx): SMART Backend Services assertions
and token caching, 429/5xx/timeout handling, paging rules, OperationOutcome errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
import respx

from emr.adapters.base import (
    ConnectionConfig,
    EmrAuthError,
    EmrNotConfigured,
    EmrRateLimited,
    EmrRequestError,
    EmrResponseError,
    EmrUnavailable,
)
from emr.adapters.fhir import FhirAdapter, token_cache_clear
from emr.services.connections import rsa_keypair_new

BASE = "https://ehr.example.com/fhir/r4"
TOKEN_URL = "https://auth.example.com/oauth2/token"
PEM, JWK = rsa_keypair_new()


@pytest.fixture(autouse=True)
def _clean():
    token_cache_clear()
    yield
    token_cache_clear()


class Recorder:
    def __init__(self):
        self.sleeps: list[float] = []
        self.pauses: list[float] = []
        self.acquired = 0

    def sleep(self, seconds):
        self.sleeps.append(seconds)

    def acquire(self):
        self.acquired += 1

    def pause(self, seconds):
        self.pauses.append(seconds)


def config(**kwargs) -> ConnectionConfig:
    values = dict(
        key="conn-1", vendor="ecw", base_url=BASE, timezone="America/Chicago", client_id="client-1",
        private_key_pem=PEM, kid=JWK["kid"], token_url=TOKEN_URL, page_size=2, max_pages=5,
    )
    values.update(kwargs)
    return ConnectionConfig(**values)


def adapter(rec: Recorder | None = None, clock=None, **kwargs) -> FhirAdapter:
    rec = rec or Recorder()
    extra = {"clock": clock} if clock else {}
    return FhirAdapter(config(**kwargs), throttle=rec, sleep=rec.sleep, **extra)


def bundle(*resources, next_url: str | None = None) -> dict:
    links = [{"relation": "next", "url": next_url}] if next_url else []
    return {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources]}


def token_ok(expires_in: int = 300):
    return httpx.Response(200, json={"access_token": "tok-1", "token_type": "bearer", "expires_in": expires_in})


LOC = {"resourceType": "Location", "id": "L1", "name": "Main"}


@respx.mock
def test_client_assertion_is_an_rs384_jwt_for_the_token_endpoint():
    token = respx.post(TOKEN_URL).mock(return_value=token_ok())
    respx.get(f"{BASE}/Location").mock(return_value=httpx.Response(200, json=bundle(LOC)))
    assert [loc.ehr_id for loc in adapter().locations()] == ["L1"]

    form = parse_qs(token.calls[0].request.content.decode())
    assert form["grant_type"] == ["client_credentials"]
    assert form["client_assertion_type"] == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
    assertion = form["client_assertion"][0]
    header = jwt.get_unverified_header(assertion)
    assert header["alg"] == "RS384" and header["kid"] == JWK["kid"]
    claims = jwt.decode(assertion, jwt.PyJWK(JWK).key, algorithms=["RS384"], audience=TOKEN_URL)
    assert claims["iss"] == claims["sub"] == "client-1"
    assert 0 < claims["exp"] - claims["iat"] <= 300 and claims["jti"]
    assert respx.calls[-1].request.headers["Authorization"] == "Bearer tok-1"


@respx.mock
def test_token_is_cached_until_shortly_before_expiry_then_minted_again():
    now = [1_000_000.0]
    token = respx.post(TOKEN_URL).mock(return_value=token_ok(300))
    respx.get(f"{BASE}/Location").mock(return_value=httpx.Response(200, json=bundle(LOC)))
    client = adapter(clock=lambda: now[0])
    client.locations()
    client._locations_cache = None
    now[0] += 200
    client.locations()
    assert token.call_count == 1
    client._locations_cache = None
    now[0] += 75  # 275 s after minting: inside the 30 s safety margin
    client.locations()
    assert token.call_count == 2
    jtis = {jwt.decode(parse_qs(c.request.content.decode())["client_assertion"][0], options={"verify_signature": False})["jti"] for c in token.calls}
    assert len(jtis) == 2


@respx.mock
def test_a_401_mints_a_new_token_once_then_gives_up_as_login_required():
    token = respx.post(TOKEN_URL).mock(side_effect=[token_ok(), httpx.Response(200, json={"access_token": "tok-2", "expires_in": 300})])
    search = respx.get(f"{BASE}/Location").mock(side_effect=[httpx.Response(401), httpx.Response(200, json=bundle(LOC))])
    client = adapter()
    assert [loc.ehr_id for loc in client.locations()] == ["L1"]
    assert token.call_count == 2 and search.calls[-1].request.headers["Authorization"] == "Bearer tok-2"
    assert client.stats.retries_401 == 1

    token_cache_clear()
    respx.post(TOKEN_URL).mock(return_value=token_ok())
    respx.get(f"{BASE}/Location").mock(return_value=httpx.Response(401, json={"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "login", "diagnostics": "Token revoked"}]}))
    with pytest.raises(EmrAuthError) as caught:
        adapter().locations()
    assert str(caught.value) == "The EMR rejected a freshly issued access token (searching Location): error login: Token revoked."


@respx.mock
def test_token_endpoint_refusal_is_a_login_problem():
    respx.post(TOKEN_URL).mock(return_value=httpx.Response(400, json={"error": "invalid_client", "error_description": "Signature invalid."}))
    with pytest.raises(EmrAuthError) as caught:
        adapter().locations()
    assert str(caught.value) == "The EMR's token endpoint refused our credentials (HTTP 400): invalid_client: Signature invalid."


@respx.mock
def test_429_waits_retry_after_and_tells_the_shared_bucket():
    respx.post(TOKEN_URL).mock(return_value=token_ok())
    respx.get(f"{BASE}/Location").mock(side_effect=[httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json=bundle(LOC))])
    rec = Recorder()
    client = adapter(rec)
    assert [loc.ehr_id for loc in client.locations()] == ["L1"]
    assert rec.sleeps == [7.0] and rec.pauses == [7.0]
    assert rec.acquired == 3  # token request + two searches: every call takes from the bucket


@respx.mock
def test_retry_after_as_an_http_date():
    respx.post(TOKEN_URL).mock(return_value=token_ok())
    when = datetime.now(UTC) + timedelta(seconds=30)
    respx.get(f"{BASE}/Location").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": when.strftime("%a, %d %b %Y %H:%M:%S GMT")}), httpx.Response(200, json=bundle(LOC))]
    )
    rec = Recorder()
    adapter(rec).locations()
    assert 25 <= rec.sleeps[0] <= 31


@respx.mock
def test_endless_429_gives_up_with_a_clear_error():
    respx.post(TOKEN_URL).mock(return_value=token_ok())
    respx.get(f"{BASE}/Location").mock(return_value=httpx.Response(429))
    rec = Recorder()
    with pytest.raises(EmrRateLimited) as caught:
        adapter(rec).locations()
    assert str(caught.value) == "The EMR kept answering 429 Too Many Requests (searching Location) after 6 retries."
    assert rec.sleeps == [2.0, 4.0, 8.0, 16.0, 32.0, 64.0]  # no Retry-After: exponential


@respx.mock
def test_5xx_is_retried_then_reported_with_the_operation_outcome():
    respx.post(TOKEN_URL).mock(return_value=token_ok())
    respx.get(f"{BASE}/Location").mock(side_effect=[httpx.Response(503), httpx.Response(200, json=bundle(LOC))])
    rec = Recorder()
    assert adapter(rec).locations()[0].ehr_id == "L1" and rec.sleeps == [0.5]

    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "fatal", "code": "exception", "diagnostics": "Database down"}]}
    respx.get(f"{BASE}/Location").mock(return_value=httpx.Response(500, json=outcome))
    with pytest.raises(EmrUnavailable) as caught:
        adapter(Recorder()).locations()
    assert str(caught.value) == "The EMR failed (searching Location, HTTP 500): fatal exception: Database down."


@respx.mock
def test_timeouts_are_retried_then_reported():
    respx.post(TOKEN_URL).mock(return_value=token_ok())
    respx.get(f"{BASE}/Location").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(EmrUnavailable) as caught:
        adapter(Recorder(), timeout_seconds=12).locations()
    assert str(caught.value) == "The EMR did not answer within 12 seconds (searching Location)."


@respx.mock
def test_4xx_and_403_errors_carry_the_operation_outcome():
    respx.post(TOKEN_URL).mock(return_value=token_ok())
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid", "details": {"text": "Bad date"}}]}
    respx.get(f"{BASE}/Location").mock(return_value=httpx.Response(400, json=outcome))
    with pytest.raises(EmrRequestError) as caught:
        adapter().locations()
    assert str(caught.value) == "The EMR refused the request (searching Location, HTTP 400): error invalid: Bad date."
    respx.get(f"{BASE}/Location").mock(return_value=httpx.Response(403, json=outcome))
    with pytest.raises(EmrAuthError):
        adapter().locations()


@respx.mock
def test_next_links_are_followed_within_the_page_cap_and_only_on_the_same_server():
    respx.post(TOKEN_URL).mock(return_value=token_ok())
    respx.get(f"{BASE}/Location", params={"_count": "2"}).mock(return_value=httpx.Response(200, json=bundle(LOC, next_url=f"{BASE}/Location?page=2")))
    respx.get(f"{BASE}/Location", params={"page": "2"}).mock(return_value=httpx.Response(200, json=bundle({**LOC, "id": "L2"})))
    assert [loc.ehr_id for loc in adapter().locations()] == ["L1", "L2"]

    respx.get(f"{BASE}/Location", params={"page": "2"}).mock(
        return_value=httpx.Response(200, json=bundle({**LOC, "id": "L2"}, next_url="https://evil.example.net/steal"))
    )
    with pytest.raises(EmrResponseError) as caught:
        adapter().locations()
    assert str(caught.value) == "The EMR's next-page link points to another server (evil.example.net); not followed."

    respx.get(f"{BASE}/Location", params={"page": "2"}).mock(return_value=httpx.Response(200, json=bundle(LOC, next_url=f"{BASE}/Location?page=2")))
    with pytest.raises(EmrResponseError) as caught:
        adapter().locations()  # a server looping on its own next link stops at the cap
    assert str(caught.value) == "The EMR returned more than 5 pages of Location results; narrow the request."


@respx.mock
def test_an_answer_that_is_not_a_bundle_is_an_error():
    respx.post(TOKEN_URL).mock(return_value=token_ok())
    respx.get(f"{BASE}/Location").mock(return_value=httpx.Response(200, json={"resourceType": "Location", "id": "x"}))
    with pytest.raises(EmrResponseError) as caught:
        adapter().locations()
    assert str(caught.value) == "The EMR answered a Location where a search Bundle was expected (searching Location)."


@respx.mock
def test_token_endpoint_is_discovered_from_smart_configuration_or_the_capability_statement():
    respx.get(f"{BASE}/.well-known/smart-configuration").mock(return_value=httpx.Response(200, json={"token_endpoint": TOKEN_URL}))
    token = respx.post(TOKEN_URL).mock(return_value=token_ok())
    respx.get(f"{BASE}/Location").mock(return_value=httpx.Response(200, json=bundle(LOC)))
    adapter(token_url="").locations()
    assert token.call_count == 1

    token_cache_clear()
    other = "https://ehr2.example.com/fhir"
    respx.get(f"{other}/.well-known/smart-configuration").mock(return_value=httpx.Response(404))
    respx.get(f"{other}/metadata").mock(return_value=httpx.Response(200, json={
        "resourceType": "CapabilityStatement",
        "rest": [{"security": {"extension": [{"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                                               "extension": [{"url": "token", "valueUri": "https://ehr2.example.com/token"}]}]}}],
    }))
    token2 = respx.post("https://ehr2.example.com/token").mock(return_value=token_ok())
    respx.get(f"{other}/Location").mock(return_value=httpx.Response(200, json=bundle(LOC)))
    adapter(token_url="", base_url=other).locations()
    assert token2.call_count == 1


@respx.mock
def test_client_secret_and_open_servers():
    token = respx.post(TOKEN_URL).mock(return_value=token_ok())
    search = respx.get(f"{BASE}/Location").mock(return_value=httpx.Response(200, json=bundle(LOC)))
    adapter(auth="client_secret", client_secret="s3cret", private_key_pem="").locations()
    assert token.calls[0].request.headers["Authorization"].startswith("Basic ")
    assert "client_assertion" not in token.calls[0].request.content.decode()

    adapter(auth="none", key="open").locations()
    assert "Authorization" not in search.calls[-1].request.headers


def test_misconfigured_connections_are_reported_before_any_call():
    with pytest.raises(EmrNotConfigured, match="no base URL"):
        FhirAdapter(config(base_url=""))
    with pytest.raises(EmrNotConfigured, match="not an http"):
        FhirAdapter(config(base_url="ftp://x"))
    with respx.mock:
        with pytest.raises(EmrNotConfigured, match="client id and private key"):
            adapter(private_key_pem="").locations()
        with pytest.raises(EmrNotConfigured, match="cannot sign"):
            adapter(private_key_pem="-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n").locations()
