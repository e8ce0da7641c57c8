"""Django views of the sandbox EMR (``/sandbox/fhir/r4/``)."""

from __future__ import annotations

import functools
import json
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from emr.models import SandboxClient
from emr.sandbox import PREFIX, data, server, tokens

FHIR_JSON = "application/fhir+json"


def _fhir(status: int, body: dict, **headers) -> HttpResponse:
    response = HttpResponse(json.dumps(body), status=status, content_type=FHIR_JSON)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _base_url(request) -> str:
    return request.build_absolute_uri("/" + PREFIX)


def _enabled(view):
    @functools.wraps(view)  # keeps the view's csrf_exempt mark
    def wrapped(request, *args, **kwargs):
        if not settings.SANDBOX_ENABLED:
            return _fhir(404, server.operation_outcome("not-found", "The sandbox EMR is disabled (SANDBOX_ENABLED=false)."))
        return view(request, *args, **kwargs)

    return wrapped


def _read_only(view):
    """GET only; any other method answers 405 with an OperationOutcome, as a read-only
    FHIR server does. CSRF-exempt: these endpoints take a bearer token, never a session cookie, and
    a write attempt gets the FHIR answer rather than Django's CSRF page."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method != "GET":
            return _fhir(
                405,
                server.operation_outcome("not-supported", f"{request.method} is not supported: this server is read-only."),
                Allow="GET",
            )
        return view(request, *args, **kwargs)

    return csrf_exempt(wrapped)


def dataset() -> data.SandboxDataset:
    return data.SandboxDataset.for_now(provider_count=settings.SANDBOX_PROVIDERS)


@_enabled
@_read_only
def metadata(request):
    return _fhir(200, server.capability_statement(_base_url(request)))


@_enabled
@_read_only
def smart_configuration(request):
    return JsonResponse(server.smart_configuration(_base_url(request)))


def _jwks_for(client_id: str) -> dict | None:
    client = SandboxClient.objects.filter(client_id=client_id).first()
    return client.jwks if client is not None else None


def _remember_jti(jti: str, expires: float) -> bool:
    timeout = max(1, int(expires - time.time()) + tokens.LEEWAY)
    return cache.add(f"sandbox-emr-jti:{jti}", 1, timeout=timeout)


@csrf_exempt
@_enabled
@require_POST
def token(request):
    status, body = tokens.token_request_handle(
        request.POST,
        audience=request.build_absolute_uri(request.path),
        jwks_for=_jwks_for,
        now=time.time(),
        remember_jti=_remember_jti,
        secret=settings.SECRET_KEY,
        ttl=settings.SANDBOX_TOKEN_TTL_SECONDS,
    )
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _authorized(request) -> HttpResponse | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    challenge = 'Bearer realm="sandbox-emr"'
    if scheme.lower() != "bearer" or not value.strip():
        return _fhir(401, server.operation_outcome("login", "A bearer access token is required."), WWW_Authenticate=challenge)
    try:
        tokens.access_token_verify(value.strip(), secret=settings.SECRET_KEY, now=time.time())
    except tokens.TokenError as exc:
        return _fhir(401, server.operation_outcome("login", exc.description), WWW_Authenticate=challenge + ', error="invalid_token"')
    return None


@_enabled
@_read_only
def search(request, resource_type: str):
    if (denied := _authorized(request)) is not None:
        return denied
    status, body = server.handle_search(dataset(), resource_type, _pairs(request), base_url=_base_url(request))
    return _fhir(status, body)


@_enabled
@_read_only
def read(request, resource_type: str, resource_id: str):
    if (denied := _authorized(request)) is not None:
        return denied
    status, body = server.handle_read(dataset(), resource_type, resource_id)
    return _fhir(status, body)


def _pairs(request) -> list[tuple[str, str]]:
    return [(key, value) for key, values in request.GET.lists() for value in values]


@csrf_exempt
@_enabled
def unknown(request, path: str):
    """Any other path under the sandbox: 404 with an OperationOutcome, never the site's HTML page."""
    return _fhir(404, server.operation_outcome("not-found", f"No such endpoint: {path or '/'}."))
