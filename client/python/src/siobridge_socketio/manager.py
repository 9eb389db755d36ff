"""AsyncSiobridgeManager: a python-socketio client manager whose cluster is
reached through the siobridged daemon of this host.

Each operation is applied to this server's own sockets here (the in-memory
AsyncManager underneath) and sent to the daemon for every other server of the
cluster: Node.js socket.io servers with @siobridge/socket.io-adapter, other
Python servers, Rust socketioxide servers. The daemon's Commands (work that
other servers ask of this server's sockets) are applied here, in the order
they arrive, through the same in-memory rooms.

Supports python-socketio 5.7.2 (room and connect methods synchronous) and the
5.10+ layout (those methods are coroutines); see compat below.

Thread-safety: none. Use the manager from the server's asyncio event loop.
"""

import asyncio
import inspect
import logging
import os
import socket
import time

import socketio
from socketio import base_manager

from . import codec, errors
from ._proto import bridge_pb2 as pb
from .commands import ClusterWork
from .connection import Connection
from .sockets import RemoteSocket, SocketDetails

logger = logging.getLogger("siobridge_socketio")

# python-socketio 5.7.2 calls enter_room/leave_room/connect synchronously;
# later 5.x versions await them. The manager follows what the installed
# version expects.
_ASYNC_ROOMS = inspect.iscoroutinefunction(socketio.AsyncManager.enter_room)
_ASYNC_CONNECT = inspect.iscoroutinefunction(socketio.AsyncManager.connect)
_Base = base_manager.BaseManager

PACKET_EVENT = 2
PACKET_BINARY_EVENT = 5

__all__ = ["AsyncSiobridgeManager", "RemoteSocket", "default_address"]


def default_address():
    """The daemon's default Unix socket, as siobridged and the Node adapter use it."""
    uid = os.getuid()
    return "unix:/run/siobridge/siobridged.sock" if uid == 0 else f"unix:/tmp/siobridge-{uid}/siobridged.sock"


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return [item for item in value if item is not None]
    return [value]


def _arguments(data):
    # python-socketio's convention: a tuple is several arguments, None none.
    if isinstance(data, tuple):
        return list(data)
    return [] if data is None else [data]


def _missing_names(missing):
    return list(missing.nodes) + [f"server '{name}'" for name in missing.local_servers]


def _missing_dict(missing):
    return {"nodes": list(missing.nodes), "local_servers": list(missing.local_servers)}


