"""The HTTP side of a webhook attempt: one POST, its outcome as plain data. No ORM.

The URL is checked again here, at send time, against the addresses its host resolves to now; the
request then goes to a checked address (``tenants.url_guard.pinned_target``), so what was checked
is what is connected to: the first one, or the next one when a connection cannot be opened (nothing was
sent yet). Redirects are not followed (a redirect could point anywhere).
At most the first ``RESPONSE_EXCERPT_BYTES`` of the response body are read.

One deadline bounds the whole attempt: name lookup and address check, connecting, TLS, sending,
the response headers (however slowly they trickle in) and the excerpt: the request runs in an
event loop under ``asyncio.timeout_at``; the worker calling ``webhook_post`` or
``webhook_post_many`` stays synchronous. The request is HTTP/1.1 framed by h11 on asyncio's
streams, a fresh connection per attempt; TLS verifies the URL's host name (``_tls_context``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache, partial
from urllib.parse import urlsplit

import h11
import httpx

from tenants.url_guard import UnsafeUrl, pinned_target, url_resolve

RESPONSE_EXCERPT_BYTES = 1024
USER_AGENT = "scheduling-webhooks/1.0"

# getaddrinfo cannot be interrupted, so lookups run in threads of their own and the attempt stops
# waiting at its deadline. Not the event loop's default executor: asyncio.run() waits for that
# one's threads when it shuts the loop down, which would hold the attempt after all. A lookup that
# outlives its attempt keeps its thread until the resolver gives up; with every thread stuck,
# further lookups queue and time out at their own deadlines.
def _resolver_new() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook-dns")


_RESOLVER = _resolver_new()


def _resolver_after_fork() -> None:
    # A forked child (django-q2 starts its workers so) has none of the parent's threads, but the
    # pool would count the parent's idle ones and never start its own: every lookup would wait
    # for its deadline.
    global _RESOLVER
    _RESOLVER = _resolver_new()


os.register_at_fork(after_in_child=_resolver_after_fork)


class ErrorKind:
    NETWORK = "network"  # connect/read/write failed
    INTERNAL = "internal"  # our side failed unexpectedly while making the attempt
    TIMEOUT = "timeout"
    UNSAFE_ADDRESS = "unsafe_address"  # the host resolves to a non-public address (or not at all) now
    UNSAFE_URL = "unsafe_url"  # the URL itself is not allowed (scheme, syntax)


@dataclass(frozen=True)
class SendResult:
    status_code: int | None  # None: no HTTP response
    duration_ms: int
    response_excerpt: str = ""
    error: str = ""
    error_kind: str | None = None
    retry_after_seconds: float | None = None


def retry_after_parse(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit() alone accepts "²", which int() refuses
        return float(min(int(value), 10**7))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (moment - now).total_seconds())


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """Loading the CA bundle costs ~20 ms; do it once per process, not once per attempt."""
    return httpx.create_ssl_context()


def elapsed_ms(started: float) -> int:
    return int(round((time.monotonic() - started) * 1000))


@dataclass(frozen=True)
class Post:
    url: str
    body: bytes
    headers: dict[str, str]
    start_by: float | None = None  # time.monotonic() after which it is not started at all


def webhook_post_many(
    posts: list[Post], *, timeout: float, allow_private: bool, concurrency: int, per_url: int,
    allowed_networks: tuple[str, ...] = (),
) -> list[SendResult | None]:
    """Several attempts on one event loop, at most ``concurrency`` in flight and at most
    ``per_url`` to any one URL (a receiver is not flooded); each is over in ``timeout`` seconds
    from when it starts, as a single ``webhook_post`` is. The results are in the order of
    ``posts``; an attempt that raised gets an ``internal`` result of its own, and one whose
    turn came after its ``start_by`` gets None (nothing was sent)."""
    if not posts:
        return []

    async def run() -> list:
        gate = asyncio.Semaphore(concurrency)
        url_gates = {post.url: asyncio.Semaphore(per_url) for post in posts}

        async def one(post: Post) -> SendResult | None:
            async with url_gates[post.url], gate:
                if post.start_by is not None and time.monotonic() > post.start_by:
                    return None
                return await _attempt(
                    url=post.url,
                    body=post.body,
                    headers=post.headers,
                    timeout=timeout,
                    allow_private=allow_private,
                    allowed_networks=allowed_networks,
                    started=time.monotonic(),
                )

        return await asyncio.gather(*(one(post) for post in posts), return_exceptions=True)

    results = []
    for outcome in asyncio.run(run()):
        if isinstance(outcome, BaseException):
            outcome = SendResult(
                status_code=None,
                duration_ms=0,
                error=f"Unexpected error while sending: {type(outcome).__name__}: {outcome}"[:1000],
                error_kind=ErrorKind.INTERNAL,
            )
        results.append(outcome)
    return results


def webhook_post(
    *, url: str, body: bytes, headers: dict[str, str], timeout: float, allow_private: bool,
    allowed_networks: tuple[str, ...] = (),
) -> SendResult:
    """One attempt, over in ``timeout`` seconds whatever the network or the receiver does. For
    synchronous callers (it runs its own event loop)."""
    started = time.monotonic()
    return asyncio.run(
        _attempt(
            url=url, body=body, headers=headers, timeout=timeout, allow_private=allow_private,
            allowed_networks=allowed_networks, started=started,
        )
    )


def _is_ip_literal(url: str) -> bool:
    """True when the URL's host is an address: checking it needs no lookup, so no thread."""
    try:
        host = urlsplit(url).hostname
        ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return True


