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
import urllib.parse

import socketio
from socketio import base_manager

from . import codec, errors
from ._proto import bridge_pb2 as pb
from .connection import Connection

logger = logging.getLogger("siobridge_socketio")

# python-socketio 5.7.2 calls enter_room/leave_room/connect synchronously;
# later 5.x versions await them. The manager follows what the installed
# version expects.
_ASYNC_ROOMS = inspect.iscoroutinefunction(socketio.AsyncManager.enter_room)
_ASYNC_CONNECT = inspect.iscoroutinefunction(socketio.AsyncManager.connect)
_Base = base_manager.BaseManager

PACKET_EVENT = 2
PACKET_BINARY_EVENT = 5
_NODE_TIME_FORMAT = "%a %b %d %Y %H:%M:%S GMT%z"


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


class RemoteSocket:
    """A socket somewhere in the cluster, as fetch_sockets returns it
    (socket.io's RemoteSocket). `handshake` and `data` are JSON values; `data`
    is the socket's session on a Python server and `socket.data` on a Node
    server; sockets of socketioxide servers come without them."""

    def __init__(self, manager, id, server_id, namespace, rooms, handshake, data, local):
        self._manager = manager
        self.id = id
        self.server_id = server_id
        self.namespace = namespace
        self.rooms = set(rooms)
        self.handshake = handshake
        self.data = data
        self.local = local

    def __repr__(self):
        return f"RemoteSocket(id={self.id!r}, namespace={self.namespace!r}, rooms={sorted(self.rooms)!r})"

    async def emit(self, event, data=None, callback=None):
        await self._manager.emit(event, data, self.namespace, room=self.id, callback=callback)

    async def enter_room(self, room):
        await self._manager._maybe_await(self._manager.enter_room(self.id, self.namespace, room))

    async def leave_room(self, room):
        await self._manager._maybe_await(self._manager.leave_room(self.id, self.namespace, room))

    async def disconnect(self):
        await self._manager.server.disconnect(self.id, namespace=self.namespace)


class _AckWaiter:
    """One socket's acknowledgement for a broadcast-with-ack Command."""

    def __init__(self, manager, command_id, generation, namespace, sid):
        self.manager = manager
        self.command_id = command_id
        self.generation = generation
        self.namespace = namespace
        self.sid = sid
        self.timer = None
        self.done = False

    def callback(self, *args):
        # python-socketio calls it with the client's ack arguments.
        if self._finish():
            try:
                kind, data, attachments = codec.encode_value(args)
            except codec.EncodeError as error:
                self.manager._answer_ack(self, error=pb.ACK_ERROR_DECODE, message=str(error))
                return
            self.manager._answer_ack(self, value=pb.Value(kind=kind, data=data, attachments=attachments))

    def expire(self):
        self.timer = None
        callbacks = self.manager.callbacks.get(self.sid, {})
        for ack_id, callback in list(callbacks.items()):
            if ack_id != 0 and getattr(callback, "__self__", None) is self:
                del callbacks[ack_id]
        if self._finish():
            self.manager._answer_ack(self, error=pb.ACK_ERROR_TIMEOUT)

    def closed(self):
        if self._finish():
            self.manager._answer_ack(self, error=pb.ACK_ERROR_SOCKET_CLOSED)

    def _finish(self):
        if self.done:
            return False
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.manager._acks.get((self.namespace, self.sid), set()).discard(self)
        return True


