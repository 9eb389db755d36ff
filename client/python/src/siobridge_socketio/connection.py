"""One gRPC channel and one Attach stream per event loop and daemon address,
shared by every socket.io server (client manager) of the process. Each server
attaches as its own server ("session") on that stream: the daemon never sends
a server its own work, but does send it the work of the process's other
servers.

Calls go on the stream, so the daemon applies them in the order they were
made. While the daemon is away (restart), calls wait in a bounded queue and the
stream reattaches with backoff, restoring every session's namespaces.

Every message from the daemon goes through Connection._dispatch: the one place
to extend when the API grows.

Thread-safety: none. A Connection and its Sessions belong to one asyncio event
loop and are used from that loop only.
"""

import asyncio
import collections
import logging

import grpc
from grpc import aio

from . import errors
from ._proto import bridge_pb2 as pb
from ._proto import bridge_pb2_grpc as pb_grpc

logger = logging.getLogger("siobridge_socketio")

_END = object()  # ends the request iterator of a stream


def target_of(address):
    """A gRPC target for "unix:/path", "/path" or "host:port"."""
    return "unix:" + address if address.startswith("/") else address


class _Pending:
    """A call waiting for its Result."""

    __slots__ = ("kind", "future", "on_event", "timer")

    def __init__(self, kind, future, on_event):
        self.kind = kind
        self.future = future
        self.on_event = on_event
        self.timer = None

    def settle(self, result=None, error=None):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.future.done():
            return
        if error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(result)


# What each Hello asks of the daemon (Hello.features): Commands several to a
# message, as CommandBatch, when they queue behind a write.
FEATURES = ("command_batch",)


class Session:
    """One attached server: its attachment, namespaces and waiting calls."""

    def __init__(self, connection, client_ref, name, sink):
        self.connection = connection
        self.client_ref = client_ref
        self.name = name
        # sink.on_command(command, generation) and sink.on_attached(node_uid)
        self.sink = sink
        self.attachment_id = None
        self.node_uid = None
        # Which stream the attachment belongs to: answers to commands of an
        # earlier stream are dropped, their ids mean nothing to the new one.
        self.generation = 0
        self.namespaces = []
        self.queue = collections.deque()
        self.attached = asyncio.Event()
        # The position of the last command applied that came through MongoDB
        # (docs/PROTOCOL.md section 16). After a daemon restart the daemon
        # delivers again what it may not have delivered before it died; what
        # this server already applied is skipped.
        self.last_position = ""
        self.repeats_skipped = 0
        # Whether the daemon sends this server CommandBatches (its Welcome
        # accepted "command_batch").
        self.reads_batches = False

    def join_namespace(self, namespace):
        if namespace in self.namespaces:
            return
        self.namespaces.append(namespace)
        if self.attachment_id:
            self.connection.write(
                pb.ServerMessage(
                    join_namespace=pb.NamespaceChange(namespace=namespace, attachment_id=self.attachment_id)
                )
            )

    def leave_namespace(self, namespace):
        if namespace not in self.namespaces:
            return
        self.namespaces.remove(namespace)
        if self.attachment_id:
            self.connection.write(
                pb.ServerMessage(
                    leave_namespace=pb.NamespaceChange(namespace=namespace, attachment_id=self.attachment_id)
                )
            )

    def reply(self, generation, reply):
        """Answers a Command; dropped when the stream it came on is gone."""
        if not self.attachment_id or generation != self.generation:
            return
        reply.attachment_id = self.attachment_id
        self.connection.write(pb.ServerMessage(reply=reply))

    def call(self, kind, request, timeout, on_event=None):
        """A call that answers: a Future of its Result's reply (None for an
        OperationReply), failing with SiobridgeError or after `timeout` s."""
        loop = asyncio.get_running_loop()
        pending = _Pending(kind, loop.create_future(), on_event)

        def expire():
            pending.timer = None
            self.connection.forget(pending)
            pending.settle(
                error=errors.SiobridgeError(
                    f"siobridged did not answer {kind} within {int(timeout * 1000)} ms", errors.DEADLINE_EXCEEDED
                )
            )

        # The deadline covers the time a call waits for the daemon too.
        pending.timer = loop.call_later(timeout, expire)
        self.connection.send(self, kind, request, True, pending)
        return pending.future

    def send(self, kind, request):
        """A call that answers only when it fails (reported through on_error)."""
        self.connection.send(self, kind, request, False, None)

    def close(self):
        """Detaches; returns the connection's shutdown task when it was the last session."""
        return self.connection.unregister(self)


