"""Errors of the siobridge client manager, with the gRPC status codes the
daemon uses (bridge.proto) and the Node adapter reports as `error.code`.

Plain data: safe from any thread.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import grpc

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


class PartialResultError(SiobridgeError):
    """A cluster query that some servers did not answer in time.

    `partial` holds what did arrive, `missing` names who did not answer:
    {"nodes": [daemon uids], "local_servers": [names of servers on this host]}.
    For server_side_emit_with_ack, `responses` and `expected` tell how many
    servers answered out of how many.
    """

    def __init__(self, message: str, partial: Any, missing: Dict[str, List[str]], expected: Optional[int] = None):
        super().__init__(message, DEADLINE_EXCEEDED)
        self.partial = partial
        self.responses = partial
        self.missing = missing
        self.expected = expected
