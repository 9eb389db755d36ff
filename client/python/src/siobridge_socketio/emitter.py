"""Emitters: events and socket changes for a siobridge cluster from a process
that serves no socket.io clients (a Celery worker, a cron job, another
service), as python-socketio's RedisManager(write_only=True) and socket.io's
@socket.io/redis-emitter do with Redis.

An emitter makes the daemon's unary calls as an external emitter (no
attachment: every server of the cluster is reached, this host's included).
It holds no Attach stream, except for a moment before its first call: a Hello
whose Welcome says how large a payload the daemon takes, so that a call past
it is refused here, before it is sent. Calls are made one at a time, in the
order they were made, each returning once the daemon took it.

Thread-safety: SiobridgeEmitter may be used from any thread (calls are
serialized); AsyncSiobridgeEmitter belongs to one asyncio event loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, Iterator, List, Optional, Tuple

import grpc

from . import codec, errors
from ._proto import bridge_pb2 as pb
from ._proto import bridge_pb2_grpc as pb_grpc
from .channel import ENVELOPE_ALLOWANCE, open_channel, resolve_address, tls_files
from .connection import payload_bytes, too_large
from .manager_core import PACKET_BINARY_EVENT, PACKET_EVENT, arguments, room_list
from .steps import Steps, run_async, run_blocking

__all__ = ["AsyncSiobridgeEmitter", "SiobridgeEmitter"]


def _error_of(error: grpc.RpcError, address: str) -> errors.SiobridgeError:
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    number = code.value[0] if isinstance(code, grpc.StatusCode) else errors.UNKNOWN
    if number == errors.UNAVAILABLE:
        return errors.SiobridgeError(f"siobridged is not reachable at {address}: {details}", number)
    if number == errors.DEADLINE_EXCEEDED:
        return errors.SiobridgeError(f"siobridged at {address} did not answer in time: {details}", number)
    return errors.SiobridgeError(details, number)


class _EmitterCore:
    """The requests of both emitters, as steps (see steps.py)."""

    def __init__(
        self,
        address: Optional[str],
        namespace: str,
        timeout: float,
        tls: Tuple[Optional[str], Optional[str], Optional[str]],
    ):
        self.address = resolve_address(address)
        self.namespace = namespace
        self.timeout = timeout
        self.tls = tls
        # The daemon's max_message_bytes, from the Welcome before the first call.
        self.max_message_bytes: Optional[int] = None

    def _invoke(self, method: str, request: Any) -> Any:
        raise NotImplementedError

    def _welcome(self) -> Any:
        raise NotImplementedError

    def _hello(self) -> Any:
        return pb.ServerMessage(hello=pb.Hello(name=f"emitter pid {os.getpid()}", client_ref="emitter"))

    def _call(self, kind: str, method: str, request: Any) -> "Steps[Any]":
        if self.max_message_bytes is None:
            welcome = yield self._welcome()
            self.max_message_bytes = int(welcome.max_message_bytes) or None
        limit = self.max_message_bytes
        if limit is not None:
            size = payload_bytes(kind, request)
            if size > limit:
                raise too_large(kind, size, limit)
            whole = request.ByteSize()
            if whole > limit + ENVELOPE_ALLOWANCE:
                raise errors.SiobridgeError(
                    f"{kind}: a request of {whole} bytes is larger than siobridged accepts "
                    f"({limit + ENVELOPE_ALLOWANCE} bytes): not sent",
                    errors.RESOURCE_EXHAUSTED,
                )
        reply = yield self._invoke(method, request)
        return reply

    def _options(self, rooms: List[Any], except_rooms: List[Any]) -> Any:
        # No rooms means every socket (PROTOCOL.md's Broadcast flag).
        return pb.BroadcastOptions(rooms=rooms, exclude_sid=True, **{"except": except_rooms})

    def _emit_steps(self, event: str, data: Any, to: Any, skip_sid: Any, namespace: Optional[str]) -> "Steps[None]":
        namespace = namespace or self.namespace
        kind, encoded, attachments = codec.encode_value([event] + arguments(data))
        packet = pb.Packet(
            namespace=namespace,
            type=PACKET_BINARY_EVENT if attachments else PACKET_EVENT,
            data=pb.Value(kind=kind, data=encoded, attachments=attachments),
        )
        request = pb.BroadcastRequest(packet=packet, opts=self._options(room_list(to), room_list(skip_sid)))
        yield from self._call("broadcast", "Broadcast", request)

    def _rooms_steps(self, method: str, kind: str, sid: Any, room: Any, namespace: Optional[str]) -> "Steps[None]":
        namespace = namespace or self.namespace
        request = pb.RoomsRequest(namespace=namespace, opts=self._options(room_list(sid), []), rooms=room_list(room))
        yield from self._call(kind, method, request)

    def _disconnect_steps(self, sid: Any, namespace: Optional[str], close: bool) -> "Steps[None]":
        namespace = namespace or self.namespace
        request = pb.DisconnectRequest(namespace=namespace, opts=self._options(room_list(sid), []), close=close)
        yield from self._call("disconnect_sockets", "DisconnectSockets", request)

    def _server_side_steps(self, event: str, data: Any, namespace: Optional[str]) -> "Steps[None]":
        namespace = namespace or self.namespace
        payload = codec.encode_payload([event] + arguments(data))
        request = pb.ServerSideEmitRequest(namespace=namespace, payload=payload, wants_ack=False)
        yield from self._call("server_side_emit", "ServerSideEmit", request)


class SiobridgeEmitter(_EmitterCore):
    """Sends to the sockets of a siobridge cluster from any process.

        emitter = SiobridgeEmitter()                 # the daemon of this host
        emitter.emit("news", {"text": "hi"}, to="room1")

    :param address: the daemon, as for the managers (default
                    $SIOBRIDGE_ADDRESS, else the daemon's default Unix socket).
    :param namespace: the namespace of calls that name none (default "/").
    :param timeout: seconds a call may take before it fails with
                    DEADLINE_EXCEEDED.
    :param tls_ca, tls_cert, tls_key: TLS files for a daemon reached over TCP.

    Each method returns once the daemon took the call, or raises
    SiobridgeError: UNAVAILABLE (14) when no daemon answers at the address
    (at once, without waiting for one), INVALID_ARGUMENT (3) for a bad
    namespace or room, RESOURCE_EXHAUSTED (8) for a payload past the
    daemon's limits.max_message_bytes (not sent).
    """

    def __init__(
        self,
        address: Optional[str] = None,
        *,
        namespace: str = "/",
        timeout: float = 10.0,
        tls_ca: Optional[str] = None,
        tls_cert: Optional[str] = None,
        tls_key: Optional[str] = None,
    ):
        super().__init__(address, namespace, timeout, tls_files(tls_ca, tls_cert, tls_key))
        self._lock = threading.Lock()
        self._channel: Any = None
        self._stub: Any = None

    def __enter__(self) -> "SiobridgeEmitter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Closes the channel to the daemon (the next call opens another)."""
        with self._lock:
            if self._channel is not None:
                self._channel.close()
            self._channel = self._stub = None

    def _stub_now(self) -> Any:
        if self._stub is None:
            self._channel = open_channel(self.address, asynchronous=False, tls=self.tls)
            self._stub = pb_grpc.BridgeStub(self._channel)
        return self._stub

    def _invoke(self, method: str, request: Any) -> Any:
        try:
            return getattr(self._stub_now(), method)(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise _error_of(error, self.address) from None

    def _welcome(self) -> Any:
        welcomed = threading.Event()
        hello = self._hello()

        def requests() -> Iterator[Any]:
            yield hello
            welcomed.wait(self.timeout)  # the daemon ends a stream its client closed

        call = self._stub_now().Attach(requests(), timeout=self.timeout)
        try:
            for message in call:
                if message.WhichOneof("kind") == "welcome":
                    return message.welcome
        except grpc.RpcError as error:
            raise _error_of(error, self.address) from None
        finally:
            welcomed.set()
            call.cancel()
        raise errors.SiobridgeError(f"siobridged at {self.address} ended the stream before its Welcome", errors.UNAVAILABLE)

    def _run(self, steps: "Steps[Any]") -> Any:
        with self._lock:
            return run_blocking(steps)

    def emit(
        self,
        event: str,
        data: Any = None,
        to: Any = None,
        room: Any = None,
        skip_sid: Any = None,
        namespace: Optional[str] = None,
    ) -> None:
        """Emits `event` to every socket of the namespace, or those in `to`
        (a room, a socket id, or a list of them; `room` is its other name),
        leaving out those in `skip_sid` (socket ids or rooms). `data` is one
        argument, a tuple of several, or None for none (python-socketio's
        convention). Acks cannot reach an emitter."""
        self._run(self._emit_steps(event, data, to if to is not None else room, skip_sid, namespace))

    def enter_room(self, sid: Any, room: Any, namespace: Optional[str] = None) -> None:
        """Makes the socket `sid` (or every socket in the room `sid`), wherever
        it is, join `room` (a room or a list of them)."""
        self._run(self._rooms_steps("AddSockets", "add_sockets", sid, room, namespace))

    def leave_room(self, sid: Any, room: Any, namespace: Optional[str] = None) -> None:
        """Makes the socket `sid` (or every socket in the room `sid`) leave `room`."""
        self._run(self._rooms_steps("DelSockets", "del_sockets", sid, room, namespace))

    def close_room(self, room: Any, namespace: Optional[str] = None) -> None:
        """Every socket in `room` leaves it, on every server."""
        self._run(self._rooms_steps("DelSockets", "del_sockets", room, room, namespace))

    def disconnect(self, sid: Any, namespace: Optional[str] = None, close: bool = False) -> None:
        """Disconnects the socket `sid` (or every socket in the room `sid`)
        from the namespace; with close=True its whole connection closes."""
        self._run(self._disconnect_steps(sid, namespace, close))

    def server_side_emit(self, event: str, data: Any = None, namespace: Optional[str] = None) -> None:
        """An event for every socket.io server of the cluster (socket.io's
        serverSideEmit; the managers' on_server_side handlers receive it)."""
        self._run(self._server_side_steps(event, data, namespace))


class AsyncSiobridgeEmitter(_EmitterCore):
    """SiobridgeEmitter for asyncio: the same parameters and methods, as
    coroutines; calls made while another is in flight wait their turn."""

    def __init__(
        self,
        address: Optional[str] = None,
        *,
        namespace: str = "/",
        timeout: float = 10.0,
        tls_ca: Optional[str] = None,
        tls_cert: Optional[str] = None,
        tls_key: Optional[str] = None,
    ):
        super().__init__(address, namespace, timeout, tls_files(tls_ca, tls_cert, tls_key))
        self._lock: Optional[asyncio.Lock] = None
        self._channel: Any = None
        self._stub: Any = None

    async def __aenter__(self) -> "AsyncSiobridgeEmitter":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the channel to the daemon (the next call opens another)."""
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close()

    def _stub_now(self) -> Any:
        if self._stub is None:
            self._channel = open_channel(self.address, asynchronous=True, tls=self.tls)
            self._stub = pb_grpc.BridgeStub(self._channel)
        return self._stub

    async def _invoke(self, method: str, request: Any) -> Any:
        try:
            return await getattr(self._stub_now(), method)(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise _error_of(error, self.address) from None

    async def _welcome(self) -> Any:
        welcomed = asyncio.Event()
        hello = self._hello()

        async def requests() -> Any:
            yield hello
            await welcomed.wait()  # the daemon ends a stream its client closed

        call = self._stub_now().Attach(requests(), timeout=self.timeout)
        try:
            async for message in call:
                if message.WhichOneof("kind") == "welcome":
                    return message.welcome
        except grpc.RpcError as error:
            raise _error_of(error, self.address) from None
        finally:
            welcomed.set()
            call.cancel()
        raise errors.SiobridgeError(f"siobridged at {self.address} ended the stream before its Welcome", errors.UNAVAILABLE)

    async def _run(self, steps: "Steps[Any]") -> Any:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            return await run_async(steps)

    async def emit(
        self,
        event: str,
        data: Any = None,
        to: Any = None,
        room: Any = None,
        skip_sid: Any = None,
        namespace: Optional[str] = None,
    ) -> None:
        """See SiobridgeEmitter.emit."""
        await self._run(self._emit_steps(event, data, to if to is not None else room, skip_sid, namespace))

    async def enter_room(self, sid: Any, room: Any, namespace: Optional[str] = None) -> None:
        """See SiobridgeEmitter.enter_room."""
        await self._run(self._rooms_steps("AddSockets", "add_sockets", sid, room, namespace))

    async def leave_room(self, sid: Any, room: Any, namespace: Optional[str] = None) -> None:
        """See SiobridgeEmitter.leave_room."""
        await self._run(self._rooms_steps("DelSockets", "del_sockets", sid, room, namespace))

    async def close_room(self, room: Any, namespace: Optional[str] = None) -> None:
        """See SiobridgeEmitter.close_room."""
        await self._run(self._rooms_steps("DelSockets", "del_sockets", room, room, namespace))

    async def disconnect(self, sid: Any, namespace: Optional[str] = None, close: bool = False) -> None:
        """See SiobridgeEmitter.disconnect."""
        await self._run(self._disconnect_steps(sid, namespace, close))

    async def server_side_emit(self, event: str, data: Any = None, namespace: Optional[str] = None) -> None:
        """See SiobridgeEmitter.server_side_emit."""
        await self._run(self._server_side_steps(event, data, namespace))
