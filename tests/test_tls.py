"""TLS with rustls: https with ALPN h2 and http/1.1, the `tls` scope extension, client certificates,
clear startup errors for bad files, the handshake timeout, certificate reload on SIGHUP, and real
clients (httpx, curl, h2load, headless Chromium)."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from tests.browser import chromium_page, needs_chromium
from tests.conftest import ROOT

APP = "tests.apps.core_app:app"


class Certs:
    """A CA, a server certificate for 127.0.0.1/localhost, and a client certificate, as files."""

    def __init__(self, directory: Path, name: str = "server") -> None:
        self.ca = trustme.CA()
        self.dir = directory
        server = self.ca.issue_cert("127.0.0.1", "localhost")
        self.cert = directory / f"{name}-cert.pem"
        self.key = directory / f"{name}-key.pem"
        self.cert.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
        server.private_key_pem.write_to_path(str(self.key))
        self.server_cert_pem = server.cert_chain_pems[0].bytes().decode()
        self.ca_file = directory / f"{name}-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        client = self.ca.issue_cert("client@example.org", common_name="test client")
        self.client_cert = directory / f"{name}-client.pem"
        client.private_key_and_cert_chain_pem.write_to_path(str(self.client_cert))
        self._server = server

    def args(self) -> list[str]:
        return ["--ssl-certfile", str(self.cert), "--ssl-keyfile", str(self.key)]

    def encrypted_key(self, password: bytes, legacy: bool = False) -> Path:
        key = serialization.load_pem_private_key(self._server.private_key_pem.bytes(), None)
        path = self.dir / ("legacy-key.pem" if legacy else "encrypted-key.pem")
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL
                if legacy
                else serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(password),
            )
        )
        return path


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("tls"))


def plain(value: object) -> object:
    """Undo core_app's type-tagged JSON (`{"dict": ...}`, `{"bytes": ...}`, `{"list": ...}`)."""
    if isinstance(value, dict) and len(value) == 1:
        ((kind, inner),) = value.items()
        if kind == "dict":
            return {k: plain(v) for k, v in inner.items()}
        if kind in ("list", "tuple"):
            return [plain(v) for v in inner]
        if kind == "bytes":
            return inner
    return value


