"""URL safety: https and public addresses only, unless WEBHOOK_ALLOW_PRIVATE_URLS; checked when
saved and again at send time against what the host resolves to then."""

from __future__ import annotations

import os
import socket
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from tenants.events import event_emit
from tenants.models import Delivery, DeliveryAttempt, WebhookEndpoint
from tenants.url_guard import UnsafeUrl, address_is_public, pinned_target, url_check, url_resolve
from tenants.webhooks.client import ErrorKind, webhook_post
from tenants.webhooks.services import delivery_attempt_run, webhook_endpoint_create

PUBLIC_V4 = "93.184.215.14"


@pytest.mark.parametrize(
    "address,public",
    [
        ("93.184.215.14", True),
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # shared address space (CGNAT)
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:10.0.0.1", False),
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("not an address", False),
    ],
)
def test_address_is_public(address, public):
    assert address_is_public(address) is public


@pytest.mark.parametrize(
    "url,message",
    [
        ("http://example.com/hook", "https"),
        ("ftp://example.com/hook", "https://"),
        ("https:///nohost", "host"),
        ("https://user:pw@example.com/", "user name or password"),
        ("https://exa mple.com/", "spaces"),
        ("", "must be a URL"),
        ("https://" + "a" * 2000 + ".com/", "at most 2000"),
        ("https://127.0.0.1/hook", "public addresses"),
        ("https://[::1]:8443/hook", "public addresses"),
        ("https://localhost/hook", "public addresses"),
        ("https://10.0.0.8/hook", "public addresses"),
        ("https://169.254.169.254/latest/meta-data", "public addresses"),
        ("https://2130706433/hook", "public addresses"),  # 127.0.0.1 as one number
    ],
)
def test_unsafe_urls_are_refused_when_private_addresses_are_not_allowed(url, message):
    with pytest.raises(UnsafeUrl) as exc:
        url_check(url, allow_private=False)
    assert message in exc.value.message


def test_public_https_urls_pass_and_report_the_checked_addresses():
    assert url_check(f"https://{PUBLIC_V4}/hook", allow_private=False) == [PUBLIC_V4]
    assert url_check("https://[2606:4700:4700::1111]:8443/x", allow_private=False) == ["2606:4700:4700::1111"]


def test_with_private_allowed_http_and_loopback_pass_without_lookups():
    assert url_check("http://127.0.0.1:8000/hook", allow_private=True) == []
    assert url_check("http://localhost/hook", allow_private=True) == []
    with pytest.raises(UnsafeUrl):
        url_check("ftp://127.0.0.1/", allow_private=True)  # still http(s) only


def test_allowed_networks_admit_only_their_own_addresses():
    assert url_check("https://127.0.0.1/hook", allow_private=False, allowed_networks=["127.0.0.0/8"]) == ["127.0.0.1"]
    assert url_resolve("https://10.0.0.8/x", allow_private=False, allowed_networks=["10.0.0.0/24"]) == ["10.0.0.8"]
    for url in ("https://10.0.1.8/x", "https://169.254.169.254/latest/meta-data", "https://[::1]/x"):
        with pytest.raises(UnsafeUrl, match="public addresses"):
            url_check(url, allow_private=False, allowed_networks=["10.0.0.0/24", "127.0.0.0/8"])
    with pytest.raises(UnsafeUrl, match="https"):  # webhooks stay https-only
        url_check("http://127.0.0.1/hook", allow_private=False, allowed_networks=["127.0.0.0/8"])
    assert url_check("http://127.0.0.1/feed", allow_private=False, require_https=False,
                     allowed_networks=["127.0.0.1/32"]) == ["127.0.0.1"]


def test_pinned_target_keeps_the_host_for_the_header_and_tls():
    target = pinned_target("https://hooks.example.com:8443/in?x=1#frag", PUBLIC_V4)
    assert target.url == f"https://{PUBLIC_V4}:8443/in?x=1"
    assert target.host_header == "hooks.example.com:8443"
    assert target.sni_hostname == "hooks.example.com"
    idn = pinned_target("https://bücher.example/in", PUBLIC_V4)
    assert idn.host_header == idn.sni_hostname == "xn--bcher-kva.example"
    v6 = pinned_target("https://hooks.example.com/", "2606:4700:4700::1111")
    assert v6.url == "https://[2606:4700:4700::1111]/" and v6.host_header == "hooks.example.com"


# --- when saved -----------------------------------------------------------------------------------


@override_settings(WEBHOOK_ALLOW_PRIVATE_URLS=False)
def test_saving_a_private_or_plain_http_url_is_refused(tenant):
    for url in ("http://93.184.215.14/hook", "https://127.0.0.1/hook", "https://localhost:8443/hook"):
        with pytest.raises(ValidationError) as exc:
            webhook_endpoint_create(organization=tenant.organization, url=url)
        assert "url" in exc.value.message_dict
    assert not WebhookEndpoint.objects.exists()


