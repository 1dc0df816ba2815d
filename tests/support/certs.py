"""Certificates for TLS tests, made with trustme (one CA per test session).

``server_context()`` serves ``localhost``/``127.0.0.1``/``::1``;
``client_context()`` trusts the session's CA and checks host names.
``other_client_context()`` trusts a different CA (for verification failures).
Loopback only; nothing touches the system trust store.
"""

from __future__ import annotations

import functools
import ssl
from pathlib import Path

import trustme

HOSTNAME = "localhost"


@functools.cache
def ca() -> trustme.CA:
    return trustme.CA()


@functools.cache
def _server_cert() -> trustme.LeafCert:
    return ca().issue_cert(HOSTNAME, "127.0.0.1", "::1")


@functools.cache
def _other_ca() -> trustme.CA:
    return trustme.CA()


def server_context(*, max_version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _server_cert().configure_cert(ctx)
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


def client_context(*, check_hostname: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca().configure_trust(ctx)
    ctx.check_hostname = check_hostname
    return ctx


def other_client_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    _other_ca().configure_trust(ctx)
    return ctx


def client_cert_context() -> ssl.SSLContext:
    """A client context that also presents a certificate from the session CA."""
    ctx = client_context()
    ca().issue_cert("client.example").configure_cert(ctx)
    return ctx


def server_context_requiring_client_cert() -> ssl.SSLContext:
    ctx = server_context()
    ctx.verify_mode = ssl.CERT_REQUIRED
    ca().configure_trust(ctx)
    return ctx


def write_server_cert(directory: Path) -> tuple[Path, Path]:
    """Write the server certificate (with its chain) and its private key as PEM
    files in ``directory``, for servers that run as separate processes.

    Returns ``(cert_file, key_file)``; the key file is readable by its owner only.
    """
    cert_file = directory / "server.crt"
    key_file = directory / "server.key"
    leaf = _server_cert()
    cert_file.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
    key_file.write_bytes(leaf.private_key_pem.bytes())
    key_file.chmod(0o600)
    return cert_file, key_file
