"""Errors of the siobridge client manager, with the gRPC status codes the
daemon uses (bridge.proto) and the Node adapter reports as `error.code`.

Plain data: safe from any thread.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import grpc
from socketio import exceptions as socketio_exceptions

OK = 0
CANCELLED = 1
UNKNOWN = 2
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
FAILED_PRECONDITION = 9
RESOURCE_EXHAUSTED = 8
UNAVAILABLE = 14

_BY_VALUE = {status.value[0]: status for status in grpc.StatusCode}


class SiobridgeError(Exception):
    """An operation the daemon refused or could not complete.

    `code` is the numeric gRPC status code (3 INVALID_ARGUMENT, 8
    RESOURCE_EXHAUSTED, 9 FAILED_PRECONDITION, 14 UNAVAILABLE, ...), the same
    number the Node adapter puts in `error.code`; `status` is the
    grpc.StatusCode member.
    """

    def __init__(self, message: str, code: int = UNAVAILABLE):
        super().__init__(message)
        self.message = message
        self.code = code

    @property
    def status(self) -> Any:
        return _BY_VALUE.get(self.code, grpc.StatusCode.UNKNOWN)


# Whose words a cluster request that timed out is reported in (the managers'
# `timeout_messages`): socket.io's MongoDB adapter, the default, or
# socket.io-adapter's ClusterAdapterWithHeartbeat. python-socketio has no
# cluster requests of its own, so no words for them; a Node.js server of the
# same cluster reports the same timeout the same way.
TIMEOUT_MESSAGES = ("mongo", "cluster")


def check_timeout_messages(wording: str) -> str:
    """The `timeout_messages` parameter, or ValueError for one it does not know."""
    if wording not in TIMEOUT_MESSAGES:
        raise ValueError(f'timeout_messages must be one of "mongo", "cluster", not {wording!r}')
    return wording


def timeout_message(wording: str, received: int, expected: int) -> str:
    """socket.io 4.8's message, word for word, for a request that `expected`
    servers should have answered and `received` did (lib/index.ts of
    @socket.io/mongo-adapter, lib/cluster-adapter.ts of socket.io-adapter)."""
    if wording == "cluster":
        return f"timeout reached: missing {expected - received} responses"
    return f"timeout reached: only {received} responses received out of {expected}"


class PartialResultError(SiobridgeError, socketio_exceptions.TimeoutError):
    """A cluster query that some servers did not answer in time.

    A socketio.exceptions.TimeoutError, what python-socketio raises when a
    call() times out; its message is socket.io's (timeout_message). `partial`
    holds what did arrive, `missing` names who did not answer:
    {"nodes": [daemon uids], "local_servers": [names of servers on this host]}.
    `expected` is how many servers were asked (for server_side_emit_with_ack,
    as the daemon counted them).
    """

    def __init__(self, message: str, partial: Any, missing: Dict[str, List[str]], expected: Optional[int] = None):
        super().__init__(message, DEADLINE_EXCEEDED)
        self.partial = partial
        self.responses = partial
        self.missing = missing
        self.expected = expected
