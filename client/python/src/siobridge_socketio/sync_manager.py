"""SiobridgeManager: the client manager for python-socketio's socketio.Server
(and so Flask-SocketIO), whose cluster is reached through the siobridged
daemon of this host. The logic is AsyncSiobridgeManager's (manager_core.py);
here is how it runs on threads:

- one Attach stream per process and daemon address, run by a reader thread
  (connection_threads.py);
- the daemon's Commands, and the callbacks of acks from other servers'
  clients, applied in arrival order by one worker started with the server's
  start_background_task;
- queries (fetch_sockets, server_count, ...) block the calling thread until
  the daemon answers.

Supported async modes: "threading", and "gevent" (or "gevent_uwsgi") with the
standard library patched by gevent.monkey.patch_all() before anything else is
imported; the threads, queues and timers here are then gevent's and gRPC
polls cooperatively. "eventlet" is refused when the server is built: grpcio's
streams block eventlet's hub.

Thread-safety: every method may be called from any thread of the server.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
from typing import Any, Callable, List, Optional, Set, Tuple

import socketio

from . import errors
from .connection_threads import ThreadConnection, ThreadPending
from .manager_core import ErrorHandler, ManagerCore, Rooms
from .sockets import RemoteSocket
from .steps import Steps, run_blocking

_STOP = object()

__all__ = ["SiobridgeManager"]


def _check_async_mode(server: Any) -> None:
    mode = getattr(server, "async_mode", None) or getattr(getattr(server, "eio", None), "async_mode", None)
    if mode == "eventlet":
        raise errors.SiobridgeError(
            "SiobridgeManager does not run under eventlet (grpcio's streams block its hub): "
            "use async_mode='threading', or 'gevent' with gevent.monkey.patch_all()",
            errors.FAILED_PRECONDITION,
        )
    if mode in ("gevent", "gevent_uwsgi"):
        monkey = sys.modules.get("gevent.monkey")
        if monkey is None or not monkey.is_module_patched("threading") or not monkey.is_module_patched("socket"):
            raise errors.SiobridgeError(
                "SiobridgeManager under gevent needs the standard library patched: call "
                "gevent.monkey.patch_all() before importing anything else",
                errors.FAILED_PRECONDITION,
            )


class SiobridgeManager(ManagerCore, socketio.BaseManager):
    """Client manager for socketio.Server (Flask-SocketIO:
    ``SocketIO(app, client_manager=SiobridgeManager())``) backed by siobridged.

    The parameters are AsyncSiobridgeManager's: address, name,
    requests_timeout, reconnect, max_queued_calls, on_error (called from the
    manager's threads), logger, tls_ca, tls_cert, tls_key, and
    timeout_messages.
    """

    _connection_class = ThreadConnection

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
        super().__init__(
            address,
            name=name,
            requests_timeout=requests_timeout,
            reconnect=reconnect,
            max_queued_calls=max_queued_calls,
            on_error=on_error,
            logger=logger,
            tls_ca=tls_ca,
            tls_cert=tls_cert,
            tls_key=tls_key,
            timeout_messages=timeout_messages,
        )
        self._work_queue: "queue.Queue[Any]" = queue.Queue()
        self._worker: Any = None
        self._start_lock = threading.Lock()

    # ------------------------------------------------------------ set-up

    def set_server(self, server: Any) -> None:
        _check_async_mode(server)
        super().set_server(server)
        # Attached from now on: a server is part of the cluster before its
        # first client connects. Namespaces of handlers registered later join
        # at initialize(), at their first client or operation.
        self._ensure_started()

    def initialize(self) -> None:
        super().initialize()
        self.start()

    def start(self) -> None:
        """Attaches to the daemon now (without waiting for it), with every
        namespace the server has handlers for."""
        self._ensure_started()
        if self._session is not None:
            for namespace in self._server_namespaces():
                self._session.join_namespace(namespace)

    def _ensure_started(self) -> None:
        with self._start_lock:
            super()._ensure_started()

    def wait_attached(self, timeout: Optional[float] = None) -> bool:
        """Waits until the daemon welcomed this server (again, after a
        restart); False when `timeout` s passed first."""
        self._ensure_started()
        assert self._session is not None
        connection = self._session.connection
        assert isinstance(connection, ThreadConnection)
        return connection.attached_event(self._session).wait(timeout)

    def close(self) -> None:
        """Detaches from the daemon: the cluster stops counting this server."""
        if self._closed:
            return
        self._closed = True
        self._close_acks()
        self._work_queue.put(_STOP)
        if self._session is not None:
            connection = self._session.connection
            assert isinstance(connection, ThreadConnection)
            connection.close_session(self._session)

    # ------------------------------------------------------ flavour hooks

    def _run(self, steps: "Steps[Any]") -> Any:
        return run_blocking(steps)

    def _spawn(self, steps: "Steps[Any]") -> None:
        def run() -> None:
            try:
                run_blocking(steps)
            except Exception as error:
                self._report(error)

        self._background(run)

    def _background(self, function: Callable[[], None]) -> Any:
        if self.server is not None:
            return self.server.start_background_task(function)
        thread = threading.Thread(target=function, daemon=True)
        thread.start()
        return thread

    def _call_later(self, delay: float, function: Callable[[], None]) -> Any:
        timer = threading.Timer(delay, function)
        timer.daemon = True
        timer.start()
        return timer

    def _start_worker(self) -> None:
        self._worker = self._background(self._work)

    def _answer(self, pending: Any) -> Any:
        assert isinstance(pending, ThreadPending)
        return pending.wait()

    def _ack_callback(self, callback: Callable[..., Any], args: List[Any]) -> None:
        # Called by the reader thread: the application's callback runs on the
        # worker, in order with the Commands.
        self._work_queue.put(lambda: callback(*args))

    def _on_failure(self, pending: Any) -> None:
        assert isinstance(pending, ThreadPending)

        def check() -> None:
            error = pending.error()
            if error is not None:
                self._report(error)

        pending.after = lambda: self._work_queue.put(check)

    def on_command(self, command: Any, generation: int) -> None:
        """A Command from the daemon: applied in arrival order by _work()."""
        self._work_queue.put((command, generation))

    def _work(self) -> None:
        while True:
            item = self._work_queue.get()
            if item is _STOP:
                return
            try:
                if callable(item):
                    item()
                else:
                    run_blocking(self._command_steps(*item))
            except Exception as error:  # an application callback failed
                self._report(error)

    # ------------------------------------- python-socketio's manager API

    def connect(self, eio_sid: str, namespace: str) -> Optional[str]:
        sid = super().connect(eio_sid, namespace)
        self._connected(eio_sid, namespace, sid)
        return sid  # type: ignore[no-any-return]

    def enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        self._enter_room(sid, namespace, room, eio_sid)

    def leave_room(self, sid: str, namespace: str, room: Any) -> None:
        self._leave_room(sid, namespace, room)

    def close_room(self, room: Any, namespace: Optional[str]) -> None:
        self._close_room(room, namespace)

    def can_disconnect(self, sid: str, namespace: Optional[str]) -> bool:
        return self._can_disconnect(sid, namespace)

    def disconnect(self, sid: str, namespace: Optional[str], **kwargs: Any) -> None:
        self._disconnect(sid, namespace, **kwargs)

    def emit(
        self,
        event: str,
        data: Any,
        namespace: Optional[str] = None,
        room: Any = None,
        skip_sid: Any = None,
        callback: Optional[Callable[..., Any]] = None,
        **kwargs: Any,
    ) -> None:
        run_blocking(self._emit_steps(event, data, namespace, room, skip_sid, callback, kwargs))

    # ----------------------------------------- extras python-socketio lacks

    def server_count(self, namespace: Optional[str] = None) -> int:
        """How many socket.io servers use `namespace` in the whole cluster."""
        return run_blocking(self._server_count_steps(namespace))

    def all_rooms(self, namespace: Optional[str] = None) -> Set[str]:
        """Every room of `namespace` on every server (socket ids included)."""
        return run_blocking(self._all_rooms_steps(namespace))

    def fetch_sockets(
        self,
        room: Rooms = None,
        namespace: Optional[str] = None,
        skip: Rooms = None,
        local: bool = False,
        timeout: Optional[float] = None,
    ) -> List[RemoteSocket]:
        """The sockets in `room` (a room, a sid, a list of them, or None for
        all) and in no room of `skip`, on every server of the cluster
        (socket.io's fetchSockets). Only this server's with local=True."""
        return run_blocking(self._fetch_sockets_steps(room, namespace, skip, local, timeout))

    def server_side_emit(self, event: str, data: Any = None, namespace: Optional[str] = None) -> None:
        """An event for every other server of the cluster (socket.io's
        serverSideEmit); they receive it through on_server_side()."""
        self._server_side_emit(event, data, namespace)

    def server_side_emit_with_ack(
        self, event: str, data: Any = None, namespace: Optional[str] = None, timeout: Optional[float] = None
    ) -> List[Any]:
        """Like server_side_emit, and returns one answer per other server
        (socket.io's serverSideEmitWithAck). Raises PartialResultError, with
        the answers that came, when some servers did not answer in time."""
        return run_blocking(self._server_side_emit_with_ack_steps(event, data, namespace, timeout))
