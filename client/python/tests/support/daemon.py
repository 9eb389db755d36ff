"""siobridged processes for the Python manager's tests. The binary comes from
$SIOBRIDGE_DAEMON (scripts/test sets it) or the default build trees.

Used from the tests' one event loop; not thread-safe.
"""

import asyncio
import os
import shutil
import signal
import tempfile
import time

import grpc
from grpc import aio

from siobridge_socketio._proto import bridge_pb2 as pb
from siobridge_socketio._proto import bridge_pb2_grpc as pb_grpc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


def daemon_binary():
    if os.environ.get("SIOBRIDGE_DAEMON"):
        return os.environ["SIOBRIDGE_DAEMON"]
    for build in ("test", "release"):
        path = os.path.join(ROOT, "build", build, "daemon", "app", "siobridged")
        if os.path.exists(path):
            return path
    raise RuntimeError("no siobridged binary: build it or set SIOBRIDGE_DAEMON")


class Daemon:
    def __init__(self, args=()):
        self.args = list(args)
        self.dir = tempfile.mkdtemp(prefix="siobridge-py-test-")
        self.socket = os.path.join(self.dir, "siobridged.sock")
        self.address = "unix:" + self.socket
        self.process = None

    async def start(self):
        log = open(os.path.join(self.dir, "daemon.log"), "ab")
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
        self.process = await asyncio.create_subprocess_exec(
            daemon_binary(),
            "--listen-unix",
            self.socket,
            "--mongodb-state-dir",
            os.path.join(self.dir, "state"),
            *self.args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
        )
        log.close()
        try:
            await self.status(timeout=30)
        except BaseException:
            await self.stop()  # never left running behind a failed start
            raise
        return self

    async def status(self, timeout=10):
        """The daemon's Status, waiting for it to answer (gRPC wait-for-ready)."""
        async with aio.insecure_channel(self.address) as channel:
            return await pb_grpc.BridgeStub(channel).Status(pb.StatusRequest(), timeout=timeout, wait_for_ready=True)

    def channel(self):
        """A raw API channel, for calls the manager would never make."""
        return aio.insecure_channel(self.address)

    async def stop(self):
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        await self.process.wait()

    async def kill(self):
        """kill -9: the daemon dies with whatever it was doing."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.kill()
        await self.process.wait()

    async def restart(self):
        await self.stop()
        await self.start()

    def log(self):
        with open(os.path.join(self.dir, "daemon.log"), encoding="utf-8", errors="replace") as f:
            return f.read()

    async def dispose(self):
        await self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


async def eventually(check, timeout=20, what="condition"):
    """Asks `check` (a coroutine function) again until it holds: for state of another process."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = await check()
            if last:
                return last
        except Exception as error:  # not there yet
            last = error
        await asyncio.sleep(0.025)
    raise AssertionError(f"{what} did not hold within {timeout} s (last: {last!r})")


async def start_daemons(kind, database, request_timeout="3s"):
    common = ["--node-request-timeout", request_timeout, "--node-local-timeout", "1s"]
    if kind == "memory":
        daemon = await Daemon(common).start()
        return [daemon, daemon]
    args = [
        "--mongodb-uri",
        os.environ["MONGODB_URI"],
        "--mongodb-database",
        database,
        "--node-heartbeat-interval",
        "1s",
        "--node-heartbeat-timeout",
        "5s",
        *common,
    ]
    # One after the other: the test MongoDB cannot take concurrent collection creation.
    started = []
    try:
        for which in ("first", "second"):
            daemon = Daemon(args)
            started.append(daemon)
            await daemon.start()
            await eventually(lambda: _ready(daemon), 30, f"{which} daemon's bus ready")
    except BaseException:
        for daemon in started:  # none is left running when the topology cannot start
            await daemon.dispose()
        raise
    return started


async def _ready(daemon):
    return (await daemon.status()).bus_state == "ready"


__all__ = ["Daemon", "eventually", "start_daemons", "daemon_binary", "grpc"]
