"""What AsyncSiobridgeManager (socketio.AsyncServer) and SiobridgeManager
(socketio.Server) share: settings, the session with the daemon, this server's
own rooms, the requests every operation sends to the cluster, and the queries
python-socketio lacks, written once as steps (steps.py) that each flavour
drives its own way.

Each operation is applied to this server's own sockets here (python-socketio's
in-memory manager underneath) and sent to the daemon for every other server of
the cluster. The daemon's Commands (commands.py) are applied through the same
in-memory rooms.

Thread-safety: as the flavour using it (see manager.py and sync_manager.py).
"""

from __future__ import annotations

import inspect
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Set, Tuple, Union

from socketio import base_manager

from . import codec, errors
from ._proto import bridge_pb2 as pb
from .channel import resolve_address, tls_files
from .commands import ClusterWork, _AckWaiter
from .connection import Connection, Session
from .sockets import RemoteSocket, SocketDetails
from .steps import Steps

logger = logging.getLogger("siobridge_socketio")

_Base = base_manager.BaseManager

PACKET_EVENT = 2
PACKET_BINARY_EVENT = 5

Room = Union[str, int, float]
Rooms = Union[Room, Iterable[Room], None]
ErrorHandler = Callable[[BaseException], Any]


def room_name(room: Any) -> Any:
    """A room as the cluster names it: the text socket.io's JavaScript side
    makes of it (String(room)). Every server of a cluster, whatever its
    language, then knows the room by the same name: numbers and booleans
    become their JavaScript text (4242 -> "4242", 1.5 -> "1.5", 2.0 -> "2",
    True -> "true"). None (no room: the namespace) stays None. Any other type
    is refused: the cluster carries room names as text."""
    if room is None or type(room) is str:
        return room
    if isinstance(room, str):
        return str.__str__(room)  # a str subclass (e.g. an Enum of names): its text
    if room is True or room is False:
        return "true" if room else "false"
    if isinstance(room, int):
        return int.__repr__(room)
    if isinstance(room, float):
        return codec.js_number(room)
    raise errors.SiobridgeError(
        f"a room of type {type(room).__name__} ({room!r}) cannot cross the cluster: rooms are str, int or float",
        errors.INVALID_ARGUMENT,
    )


def room_list(value: Any) -> List[Any]:
    """python-socketio's `to`/`room`/`skip_sid`: one room, a list, tuple or set of them, or None."""
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return [room_name(item) for item in value if item is not None]
    return [room_name(value)]


def arguments(data: Any) -> List[Any]:
    # python-socketio's convention: a tuple is several arguments, None none.
    if isinstance(data, tuple):
        return list(data)
    return [] if data is None else [data]


def _missing_dict(missing: Any) -> Dict[str, List[str]]:
    return {"nodes": list(missing.nodes), "local_servers": list(missing.local_servers)}