class AsyncSiobridgeManager(ClusterWork, SocketDetails, socketio.AsyncManager):
    """Client manager for socketio.AsyncServer backed by siobridged.

    :param address: the daemon: "unix:/path", "/path" or "host:port". Default:
                    $SIOBRIDGE_ADDRESS, else the daemon's default Unix socket.
    :param name: how the daemon names this server in its status and logs.
                 Default "<hostname> pid <pid>".
    :param requests_timeout: seconds; the ack timeout of emits with a callback
                             to other servers' sockets and of
                             server_side_emit_with_ack; queries give up after
                             twice this plus 5 s when the daemon does not answer.
    :param reconnect: (min, max) seconds of the reattach backoff.
    :param max_queued_calls: calls kept while the daemon is unreachable.
    :param on_error: receives errors of fire-and-forget operations (a broadcast
                     the daemon refused), of the connection, and of work from
                     the cluster that could not be read. Default: a warning on
                     the "siobridge_socketio" logger.
    """

    name = "siobridge"

    def __init__(
        self,
        address=None,
        *,
        name=None,
        requests_timeout=5.0,
        reconnect=(0.1, 5.0),
        max_queued_calls=10000,
        on_error=None,
        logger=None,
    ):
        super().__init__()
        self.address = address or os.environ.get("SIOBRIDGE_ADDRESS") or default_address()
        self.server_name = name or f"{socket.gethostname()} pid {os.getpid()}"
        self.requests_timeout = requests_timeout
        self.reconnect = reconnect
        self.max_queued_calls = max_queued_calls
        self.on_error = on_error or (lambda error: logger_.warning("[siobridge] %s", error))
        self.logger = logger
        self._session = None
        self._worker = None
        self._commands = None
        self._closed = False
        self._server_handlers = {}  # (namespace, event) -> handler of server-side emits
        self._auth = {}  # (namespace, sid) -> (auth, issued ms)
        self._connecting = {}  # (eio_sid, namespace) -> auth, while the server connects it
        self._acks = {}  # (namespace, sid) -> {_AckWaiter}
        self._tasks = set()
        self._extra_namespaces = []

    # ------------------------------------------------------------ set-up

    def set_server(self, server):
        super().set_server(server)
        packet_class = getattr(server, "packet_class", None)
        if packet_class is not None and getattr(packet_class, "uses_binary_events", True) is False:
            raise ValueError(
                "AsyncSiobridgeManager needs socket.io's default JSON serializer: the cluster carries "
                "event data in the encoding of socket.io's default parser (serializer='msgpack' is not supported)"
            )
        self._record_auth(server)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # attaches in start(), initialize() or the first operation
        # Once the server is built and its handlers registered: their namespaces are joined.
        loop.call_soon(self._ensure_started)

    def initialize(self):
        super().initialize()
        self._ensure_started()

    async def start(self):
        """Attaches to the daemon now (without waiting for it). Call it when the
        app starts, e.g. from aiohttp's on_startup, so that the server is part
        of the cluster before its first client connects."""
        self._ensure_started()

    async def wait_attached(self, timeout=None):
        """Waits until the daemon welcomed this server (again, after a restart)."""
        self._ensure_started()
        await asyncio.wait_for(self._session.attached.wait(), timeout)

    def add_namespace(self, namespace):
        """Makes this server part of `namespace` in the cluster now (counted by
        server_count, sent the cluster's work for it). It also joins by itself
        when its first client connects there or an operation uses it."""
        if namespace not in self._extra_namespaces:
            self._extra_namespaces.append(namespace)
        if self._session is not None:
            self._session.join_namespace(namespace)

    @property
    def attached(self):
        return self._session is not None and self._session.attachment_id is not None

    @property
    def node_uid(self):
        """The uid of this host's daemon in the cluster (None before attaching)."""
        return self._session.node_uid if self._session else None

    async def close(self):
        """Detaches from the daemon: the cluster stops counting this server."""
        if self._closed:
            return
        self._closed = True
        for waiters in list(self._acks.values()):
            for waiter in list(waiters):
                waiter.closed()
        if self._worker is not None:
            self._worker.cancel()
        if self._session is not None:
            shutdown = self._session.close()
            if shutdown is not None:
                await shutdown

    def _record_auth(self, server):
        # python-socketio hands the client's auth only to the connect handler;
        # fetchSockets reports it as handshake.auth, so it is noted on its way.
        original = getattr(server, "_handle_connect", None)
        if original is None or not inspect.iscoroutinefunction(original):
            return

        async def handle_connect(eio_sid, namespace, data):
            key = (eio_sid, namespace or "/")
            self._connecting[key] = data
            try:
                return await original(eio_sid, namespace, data)
            finally:
                self._connecting.pop(key, None)

        server._handle_connect = handle_connect

    def _ensure_started(self):
        if self._session is not None or self._closed:
            return
        loop = asyncio.get_running_loop()
        connection = Connection.get(
            self.address,
            reconnect_min=self.reconnect[0],
            reconnect_max=self.reconnect[1],
            max_queued_calls=self.max_queued_calls,
            on_error=self._report,
        )
        self._commands = asyncio.Queue()
        self._worker = loop.create_task(self._work())
        self._session = connection.register(self.server_name, self)
        for namespace in self._server_namespaces():
            self._session.join_namespace(namespace)

    def _server_namespaces(self):
        names = ["/"] + self._extra_namespaces
        server = self.server
        if server is not None:
            declared = getattr(server, "namespaces", None)
            if isinstance(declared, (list, tuple)):
                names += list(declared)
            names += list(getattr(server, "handlers", {})) + list(getattr(server, "namespace_handlers", {}))
        return [name for i, name in enumerate(names) if name and name not in names[:i]]

    def _use(self, namespace):
        """The session, attached (or attaching) with `namespace` joined."""
        self._ensure_started()
        if self._closed:
            raise errors.SiobridgeError("the client manager was closed", errors.CANCELLED)
        self._session.join_namespace(namespace)
        return self._session

    def on_connection_error(self, error):
        """Errors the shared connection reports for this manager's server."""
        self._report(error)

    def _report(self, error):
        try:
            self.on_error(error)
        except Exception:  # the app's handler must not break the manager
            logger_.exception("on_error failed")

    def _spawn(self, coroutine):
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _maybe_await(self, value):
        if inspect.isawaitable(value):
            return await value
        return value

    # ------------------------------------------------ local bookkeeping

    def _is_local(self, sid, namespace):
        participants = self.rooms.get(namespace, {}).get(None)
        return participants is not None and sid in participants

    def _base_enter(self, sid, namespace, room, eio_sid=None):
        if hasattr(_Base, "basic_enter_room"):
            self.basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        else:
            _Base.enter_room(self, sid, namespace, room, eio_sid=eio_sid)

    def _base_leave(self, sid, namespace, room):
        if hasattr(_Base, "basic_leave_room"):
            self.basic_leave_room(sid, namespace, room)
        else:
            _Base.leave_room(self, sid, namespace, room)

    def _local_disconnect(self, sid, namespace):
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

    def _connected(self, eio_sid, namespace, sid):
        if sid is None:
            return
        self._auth[(namespace, sid)] = (self._connecting.get((eio_sid, namespace)), int(time.time() * 1000))
        if self._session is not None:
            self._session.join_namespace(namespace)

    # ------------------------------------- python-socketio's manager API

    if _ASYNC_CONNECT:

        async def connect(self, eio_sid, namespace):
            sid = await super().connect(eio_sid, namespace)
            self._connected(eio_sid, namespace, sid)
            return sid

    else:

        def connect(self, eio_sid, namespace):
            sid = super().connect(eio_sid, namespace)
            self._connected(eio_sid, namespace, sid)
            return sid

    def _enter_room(self, sid, namespace, room, eio_sid=None):
        if eio_sid is not None or self._is_local(sid, namespace):
            self._base_enter(sid, namespace, room, eio_sid=eio_sid)
        elif room is not None:
            self._rooms_call("add_sockets", namespace, [sid], [room])

    def _leave_room(self, sid, namespace, room):
        if self._is_local(sid, namespace):
            self._base_leave(sid, namespace, room)
        elif room is not None:
            self._rooms_call("del_sockets", namespace, [sid], [room])

    if _ASYNC_ROOMS:

        async def enter_room(self, sid, namespace, room, eio_sid=None):
            self._enter_room(sid, namespace, room, eio_sid)

        async def leave_room(self, sid, namespace, room):
            self._leave_room(sid, namespace, room)

    else:

        def enter_room(self, sid, namespace, room, eio_sid=None):
            self._enter_room(sid, namespace, room, eio_sid)

        def leave_room(self, sid, namespace, room):
            self._leave_room(sid, namespace, room)

    async def close_room(self, room, namespace):
        namespace = namespace or "/"
        for sid, _ in list(self.get_participants(namespace, room)):
            self._base_leave(sid, namespace, room)
        self._rooms_call("del_sockets", namespace, [room], [room])

    async def can_disconnect(self, sid, namespace):
        namespace = namespace or "/"
        if self._is_local(sid, namespace):
            return self.is_connected(sid, namespace)
        self._disconnect_call(namespace, [sid], False)
        return False

    async def disconnect(self, sid, namespace, **kwargs):
        namespace = namespace or "/"
        if kwargs.get("ignore_queue") or self._is_local(sid, namespace):
            self._local_disconnect(sid, namespace)
        else:
            self._disconnect_call(namespace, [sid], False)

    async def emit(self, event, data, namespace=None, room=None, skip_sid=None, callback=None, **kwargs):
        namespace = namespace or "/"
        rooms = _as_list(room)
        skips = _as_list(skip_sid)
        to_one_local = len(rooms) == 1 and self._is_local(rooms[0], namespace)
        if not kwargs.get("ignore_queue") and not to_one_local:
            self._broadcast_call(event, data, namespace, rooms, skips, callback)
        await self._emit_local(event, data, namespace, rooms, skips, callback)

    async def _emit_local(self, event, data, namespace, rooms, skips, callback):
        if namespace not in self.rooms:
            return
        if len(rooms) <= 1:
            room = rooms[0] if rooms else None
            if room in self.rooms[namespace]:
                await super().emit(event, data, namespace, room=room, skip_sid=skips, callback=callback)
            return
        # Several rooms: each socket once (python-socketio 5.7.2 cannot take a list here).
        for sid in self._select(namespace, rooms, skips):
            await super().emit(event, data, namespace, room=sid, callback=callback)

    def _select(self, namespace, rooms, except_rooms):
        """Local sockets in any of `rooms` (all when empty), none of `except_rooms`."""
        members = self.rooms.get(namespace)
        if not members:
            return []
        excluded = set()
        for room in except_rooms:
            excluded.update(members.get(room, {}).keys())
        selected = {}
        for room in rooms or [None]:
            for sid in members.get(room, {}).keys():
                if sid not in excluded:
                    selected[sid] = True
        return list(selected)

    # ------------------------------------------- this server's cluster calls

    def _options(self, rooms, except_rooms):
        # socket.io's "no rooms" means every socket: PROTOCOL.md's Broadcast flag.
        return pb.BroadcastOptions(rooms=rooms, exclude_sid=True, **{"except": except_rooms})

    def _packet(self, namespace, event, data):
        kind, encoded, attachments = codec.encode_value([event] + _arguments(data))
        return pb.Packet(
            namespace=namespace,
            type=PACKET_BINARY_EVENT if attachments else PACKET_EVENT,
            data=pb.Value(kind=kind, data=encoded, attachments=attachments),
        )

    def _call_timeout(self, timeout=None):
        return (timeout if timeout is not None else self.requests_timeout) * 2 + 5

    def _broadcast_call(self, event, data, namespace, rooms, skips, callback):
        session = self._use(namespace)
        request = pb.BroadcastRequest(packet=self._packet(namespace, event, data), opts=self._options(rooms, skips))
        if callback is None:
            session.send("broadcast", request)
            return
        request.ack_timeout_ms = int(self.requests_timeout * 1000)

        def on_event(ack_event):
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
            result = callback(*args)
            if inspect.isawaitable(result):
                self._spawn(result)

        future = session.call("broadcast_with_ack", request, self._call_timeout(), on_event)
        future.add_done_callback(lambda f: f.cancelled() or f.exception() is None or self._report(f.exception()))

    def _rooms_call(self, kind, namespace, rooms, new_rooms):
        request = pb.RoomsRequest(namespace=namespace, opts=self._options(rooms, []), rooms=new_rooms)
        self._use(namespace).send(kind, request)

    def _disconnect_call(self, namespace, rooms, close):
        request = pb.DisconnectRequest(namespace=namespace, opts=self._options(rooms, []), close=close)
        self._use(namespace).send("disconnect_sockets", request)

    # ----------------------------------------- extras python-socketio lacks

    async def server_count(self, namespace=None):
        """How many socket.io servers use `namespace` in the whole cluster."""
        namespace = namespace or "/"
        reply = await self._use(namespace).call(
            "server_count", pb.ServerCountRequest(namespace=namespace), self._call_timeout()
        )
        return max(1, reply.count)

    async def all_rooms(self, namespace=None):
        """Every room of `namespace` on every server (socket ids included)."""
        namespace = namespace or "/"
        reply = await self._use(namespace).call(
            "all_rooms", pb.QueryRequest(namespace=namespace, opts=self._options([], [])), self._call_timeout()
        )
        rooms = {room for room in self.rooms.get(namespace, {}) if room is not None}
        rooms.update(reply.rooms)
        if reply.missing.nodes or reply.missing.local_servers:
            raise errors.PartialResultError(
                f"timeout reached: no answer from {', '.join(_missing_names(reply.missing))}",
                rooms,
                _missing_dict(reply.missing),
            )
        return rooms

    async def fetch_sockets(self, room=None, namespace=None, skip=None, local=False, timeout=None):
        """The sockets in `room` (a room, a sid, a list of them, or None for
        all) and in no room of `skip`, on every server of the cluster
        (socket.io's fetchSockets). Only this server's with local=True."""
        namespace = namespace or "/"
        rooms, excepts = _as_list(room), _as_list(skip)
        mine = []
        for sid in self._select(namespace, rooms, excepts):
            mine.append(
                RemoteSocket(
                    self,
                    sid,
                    self.node_uid,
                    namespace,
                    self.get_rooms(sid, namespace),
                    self._handshake(sid, namespace),
                    await self._socket_data(sid, namespace),
                    True,
                )
            )
        if local:
            return mine
        reply = await self._use(namespace).call(
            "fetch_sockets",
            pb.QueryRequest(namespace=namespace, opts=self._options(rooms, excepts)),
            self._call_timeout(timeout),
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
            raise errors.PartialResultError(
                f"timeout reached: no answer from {', '.join(_missing_names(reply.missing))}",
                every,
                _missing_dict(reply.missing),
            )
        return every

    async def server_side_emit(self, event, data=None, namespace=None):
        """An event for every other server of the cluster (socket.io's
        serverSideEmit); they receive it through on_server_side()."""
        namespace = namespace or "/"
        payload = codec.encode_payload([event] + _arguments(data))
        self._use(namespace).send(
            "server_side_emit", pb.ServerSideEmitRequest(namespace=namespace, payload=payload, wants_ack=False)
        )

    async def server_side_emit_with_ack(self, event, data=None, namespace=None, timeout=None):
        """Like server_side_emit, and returns one answer per other server
        (socket.io's serverSideEmitWithAck). Raises PartialResultError, with
        the answers that came, when some servers did not answer in time."""
        namespace = namespace or "/"
        timeout = self.requests_timeout if timeout is None else timeout
        payload = codec.encode_payload([event] + _arguments(data))
        reply = await self._use(namespace).call(
            "server_side_emit",
            pb.ServerSideEmitRequest(
                namespace=namespace, payload=payload, wants_ack=True, timeout_ms=int(timeout * 1000)
            ),
            self._call_timeout(timeout),
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
                f"timeout reached: only {len(responses)} responses received out of {reply.expected}",
                responses,
                _missing_dict(reply.missing),
                expected=reply.expected,
            )
        return responses

    def on_server_side(self, event, handler=None, namespace=None):
        """Registers the handler of server-side emits of `event` from other
        servers; it receives the event's arguments and what it returns (or its
        coroutine returns) is the answer to server_side_emit_with_ack and
        serverSideEmitWithAck. Usable as a decorator."""
        namespace = namespace or "/"

        def register(function):
            self._server_handlers[(namespace, event)] = function
            self.add_namespace(namespace)
            return function

        return register if handler is None else register(handler)


logger_ = logger
