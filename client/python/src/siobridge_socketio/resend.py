"""The calls one server keeps until the daemon confirms them ("confirm",
docs/PROTOCOL.md section 20): in order, bounded in bytes and in time, and sent
again after the server reattached to a restarted daemon.

Pure logic, no I/O; not thread-safe: the connection uses it under its lock.
"""

from __future__ import annotations

import collections
import time
from typing import Callable, Deque, List

from google.protobuf.message import Message

# At most this much event data, for at most this long (seconds); past either
# the oldest calls are let go.
MAX_BYTES = 64 * 1024 * 1024
TIMEOUT = 120.0


class Kept:
    """A call sent that answers only on failure, kept until confirmed."""

    __slots__ = ("seq", "kind", "request", "ref", "size", "sent_at")

    def __init__(self, seq: int, kind: str, request: Message, ref: int, size: int, sent_at: float):
        self.seq = seq
        self.kind = kind
        self.request = request
        self.ref = ref
        self.size = size
        self.sent_at = sent_at


class ResendBuffer:
    def __init__(
        self,
        max_bytes: int = MAX_BYTES,
        timeout: float = TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.clock = clock
        self.calls: Deque[Kept] = collections.deque()
        self.bytes = 0
        # The highest number the daemon confirmed.
        self.confirmed = 0

    def __len__(self) -> int:
        return len(self.calls)

    def first_seq(self) -> int:
        """The lowest number kept (Hello.resend_from); 0 when none is."""
        return self.calls[0].seq if self.calls else 0

    def keep(self, seq: int, kind: str, request: Message, ref: int, size: int) -> int:
        """Keeps a call just sent; returns how many old ones were let go for it."""
        self.calls.append(Kept(seq, kind, request, ref, size, self.clock()))
        self.bytes += size
        too_old = self.clock() - self.timeout
        dropped = 0
        while self.calls and (self.bytes > self.max_bytes or self.calls[0].sent_at < too_old):
            self.bytes -= self.calls.popleft().size
            dropped += 1
        return dropped

    def confirm(self, seq: int) -> None:
        """Every call numbered up to `seq` is settled."""
        self.confirmed = max(self.confirmed, seq)
        while self.calls and self.calls[0].seq <= self.confirmed:
            self.bytes -= self.calls.popleft().size

    def forget(self, ref: int) -> bool:
        """The call last sent with `ref` failed: it is not to be sent again."""
        for kept in self.calls:
            if kept.ref == ref:
                self.calls.remove(kept)
                self.bytes -= kept.size
                return True
        return False

    def pending(self) -> List[Kept]:
        """What to send again, in order."""
        return list(self.calls)

    def clear(self) -> None:
        self.calls.clear()
        self.bytes = 0
