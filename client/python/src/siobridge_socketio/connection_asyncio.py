"""The Attach stream on an asyncio event loop (grpc.aio), for
socketio.AsyncServer: one per event loop, daemon address and TLS settings.

Thread-safety: none. An AsyncConnection and its Sessions belong to one asyncio
event loop and are used from that loop only.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Callable, Dict, Optional, Tuple

import grpc

from . import errors
from ._proto import bridge_pb2_grpc as pb_grpc
from .channel import TlsFiles, open_channel
from .connection import Connection, ErrorHandler, Session

_END = object()  # ends the request iterator of a stream


class _Pending:
    """A call waiting for its Result, as an asyncio future."""

    __slots__ = ("kind", "future", "on_event", "timer")

    def __init__(self, kind: str, future: "asyncio.Future[Any]", on_event: Optional[Callable[[Any], None]]):
        self.kind = kind
        self.future = future
        self.on_event = on_event
        self.timer: Any = None

    def done(self) -> bool:
        return self.future.done()

    def settle(self, result: Any = None, error: Optional[BaseException] = None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.future.done():
            return
        if error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(result)

    def __await__(self) -> Any:
        return self.future.__await__()


class AsyncConnection(Connection):
    """The Attach stream of one event loop to one daemon address."""

    _shared: Dict[Tuple[str, TlsFiles, asyncio.AbstractEventLoop], "AsyncConnection"] = {}

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
    ) -> "AsyncConnection":
        loop = asyncio.get_running_loop()
        key = (address, tls, loop)
        connection = cls._shared.get(key)
        if connection is None or connection.closed:
            connection = cls(address, tls, loop, reconnect_min, reconnect_max, max_queued_calls, on_error)
            cls._shared[key] = connection
        return connection

    def __init__(
        self,
        address: str,
        tls: TlsFiles,
        loop: asyncio.AbstractEventLoop,
        reconnect_min: float,
        reconnect_max: float,
        max_queued_calls: int,
        on_error: ErrorHandler,
    ):
        super().__init__(address, reconnect_min, reconnect_max, max_queued_calls, on_error)
        self.tls = tls
        self.loop = loop
        self._outgoing: Optional["asyncio.Queue[Any]"] = None
        self._streaming = False  # the daemon answered on the current stream
        self._attached_events: Dict[str, asyncio.Event] = {}
        self._channel = open_channel(address, asynchronous=True, tls=tls, reconnect=(reconnect_min, reconnect_max))
        self._stub = pb_grpc.BridgeStub(self._channel)
        self._task: Optional["asyncio.Task[None]"] = None

    # ------------------------------------------------------- driver hooks

    def new_pending(self, kind: str, on_event: Optional[Callable[[Any], None]]) -> _Pending:
        return _Pending(kind, self.loop.create_future(), on_event)

    def schedule(self, delay: float, function: Callable[[], None]) -> asyncio.TimerHandle:
        return self.loop.call_later(delay, function)

    def _emit(self, message: Any) -> None:
        assert self._outgoing is not None
        self._outgoing.put_nowait(message)

    def _has_stream(self) -> bool:
        return self._outgoing is not None

    def _start(self) -> None:
        if self._task is None:
            self._task = self.loop.create_task(self._run())

    def attached_event(self, session: Session) -> asyncio.Event:
        return self._attached_events.setdefault(session.client_ref, asyncio.Event())

    def _attached(self, session: Session) -> None:
        self.attached_event(session).set()

    def _detached(self, session: Session) -> None:
        self.attached_event(session).clear()

    # ------------------------------------------------------------ closing

    def close_session(self, session: Session) -> Optional["asyncio.Task[None]"]:
        """Detaches; returns the connection's shutdown task when it was the last session."""
        if self.unregister(session):
            return self.loop.create_task(self._shutdown())
        return None

    async def _shutdown(self) -> None:
        task = self._task
        if task is not None and self._streaming and self._outgoing is not None:
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
        key = (self.address, self.tls, self.loop)
        if AsyncConnection._shared.get(key) is self:
            del AsyncConnection._shared[key]

    # -------------------------------------------------------------- stream

    async def _requests(self, queue: "asyncio.Queue[Any]") -> AsyncIterator[Any]:
        while True:
            message = await queue.get()
            if message is _END:
                return
            yield message

    async def _run(self) -> None:
        while not self.closed and self.sessions:
            queue: "asyncio.Queue[Any]" = asyncio.Queue()
            self._outgoing = queue
            self.stream_opened()
            # Wait for the daemon rather than fail while it is (re)starting.
            call = self._stub.Attach(self._requests(queue), wait_for_ready=True)
            try:
                async for message in call:
                    self._streaming = True
                    self.dispatch(message)
            except asyncio.CancelledError:
                call.cancel()
                raise
            except grpc.RpcError as error:
                self.stream_failed(error)
            finally:
                self._outgoing = None
                self._streaming = False
                queue.put_nowait(_END)
                self.lost()
            if self.closed or not self.sessions:
                return
            await asyncio.sleep(self.next_delay())


__all__ = ["AsyncConnection", "errors"]