@override_settings(WEBHOOK_ALLOW_PRIVATE_URLS=False)
def test_saving_a_public_https_url_is_accepted(tenant):
    issued = webhook_endpoint_create(organization=tenant.organization, url=f"https://{PUBLIC_V4}/hook")
    assert issued.endpoint.url == f"https://{PUBLIC_V4}/hook"


@override_settings(WEBHOOK_ALLOW_PRIVATE_URLS=True)
def test_saving_a_loopback_http_url_is_accepted_when_allowed(tenant, receiver):
    issued = webhook_endpoint_create(organization=tenant.organization, url=receiver.url())
    assert issued.endpoint.url.startswith("http://127.0.0.1:")


# --- at send time ---------------------------------------------------------------------------------


def test_send_time_check_blocks_an_endpoint_saved_while_private_urls_were_allowed(tenant, receiver):
    with override_settings(WEBHOOK_ALLOW_PRIVATE_URLS=True):
        endpoint = webhook_endpoint_create(organization=tenant.organization, url=f"https://localhost:{receiver.port}/hook").endpoint
        plain = webhook_endpoint_create(organization=tenant.organization, url=receiver.url()).endpoint
    event_emit(organization=tenant.organization, type="appointment.created", data={})

    with override_settings(WEBHOOK_ALLOW_PRIVATE_URLS=False):
        for delivery in Delivery.objects.all():
            delivery_attempt_run(delivery_id=delivery.pk)

    assert receiver.requests == []  # nothing reached the loopback receiver
    resolved = Delivery.objects.get(endpoint=endpoint)
    assert resolved.status == Delivery.Status.PENDING  # the name may resolve elsewhere later: retried
    assert "public addresses" in resolved.last_error and "127.0.0.1" in resolved.last_error
    http = Delivery.objects.get(endpoint=plain)
    assert http.status == Delivery.Status.FAILED and "https" in http.last_error  # never allowed: failed
    assert DeliveryAttempt.objects.filter(status_code__isnull=True).count() == 2


def test_send_time_check_lets_loopback_through_when_allowed(tenant, receiver):
    with override_settings(WEBHOOK_ALLOW_PRIVATE_URLS=True):
        webhook_endpoint_create(organization=tenant.organization, url=receiver.url())
        event_emit(organization=tenant.organization, type="appointment.created", data={})
        delivery_attempt_run()
    assert len(receiver.wait_for(1)) == 1


def test_client_reports_blocked_addresses_without_connecting(receiver):
    result = webhook_post(url=f"https://127.0.0.1:{receiver.port}/x", body=b"{}", headers={}, timeout=1, allow_private=False)
    assert result.status_code is None and result.error_kind == ErrorKind.UNSAFE_ADDRESS
    result = webhook_post(url=receiver.url(), body=b"{}", headers={}, timeout=1, allow_private=False)
    assert result.error_kind == ErrorKind.UNSAFE_URL
    assert receiver.requests == []


# --- pinned to the checked address ------------------------------------------------------------------


@pytest.fixture
def fake_dns(monkeypatch):
    """Name resolution for made-up host names, at the system boundary (``socket.getaddrinfo``).
    ``answers[name]`` lists one answer per lookup (the last one repeats); other names resolve as
    usual. ``lookups`` records the made-up names looked up."""
    real = socket.getaddrinfo
    dns = SimpleNamespace(answers={}, lookups=[])

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in dns.answers:
            return real(host, port, *args, **kwargs)
        dns.lookups.append(name)
        script = dns.answers[name]
        answer = script.pop(0) if len(script) > 1 else script[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port)) for address in answer]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return dns


def test_send_time_lookup_happens_also_when_private_addresses_are_allowed(fake_dns):
    fake_dns.answers["hooks.dev.test"] = [["127.0.0.1", "127.0.0.3"]]
    assert url_resolve("http://hooks.dev.test:8000/hook", allow_private=True) == ["127.0.0.1", "127.0.0.3"]
    with pytest.raises(UnsafeUrl) as exc:
        url_resolve("http://hooks.dev.test:8000/hook", allow_private=False)
    assert exc.value.permanent  # plain http
    with pytest.raises(UnsafeUrl) as exc:
        url_resolve("https://hooks.dev.test/hook", allow_private=False)
    assert "public addresses" in exc.value.message and not exc.value.permanent