class ManagerCore(ClusterWork, SocketDetails):
    """The shared part of both managers; see the flavours for their parameters."""

    name = "siobridge"
    # The flavour's Connection driver class (with get() and close_session()).
    _connection_class: Any = None

    def __init__(
        self,
        address: Optional[str] = None,
        *,
        name: Optional[str] = None,
        requests_timeout: float = 5.0,
        reconnect: Tuple[float, float] = (0.1, 5.0),
        max_queued_calls: int = 10000,
        on_error: Optional[ErrorHandler] = None,
        logger: Optional[logging.Logger] = None,
        tls_ca: Optional[str] = None,
        tls_cert: Optional[str] = None,
        tls_key: Optional[str] = None,
        timeout_messages: str = "mongo",
    ):
        super().__init__()
        self.address = resolve_address(address)
        self.tls = tls_files(tls_ca, tls_cert, tls_key)
        self.server_name = name or f"{socket.gethostname()} pid {os.getpid()}"
        self.requests_timeout = requests_timeout
        self.timeout_messages = errors.check_timeout_messages(timeout_messages)
        self.reconnect = reconnect
        self.max_queued_calls = max_queued_calls
        self.on_error: ErrorHandler = on_error or (lambda error: _logger.warning("[siobridge] %s", error))
        self.logger = logger
        self._session: Optional[Session] = None
        self._closed = False
        self._server_handlers: Dict[Tuple[str, str], Callable[..., Any]] = {}  # handlers of server-side emits
        self._auth: Dict[Tuple[str, str], Tuple[Any, int]] = {}  # (namespace, sid) -> (auth, issued ms)
        self._connecting: Dict[Tuple[str, str], Any] = {}  # (eio_sid, namespace) -> auth, while connecting
        self._acks: Dict[Tuple[str, str], Set[_AckWaiter]] = {}  # (namespace, sid) -> waiters
        self._extra_namespaces: List[str] = []

    # ------------------------------------------------------ flavour hooks

    def _run(self, steps: "Steps[Any]") -> Any:
        """Runs steps: a coroutine to await (asyncio) or the result (blocking)."""
        raise NotImplementedError

    def _spawn(self, steps: "Steps[Any]") -> None:
        """Runs steps beside the command stream."""
        raise NotImplementedError

    def _call_later(self, delay: float, function: Callable[[], None]) -> Any:
        raise NotImplementedError

    def _start_worker(self) -> None:
        """Starts what applies the daemon's Commands in order."""
        raise NotImplementedError

    def _answer(self, pending: Any) -> Any:
        """What a step yields to get the reply of a call (session.call's)."""
        raise NotImplementedError

    def _ack_callback(self, callback: Callable[..., Any], args: List[Any]) -> None:
        """Runs an application's ack callback."""
        raise NotImplementedError

    # ------------------------------------------------------------ set-up

    def set_server(self, server: Any) -> None:
        super().set_server(server)  # type: ignore[misc]
        packet_class = getattr(server, "packet_class", None)
        if packet_class is not None and getattr(packet_class, "uses_binary_events", True) is False:
            raise ValueError(
                f"{type(self).__name__} needs socket.io's default JSON serializer: the cluster carries "
                "event data in the encoding of socket.io's default parser (serializer='msgpack' is not supported)"
            )
        self._record_auth(server)

    def add_namespace(self, namespace: str) -> None:
        """Makes this server part of `namespace` in the cluster now (counted by
        server_count, sent the cluster's work for it). It also joins by itself
        when its first client connects there or an operation uses it."""
        if namespace not in self._extra_namespaces:
            self._extra_namespaces.append(namespace)
        if self._session is not None:
            self._session.join_namespace(namespace)

    @property
    def attached(self) -> bool:
        return self._session is not None and self._session.attachment_id is not None

    @property
    def node_uid(self) -> Optional[str]:
        """The uid of this host's daemon in the cluster (None before attaching)."""
        return self._session.node_uid if self._session else None

    @property
    def connection(self) -> Optional[Connection]:
        """The shared Attach stream (None before starting)."""
        return self._session.connection if self._session else None

    def _record_auth(self, server: Any) -> None:
        # python-socketio hands the client's auth only to the connect handler;
        # fetchSockets reports it as handshake.auth, so it is noted on its way.
        found = getattr(server, "_handle_connect", None)
        if found is None:
            return
        original: Callable[..., Any] = found
        connecting = self._connecting
        if inspect.iscoroutinefunction(original):

            async def handle_connect_async(eio_sid: str, namespace: Optional[str], data: Any) -> Any:
                key = (eio_sid, namespace or "/")
                connecting[key] = data
                try:
                    return await original(eio_sid, namespace, data)
                finally:
                    connecting.pop(key, None)

            server._handle_connect = handle_connect_async
        else:

            def handle_connect(eio_sid: str, namespace: Optional[str], data: Any) -> Any:
                key = (eio_sid, namespace or "/")
                connecting[key] = data
                try:
                    return original(eio_sid, namespace, data)
                finally:
                    connecting.pop(key, None)

            server._handle_connect = handle_connect

    def _ensure_started(self) -> None:
        if self._session is not None or self._closed:
            return
        connection = self._connection_class.get(
            self.address,
            self.tls,
            reconnect_min=self.reconnect[0],
            reconnect_max=self.reconnect[1],
            max_queued_calls=self.max_queued_calls,
            on_error=self._report,
        )
        self._start_worker()
        self._session = connection.register(self.server_name, self)
        for namespace in self._server_namespaces():
            self._session.join_namespace(namespace)

    def _server_namespaces(self) -> List[str]:
        names = ["/"] + self._extra_namespaces
        server = self.server
        if server is not None:
            declared = getattr(server, "namespaces", None)
            if isinstance(declared, (list, tuple)):
                names += list(declared)
            names += list(getattr(server, "handlers", {})) + list(getattr(server, "namespace_handlers", {}))
        return [name for i, name in enumerate(names) if name and name not in names[:i]]

    def _use(self, namespace: str) -> Session:
        """The session, attached (or attaching) with `namespace` joined."""
        self._ensure_started()
        if self._closed or self._session is None:
            raise errors.SiobridgeError("the client manager was closed", errors.CANCELLED)
        self._session.join_namespace(namespace)
        return self._session

    def on_connection_error(self, error: BaseException) -> None:
        """Errors the shared connection reports for this manager's server."""
        self._report(error)

    def _report(self, error: BaseException) -> None:
        try:
            self.on_error(error)
        except Exception:  # the app's handler must not break the manager
            _logger.exception("on_error failed")

    def _close_acks(self) -> None:
        for waiters in list(self._acks.values()):
            for waiter in list(waiters):
                waiter.closed()

    # ------------------------------------------------ local bookkeeping

    def _is_local(self, sid: str, namespace: str) -> bool:
        participants = self.rooms.get(namespace, {}).get(None)
        return participants is not None and sid in participants

    def _base_enter(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        if hasattr(_Base, "basic_enter_room"):
            self.basic_enter_room(sid, namespace, room, eio_sid=eio_sid)  # type: ignore[attr-defined]
        else:
            _Base.enter_room(self, sid, namespace, room, eio_sid=eio_sid)

    def _base_leave(self, sid: str, namespace: str, room: Any) -> None:
        if hasattr(_Base, "basic_leave_room"):
            self.basic_leave_room(sid, namespace, room)  # type: ignore[attr-defined]
        else:
            _Base.leave_room(self, sid, namespace, room)

    def _base_emit(self, event: str, data: Any, namespace: str, **kwargs: Any) -> Any:
        """python-socketio's own emit to this server's sockets (a coroutine under asyncio)."""
        return super().emit(event, data, namespace, **kwargs)  # type: ignore[misc]

    def _local_disconnect(self, sid: str, namespace: str) -> None:
        for waiter in list(self._acks.pop((namespace, sid), ())):
            waiter.closed()
        self._auth.pop((namespace, sid), None)
        rooms = [name for name, members in self.rooms.get(namespace, {}).items() if sid in members]
        # Every room but the namespace's own first: leaving None last keeps the
        # socket known as local while it leaves the others.
        for room in sorted(rooms, key=lambda r: r is None):
            self._base_leave(sid, namespace, room)
        self.callbacks.pop(sid, None)
        pending = self.pending_disconnect.get(namespace)
        if pending and sid in pending:
            pending.remove(sid)
            if not pending:
                del self.pending_disconnect[namespace]

    def _connected(self, eio_sid: str, namespace: str, sid: Optional[str]) -> None:
        if sid is None:
            return
        self._auth[(namespace, sid)] = (self._connecting.get((eio_sid, namespace)), int(time.time() * 1000))
        if self._session is not None:
            self._session.join_namespace(namespace)

    def _select(self, namespace: str, rooms: List[Any], except_rooms: List[Any]) -> List[str]:
        """Local sockets in any of `rooms` (all when empty), none of `except_rooms`."""
        members = self.rooms.get(namespace)
        if not members:
            return []
        excluded: Set[str] = set()
        for room in except_rooms:
            excluded.update(members.get(room, {}).keys())
        selected: Dict[str, bool] = {}
        for room in rooms or [None]:
            for sid in members.get(room, {}).keys():
                if sid not in excluded:
                    selected[sid] = True
        return list(selected)

    # ------------------------------------------ python-socketio's operations

    def _enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        room = room_name(room)
        if eio_sid is not None or self._is_local(sid, namespace):
            self._base_enter(sid, namespace, room, eio_sid=eio_sid)
        elif room is not None:
            self._rooms_call("add_sockets", namespace, [sid], [room])

    def _leave_room(self, sid: str, namespace: str, room: Any) -> None:
        room = room_name(room)
        if self._is_local(sid, namespace):
            self._base_leave(sid, namespace, room)
        elif room is not None:
            self._rooms_call("del_sockets", namespace, [sid], [room])

    def _room_change_steps(self, method: str, sid: str, namespace: str, room: Any) -> "Steps[None]":
        # python-socketio >= 5.10 makes these coroutines in AsyncManager.
        yield getattr(self, method)(sid, namespace, room)

    def _close_room(self, room: Any, namespace: Optional[str]) -> None:
        namespace = namespace or "/"
        room = room_name(room)
        for sid, _ in list(self.get_participants(namespace, room)):
            self._base_leave(sid, namespace, room)
        self._rooms_call("del_sockets", namespace, [room], [room])

    def _can_disconnect(self, sid: str, namespace: Optional[str]) -> bool:
        namespace = namespace or "/"
        if self._is_local(sid, namespace):
            return bool(self.is_connected(sid, namespace))
        self._disconnect_call(namespace, [sid], False)
        return False

    def _disconnect(self, sid: str, namespace: Optional[str], **kwargs: Any) -> None:
        namespace = namespace or "/"
        if kwargs.get("ignore_queue") or self._is_local(sid, namespace):
            self._local_disconnect(sid, namespace)
        else:
            self._disconnect_call(namespace, [sid], False)

    def _server_disconnect_steps(self, sid: str, namespace: str) -> "Steps[None]":
        yield self.server.disconnect(sid, namespace=namespace)

    def _emit_steps(
        self,
        event: str,
        data: Any,
        namespace: Optional[str],
        room: Any,
        skip_sid: Any,
        callback: Optional[Callable[..., Any]],
        kwargs: Dict[str, Any],
    ) -> "Steps[None]":
        namespace = namespace or "/"
        rooms = room_list(room)
        skips = room_list(skip_sid)
        to_one_local = len(rooms) == 1 and self._is_local(rooms[0], namespace)
        if not kwargs.get("ignore_queue") and not to_one_local:
            self._broadcast_call(event, data, namespace, rooms, skips, callback)
        if namespace not in self.rooms:
            return
        if len(rooms) <= 1:
            one = rooms[0] if rooms else None
            if one in self.rooms[namespace]:
                yield self._base_emit(event, data, namespace, room=one, skip_sid=skips, callback=callback)
            return
        # Several rooms: each socket once (python-socketio 5.7.2 cannot take a list here).
        for sid in self._select(namespace, rooms, skips):
            yield self._base_emit(event, data, namespace, room=sid, callback=callback)

    # ------------------------------------------- this server's cluster calls

    def _options(self, rooms: List[Any], except_rooms: List[Any]) -> Any:
        # socket.io's "no rooms" means every socket: PROTOCOL.md's Broadcast flag.
        return pb.BroadcastOptions(rooms=rooms, exclude_sid=True, **{"except": except_rooms})

    def _packet(self, namespace: str, event: str, data: Any) -> Any:
        kind, encoded, attachments = codec.encode_value([event] + arguments(data))
        return pb.Packet(
            namespace=namespace,
            type=PACKET_BINARY_EVENT if attachments else PACKET_EVENT,
            data=pb.Value(kind=kind, data=encoded, attachments=attachments),
        )

    def _call_timeout(self, timeout: Optional[float] = None) -> float:
        return (timeout if timeout is not None else self.requests_timeout) * 2 + 5

    def _broadcast_call(
        self,
        event: str,
        data: Any,
        namespace: str,
        rooms: List[Any],
        skips: List[Any],
        callback: Optional[Callable[..., Any]],
    ) -> None:
        session = self._use(namespace)
        request = pb.BroadcastRequest(packet=self._packet(namespace, event, data), opts=self._options(rooms, skips))
        if callback is None:
            session.send("broadcast", request)
            return
        request.ack_timeout_ms = int(self.requests_timeout * 1000)
        answer_to: Callable[..., Any] = callback

        def on_event(ack_event: Any) -> None:
            if ack_event.WhichOneof("kind") != "ack" or ack_event.ack.WhichOneof("result") != "value":
                return
            value = ack_event.ack.value
            try:
                args = codec.decode_value(value.kind, value.data, value.attachments)
            except ValueError as error:
                self._report(
                    errors.SiobridgeError(f"an ack from socket {ack_event.ack.sid}: {error}", errors.INVALID_ARGUMENT)
                )
                return
            self._ack_callback(answer_to, args)

        self._on_failure(session.call("broadcast_with_ack", request, self._call_timeout(), on_event))

    def _on_failure(self, pending: Any) -> None:
        """Reports the failure of a call nobody waits for."""
        raise NotImplementedError

    def _rooms_call(self, kind: str, namespace: str, rooms: List[Any], new_rooms: List[Any]) -> None:
        request = pb.RoomsRequest(namespace=namespace, opts=self._options(rooms, []), rooms=new_rooms)
        self._use(namespace).send(kind, request)

    def _disconnect_call(self, namespace: str, rooms: List[Any], close: bool) -> None:
        request = pb.DisconnectRequest(namespace=namespace, opts=self._options(rooms, []), close=close)
        self._use(namespace).send("disconnect_sockets", request)

    # ----------------------------------------- extras python-socketio lacks

    def _server_count_steps(self, namespace: Optional[str]) -> "Steps[int]":
        namespace = namespace or "/"
        session = self._use(namespace)
        reply = yield self._answer(
            session.call("server_count", pb.ServerCountRequest(namespace=namespace), self._call_timeout())
        )
        return max(1, int(reply.count))

    def _all_rooms_steps(self, namespace: Optional[str]) -> "Steps[Set[str]]":
        namespace = namespace or "/"
        session = self._use(namespace)
        reply = yield self._answer(
            session.call("all_rooms", pb.QueryRequest(namespace=namespace, opts=self._options([], [])), self._call_timeout())
        )
        rooms = {room for room in self.rooms.get(namespace, {}) if room is not None}
        rooms.update(reply.rooms)
        if reply.missing.nodes or reply.missing.local_servers:
            raise (yield from self._partial_steps(namespace, reply.missing, rooms))
        return rooms

    def _fetch_sockets_steps(
        self, room: Rooms, namespace: Optional[str], skip: Rooms, local: bool, timeout: Optional[float]
    ) -> "Steps[List[RemoteSocket]]":
        namespace = namespace or "/"
        rooms, excepts = room_list(room), room_list(skip)
        mine = []
        for sid in self._select(namespace, rooms, excepts):
            data = yield from self._socket_data_steps(sid, namespace)
            mine.append(
                RemoteSocket(
                    self,
                    sid,
                    self.node_uid,
                    namespace,
                    self.get_rooms(sid, namespace),
                    self._handshake(sid, namespace),
                    data,
                    True,
                )
            )
        if local:
            return mine
        session = self._use(namespace)
        reply = yield self._answer(
            session.call(
                "fetch_sockets",
                pb.QueryRequest(namespace=namespace, opts=self._options(rooms, excepts)),
                self._call_timeout(timeout),
            )
        )
        theirs = [
            RemoteSocket(
                self,
                info.id,
                info.server_id,
                info.namespace or namespace,
                info.rooms,
                (codec.decode_detail(info.handshake) or {}) if info.has_details else {},
                codec.decode_detail(info.data) if info.has_details else None,
                False,
            )
            for info in reply.sockets
        ]
        every = mine + theirs
        if reply.missing.nodes or reply.missing.local_servers:
            raise (yield from self._partial_steps(namespace, reply.missing, every))
        return every

    def _partial_steps(self, namespace: str, missing: Any, partial: Any) -> "Steps[errors.PartialResultError]":
        """A query some servers did not answer, in socket.io's words: the
        servers asked are the cluster's count less this one (a daemon that did
        not answer counts as one, whatever servers it has)."""
        silent = len(missing.nodes) + len(missing.local_servers)
        try:
            servers = yield from self._server_count_steps(namespace)
        except errors.SiobridgeError:
            servers = 1  # the daemon cannot say: who is missing is all there is to count
        expected = max(servers - 1, silent)
        message = errors.timeout_message(self.timeout_messages, expected - silent, expected)
        return errors.PartialResultError(message, partial, _missing_dict(missing), expected=expected)

    def _server_side_emit(self, event: str, data: Any, namespace: Optional[str]) -> None:
        namespace = namespace or "/"
        payload = codec.encode_payload([event] + arguments(data))
        self._use(namespace).send(
            "server_side_emit", pb.ServerSideEmitRequest(namespace=namespace, payload=payload, wants_ack=False)
        )

    def _server_side_emit_with_ack_steps(
        self, event: str, data: Any, namespace: Optional[str], timeout: Optional[float]
    ) -> "Steps[List[Any]]":
        namespace = namespace or "/"
        timeout = self.requests_timeout if timeout is None else timeout
        payload = codec.encode_payload([event] + arguments(data))
        session = self._use(namespace)
        reply = yield self._answer(
            session.call(
                "server_side_emit",
                pb.ServerSideEmitRequest(
                    namespace=namespace, payload=payload, wants_ack=True, timeout_ms=int(timeout * 1000)
                ),
                self._call_timeout(timeout),
            )
        )
        responses = []
        for response in reply.responses:
            try:
                decoded = codec.decode_payload(response)
            except ValueError as error:
                self._report(errors.SiobridgeError(f"a server-side emit answer: {error}", errors.INVALID_ARGUMENT))
                continue
            responses.append(decoded[0] if decoded else None)
        if len(responses) < reply.expected:
            raise errors.PartialResultError(
                errors.timeout_message(self.timeout_messages, len(responses), reply.expected),
                responses,
                _missing_dict(reply.missing),
                expected=reply.expected,
            )
        return responses

    def on_server_side(self, event: str, handler: Optional[Callable[..., Any]] = None, namespace: Optional[str] = None) -> Any:
        """Registers the handler of server-side emits of `event` from other
        servers; it receives the event's arguments and what it returns (or its
        coroutine returns) is the answer to server_side_emit_with_ack and
        serverSideEmitWithAck. Usable as a decorator."""
        ns = namespace or "/"

        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            self._server_handlers[(ns, event)] = function
            self.add_namespace(ns)
            return function

        return register if handler is None else register(handler)

    if TYPE_CHECKING:  # python-socketio's manager provides these
        pending_disconnect: Dict[str, List[str]]

        def get_participants(self, namespace: str, room: Any) -> Iterable[Tuple[str, Any]]: ...
        def is_connected(self, sid: str, namespace: str) -> bool: ...


_logger = logger
