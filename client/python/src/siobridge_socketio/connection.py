"""One Attach stream to one daemon address, shared by every socket.io server
(client manager) of the process. Each server attaches as its own server
("session") on that stream: the daemon never sends a server its own work, but
does send it the work of the process's other servers.

Calls go on the stream, so the daemon applies them in the order they were
made. While the daemon is away (restart), calls wait in a bounded queue and the
stream reattaches with backoff, restoring every session's namespaces. A call
the daemon would refuse for its size is refused here, alone, before it is
sent: gRPC would otherwise end the whole stream with it.

Each server also numbers its calls ("confirm", docs/PROTOCOL.md section 20):
it keeps every call that answers only on failure until the daemon confirms it
settled (stored in MongoDB), and after reattaching to a restarted daemon sends
the others again with their numbers, once the daemon said which of them the
cluster already has: a daemon that dies loses none of them, and the cluster
applies none twice. Commands caused by another server's call on the same
daemon carry that call's number: one applied already is skipped.

This module is the stream's logic and holds no I/O: connection_asyncio
(grpc.aio, for socketio.AsyncServer) and connection_threads (grpc's blocking
API on a reader thread, for socketio.Server under threads or gevent) drive it.
Every message from the daemon goes through Connection.dispatch: the one place
to extend when the API grows.

Thread-safety: every entry point runs under `self.lock`, which the driver
chooses (a no-op on one asyncio loop, a re-entrant lock for threads). Sinks
are called under it and must not block.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import secrets
from typing import Any, Callable, ContextManager, Deque, Dict, List, Optional, Protocol, Tuple

from google.protobuf.message import Message

from . import errors
from ._proto import bridge_pb2 as pb
from .channel import ENVELOPE_ALLOWANCE
from .resend import Kept, ResendBuffer

logger = logging.getLogger("siobridge_socketio")

# What each Hello asks of the daemon (Hello.features): Commands several to a
# message, as CommandBatch, when they queue behind a write; numbered calls,
# confirmed when settled.
FEATURES = ("command_batch", "confirm")


ErrorHandler = Callable[[BaseException], None]


class Pending(Protocol):
    """A call waiting for its Result (a future of the driver's kind)."""

    kind: str
    on_event: Optional[Callable[[Any], None]]
    timer: Any

    def settle(self, result: Any = None, error: Optional[BaseException] = None) -> None: ...

    def done(self) -> bool: ...


class Sink(Protocol):
    """What a session reports to its manager."""

    def on_command(self, command: Any, generation: int) -> None: ...

    def on_attached(self, node_uid: str) -> None: ...

    def on_connection_error(self, error: BaseException) -> None: ...


Queued = Tuple[str, Message, bool, Optional[Pending]]


def payload_bytes(kind: str, request: Any) -> int:
    """Bytes of event data in a call, as the daemon counts them against max_message_bytes."""
    if kind in ("broadcast", "broadcast_with_ack"):
        value = request.packet.data
        return len(value.data) + sum(len(a) for a in value.attachments)
    if kind == "server_side_emit":
        return len(request.payload)
    return 0


def too_large(kind: str, size: int, limit: int) -> errors.SiobridgeError:
    return errors.SiobridgeError(
        f"{kind}: payload of {size} bytes exceeds max_message_bytes ({limit}) of siobridged: not sent",
        errors.RESOURCE_EXHAUSTED,
    )


class Session:
    """One attached server: its attachment, namespaces and waiting calls."""

    def __init__(self, connection: Connection, client_ref: str, name: str, sink: Sink):
        self.connection = connection
        self.client_ref = client_ref
        self.name = name
        self.sink = sink
        self.attachment_id: Optional[str] = None
        self.node_uid: Optional[str] = None
        # Which stream the attachment belongs to: answers to commands of an
        # earlier stream are dropped, their ids mean nothing to the new one.
        self.generation = 0
        self.namespaces: List[str] = []
        self.queue: Deque[Queued] = collections.deque()
        # The position of the last command applied that came through MongoDB
        # (docs/PROTOCOL.md section 16). After a daemon restart the daemon
        # delivers again what it may not have delivered before it died; what
        # this server already applied is skipped.
        self.last_position = ""
        self.repeats_skipped = 0
        # Whether the daemon sends this server CommandBatches (its Welcome
        # accepted "command_batch").
        self.reads_batches = False
        # Numbered calls ("confirm"): this server's name across reattachments,
        # the number of its next call, the calls kept until confirmed, whether
        # the daemon numbers them (its Welcome accepted "confirm"), and whether
        # calls wait for the daemon to say which it holds (Hello.resend_from).
        self.instance = secrets.token_urlsafe(12)
        self.next_seq = 1
        self.unconfirmed = ResendBuffer()
        self.confirms = False
        self.awaiting_resend = False
        # Calls sent again after a restart, and calls let go unconfirmed.
        self.resent = 0
        self.given_up = 0
        # Per other server of this daemon: the number of its last call whose
        # commands were applied here.
        self.origin_seqs: Dict[str, int] = {}

    def join_namespace(self, namespace: str) -> None:
        with self.connection.lock:
            if namespace in self.namespaces:
                return
            self.namespaces.append(namespace)
            if self.attachment_id:
                self.connection.write(
                    pb.ServerMessage(
                        join_namespace=pb.NamespaceChange(namespace=namespace, attachment_id=self.attachment_id)
                    )
                )

    def leave_namespace(self, namespace: str) -> None:
        with self.connection.lock:
            if namespace not in self.namespaces:
                return
            self.namespaces.remove(namespace)
            if self.attachment_id:
                self.connection.write(
                    pb.ServerMessage(
                        leave_namespace=pb.NamespaceChange(namespace=namespace, attachment_id=self.attachment_id)
                    )
                )

    def reply(self, generation: int, reply: Any) -> None:
        """Answers a Command; dropped when the stream it came on is gone."""
        with self.connection.lock:
            if not self.attachment_id or generation != self.generation:
                return
            reply.attachment_id = self.attachment_id
            error = self.connection.write(pb.ServerMessage(reply=reply))
            if error is not None:
                # The asking server sees this one as not answering.
                self.connection.report(error, self)

    def call(self, kind: str, request: Message, timeout: float, on_event: Optional[Callable[[Any], None]] = None) -> Any:
        """A call that answers: the driver's future of its Result's reply (None
        for an OperationReply), failing with SiobridgeError or after `timeout` s."""
        connection = self.connection
        with connection.lock:
            pending = connection.new_pending(kind, on_event)

            def expire() -> None:
                with connection.lock:
                    pending.timer = None
                    connection.forget(pending)
                    pending.settle(
                        error=errors.SiobridgeError(
                            f"siobridged did not answer {kind} within {int(timeout * 1000)} ms",
                            errors.DEADLINE_EXCEEDED,
                        )
                    )

            # The deadline covers the time a call waits for the daemon too.
            pending.timer = connection.schedule(timeout, expire)
            connection.send(self, kind, request, True, pending)
            return pending

    def send(self, kind: str, request: Message) -> None:
        """A call that answers only when it fails (reported through on_error)."""
        with self.connection.lock:
            self.connection.send(self, kind, request, False, None)


class Connection:
    """The Attach stream state of one daemon address (see the module's text).

    A driver subclass provides: `lock`, new_pending(), schedule(), _emit()
    (puts a message on the current stream), _has_stream() and _start() (runs
    the stream until every session left).
    """

    lock: ContextManager[Any] = contextlib.nullcontext()

    def __init__(
        self,
        address: str,
        reconnect_min: float,
        reconnect_max: float,
        max_queued_calls: int,
        on_error: ErrorHandler,
    ):
        self.address = address
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.max_queued_calls = max_queued_calls
        self.on_error = on_error
        self.closed = False
        self.sessions: Dict[str, Session] = {}
        self.by_attachment: Dict[str, Session] = {}
        self.pending: Dict[int, Pending] = {}
        self.generation = 0
        # The daemon's max_message_bytes, from the last Welcome; None before.
        self.max_message_bytes: Optional[int] = None
        # CommandBatch messages received (several Commands in one message).
        self.command_batches = 0
        # Messages refused here for their size (never sent).
        self.refused_oversized = 0
        self.delay = reconnect_min
        self._next_ref = 1
        self._next_session = 1

    # ------------------------------------------------------- driver hooks

    def new_pending(self, kind: str, on_event: Optional[Callable[[Any], None]]) -> Pending:
        raise NotImplementedError

    def schedule(self, delay: float, function: Callable[[], None]) -> Any:
        raise NotImplementedError

    def _emit(self, message: Any) -> None:
        raise NotImplementedError

    def _has_stream(self) -> bool:
        raise NotImplementedError

    def _start(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------ sessions

    def register(self, name: str, sink: Sink) -> Session:
        with self.lock:
            session = Session(self, str(self._next_session), name, sink)
            self._next_session += 1
            self.sessions[session.client_ref] = session
            if self._has_stream():
                self._hello(session)
            self._start()
            return session

    def unregister(self, session: Session) -> bool:
        """Detaches `session`; True when it was the last one (the driver then shuts the stream down)."""
        with self.lock:
            if self.sessions.pop(session.client_ref, None) is None:
                return False
            if session.attachment_id:
                self.write(pb.ServerMessage(detach=pb.Detach(attachment_id=session.attachment_id)))
                self.by_attachment.pop(session.attachment_id, None)
            session.attachment_id = None
            session.unconfirmed.clear()
            self._detached(session)
            closed = errors.SiobridgeError("the client manager was closed", errors.CANCELLED)
            while session.queue:
                _, _, _, pending = session.queue.popleft()
                if pending is not None:
                    pending.settle(error=closed)
            if not self.sessions:
                self.closed = True
                return True
            self.flush()  # the others may have waited for this one
            return False

    def _attached(self, session: Session) -> None:
        """The driver's signal that `session` is attached (e.g. an event to wait on)."""

    def _detached(self, session: Session) -> None:
        """The driver's signal that `session` is not attached any more."""

    # --------------------------------------------------------------- calls

    def write(self, message: Any) -> Optional[errors.SiobridgeError]:
        """Puts `message` on the stream; an error instead when the daemon would
        refuse its size (then nothing is sent)."""
        if not self._has_stream():
            return None
        if self.max_message_bytes is not None:
            size = message.ByteSize()
            limit = self.max_message_bytes + ENVELOPE_ALLOWANCE
            if size > limit:
                self.refused_oversized += 1
                return errors.SiobridgeError(
                    f"a message of {size} bytes is larger than siobridged accepts ({limit} bytes): not sent",
                    errors.RESOURCE_EXHAUSTED,
                )
        self._emit(message)
        return None

    def send(self, session: Session, kind: str, request: Message, want_result: bool, pending: Optional[Pending]) -> None:
        # Behind the calls still waiting, if any: calls go out in order.
        if session.attachment_id and self._has_stream() and not session.queue and not session.awaiting_resend:
            self._transmit(session, kind, request, want_result, pending)
            return
        if len(session.queue) >= self.max_queued_calls:
            error = errors.SiobridgeError(
                f"siobridged is unreachable at {self.address}: {len(session.queue)} calls are waiting",
                errors.UNAVAILABLE,
            )
            self._refuse(session, pending, error)
            return
        session.queue.append((kind, request, want_result, pending))

    def forget(self, pending: Pending) -> None:
        for ref, candidate in list(self.pending.items()):
            if candidate is pending:
                del self.pending[ref]

    def report(self, error: BaseException, session: Optional[Session] = None) -> None:
        """An error goes to the manager of the session it concerns, one of the
        stream itself to every manager on it (each passed its own on_error;
        the connection's is the first manager's)."""
        targets = [session] if session is not None else list(self.sessions.values())
        for target in targets:
            target.sink.on_connection_error(error)
        if not targets:
            self.on_error(error)

    def _refuse(self, session: Session, pending: Optional[Pending], error: errors.SiobridgeError) -> None:
        if pending is not None:
            pending.settle(error=error)
        else:
            self.report(error, session)

    def _session_of_ref(self, ref: int) -> Optional[Session]:
        return self.sessions.get(str(ref >> 32))

    def _transmit(
        self,
        session: Session,
        kind: str,
        request: Message,
        want_result: bool,
        pending: Optional[Pending],
        kept: Optional[Kept] = None,
    ) -> None:
        """Sends a call; `kept`: a call sent before, sent again with its number."""
        if pending is not None and pending.done():  # timed out while queued
            return
        limit = self.max_message_bytes
        size = payload_bytes(kind, request)
        if limit is not None and size > limit:
            self.refused_oversized += 1
            self._refuse(session, pending, too_large(kind, size, limit))
            return
        # The session's number in the high half: a failure of a call nobody
        # waits for is reported to the manager that made it.
        ref = (int(session.client_ref) << 32) | (self._next_ref & 0xFFFFFFFF)
        self._next_ref += 1
        seq = 0
        if session.confirms:
            if kept is not None:
                seq = kept.seq
            else:
                seq = session.next_seq
                session.next_seq += 1
        call = pb.Call(ref=ref, attachment_id=session.attachment_id, want_result=want_result, seq=seq)
        getattr(call, kind).CopyFrom(request)
        error = self.write(pb.ServerMessage(call=call))
        if error is not None:
            self._refuse(session, pending, errors.SiobridgeError(f"{kind}: {error.message}", error.code))
            return
        if pending is not None:
            self.pending[ref] = pending
        elif kept is not None:
            kept.ref = ref
        elif seq:
            # Kept until confirmed, to send again after a daemon restart; calls
            # that answer fail instead when the stream is lost.
            dropped = session.unconfirmed.keep(seq, kind, request, ref, size)
            if dropped:
                session.given_up += dropped
                buffer = session.unconfirmed
                self.report(
                    errors.SiobridgeError(
                        f"server '{session.name}': {dropped} calls were not confirmed by siobridged within "
                        f"{int(buffer.timeout)} s or {buffer.max_bytes} bytes; they are no longer kept to be "
                        "sent again, so a daemon restart now could lose them",
                        errors.DEADLINE_EXCEEDED,
                    ),
                    session,
                )

    def _on_confirmed(self, session: Session, seq: int) -> None:
        """The daemon settled the session's calls up to `seq`."""
        session.unconfirmed.confirm(seq)
        if not session.awaiting_resend:
            return
        # The daemon said which calls the cluster has: the others again, in
        # order and with their numbers, then what waited meanwhile.
        session.awaiting_resend = False
        for kept in session.unconfirmed.pending():
            session.resent += 1
            self._transmit(session, kept.kind, kept.request, False, None, kept)
        self.flush()

    # -------------------------------------------------------------- stream

    def _hello(self, session: Session) -> None:
        # The namespaces follow the Welcome one by one: a namespace the daemon
        # refuses then fails alone (NamespaceError) instead of the whole Hello.
        resend_from = session.unconfirmed.first_seq()
        self.write(
            pb.ServerMessage(
                hello=pb.Hello(
                    name=session.name,
                    client_ref=session.client_ref,
                    features=FEATURES,
                    instance=session.instance,
                    resend_from=resend_from,
                )
            )
        )

    def stream_opened(self) -> None:
        """A new stream is about to carry messages: every session says Hello on it."""
        with self.lock:
            self.generation += 1
            for session in self.sessions.values():
                self._hello(session)

    def stream_failed(self, error: BaseException) -> None:
        """The stream ended with an error (reported unless the connection was closed)."""
        with self.lock:
            if self.closed:
                return
            details = error.details() if hasattr(error, "details") else str(error)
            code = error.code().value[0] if hasattr(error, "code") else errors.UNAVAILABLE
            self.report(errors.SiobridgeError(f"siobridged stream: {details}", code))

    def lost(self) -> None:
        """The stream is gone: attachments with it; calls in flight fail."""
        with self.lock:
            self.by_attachment.clear()
            for session in self.sessions.values():
                session.attachment_id = None
                self._detached(session)
            # Calls already sent may or may not have been applied: they fail
            # now, rather than at their timeout.
            lost = errors.SiobridgeError("the connection to siobridged was lost", errors.UNAVAILABLE)
            pending, self.pending = self.pending, {}
            for call in pending.values():
                call.settle(error=lost)

    def next_delay(self) -> float:
        """How long to wait before reattaching; each failure doubles the next wait."""
        with self.lock:
            delay = self.delay
            self.delay = min(self.reconnect_max, self.delay * 2)
            return delay

    def dispatch(self, message: Any) -> None:
        with self.lock:
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
            elif kind == "confirmed":
                session = self.by_attachment.get(message.confirmed.attachment_id)
                if session is not None:
                    self._on_confirmed(session, message.confirmed.seq)
            elif kind == "namespace_error":
                error = message.namespace_error
                # Not asked again at the next attach.
                session = self.by_attachment.get(error.attachment_id)
                if session is not None and error.namespace in session.namespaces:
                    session.namespaces.remove(error.namespace)
                # The daemon's status code; daemons that sent none refused for
                # a precondition, as the Node adapter reports it.
                code = error.status_code or errors.FAILED_PRECONDITION
                self.report(errors.SiobridgeError(f"namespace {error.namespace}: {error.message}", code), session)
            # Kinds added by later API versions are ignored.

    def _on_command(self, command: Any) -> None:
        session = self.by_attachment.get(command.attachment_id)
        if session is None:
            return
        if command.position:
            # Positions are fixed-width hex: text order is delivery order.
            if command.position <= session.last_position:
                session.repeats_skipped += 1
                return
            session.last_position = command.position
        if command.origin_instance:
            # Another server's call on this daemon, sent again after a daemon restart.
            if command.origin_seq <= session.origin_seqs.get(command.origin_instance, 0):
                session.repeats_skipped += 1
                return
            session.origin_seqs[command.origin_instance] = command.origin_seq
        session.sink.on_command(command, session.generation)

    def _on_welcome(self, welcome: Any) -> None:
        session = self.sessions.get(welcome.client_ref)
        if session is None:
            return
        session.attachment_id = welcome.attachment_id
        session.node_uid = welcome.node_uid
        session.generation = self.generation
        session.reads_batches = "command_batch" in welcome.features
        session.confirms = "confirm" in welcome.features
        if not session.confirms:
            # A daemon that does not number calls cannot say which it has.
            session.unconfirmed.clear()
        # With calls to send again: none goes before the daemon's first Confirmed.
        session.awaiting_resend = bool(session.unconfirmed)
        if welcome.max_message_bytes:
            self.max_message_bytes = welcome.max_message_bytes
        self.by_attachment[welcome.attachment_id] = session
        self.delay = self.reconnect_min
        # The session's namespaces, before the calls that were waiting for the
        # attachment (joining twice is a no-op).
        for namespace in session.namespaces:
            self.write(
                pb.ServerMessage(
                    join_namespace=pb.NamespaceChange(namespace=namespace, attachment_id=welcome.attachment_id)
                )
            )
        self._attached(session)
        session.sink.on_attached(welcome.node_uid)
        self.flush()

    def flush(self) -> None:
        # The calls that waited go out once every server of the stream is back
        # in its namespaces: after a restart, the process's servers hear each
        # other's queued work as they would have before it.
        if not self._has_stream() or not all(s.attachment_id for s in self.sessions.values()):
            return
        for session in self.sessions.values():
            while session.queue and not session.awaiting_resend:
                self._transmit(session, *session.queue.popleft())

    def _on_result(self, result: Any) -> None:
        pending = self.pending.get(result.ref)
        if result.status_code != 0:
            error = errors.SiobridgeError(result.status_message, result.status_code)
            if pending is not None:
                del self.pending[result.ref]
                pending.settle(error=error)
            else:
                session = self._session_of_ref(result.ref)
                if session is not None:
                    session.unconfirmed.forget(result.ref)  # it failed: not to be sent again
                self.report(error, session)
            return
        if pending is None:
            return
        kind = result.WhichOneof("kind")
        if kind == "ack_event":
            if pending.on_event is not None:
                try:
                    pending.on_event(result.ack_event)
                except Exception as error:  # an application callback failed
                    self.report(error, self._session_of_ref(result.ref))
            if result.ack_event.WhichOneof("kind") != "done":
                return
        del self.pending[result.ref]
        pending.settle(result=getattr(result, kind) if kind else None)