class Connection:
    """The Attach stream of one event loop to one daemon address."""

    _shared = {}

    @classmethod
    def get(cls, address, **options):
        loop = asyncio.get_running_loop()
        key = (address, loop)
        connection = cls._shared.get(key)
        if connection is None or connection.closed:
            connection = cls(address, loop, **options)
            cls._shared[key] = connection
        return connection

    def __init__(self, address, loop, reconnect_min, reconnect_max, max_queued_calls, on_error):
        self.address = address
        self.loop = loop
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.max_queued_calls = max_queued_calls
        self.on_error = on_error
        self.closed = False
        self.sessions = {}
        self.by_attachment = {}
        self.pending = {}
        self.generation = 0
        # CommandBatch messages received (several Commands in one message).
        self.command_batches = 0
        self._next_ref = 1
        self._next_session = 1
        self._delay = reconnect_min
        self._outgoing = None
        self._streaming = False  # the daemon answered on the current stream
        self._channel = aio.insecure_channel(
            target_of(address),
            options=[
                ("grpc.max_receive_message_length", 64 << 20),
                ("grpc.max_send_message_length", 64 << 20),
                ("grpc.initial_reconnect_backoff_ms", int(reconnect_min * 1000)),
                ("grpc.min_reconnect_backoff_ms", int(reconnect_min * 1000)),
                ("grpc.max_reconnect_backoff_ms", int(reconnect_max * 1000)),
            ],
        )
        self._stub = pb_grpc.BridgeStub(self._channel)
        self._task = None

    # ------------------------------------------------------------ sessions

    def register(self, name, sink):
        session = Session(self, str(self._next_session), name, sink)
        self._next_session += 1
        self.sessions[session.client_ref] = session
        if self._outgoing is not None:
            self._hello(session)
        if self._task is None:
            self._task = self.loop.create_task(self._run())
        return session

    def unregister(self, session):
        if self.sessions.pop(session.client_ref, None) is None:
            return None
        if session.attachment_id:
            self.write(pb.ServerMessage(detach=pb.Detach(attachment_id=session.attachment_id)))
            self.by_attachment.pop(session.attachment_id, None)
        session.attachment_id = None
        session.attached.clear()
        closed = errors.SiobridgeError("the client manager was closed", errors.CANCELLED)
        while session.queue:
            _, _, _, pending = session.queue.popleft()
            if pending is not None:
                pending.settle(error=closed)
        if not self.sessions:
            self.closed = True
            return self.loop.create_task(self._shutdown())
        self._flush()  # the others may have waited for this one
        return None

    async def _shutdown(self):
        task = self._task
        if task is not None and self._streaming:
            # Let the Detach go out and the daemon end the stream.
            self._outgoing.put_nowait(_END)
            try:
                await asyncio.wait_for(asyncio.shield(task), 2)
            except (asyncio.TimeoutError, asyncio.CancelledError, Exception):
                pass
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        await self._channel.close()
        if Connection._shared.get((self.address, self.loop)) is self:
            del Connection._shared[(self.address, self.loop)]

    # --------------------------------------------------------------- calls

    def write(self, message):
        if self._outgoing is not None:
            self._outgoing.put_nowait(message)

    def send(self, session, kind, request, want_result, pending):
        # Behind the calls still waiting, if any: calls go out in order.
        if session.attachment_id and self._outgoing is not None and not session.queue:
            self._transmit(session, kind, request, want_result, pending)
            return
        if len(session.queue) >= self.max_queued_calls:
            error = errors.SiobridgeError(
                f"siobridged is unreachable at {self.address}: {len(session.queue)} calls are waiting",
                errors.UNAVAILABLE,
            )
            if pending is not None:
                pending.settle(error=error)
            else:
                self._report(error, session)
            return
        session.queue.append((kind, request, want_result, pending))

    def forget(self, pending):
        for ref, candidate in list(self.pending.items()):
            if candidate is pending:
                del self.pending[ref]

    def _report(self, error, session=None):
        """An error goes to the manager of the session it concerns, one of the
        stream itself to every manager on it (each passed its own on_error;
        the connection's is the first manager's)."""
        targets = [session] if session is not None else list(self.sessions.values())
        reported = False
        for target in targets:
            report = getattr(target.sink, "on_connection_error", None)
            if report is not None:
                report(error)
                reported = True
        if not reported:
            self.on_error(error)

    def _session_of_ref(self, ref):
        return self.sessions.get(str(ref >> 32))

    def _transmit(self, session, kind, request, want_result, pending):
        # The session's number in the high half: a failure of a call nobody
        # waits for is reported to the manager that made it.
        ref = (int(session.client_ref) << 32) | (self._next_ref & 0xFFFFFFFF)
        self._next_ref += 1
        if pending is not None:
            if pending.future.done():  # timed out while queued
                return
            self.pending[ref] = pending
        call = pb.Call(ref=ref, attachment_id=session.attachment_id, want_result=want_result)
        getattr(call, kind).CopyFrom(request)
        self.write(pb.ServerMessage(call=call))

    # -------------------------------------------------------------- stream

    def _hello(self, session):
        # The namespaces follow the Welcome one by one: a namespace the daemon
        # refuses then fails alone (NamespaceError) instead of the whole Hello.
        self.write(
            pb.ServerMessage(hello=pb.Hello(name=session.name, client_ref=session.client_ref, features=FEATURES))
        )

    async def _requests(self, queue):
        while True:
            message = await queue.get()
            if message is _END:
                return
            yield message

    async def _run(self):
        while not self.closed and self.sessions:
            queue = asyncio.Queue()
            self._outgoing = queue
            self.generation += 1
            for session in self.sessions.values():
                self._hello(session)
            # Wait for the daemon rather than fail while it is (re)starting.
            call = self._stub.Attach(self._requests(queue), wait_for_ready=True)
            try:
                async for message in call:
                    self._streaming = True
                    self._dispatch(message)
            except asyncio.CancelledError:
                call.cancel()
                raise
            except grpc.RpcError as error:
                if not self.closed:
                    details = error.details() if hasattr(error, "details") else str(error)
                    code = error.code().value[0] if hasattr(error, "code") else errors.UNAVAILABLE
                    self._report(errors.SiobridgeError(f"siobridged stream: {details}", code))
            finally:
                self._outgoing = None
                self._streaming = False
                queue.put_nowait(_END)
                self._lost()
            if self.closed or not self.sessions:
                return
            await asyncio.sleep(self._delay)
            self._delay = min(self.reconnect_max, self._delay * 2)

    def _lost(self):
        self.by_attachment.clear()
        for session in self.sessions.values():
            session.attachment_id = None
            session.attached.clear()
        # Calls already sent may or may not have been applied: they fail now,
        # rather than at their timeout.
        lost = errors.SiobridgeError("the connection to siobridged was lost", errors.UNAVAILABLE)
        pending, self.pending = self.pending, {}
        for call in pending.values():
            call.settle(error=lost)

    def _dispatch(self, message):
        kind = message.WhichOneof("kind")
        if kind == "welcome":
            self._on_welcome(message.welcome)
        elif kind == "command":
            self._on_command(message.command)
        elif kind == "command_batch":
            # Exactly as that many single Commands, in order.
            self.command_batches += 1
            for command in message.command_batch.commands:
                self._on_command(command)
        elif kind == "result":
            self._on_result(message.result)
        elif kind == "namespace_error":
            error = message.namespace_error
            # Not asked again at the next attach.
            session = self.by_attachment.get(error.attachment_id)
            if session is not None and error.namespace in session.namespaces:
                session.namespaces.remove(error.namespace)
            # The daemon's status code; daemons that sent none refused for a
            # precondition, as the Node adapter reports it.
            code = error.status_code or errors.FAILED_PRECONDITION
            self._report(errors.SiobridgeError(f"namespace {error.namespace}: {error.message}", code), session)
        # Kinds added by later API versions are ignored.

    def _on_command(self, command):
        session = self.by_attachment.get(command.attachment_id)
        if session is None:
            return
        if command.position:
            # Positions are fixed-width hex: text order is delivery order.
            if command.position <= session.last_position:
                session.repeats_skipped += 1
                return
            session.last_position = command.position
        session.sink.on_command(command, session.generation)

    def _on_welcome(self, welcome):
        session = self.sessions.get(welcome.client_ref)
        if session is None:
            return
        session.attachment_id = welcome.attachment_id
        session.node_uid = welcome.node_uid
        session.generation = self.generation
        session.reads_batches = "command_batch" in welcome.features
        self.by_attachment[welcome.attachment_id] = session
        self._delay = self.reconnect_min
        # The session's namespaces, before the calls that were waiting for the
        # attachment (joining twice is a no-op).
        for namespace in session.namespaces:
            self.write(
                pb.ServerMessage(
                    join_namespace=pb.NamespaceChange(namespace=namespace, attachment_id=welcome.attachment_id)
                )
            )
        session.attached.set()
        session.sink.on_attached(welcome.node_uid)
        self._flush()

    def _flush(self):
        # The calls that waited go out once every server of the stream is back
        # in its namespaces: after a restart, the process's servers hear each
        # other's queued work as they would have before it.
        if self._outgoing is None or not all(s.attachment_id for s in self.sessions.values()):
            return
        for session in self.sessions.values():
            while session.queue:
                self._transmit(session, *session.queue.popleft())

    def _on_result(self, result):
        pending = self.pending.get(result.ref)
        if result.status_code != 0:
            error = errors.SiobridgeError(result.status_message, result.status_code)
            if pending is not None:
                del self.pending[result.ref]
                pending.settle(error=error)
            else:
                self._report(error, self._session_of_ref(result.ref))
            return
        if pending is None:
            return
        kind = result.WhichOneof("kind")
        if kind == "ack_event":
            if pending.on_event is not None:
                try:
                    pending.on_event(result.ack_event)
                except Exception as error:  # an application callback failed
                    self._report(error, self._session_of_ref(result.ref))
            if result.ack_event.WhichOneof("kind") != "done":
                return
        del self.pending[result.ref]
        pending.settle(result=getattr(result, kind) if kind else None)