class AsyncSiobridgeManager(socketio.AsyncManager):
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

    # ------------------------------------------- work other servers ask of us

    def on_attached(self, node_uid):
        pass

    def on_command(self, command, generation):
        """A Command from the daemon: applied in arrival order by _work()."""
        self._commands.put_nowait((command, generation))

    async def _work(self):
        while True:
            command, generation = await self._commands.get()
            try:
                await self._apply(command, generation)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # Work another server sent that this server cannot read (e.g.
                # data from a server with another socket.io parser): skipped and
                # reported, never thrown into the app.
                kind = command.WhichOneof("kind")
                self._report(
                    errors.SiobridgeError(
                        f"skipped a {kind} command in {command.namespace}: {error}", errors.INVALID_ARGUMENT
                    )
                )
                self._answer_empty(command, generation)

    def _reply(self, generation, command_id, **fields):
        self._session.reply(generation, pb.Reply(command_id=command_id, **fields))

    def _answer_empty(self, command, generation):
        # Whatever went wrong, the asking server must not wait for a timeout.
        if command.id == 0:
            return
        kind = command.WhichOneof("kind")
        if kind == "all_rooms":
            self._reply(generation, command.id, rooms=pb.RoomList())
        elif kind == "fetch_sockets":
            self._reply(generation, command.id, sockets=pb.SocketList())
        elif kind == "broadcast_with_ack":
            self._reply(generation, command.id, ack_count=0)
        elif kind == "server_side_emit":
            self._reply(generation, command.id, emit_reply=codec.encode_payload([None]))

    def _targets(self, namespace, opts):
        # PROTOCOL.md section 3: how options select sockets.
        rooms = list(opts.rooms)
        excepts = list(getattr(opts, "except"))
        sid = opts.sid if opts.HasField("sid") else ""
        if sid:
            if opts.exclude_sid:
                excepts.append(sid)
            elif not rooms:
                rooms = [sid]
        elif not rooms and not opts.exclude_sid:
            return None
        return rooms, excepts

    async def _apply(self, command, generation):
        namespace = command.namespace
        kind = command.WhichOneof("kind")
        if namespace not in self._session.namespaces and kind not in ("server_side_emit",):
            self._answer_empty(command, generation)
            return
        selection = self._targets(namespace, command.opts)
        sids = self._select(namespace, *selection) if selection else []
        if kind == "broadcast":
            if sids:
                await self._deliver(namespace, selection, sids, command.broadcast)
        elif kind == "broadcast_with_ack":
            await self._broadcast_with_ack(command, generation, sids)
        elif kind in ("add_sockets", "del_sockets"):
            change = self._base_enter if kind == "add_sockets" else self._base_leave
            for sid in sids:
                for room in getattr(command, kind).rooms:
                    if room and self._is_local(sid, namespace):
                        change(sid, namespace, room)
        elif kind == "disconnect_sockets":
            for sid in sids:
                if command.disconnect_sockets.close:
                    await self._close_connection(sid, namespace)
                else:
                    await self.server.disconnect(sid, namespace=namespace, ignore_queue=True)
        elif kind == "fetch_sockets":
            sockets = pb.SocketList()
            for sid in sids:
                sockets.sockets.add(
                    id=sid,
                    rooms=self.get_rooms(sid, namespace),
                    handshake=codec.encode_detail(self._handshake(sid, namespace)),
                    data=codec.encode_detail(await self._socket_data(sid, namespace)),
                )
            self._reply(generation, command.id, sockets=sockets)
        elif kind == "all_rooms":
            rooms = [room for room in self.rooms.get(namespace, {}) if room is not None]
            self._reply(generation, command.id, rooms=pb.RoomList(rooms=rooms))
        elif kind == "server_side_emit":
            self._server_side(command, generation)
        # Kinds added by later API versions: nothing to do, and nothing expected.

    async def _deliver(self, namespace, selection, sids, packet):
        args = codec.decode_value(packet.data.kind, packet.data.data, packet.data.attachments)
        if not args:
            raise ValueError("an event without a name")
        event, data = args[0], tuple(args[1:])
        rooms, excepts = selection
        if len(rooms) <= 1:
            # One encoding for every recipient; except rooms become their members.
            room = rooms[0] if rooms else None
            chosen = set(sids)
            skip = [sid for sid in self.rooms[namespace].get(room, {}).keys() if sid not in chosen]
            await super().emit(event, data, namespace, room=room, skip_sid=skip)
        else:
            for sid in sids:
                await super().emit(event, data, namespace, room=sid)

    async def _broadcast_with_ack(self, command, generation, sids):
        namespace = command.namespace
        body = command.broadcast_with_ack
        args = codec.decode_value(body.packet.data.kind, body.packet.data.data, body.packet.data.attachments)
        if not args:
            raise ValueError("an event without a name")
        self._reply(generation, command.id, ack_count=len(sids))
        timeout = (body.ack_timeout_ms / 1000) if body.ack_timeout_ms else self.requests_timeout
        loop = asyncio.get_running_loop()
        # Every waiter exists before the first send: a socket that goes while
        # the others are sent to is answered "closed", not left to time out.
        waiters = []
        for sid in sids:
            waiter = _AckWaiter(self, command.id, generation, namespace, sid)
            self._acks.setdefault((namespace, sid), set()).add(waiter)
            waiter.timer = loop.call_later(timeout, waiter.expire)
            waiters.append(waiter)
        for waiter in waiters:
            if not waiter.done:
                await super().emit(args[0], tuple(args[1:]), namespace, room=waiter.sid, callback=waiter.callback)

    def _answer_ack(self, waiter, value=None, error=None, message=""):
        if self._session is None:
            return
        if value is not None:
            ack = pb.Ack(sid=waiter.sid, value=value)
        else:
            ack = pb.Ack(sid=waiter.sid, error=error, error_message=message)
        self._reply(waiter.generation, waiter.command_id, ack=ack)

    async def _close_connection(self, sid, namespace):
        # socket.io's disconnect(true): every namespace of the connection is
        # told, then the connection closes.
        eio_sid = self.eio_sid_from_sid(sid, namespace)
        if eio_sid is None:
            return
        for name in list(self.rooms):
            other = self.sid_from_eio_sid(eio_sid, name)
            if other is not None:
                await self.server.disconnect(other, namespace=name, ignore_queue=True)
        await self.server.eio.disconnect(eio_sid)

    def _server_side(self, command, generation):
        body = command.server_side_emit
        args = codec.decode_payload(body.payload)
        if not args:
            raise ValueError("a server-side emit without an event name")
        handler = self._server_handlers.get((command.namespace, args[0]))

        async def run():
            answer = None
            if handler is not None:
                try:
                    answer = handler(*args[1:])
                    if inspect.isawaitable(answer):
                        answer = await answer
                except Exception as error:
                    answer = None
                    self._report(
                        errors.SiobridgeError(f"server-side handler of {args[0]!r} failed: {error}", errors.UNKNOWN)
                    )
            if body.wants_ack and command.id:
                try:
                    payload = codec.encode_payload([answer])
                except codec.EncodeError as error:
                    self._report(errors.SiobridgeError(f"server-side answer to {args[0]!r}: {error}", errors.INVALID_ARGUMENT))
                    payload = codec.encode_payload([None])
                self._reply(generation, command.id, emit_reply=payload)

        # Handlers run beside the command stream (they may take long); without
        # one, an asking server gets null at once rather than a timeout.
        self._spawn(run())

    # ---------------------------------------------------- socket details

    def _handshake(self, sid, namespace):
        """socket.io's handshake object for a local socket, from its environ."""
        eio_sid = self.eio_sid_from_sid(sid, namespace)
        environ = (self.server.environ.get(eio_sid) if self.server is not None else None) or {}
        headers = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                headers[key[5:].replace("_", "-").lower()] = value
        for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
            if key in environ:
                headers[name] = environ[key]
        query_string = environ.get("QUERY_STRING", "")
        query = {}
        for key, values in urllib.parse.parse_qs(query_string, keep_blank_values=True).items():
            query[key] = values[0] if len(values) == 1 else values
        address = environ.get("REMOTE_ADDR")
        request = environ.get("aiohttp.request")
        if request is not None and getattr(request, "remote", None):
            address = request.remote
        auth, issued = self._auth.get((namespace, sid), (None, int(time.time() * 1000)))
        url = environ.get("RAW_URI") or environ.get("PATH_INFO", "") + ("?" + query_string if query_string else "")
        return {
            "headers": headers,
            "time": time.strftime(_NODE_TIME_FORMAT, time.localtime(issued / 1000)),
            "address": address,
            "xdomain": "HTTP_ORIGIN" in environ,
            "secure": environ.get("wsgi.url_scheme") == "https",
            "issued": issued,
            "url": url,
            "query": query,
            "auth": auth if auth is not None else {},
        }

    async def _socket_data(self, sid, namespace):
        """A local socket's session: what Node keeps in socket.data."""
        try:
            return dict(await self.server.get_session(sid, namespace=namespace))
        except (KeyError, TypeError):
            return {}


logger_ = logger
