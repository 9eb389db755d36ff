"""One body of logic for the asyncio and the blocking managers.

Logic shared by both is written once as a generator that yields what it waits
for: a coroutine or future under asyncio, the value itself when the call
already did the work (python-socketio's blocking Server). run_blocking and
run_async drive such a generator and send each yielded value back in.

Pure functions, no shared state.
"""

from __future__ import annotations

import inspect
from typing import Any, Generator, TypeVar

T = TypeVar("T")

Steps = Generator[Any, Any, T]


def run_blocking(steps: "Steps[T]") -> T:
    """Drives `steps` whose yielded values are results already."""
    value: Any = None
    while True:
        try:
            value = steps.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


async def run_async(steps: "Steps[T]") -> T:
    """Drives `steps`, awaiting what is awaitable; errors go back into the generator."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        value, error = None, None
        if inspect.isawaitable(step):
            try:
                value = await step
            except Exception as raised:
                error = raised
        else:
            value = step
