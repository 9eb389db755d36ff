"""The work other servers of the cluster ask of this server's sockets: the
daemon's Commands, applied in arrival order through the manager's in-memory
rooms and answered on the Attach stream. A part of AsyncSiobridgeManager
(a mixin that relies on its attributes), kept apart for size.

Thread-safety: none. Runs on the server's asyncio event loop.
"""

import asyncio
import inspect

from . import codec, errors
from ._proto import bridge_pb2 as pb


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


class ClusterWork:
    """Applies the daemon's Commands; mixed into AsyncSiobridgeManager before
    socketio.AsyncManager, so super() here is python-socketio's local manager."""

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
