"""The Attach stream with grpc's blocking API, for socketio.Server: one per
process, daemon address and TLS settings. A reader thread runs the stream
(gRPC consumes the outgoing queue on a thread of its own) and applies the
daemon's messages to the shared logic under one re-entrant lock.

Under gevent with the standard library patched (gevent.monkey.patch_all())
the threads, queues, locks and timers here are gevent's and gRPC's core polls
cooperatively (grpc.experimental.gevent, set up by channel.open_channel).
eventlet is refused there: grpcio's streams block its hub.

Thread-safety: every method may be called from any thread; the Connection
logic runs under `lock`.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import grpc

from . import errors
from ._proto import bridge_pb2_grpc as pb_grpc
from .channel import TlsFiles, open_channel
from .connection import Connection, ErrorHandler, Session

_END = object()  # ends the request iterator of a stream


class ThreadPending:
    """A call waiting for its Result, waited on with wait()."""

    __slots__ = ("kind", "on_event", "timer", "after", "_done", "_result", "_error")

    def __init__(self, kind: str, on_event: Optional[Callable[[Any], None]]):
        self.kind = kind
        self.on_event = on_event
        self.timer: Any = None
        # Called once settled (under the connection's lock: it must not block).
        self.after: Optional[Callable[[], None]] = None
        self._done = threading.Event()
        self._result: Any = None
        self._error: Optional[BaseException] = None

    def done(self) -> bool:
        return self._done.is_set()

    def settle(self, result: Any = None, error: Optional[BaseException] = None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self._done.is_set():
            return
        self._result, self._error = result, error
        self._done.set()
        if self.after is not None:
            self.after()

    def wait(self) -> Any:
        """The reply, or raises the call's error. Every call has a deadline (its timer)."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._result

    def error(self) -> Optional[BaseException]:
        return self._error if self._done.is_set() else None


class ThreadConnection(Connection):
    """The Attach stream of this process to one daemon address."""

    _shared: Dict[Tuple[str, TlsFiles], "ThreadConnection"] = {}
    _shared_lock = threading.Lock()

    @classmethod
    def get(
        cls,
        address: str,
        tls: TlsFiles,
        *,
        reconnect_min: float,
        reconnect_max: float,
        max_queued_calls: int,
        on_error: ErrorHandler,
    ) -> "ThreadConnection":
        with cls._shared_lock:
            key = (address, tls)
            connection = cls._shared.get(key)
            if connection is None or connection.closed:
                connection = cls(address, tls, reconnect_min, reconnect_max, max_queued_calls, on_error)
                cls._shared[key] = connection
            return connection

    def __init__(
        self,
        address: str,
        tls: TlsFiles,
        reconnect_min: float,
        reconnect_max: float,
        max_queued_calls: int,
        on_error: ErrorHandler,
    ):
        super().__init__(address, reconnect_min, reconnect_max, max_queued_calls, on_error)
        self.tls = tls
        self.lock = threading.RLock()
        self._outgoing: Optional["queue.Queue[Any]"] = None
        self._streaming = False
        self._call: Any = None
        self._wake = threading.Event()  # cuts the backoff short when closing
        self._attached_events: Dict[str, threading.Event] = {}
        self._channel = open_channel(address, asynchronous=False, tls=tls, reconnect=(reconnect_min, reconnect_max))
        self._stub = pb_grpc.BridgeStub(self._channel)
        self._thread: Optional[threading.Thread] = None

    # ------------------------------------------------------- driver hooks

    def new_pending(self, kind: str, on_event: Optional[Callable[[Any], None]]) -> ThreadPending:
        return ThreadPending(kind, on_event)

    def schedule(self, delay: float, function: Callable[[], None]) -> threading.Timer:
        timer = threading.Timer(delay, function)
        timer.daemon = True
        timer.start()
        return timer

    def _emit(self, message: Any) -> None:
        assert self._outgoing is not None
        self._outgoing.put(message)

    def _has_stream(self) -> bool:
        return self._outgoing is not None

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"siobridge {self.address}", daemon=True)
            self._thread.start()

    def attached_event(self, session: Session) -> threading.Event:
        with self.lock:
            return self._attached_events.setdefault(session.client_ref, threading.Event())

    def _attached(self, session: Session) -> None:
        self.attached_event(session).set()

    def _detached(self, session: Session) -> None:
        self.attached_event(session).clear()

    # ------------------------------------------------------------ closing

    def close_session(self, session: Session, timeout: float = 2.0) -> None:
        """Detaches; the last session also ends the stream (the Detach sent
        first, waiting up to `timeout` s for the daemon to end it) and the channel."""
        if not self.unregister(session):
            return
        with self.lock:
            outgoing, streaming = self._outgoing, self._streaming
            if outgoing is not None:
                outgoing.put(_END)
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout if streaming else 0.5)
            if thread.is_alive() and self._call is not None:
                self._call.cancel()
                thread.join(timeout)
        self._channel.close()
        with ThreadConnection._shared_lock:
            key = (self.address, self.tls)
            if ThreadConnection._shared.get(key) is self:
                del ThreadConnection._shared[key]

    # -------------------------------------------------------------- stream

    @staticmethod
    def _requests(outgoing: "queue.Queue[Any]") -> Iterator[Any]:
        while True:
            message = outgoing.get()
            if message is _END:
                return
            yield message

    def _run(self) -> None:
        while not self.closed and self.sessions:
            outgoing: "queue.Queue[Any]" = queue.Queue()
            with self.lock:
                self._outgoing = outgoing
                self.stream_opened()
                # Wait for the daemon rather than fail while it is (re)starting.
                self._call = self._stub.Attach(self._requests(outgoing), wait_for_ready=True)
            try:
                for message in self._call:
                    self._streaming = True
                    self.dispatch(message)
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.CANCELLED or not self.closed:
                    self.stream_failed(error)
            except Exception as error:  # never let the reader die silently
                self.report(errors.SiobridgeError(f"siobridged stream: {error}", errors.UNKNOWN))
            finally:
                with self.lock:
                    self._outgoing = None
                    self._streaming = False
                    outgoing.put(_END)
                    self.lost()
            if self.closed or not self.sessions:
                return
            self._wake.wait(self.next_delay())