async def _attempt(
    *, url: str, body: bytes, headers: dict[str, str], timeout: float, allow_private: bool,
    allowed_networks: tuple[str, ...] = (), started: float,
) -> SendResult:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout - (time.monotonic() - started)

    def failed(error: str, kind: str) -> SendResult:
        return SendResult(status_code=None, duration_ms=elapsed_ms(started), error=error[:1000], error_kind=kind)

    def timed_out(step: str) -> SendResult:
        return failed(f"Timed out after {timeout:g} s ({step}).", ErrorKind.TIMEOUT)

    resolve = partial(url_resolve, url, allow_private=allow_private, allowed_networks=allowed_networks)
    try:
        if _is_ip_literal(url):
            addresses = resolve()
        else:
            async with asyncio.timeout_at(deadline):
                addresses = await loop.run_in_executor(_RESOLVER, resolve)
    except UnsafeUrl as exc:
        kind = ErrorKind.UNSAFE_URL if exc.permanent else ErrorKind.UNSAFE_ADDRESS
        return failed(f"URL not allowed: {exc.message}", kind)
    except TimeoutError:
        return timed_out("looking up the host")

    try:
        answer = await _exchange(url=url, addresses=addresses, body=body, headers=headers, deadline=deadline)
    except TimeoutError:  # before OSError: it is one
        return timed_out("no complete response")
    except ConnectFailed as exc:
        return failed(f"ConnectError: {exc.__cause__ or exc}", ErrorKind.NETWORK)
    except (h11.ProtocolError, OSError) as exc:
        return failed(f"{type(exc).__name__}: {exc}", ErrorKind.NETWORK)
    status, retry_after, excerpt = answer
    return SendResult(
        status_code=status,
        duration_ms=elapsed_ms(started),
        response_excerpt=excerpt[:RESPONSE_EXCERPT_BYTES].decode("utf-8", errors="replace"),
        retry_after_seconds=retry_after_parse(retry_after),
    )


class ConnectFailed(OSError):
    """No connection could be opened to any checked address (nothing was sent)."""


async def _exchange(
    *, url: str, addresses: list[str], body: bytes, headers: dict[str, str], deadline: float
) -> tuple[int, str | None, bytes]:
    """POST ``body`` over a fresh HTTP/1.1 connection to the first checked address that accepts
    one; returns the status, the ``Retry-After`` header and the start of the body. The connection
    is never reused: one opened for another host name on the same address would skip this
    attempt's TLS name check. The HTTP framing is h11's (the protocol core under httpx) on
    asyncio's streams, which costs about a third of the CPU of a full httpx client per attempt."""
    parts = urlsplit(url)
    tls = _tls_context() if parts.scheme.lower() == "https" else None
    port = parts.port or (443 if tls else 80)
    writer = None
    try:
        async with asyncio.timeout_at(deadline):
            for index, address in enumerate(addresses):
                target = pinned_target(url, address)
                try:
                    reader, writer = await asyncio.open_connection(
                        address.split("%", 1)[0], port, ssl=tls, server_hostname=target.sni_hostname if tls else None
                    )
                    break
                except OSError as exc:  # refused, unreachable, TLS handshake or certificate refused
                    if index == len(addresses) - 1:
                        raise ConnectFailed(str(exc)) from exc
            connection = h11.Connection(h11.CLIENT)
            request = h11.Request(
                method="POST",
                target=httpx.URL(url).raw_path,  # percent-encoded: h11 sends ASCII only
                headers=[
                    ("host", target.host_header),
                    ("user-agent", USER_AGENT),
                    *((name, value) for name, value in headers.items() if name.lower() not in _FRAMING_HEADERS),
                    ("content-length", str(len(body))),
                    ("connection", "close"),
                ],
            )
            writer.write(connection.send(request) + connection.send(h11.Data(data=body)) + connection.send(h11.EndOfMessage()))
            await writer.drain()
            response = await _next_event(connection, reader)
            while isinstance(response, h11.InformationalResponse):
                response = await _next_event(connection, reader)
            if not isinstance(response, h11.Response):
                raise h11.RemoteProtocolError("the receiver closed the connection without answering")
        # The status is known from here on; a body still arriving at the deadline, or cut short,
        # only shortens the excerpt.
        retry_after = next((value.decode("latin-1") for name, value in response.headers if name == b"retry-after"), None)
        excerpt = bytearray()
        try:
            async with asyncio.timeout_at(deadline):
                while len(excerpt) < RESPONSE_EXCERPT_BYTES:
                    event = await _next_event(connection, reader)
                    if not isinstance(event, h11.Data):
                        break
                    excerpt.extend(event.data)
        except (TimeoutError, h11.ProtocolError, OSError):
            pass
    finally:
        if writer is not None:
            writer.transport.abort()  # nothing more is read or sent on it
    return response.status_code, retry_after, bytes(excerpt)


_FRAMING_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "user-agent"}


async def _next_event(connection: h11.Connection, reader: asyncio.StreamReader):
    while (event := connection.next_event()) is h11.NEED_DATA:
        connection.receive_data(await reader.read(65536))
    return event
