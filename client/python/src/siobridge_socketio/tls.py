"""TLS to a daemon's TCP address (siobridged's listen.tls_cert), with a client
certificate for a daemon that requires one (listen.tls_client_ca).

Pure functions; thread-safe.
"""

from __future__ import annotations

from typing import Any, Optional

import grpc


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise ValueError(f"{what}: cannot read {path}: {error.strerror}") from None


def channel_credentials(
    address: str, tls_ca: Optional[str] = None, tls_cert: Optional[str] = None, tls_key: Optional[str] = None
) -> Optional[Any]:
    """The channel credentials (grpc.ChannelCredentials) for `address` from
    PEM file paths: None without TLS. Raises ValueError for options that
    cannot work (a file that cannot be read, a certificate without its key,
    TLS for a Unix socket)."""
    if not (tls_ca or tls_cert or tls_key):
        return None
    if address.startswith("unix:") or address.startswith("/"):
        raise ValueError(f"TLS is for a TCP address (host:port), not the Unix socket {address}")
    if not tls_ca:
        raise ValueError("tls_ca is needed: the CA certificate of the daemon's certificate")
    if bool(tls_cert) != bool(tls_key):
        raise ValueError("tls_cert and tls_key go together")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls_ca, "tls_ca"),
        private_key=_read(tls_key, "tls_key") if tls_key else None,
        certificate_chain=_read(tls_cert, "tls_cert") if tls_cert else None,
    )