def verify(ca: Path, client_cert: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if client_cert is not None:
        context.load_cert_chain(str(client_cert))
    return context


def scope_over(client: httpx.Client, url: str) -> tuple[str, dict]:
    response = client.get(f"{url}/scope")
    assert response.status_code == 200
    return response.http_version, plain(response.json())


def test_https_serves_http11_and_h2_by_alpn_with_the_tls_extension(start_server, certs):
    srv = start_server(APP, *certs.args())
    assert srv.url.startswith("https://")
    with httpx.Client(verify=verify(certs.ca_file)) as client:
        version, scope = scope_over(client, srv.url)
    assert version == "HTTP/1.1"
    assert scope["scheme"] == "https" and scope["http_version"] == "1.1"
    with httpx.Client(verify=verify(certs.ca_file), http1=False, http2=True) as client:
        version, scope = scope_over(client, srv.url)
    assert version == "HTTP/2"
    assert scope["scheme"] == "https" and scope["http_version"] == "2"
    tls = scope["extensions"]["tls"]
    assert tls["tls_version"] == 0x0304  # TLS 1.3
    assert isinstance(tls["cipher_suite"], int) and tls["cipher_suite"] > 0
    assert tls["server_cert"].strip() == certs.server_cert_pem.strip()
    assert tls["client_cert_chain"] == [] and tls["client_cert_name"] is None
    assert tls["client_cert_error"] is None


def test_tls12_only_and_chosen_cipher_suites(start_server, certs):
    srv = start_server(
        APP, *certs.args(), "--ssl-version", "5", "--ssl-ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256"
    )
    context = ssl.create_default_context(cafile=str(certs.ca_file))
    with httpx.Client(verify=context) as client:
        _, scope = scope_over(client, srv.url)
    assert scope["extensions"]["tls"]["tls_version"] == 0x0303  # TLS 1.2
    assert scope["extensions"]["tls"]["cipher_suite"] == 0xC02B  # ECDHE-ECDSA-AES128-GCM-SHA256


def test_client_certificates_required_and_reported(start_server, certs):
    srv = start_server(APP, *certs.args(), "--ssl-ca-certs", str(certs.ca_file), "--ssl-cert-reqs", "2")
    context = ssl.create_default_context(cafile=str(certs.ca_file))
    with pytest.raises(httpx.HTTPError), httpx.Client(verify=context) as client:
        client.get(f"{srv.url}/scope")
    context.load_cert_chain(str(certs.client_cert))
    with httpx.Client(verify=context) as client:
        _, scope = scope_over(client, srv.url)
    tls = scope["extensions"]["tls"]
    assert len(tls["client_cert_chain"]) >= 1
    assert tls["client_cert_chain"][0].startswith("-----BEGIN CERTIFICATE-----")
    assert "CN=test client" in tls["client_cert_name"]


def test_optional_client_certificates(start_server, certs):
    srv = start_server(APP, *certs.args(), "--ssl-ca-certs", str(certs.ca_file), "--ssl-cert-reqs", "1")
    with httpx.Client(verify=verify(certs.ca_file)) as client:
        _, scope = scope_over(client, srv.url)
    assert scope["extensions"]["tls"]["client_cert_chain"] == []


def test_encrypted_pkcs8_key_with_password(start_server, certs):
    key = certs.encrypted_key(b"s3cret")
    srv = start_server(
        APP, "--ssl-certfile", str(certs.cert), "--ssl-keyfile", str(key), "--ssl-keyfile-password", "s3cret"
    )
    with httpx.Client(verify=verify(certs.ca_file)) as client:
        assert client.get(f"{srv.url}/scope").status_code == 200


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fasterapi", APP, "--port", "0", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_bad_tls_files_are_one_clear_line_and_status_3(certs, tmp_path):
    other = Certs(tmp_path, "other")
    cases = [
        (
            ["--ssl-certfile", str(tmp_path / "missing.pem"), "--ssl-keyfile", str(certs.key)],
            "missing.pem: no such file",
        ),
        (
            ["--ssl-certfile", str(certs.cert), "--ssl-keyfile", str(other.key)],
            "does not match the certificate",
        ),
        (
            [
                "--ssl-certfile",
                str(certs.cert),
                "--ssl-keyfile",
                str(certs.encrypted_key(b"right")),
                "--ssl-keyfile-password",
                "wrong",
            ],
            "wrong password",
        ),
        (
            ["--ssl-certfile", str(certs.cert), "--ssl-keyfile", str(certs.encrypted_key(b"right"))],
            "give its password with --ssl-keyfile-password",
        ),
        (
            [
                "--ssl-certfile",
                str(certs.cert),
                "--ssl-keyfile",
                str(certs.encrypted_key(b"pw", legacy=True)),
                "--ssl-keyfile-password",
                "pw",
            ],
            "openssl pkcs8 -topk8",
        ),
        (["--ssl-certfile", str(certs.key), "--ssl-keyfile", str(certs.key)], "no PEM certificate found"),
    ]
    for args, message in cases:
        result = run_cli(*args)
        assert result.returncode == 3, (args, result.stderr)
        errors = [line for line in result.stderr.splitlines() if "TLS configuration" in line]
        assert len(errors) == 1 and message in errors[0], result.stderr
        assert "running on" not in result.stderr


def test_unsupported_ssl_options_are_usage_errors(certs):
    result = run_cli(*certs.args(), "--ssl-version", "3")
    assert result.returncode == 2 and "--ssl-version 3 is not supported" in result.stderr
    result = run_cli(*certs.args(), "--ssl-ciphers", "RC4-MD5")
    assert result.returncode == 3 and 'unknown cipher suite "RC4-MD5"' in result.stderr


def test_a_stalled_handshake_is_dropped_and_others_are_served(start_server, certs):
    srv = start_server(APP, *certs.args(), "--ssl-handshake-timeout", "0.5")
    stalled = socket.create_connection((srv.host, srv.port))
    stalled.sendall(b"\x16\x03\x01")  # the start of a ClientHello, then nothing
    with httpx.Client(verify=verify(certs.ca_file)) as client:
        assert client.get(f"{srv.url}/scope").status_code == 200
    stalled.settimeout(5)
    started = time.monotonic()
    assert stalled.recv(1024) == b""  # closed by the server
    assert time.monotonic() - started < 3
    stalled.close()


def test_sighup_reloads_the_certificate_without_a_restart(start_server, certs, tmp_path):
    cert, key = tmp_path / "live-cert.pem", tmp_path / "live-key.pem"
    shutil.copy(certs.cert, cert)
    shutil.copy(certs.key, key)
    srv = start_server(APP, "--ssl-certfile", str(cert), "--ssl-keyfile", str(key))
    with httpx.Client(verify=verify(certs.ca_file)) as client:
        assert client.get(f"{srv.url}/scope").status_code == 200
    renewed = Certs(tmp_path, "renewed")
    shutil.copy(renewed.cert, cert)
    shutil.copy(renewed.key, key)
    srv.signal(signal.SIGHUP)
    srv.wait_for_line("TLS certificate and key reloaded")
    with httpx.Client(verify=verify(renewed.ca_file)) as client:
        assert client.get(f"{srv.url}/scope").status_code == 200
    # A broken file on the next reload keeps the current certificate.
    key.write_text("not a key")
    srv.signal(signal.SIGHUP)
    srv.wait_for_line("kept the old TLS certificate")
    with httpx.Client(verify=verify(renewed.ca_file)) as client:
        assert client.get(f"{srv.url}/scope").status_code == 200
    assert srv.proc.poll() is None


def test_tls_with_workers(start_server, certs):
    srv = start_server(APP, *certs.args(), "--workers", "2")
    with httpx.Client(verify=verify(certs.ca_file), http2=True) as client:
        response = client.get(f"{srv.url}/scope")
    assert response.http_version == "HTTP/2" and plain(response.json())["scheme"] == "https"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_over_tls_negotiates_h2_and_http11(start_server, certs):
    srv = start_server(APP, *certs.args())
    for flag, expected in (("--http2", "2"), ("--http1.1", "1.1")):
        out = subprocess.run(
            [
                "curl",
                "-s",
                "--cacert",
                str(certs.ca_file),
                flag,
                "-w",
                "\n%{http_version}",
                f"{srv.url}/scope",
            ],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
        body, version = out.rsplit("\n", 1)
        assert version == expected and plain(json.loads(body))["http_version"] == expected


def test_h2load_runs_10000_requests_over_tls_without_failures(start_server, certs):
    h2load = shutil.which("h2load")
    if h2load is None:
        pytest.skip("h2load is not installed (Debian nghttp2-client)")
    srv = start_server(APP, *certs.args(), "--no-access-log")
    out = subprocess.run(
        [h2load, "-n", "10000", "-c", "10", "-m", "10", f"{srv.url}/scope"],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "Application protocol: h2" in out, out
    assert "10000 succeeded, 0 failed, 0 errored" in out, out
    assert "status codes: 10000 2xx" in out, out


@needs_chromium
def test_chromium_loads_a_fastapi_page_and_fetches_over_h2(start_server, certs):
    srv = start_server("tests.apps.browser_app:app", *certs.args())
    with chromium_page() as page:
        page.goto(f"{srv.url}/")
        page.wait_for_selector("text=http_version=2", timeout=15000)
        navigation = page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol")
        fetched = page.evaluate(
            "performance.getEntriesByType('resource').find(e => e.name.endsWith('/api/info')).nextHopProtocol"
        )
    assert navigation == "h2"
    assert fetched == "h2"
