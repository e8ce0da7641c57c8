"""The HTTP side of a webhook attempt: one POST, its outcome as plain data. No ORM.

The URL is checked again here, at send time, against the addresses its host resolves to now; the
request then goes to a checked address (``tenants.url_guard.pinned_target``), so what was checked
is what is connected to: the first one, or the next one when a connection cannot be opened (nothing was
sent yet). Redirects are not followed (a redirect could point anywhere).
At most the first ``RESPONSE_EXCERPT_BYTES`` of the response body are read.

One deadline bounds the whole attempt: name lookup and address check, connecting, TLS, sending,
the response headers (however slowly they trickle in) and the excerpt. httpx's own timeouts apply
to each read or write separately, so the request runs in an event loop under
``asyncio.timeout_at`` instead; the worker calling ``webhook_post`` stays synchronous.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache, partial

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


def _pinned_request(
    client: httpx.AsyncClient, *, url: str, address: str, body: bytes, headers: dict[str, str]
) -> httpx.Request:
    """The POST aimed at ``address``, with the URL's host in the ``Host`` header and for TLS."""
    target = pinned_target(url, address)
    extensions = {"sni_hostname": target.sni_hostname} if url.lower().startswith("https://") else {}
    return client.build_request(
        "POST",
        target.url,
        content=body,
        headers={"user-agent": USER_AGENT, **headers, "host": target.host_header},
        extensions=extensions,
    )


@dataclass(frozen=True)
class Post:
    url: str
    body: bytes
    headers: dict[str, str]


def webhook_post_many(
    posts: list[Post], *, timeout: float, allow_private: bool, concurrency: int, per_url: int,
    allowed_networks: tuple[str, ...] = (),
) -> list[SendResult]:
    """Several attempts on one event loop, at most ``concurrency`` in flight and at most
    ``per_url`` to any one URL (a receiver is not flooded); each is over in ``timeout`` seconds
    from when it starts, as a single ``webhook_post`` is. The results are in the order of
    ``posts``; an attempt that raised gets an ``internal`` result of its own."""
    if not posts:
        return []

    async def run() -> list:
        gate = asyncio.Semaphore(concurrency)
        url_gates = {post.url: asyncio.Semaphore(per_url) for post in posts}

        async def one(post: Post) -> SendResult:
            async with url_gates[post.url], gate:
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

    try:
        async with asyncio.timeout_at(deadline):
            addresses = await loop.run_in_executor(_RESOLVER, partial(
                url_resolve, url, allow_private=allow_private, allowed_networks=allowed_networks
            ))
    except UnsafeUrl as exc:
        kind = ErrorKind.UNSAFE_URL if exc.permanent else ErrorKind.UNSAFE_ADDRESS
        return failed(f"URL not allowed: {exc.message}", kind)
    except TimeoutError:
        return timed_out("looking up the host")

    try:
        # A fresh connection per attempt: a pooled one opened for another host name on the same
        # address would skip this attempt's TLS name check.
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False, verify=_tls_context()
        ) as client:
            async with asyncio.timeout_at(deadline):
                for index, address in enumerate(addresses):
                    request = _pinned_request(client, url=url, address=address, body=body, headers=headers)
                    try:
                        response = await client.send(request, stream=True)
                        break
                    except httpx.ConnectError:
                        if index == len(addresses) - 1:
                            raise
            # The status is known from here on; a body still arriving at the deadline only
            # shortens the excerpt.
            excerpt = bytearray()
            try:
                async with asyncio.timeout_at(deadline):
                    async for chunk in response.aiter_bytes():
                        excerpt.extend(chunk)
                        if len(excerpt) >= RESPONSE_EXCERPT_BYTES:
                            break
            except TimeoutError:
                pass
            finally:
                await response.aclose()
    except TimeoutError:  # before OSError: it is one
        return timed_out("no complete response")
    except httpx.TimeoutException as exc:
        return timed_out(type(exc).__name__)
    except (httpx.HTTPError, OSError) as exc:
        return failed(f"{type(exc).__name__}: {exc}", ErrorKind.NETWORK)
    return SendResult(
        status_code=response.status_code,
        duration_ms=elapsed_ms(started),
        response_excerpt=bytes(excerpt[:RESPONSE_EXCERPT_BYTES]).decode("utf-8", errors="replace"),
        retry_after_seconds=retry_after_parse(response.headers.get("retry-after")),
    )