def test_the_request_goes_to_the_checked_address_when_the_name_resolves_elsewhere_afterwards(tenant, receiver, fake_dns):
    # DNS rebinding: the send-time check sees 127.0.0.1 (where the receiver listens), any later
    # lookup would answer 127.0.0.2 (where nothing listens).
    fake_dns.answers["hooks.rebind.test"] = [["127.0.0.1"], ["127.0.0.2"]]
    endpoint = webhook_endpoint_create(organization=tenant.organization, url=f"http://hooks.rebind.test:{receiver.port}/hook").endpoint
    event = event_emit(organization=tenant.organization, type="appointment.created", data={})

    report = delivery_attempt_run(delivery_id=Delivery.objects.get(event=event, endpoint=endpoint).pk)

    assert report.status == Delivery.Status.SUCCEEDED, report.error
    [request] = receiver.wait_for(1)
    assert request.path == "/hook" and request.headers["webhook-id"] == event.pk
    assert request.headers["host"] == f"hooks.rebind.test:{receiver.port}"
    assert fake_dns.lookups == ["hooks.rebind.test"]  # resolved once: by the check
    assert DeliveryAttempt.objects.get(delivery__endpoint=endpoint).url == endpoint.url


def test_the_next_checked_address_is_tried_when_the_first_refuses_the_connection(receiver, fake_dns):
    fake_dns.answers["hooks.two.test"] = [["127.0.0.2", "127.0.0.1"]]
    result = webhook_post(
        url=f"http://hooks.two.test:{receiver.port}/in", body=b"{}", headers={}, timeout=2, allow_private=True
    )
    assert result.status_code == 200, result.error
    [request] = receiver.wait_for(1)
    assert request.headers["host"] == f"hooks.two.test:{receiver.port}"
    assert fake_dns.lookups == ["hooks.two.test"]


def test_a_forked_process_looks_up_names_in_threads_of_its_own(receiver, fake_dns):
    # django-q2 forks its workers; a process that sent before forking must not hand its child a
    # lookup pool whose threads do not exist there.
    fake_dns.answers["hooks.fork.test"] = [["127.0.0.1"]]
    url = f"http://hooks.fork.test:{receiver.port}/hook"
    assert webhook_post(url=url, body=b"{}", headers={}, timeout=2, allow_private=True).status_code == 200
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no database, no pytest, just one attempt
        try:
            result = webhook_post(url=url, body=b"{}", headers={}, timeout=2, allow_private=True)
            os.write(write_end, f"{result.status_code} {result.error}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as answer:
        child = answer.read()
    os.waitpid(pid, 0)
    assert child == "200 "
    assert len(receiver.wait_for(2)) == 2


# --- TLS: the pinned connection verifies the URL's host name -------------------------------------


@pytest.fixture
def tls_receiver(tmp_path, monkeypatch):
    """An HTTPS receiver on 127.0.0.1 whose certificate names ``hooks.tls.test`` only, signed by
    a throwaway key that the webhook client is made to trust (``_tls_context``). Records the SNI
    name of each handshake and the Host header of each request."""
    import datetime
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    import tenants.webhooks.client as client

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.tls.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.tls.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    seen = SimpleNamespace(sni=[], hosts=[])
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server_context.sni_callback = lambda sock, sni, ctx: seen.sni.append(sni)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length") or 0))
            seen.hosts.append(self.headers.get("host"))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"ok")

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self):
            sock, address = super().get_request()
            return server_context.wrap_socket(sock, server_side=True), address

        def handle_error(self, request, client_address):  # a refused handshake is expected here
            pass

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    monkeypatch.setattr(client, "_tls_context", lambda: ssl.create_default_context(cadata=cert_pem.decode()))
    seen.port = server.server_address[1]
    yield seen
    server.shutdown()
    server.server_close()


def test_https_goes_to_the_checked_address_with_the_urls_host_for_sni_and_the_certificate(tls_receiver, fake_dns):
    fake_dns.answers["hooks.tls.test"] = [["127.0.0.1"]]
    result = webhook_post(
        url=f"https://hooks.tls.test:{tls_receiver.port}/hook", body=b"{}", headers={}, timeout=3, allow_private=True
    )
    assert result.status_code == 200, result.error
    assert tls_receiver.sni == ["hooks.tls.test"]
    assert tls_receiver.hosts == [f"hooks.tls.test:{tls_receiver.port}"]


def test_https_to_a_name_the_certificate_does_not_cover_is_refused_before_anything_is_sent(tls_receiver, fake_dns):
    fake_dns.answers["other.tls.test"] = [["127.0.0.1"]]  # the same server, under another name
    result = webhook_post(
        url=f"https://other.tls.test:{tls_receiver.port}/hook", body=b"{}", headers={}, timeout=3, allow_private=True
    )
    assert result.status_code is None and result.error_kind == ErrorKind.NETWORK
    assert "certificate" in result.error.lower()
    assert tls_receiver.hosts == []  # no request reached it
