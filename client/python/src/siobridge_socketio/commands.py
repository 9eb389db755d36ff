"""The work other servers of the cluster ask of this server's sockets: the
daemon's Commands, applied in arrival order through the manager's in-memory
rooms and answered on the Attach stream. A part of the managers (a mixin that
relies on their attributes), kept apart for size; written once for both
flavours as steps (see steps.py).

Thread-safety: Commands are applied by one worker (a task or a thread); ack
callbacks and timers may come from other threads under socketio.Server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple

from . import codec, errors
from ._proto import bridge_pb2 as pb
from .steps import Steps

if TYPE_CHECKING:
    from .manager_core import ManagerCore


class _AckWaiter:
    """One socket's acknowledgement for a broadcast-with-ack Command."""

    def __init__(self, manager: "ManagerCore", command_id: int, generation: int, namespace: str, sid: str):
        self.manager = manager
        self.command_id = command_id
        self.generation = generation
        self.namespace = namespace
        self.sid = sid
        self.timer: Any = None
        self.done = False

    def callback(self, *args: Any) -> None:
        # python-socketio calls it with the client's ack arguments.
        if self._finish():
            try:
                kind, data, attachments = codec.encode_value(args)
            except codec.EncodeError as error:
                self.manager._answer_ack(self, error=pb.ACK_ERROR_DECODE, message=str(error))
                return
            self.manager._answer_ack(self, value=pb.Value(kind=kind, data=data, attachments=attachments))

    def expire(self) -> None:
        self.timer = None
        callbacks = self.manager.callbacks.get(self.sid, {})
        for ack_id, callback in list(callbacks.items()):
            if ack_id != 0 and getattr(callback, "__self__", None) is self:
                del callbacks[ack_id]
        if self._finish():
            self.manager._answer_ack(self, error=pb.ACK_ERROR_TIMEOUT)

    def closed(self) -> None:
        if self._finish():
            self.manager._answer_ack(self, error=pb.ACK_ERROR_SOCKET_CLOSED)

    def _finish(self) -> bool:
        if self.done:
            return False
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.manager._acks.get((self.namespace, self.sid), set()).discard(self)
        return True


