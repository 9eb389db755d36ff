"""AsyncSiobridgeManager: a python-socketio client manager for
socketio.AsyncServer whose cluster is reached through the siobridged daemon of
this host. The logic it shares with SiobridgeManager (socketio.Server) is in
manager_core.py; here is how it runs on asyncio.

Supports python-socketio 5.7.2 (room and connect methods synchronous) and the
5.10+ layout (those methods are coroutines); see compat below.

Thread-safety: none. Use the manager from the server's asyncio event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, Callable, List, Optional, Set, Tuple

import socketio

from .channel import default_address
from .connection_asyncio import AsyncConnection
from .manager_core import ErrorHandler, ManagerCore, Rooms
from .sockets import RemoteSocket
from .steps import Steps, run_async

# python-socketio 5.7.2 calls enter_room/leave_room/connect synchronously;
# later 5.x versions await them. The manager follows what the installed
# version expects.
_ASYNC_ROOMS = inspect.iscoroutinefunction(socketio.AsyncManager.enter_room)
_ASYNC_CONNECT = inspect.iscoroutinefunction(socketio.AsyncManager.connect)

__all__ = ["AsyncSiobridgeManager", "RemoteSocket", "default_address"]


class AsyncSiobridgeManager(ManagerCore, socketio.AsyncManager):
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
                     the daemon refused or too large to send), of the
                     connection, and of work from the cluster that could not
                     be read. Default: a warning on the "siobridge_socketio"
                     logger.
    :param tls_ca, tls_cert, tls_key: TLS files for a daemon reached over TCP.
    :param timeout_messages: whose words cluster requests that timed out
                             (fetch_sockets, all_rooms,
                             server_side_emit_with_ack) raise
                             PartialResultError with: "mongo" (default),
                             socket.io's MongoDB adapter ("timeout reached:
                             only 1 responses received out of 2"), or
                             "cluster", its ClusterAdapterWithHeartbeat
                             ("timeout reached: missing 1 responses").
    """

    _connection_class = AsyncConnection

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
        self._worker: Optional["asyncio.Task[None]"] = None
        self._commands: Optional["asyncio.Queue[Tuple[Any, int]]"] = None
        self._tasks: Set["asyncio.Task[Any]"] = set()

    # ------------------------------------------------------------ set-up

    def set_server(self, server: Any) -> None:
        super().set_server(server)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # attaches in start(), initialize() or the first operation
        # Once the server is built and its handlers registered: their namespaces are joined.
        loop.call_soon(self._ensure_started)

    def initialize(self) -> None:
        super().initialize()
        self._ensure_started()

    async def start(self) -> None:
        """Attaches to the daemon now (without waiting for it). Call it when the
        app starts, e.g. from aiohttp's on_startup, so that the server is part
        of the cluster before its first client connects."""
        self._ensure_started()

    async def wait_attached(self, timeout: Optional[float] = None) -> None:
        """Waits until the daemon welcomed this server (again, after a restart)."""
        self._ensure_started()
        assert self._session is not None
        event = AsyncConnection.attached_event(self._session.connection, self._session)  # type: ignore[arg-type]
        await asyncio.wait_for(event.wait(), timeout)

    async def close(self) -> None:
        """Detaches from the daemon: the cluster stops counting this server."""
        if self._closed:
            return
        self._closed = True
        self._close_acks()
        if self._worker is not None:
            self._worker.cancel()
        if self._session is not None:
            connection = self._session.connection
            assert isinstance(connection, AsyncConnection)
            shutdown = connection.close_session(self._session)
            if shutdown is not None:
                await shutdown

    # ------------------------------------------------------ flavour hooks

    def _run(self, steps: "Steps[Any]") -> Any:
        return run_async(steps)

    def _spawn(self, steps: "Steps[Any]") -> None:
        task = asyncio.get_running_loop().create_task(run_async(steps))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _call_later(self, delay: float, function: Callable[[], None]) -> Any:
        return asyncio.get_running_loop().call_later(delay, function)

    def _start_worker(self) -> None:
        self._commands = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(self._work())

    def _answer(self, pending: Any) -> Any:
        return pending.future

    def _ack_callback(self, callback: Callable[..., Any], args: List[Any]) -> None:
        result = callback(*args)
        if inspect.isawaitable(result):
            task = asyncio.get_running_loop().create_task(_await(result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _on_failure(self, pending: Any) -> None:
        def settled(future: "asyncio.Future[Any]") -> None:
            if not future.cancelled() and future.exception() is not None:
                self._report(future.exception())  # type: ignore[arg-type]

        pending.future.add_done_callback(settled)

    def on_command(self, command: Any, generation: int) -> None:
        """A Command from the daemon: applied in arrival order by _work()."""
        assert self._commands is not None
        self._commands.put_nowait((command, generation))

    async def _work(self) -> None:
        assert self._commands is not None
        while True:
            command, generation = await self._commands.get()
            await run_async(self._command_steps(command, generation))

    async def _maybe_await(self, value: Any) -> Any:
        if inspect.isawaitable(value):
            return await value
        return value

    # ------------------------------------- python-socketio's manager API

    if _ASYNC_CONNECT:

        async def connect(self, eio_sid: str, namespace: str) -> Optional[str]:
            sid: Optional[str] = await super().connect(eio_sid, namespace)
            self._connected(eio_sid, namespace, sid)
            return sid

    else:

        def connect(self, eio_sid: str, namespace: str) -> Optional[str]:  # type: ignore[misc]
            sid: Optional[str] = super().connect(eio_sid, namespace)
            self._connected(eio_sid, namespace, sid)
            return sid

    if _ASYNC_ROOMS:

        async def enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
            self._enter_room(sid, namespace, room, eio_sid)

        async def leave_room(self, sid: str, namespace: str, room: Any) -> None:
            self._leave_room(sid, namespace, room)

    else:

        def enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:  # type: ignore[misc]
            self._enter_room(sid, namespace, room, eio_sid)

        def leave_room(self, sid: str, namespace: str, room: Any) -> None:  # type: ignore[misc]
            self._leave_room(sid, namespace, room)

    async def close_room(self, room: Any, namespace: Optional[str]) -> None:
        self._close_room(room, namespace)

    async def can_disconnect(self, sid: str, namespace: Optional[str]) -> bool:
        return self._can_disconnect(sid, namespace)

    async def disconnect(self, sid: str, namespace: Optional[str], **kwargs: Any) -> None:
        self._disconnect(sid, namespace, **kwargs)

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: Optional[str] = None,
        room: Any = None,
        skip_sid: Any = None,
        callback: Optional[Callable[..., Any]] = None,
        **kwargs: Any,
    ) -> None:
        await run_async(self._emit_steps(event, data, namespace, room, skip_sid, callback, kwargs))

    # ----------------------------------------- extras python-socketio lacks

    async def server_count(self, namespace: Optional[str] = None) -> int:
        """How many socket.io servers use `namespace` in the whole cluster."""
        return await run_async(self._server_count_steps(namespace))

    async def all_rooms(self, namespace: Optional[str] = None) -> Set[str]:
        """Every room of `namespace` on every server (socket ids included)."""
        return await run_async(self._all_rooms_steps(namespace))

    async def fetch_sockets(
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
        return await run_async(self._fetch_sockets_steps(room, namespace, skip, local, timeout))

    async def server_side_emit(self, event: str, data: Any = None, namespace: Optional[str] = None) -> None:
        """An event for every other server of the cluster (socket.io's
        serverSideEmit); they receive it through on_server_side()."""
        self._server_side_emit(event, data, namespace)

    async def server_side_emit_with_ack(
        self, event: str, data: Any = None, namespace: Optional[str] = None, timeout: Optional[float] = None
    ) -> List[Any]:
        """Like server_side_emit, and returns one answer per other server
        (socket.io's serverSideEmitWithAck). Raises PartialResultError, with
        the answers that came, when some servers did not answer in time."""
        return await run_async(self._server_side_emit_with_ack_steps(event, data, namespace, timeout))


async def _await(value: Any) -> Any:
    return await value
