"""Where the daemon is and how a gRPC channel to it is made: the one place that
creates channels, for the managers (asyncio and threads) and the emitters.

Pure functions; safe from any thread.
"""

from __future__ import annotations

import os
import sys
from typing import Any, List, Optional, Tuple

import grpc
from grpc import aio

from . import errors
from .tls import channel_credentials

# The daemon refuses a message above max_message_bytes plus room for ids, room
# lists and the envelope (daemon/app/api_server.cc); the Node adapter allows
# the same. gRPC's own limits stay off here: a message gRPC refused would end
# the whole Attach stream, so sizes are checked before sending instead.
ENVELOPE_ALLOWANCE = 256 << 10
_UNLIMITED = -1

_gevent_ready = False

TlsFiles = Tuple[Optional[str], Optional[str], Optional[str]]


def default_address() -> str:
    """The daemon's default Unix socket, as siobridged and the Node adapter use it."""
    uid = os.getuid()
    return "unix:/run/siobridge/siobridged.sock" if uid == 0 else f"unix:/tmp/siobridge-{uid}/siobridged.sock"


def resolve_address(address: Optional[str]) -> str:
    """The address given, else $SIOBRIDGE_ADDRESS, else the default socket."""
    return address or os.environ.get("SIOBRIDGE_ADDRESS") or default_address()


def target_of(address: str) -> str:
    """A gRPC target for "unix:/path", "/path" or "host:port"."""
    return "unix:" + address if address.startswith("/") else address


def tls_files(tls_ca: Optional[str] = None, tls_cert: Optional[str] = None, tls_key: Optional[str] = None) -> TlsFiles:
    """The TLS settings as one value: a key for sharing channels, and what open_channel takes."""
    return (tls_ca, tls_cert, tls_key)


def _credentials(address: str, tls: TlsFiles) -> Optional[Any]:
    # None without TLS files; options that cannot work are refused, never
    # replaced by an insecure channel the caller did not ask for.
    try:
        return channel_credentials(address, *tls)
    except ValueError as error:
        raise errors.SiobridgeError(str(error), errors.INVALID_ARGUMENT) from None


def _green_threads_ready(streams: bool) -> None:
    """gRPC's core polls cooperatively once gevent patched the standard library
    (grpc.experimental.gevent). Under eventlet's patching its blocking polls
    stop every green thread while they wait: a unary call still completes (the
    hub waits for it), a stream would never let the others run, so streams are
    refused with a reason."""
    gevent_monkey = sys.modules.get("gevent.monkey")
    if gevent_monkey is not None and gevent_monkey.is_module_patched("socket"):
        global _gevent_ready
        if not _gevent_ready:
            from grpc.experimental import gevent as grpc_gevent

            grpc_gevent.init_gevent()
            _gevent_ready = True
        return
    eventlet_patcher = sys.modules.get("eventlet.patcher")
    if streams and eventlet_patcher is not None and eventlet_patcher.is_monkey_patched("thread"):
        raise errors.SiobridgeError(
            "grpcio's streams do not run under eventlet's monkey patching (its blocking polls stop every "
            "green thread): use async_mode='threading' or 'gevent' with siobridge",
            errors.FAILED_PRECONDITION,
        )


def open_channel(
    address: str,
    *,
    asynchronous: bool,
    tls: TlsFiles = (None, None, None),
    reconnect: Tuple[float, float] = (0.1, 5.0),
    streams: bool = True,
) -> Any:
    """A channel to the daemon: grpc.aio's when `asynchronous`, else grpc's
    blocking one. `streams`: the channel will carry an Attach stream (emitters
    make unary calls only, which also work under eventlet)."""
    credentials = _credentials(address, tls)
    if not asynchronous:
        _green_threads_ready(streams)
    options: List[Tuple[str, Any]] = [
        ("grpc.max_receive_message_length", _UNLIMITED),
        ("grpc.max_send_message_length", _UNLIMITED),
        ("grpc.initial_reconnect_backoff_ms", int(reconnect[0] * 1000)),
        ("grpc.min_reconnect_backoff_ms", int(reconnect[0] * 1000)),
        ("grpc.max_reconnect_backoff_ms", int(reconnect[1] * 1000)),
    ]
    if credentials is not None:
        if asynchronous:
            return aio.secure_channel(target_of(address), credentials, options=options)
        return grpc.secure_channel(target_of(address), credentials, options=options)
    if asynchronous:
        return aio.insecure_channel(target_of(address), options=options)
    return grpc.insecure_channel(target_of(address), options=options)