class ClusterWork:
    """Applies the daemon's Commands; mixed into the managers before
    python-socketio's local manager."""

    if TYPE_CHECKING:
        _session: Any
        _acks: Dict[Tuple[str, str], Set[_AckWaiter]]
        _server_handlers: Dict[Tuple[str, str], Callable[..., Any]]
        requests_timeout: float
        rooms: Dict[str, Dict[Any, Any]]
        server: Any
        callbacks: Dict[str, Dict[int, Any]]

        def _report(self, error: BaseException) -> None: ...
        def _select(self, namespace: str, rooms: List[str], except_rooms: List[str]) -> List[str]: ...
        def _is_local(self, sid: str, namespace: str) -> bool: ...
        def _base_enter(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None: ...
        def _base_leave(self, sid: str, namespace: str, room: Any) -> None: ...
        def _base_emit(self, event: str, data: Any, namespace: str, **kwargs: Any) -> Any: ...
        def _spawn(self, steps: "Steps[Any]") -> None: ...
        def _call_later(self, delay: float, function: Callable[[], None]) -> Any: ...
        def _handshake(self, sid: str, namespace: str) -> Dict[str, Any]: ...
        def _socket_data_steps(self, sid: str, namespace: str) -> "Steps[Dict[str, Any]]": ...
        def get_rooms(self, sid: str, namespace: str) -> List[Any]: ...
        def eio_sid_from_sid(self, sid: str, namespace: str) -> Any: ...
        def sid_from_eio_sid(self, eio_sid: Any, namespace: str) -> Any: ...

    def on_attached(self, node_uid: str) -> None:
        pass

    def _command_steps(self, command: Any, generation: int) -> "Steps[None]":
        """One Command, whatever goes wrong in it reported and answered."""
        try:
            yield from self._apply(command, generation)
        except Exception as error:
            # Work another server sent that this server cannot read (e.g.
            # data from a server with another socket.io parser): skipped and
            # reported, never thrown into the app.
            kind = command.WhichOneof("kind")
            self._report(
                errors.SiobridgeError(f"skipped a {kind} command in {command.namespace}: {error}", errors.INVALID_ARGUMENT)
            )
            self._answer_empty(command, generation)

    def _reply(self, generation: int, command_id: int, **fields: Any) -> None:
        self._session.reply(generation, pb.Reply(command_id=command_id, **fields))

    def _answer_empty(self, command: Any, generation: int) -> None:
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

    def _targets(self, namespace: str, opts: Any) -> Optional[Tuple[List[str], List[str]]]:
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

    def _apply(self, command: Any, generation: int) -> "Steps[None]":
        namespace = command.namespace
        kind = command.WhichOneof("kind")
        if namespace not in self._session.namespaces and kind not in ("server_side_emit",):
            self._answer_empty(command, generation)
            return
        selection = self._targets(namespace, command.opts)
        sids = self._select(namespace, *selection) if selection else []
        if kind == "broadcast":
            if sids and selection:
                yield from self._deliver(namespace, selection, sids, command.broadcast)
        elif kind == "broadcast_with_ack":
            yield from self._broadcast_with_ack(command, generation, sids)
        elif kind in ("add_sockets", "del_sockets"):
            for sid in sids:
                for room in getattr(command, kind).rooms:
                    if not room or not self._is_local(sid, namespace):
                        continue
                    if kind == "add_sockets":
                        self._base_enter(sid, namespace, room)
                    else:
                        self._base_leave(sid, namespace, room)
        elif kind == "disconnect_sockets":
            for sid in sids:
                if command.disconnect_sockets.close:
                    yield from self._close_connection(sid, namespace)
                else:
                    yield self.server.disconnect(sid, namespace=namespace, ignore_queue=True)
        elif kind == "fetch_sockets":
            sockets = pb.SocketList()
            for sid in sids:
                data = yield from self._socket_data_steps(sid, namespace)
                sockets.sockets.add(
                    id=sid,
                    rooms=self.get_rooms(sid, namespace),
                    handshake=codec.encode_detail(self._handshake(sid, namespace)),
                    data=codec.encode_detail(data),
                )
            self._reply(generation, command.id, sockets=sockets)
        elif kind == "all_rooms":
            rooms = [room for room in self.rooms.get(namespace, {}) if room is not None]
            self._reply(generation, command.id, rooms=pb.RoomList(rooms=rooms))
        elif kind == "server_side_emit":
            self._server_side(command, generation)
        # Kinds added by later API versions: nothing to do, and nothing expected.

    def _deliver(self, namespace: str, selection: Tuple[List[str], List[str]], sids: List[str], packet: Any) -> "Steps[None]":
        args = codec.decode_value(packet.data.kind, packet.data.data, packet.data.attachments)
        if not args:
            raise ValueError("an event without a name")
        event, data = args[0], tuple(args[1:])
        rooms, _ = selection
        if len(rooms) <= 1:
            # One encoding for every recipient; except rooms become their members.
            room = rooms[0] if rooms else None
            chosen = set(sids)
            skip = [sid for sid in self.rooms[namespace].get(room, {}).keys() if sid not in chosen]
            yield self._base_emit(event, data, namespace, room=room, skip_sid=skip)
        else:
            for sid in sids:
                yield self._base_emit(event, data, namespace, room=sid)

    def _broadcast_with_ack(self, command: Any, generation: int, sids: List[str]) -> "Steps[None]":
        namespace = command.namespace
        body = command.broadcast_with_ack
        args = codec.decode_value(body.packet.data.kind, body.packet.data.data, body.packet.data.attachments)
        if not args:
            raise ValueError("an event without a name")
        self._reply(generation, command.id, ack_count=len(sids))
        timeout = (body.ack_timeout_ms / 1000) if body.ack_timeout_ms else self.requests_timeout
        # Every waiter exists before the first send: a socket that goes while
        # the others are sent to is answered "closed", not left to time out.
        waiters = []
        for sid in sids:
            waiter = _AckWaiter(self, command.id, generation, namespace, sid)  # type: ignore[arg-type]
            self._acks.setdefault((namespace, sid), set()).add(waiter)
            waiter.timer = self._call_later(timeout, waiter.expire)
            waiters.append(waiter)
        for waiter in waiters:
            if not waiter.done:
                yield self._base_emit(args[0], tuple(args[1:]), namespace, room=waiter.sid, callback=waiter.callback)

    def _answer_ack(self, waiter: _AckWaiter, value: Any = None, error: Any = None, message: str = "") -> None:
        if self._session is None:
            return
        if value is not None:
            ack = pb.Ack(sid=waiter.sid, value=value)
        else:
            ack = pb.Ack(sid=waiter.sid, error=error, error_message=message)
        self._reply(waiter.generation, waiter.command_id, ack=ack)

    def _close_connection(self, sid: str, namespace: str) -> "Steps[None]":
        # socket.io's disconnect(true): every namespace of the connection is
        # told, then the connection closes.
        eio_sid = self.eio_sid_from_sid(sid, namespace)
        if eio_sid is None:
            return
        for name in list(self.rooms):
            other = self.sid_from_eio_sid(eio_sid, name)
            if other is not None:
                yield self.server.disconnect(other, namespace=name, ignore_queue=True)

        def close_engine() -> "Steps[None]":
            yield self.server.eio.disconnect(eio_sid)

        # Beside the command stream: engine.io waits until the client took
        # what was queued for it, which a long-polling client that is going
        # away may never do.
        self._spawn(close_engine())

    def _server_side(self, command: Any, generation: int) -> None:
        body = command.server_side_emit
        args = codec.decode_payload(body.payload)
        if not args:
            raise ValueError("a server-side emit without an event name")
        handler = self._server_handlers.get((command.namespace, args[0]))

        def run() -> "Steps[None]":
            answer = None
            if handler is not None:
                try:
                    answer = yield handler(*args[1:])
                except Exception as error:
                    answer = None
                    self._report(
                        errors.SiobridgeError(f"server-side handler of {args[0]!r} failed: {error}", errors.UNKNOWN)
                    )
            if body.wants_ack and command.id:
                try:
                    payload = codec.encode_payload([answer])
                except codec.EncodeError as error:
                    self._report(
                        errors.SiobridgeError(f"server-side answer to {args[0]!r}: {error}", errors.INVALID_ARGUMENT)
                    )
                    payload = codec.encode_payload([None])
                self._reply(generation, command.id, emit_reply=payload)

        # Handlers run beside the command stream (they may take long); without
        # one, an asking server gets null at once rather than a timeout.
        self._spawn(run())
