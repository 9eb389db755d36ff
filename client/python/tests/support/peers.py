"""The processes a test drives: socket.io servers (Node.js with the siobridge
adapter, Python with the siobridge manager) and Node.js socket.io-client
clients, each in its own process, spoken to over a socket pair with Node's
IPC framing (one JSON message a line): {id, op, ...} is answered {id, result}
or {id, error}; other messages are events.

Also the Python clients (socketio.AsyncClient, in the test's process) and
Inbox, which collects received events.

Used from the tests' one event loop; not thread-safe.
"""

import asyncio
import base64
import json
import os
import signal
import socket
import sys
import time

import socketio

from .daemon import ROOT

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(ROOT, "client", "node")


def describe(value):
    """Bytes as {"$binary": base64}, the harness's JSON form of binary data."""
    if isinstance(value, (bytes, bytearray)):
        return {"$binary": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, (list, tuple)):
        return [describe(item) for item in value]
    if isinstance(value, dict):
        return {key: describe(item) for key, item in value.items()}
    return value


def binary(data):
    return {"$binary": base64.b64encode(data).decode()}


class PeerError(Exception):
    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


class Peer:
    """A child process spoken to over IPC."""

    def __init__(self, label):
        self.label = label
        self.pending = {}
        self.events = []
        self.waiters = []
        self.next_id = 1
        self.process = None
        self.writer = None

    async def spawn(self, argv, env):
        ours, theirs = socket.socketpair()
        env = dict(os.environ, **env, NODE_CHANNEL_FD=str(theirs.fileno()), NODE_CHANNEL_SERIALIZATION_MODE="json")
        env["SIOBRIDGE_TEST_IPC_FD"] = str(theirs.fileno())
        ready = asyncio.get_running_loop().create_future()
        self._ready = ready
        self.process = await asyncio.create_subprocess_exec(
            *argv, env=env, pass_fds=[theirs.fileno()], stdin=asyncio.subprocess.DEVNULL
        )
        theirs.close()
        reader, self.writer = await asyncio.open_unix_connection(sock=ours, limit=64 << 20)
        self._reader = asyncio.get_running_loop().create_task(self._read(reader))
        try:
            await asyncio.wait_for(ready, 30)
        except BaseException:
            await self.stop()  # never left running behind a failed start
            raise
        return self

    async def _read(self, reader):
        while True:
            line = await reader.readline()
            if not line:
                break
            message = json.loads(line)
            if message.get("event") == "ready" and not self._ready.done():
                self._ready.set_result(message)
            if "id" in message and message["id"] in self.pending:
                future = self.pending.pop(message["id"])
                if not future.done():
                    if message.get("error") is not None:
                        future.set_exception(PeerError(f"{self.label}: {message['error']}", message.get("code")))
                    else:
                        future.set_result(message.get("result"))
            elif "event" in message:
                self.events.append(message)
                for waiter in self.waiters[:]:
                    if not waiter.done():
                        waiter.set_result(None)
                self.waiters.clear()
        for future in self.pending.values():
            if not future.done():
                future.set_exception(PeerError(f"{self.label} exited"))

    async def do(self, op, wait=30, **args):
        """Runs `op` in the process; `wait`: seconds to wait for its answer."""
        message_id = self.next_id
        self.next_id += 1
        future = asyncio.get_running_loop().create_future()
        self.pending[message_id] = future
        self.writer.write((json.dumps({"id": message_id, "op": op, **args}) + "\n").encode())
        await self.writer.drain()
        return await asyncio.wait_for(future, wait)

    async def wait_event(self, match, count=1, timeout=15):
        """The first `count` events for which match(event) holds."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.events if match(e)]
            if len(found) >= count:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.label}: expected {count} events, got {found}")
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, left)
            except asyncio.TimeoutError:
                pass

    def errors(self):
        return [e for e in self.events if e.get("event") == "adapter-error"]

    async def stop(self):
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except asyncio.TimeoutError:
            self.process.kill()
            await self.process.wait()
        if self.writer is not None:
            self.writer.close()


class ServerPeer(Peer):
    """A socket.io server process; `kind` is "node" or "python"."""

    def __init__(self, kind, address, label, **options):
        super().__init__(label)
        self.kind = kind
        self.options = {"address": address, "label": label, **options}
        # Flask-SocketIO under threading has engine.io long-polling only
        # (Debian has no simple-websocket); clients of it poll.
        threaded = kind == "flask" and options.get("mode", "threading") == "threading"
        self.transports = ["polling"] if threaded else ["websocket"]

    async def start(self):
        if self.kind == "node":
            argv = ["node", os.path.join(NODE_DIR, "test", "support", "server-process.cjs")]
        elif self.kind == "flask":
            argv = [sys.executable, os.path.join(HERE, "flask_server_process.py")]
        else:
            argv = [sys.executable, os.path.join(HERE, "server_process.py")]
        await self.spawn(argv, {"SIOBRIDGE_TEST_SERVER": json.dumps(self.options)})
        self.ports = await self.do("ports")
        self.urls = [f"http://127.0.0.1:{port}" for port in self.ports]
        self.url = self.urls[0]
        return self


class NodeClients(Peer):
    """A process holding Node.js socket.io-client sockets."""

    async def start(self):
        env = {"NODE_PATH": os.path.join(NODE_DIR, "node_modules")}
        return await self.spawn(["node", os.path.join(HERE, "node_clients.cjs")], env)

    async def connect(self, server, namespace="/", rooms=(), user=None, answers=None, index=0):
        """A client of `server` (its socket.io server `index`); answers: {event: ack value}."""
        result = await self.do(
            "connect",
            url=server.urls[index] + namespace,
            auth={"rooms": list(rooms), "user": user},
            answers=answers or {},
            transports=server.transports,
        )
        return NodeClient(self, result["client"], result["sid"])


class NodeClient:
    def __init__(self, peer, handle, sid):
        self.peer = peer
        self.handle = handle
        self.sid = sid

    def received(self, event):
        return [
            e["args"]
            for e in self.peer.events
            if e.get("event") == "client-event" and e["client"] == self.handle and e["name"] == event
        ]

    async def next(self, event, count=1, timeout=15):
        found = await self.peer.wait_event(
            lambda e: e.get("event") == "client-event" and e["client"] == self.handle and e["name"] == event,
            count,
            timeout,
        )
        return [e["args"] for e in found]

    async def disconnected(self, timeout=15):
        found = await self.peer.wait_event(
            lambda e: e.get("event") == "client-disconnect" and e["client"] == self.handle, 1, timeout
        )
        return found[0]["reason"]

    async def companion(self, namespace):
        result = await self.peer.do("companion", client=self.handle, namespace=namespace)
        return NodeClient(self.peer, result["client"], result["sid"])

    async def emit(self, event, *args):
        return await self.peer.do("emit", client=self.handle, event=event, args=list(args))

    async def connected(self):
        return await self.peer.do("connected", client=self.handle)

    async def close(self):
        await self.peer.do("close", client=self.handle)


class Inbox:
    """Collects one event of a python-socketio AsyncClient."""

    def __init__(self, client, event, namespace="/", answer=None):
        self.items = []
        self.changed = asyncio.Event()
        self.answer = answer

        async def handler(*args):
            self.items.append(list(args))
            self.changed.set()
            return self.answer(args) if self.answer else None

        client.on(event, handler, namespace=namespace)

    async def next(self, count=1, timeout=15):
        deadline = time.monotonic() + timeout
        while len(self.items) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"expected {count} events, got {self.items}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                pass
        return self.items


async def python_client(server, namespace="/", rooms=(), user=None, index=0):
    """A python-socketio AsyncClient connected to `server` (websocket, or
    long-polling where the server has no websocket)."""
    client = socketio.AsyncClient(reconnection=False)
    client.gone = asyncio.get_running_loop().create_future()

    def on_disconnect(*args):
        if not client.gone.done():
            client.gone.set_result(True)

    client.on("disconnect", on_disconnect, namespace=namespace)
    await client.connect(
        server.urls[index],
        namespaces=[namespace],
        transports=server.transports,
        auth={"rooms": list(rooms), "user": user},
        wait_timeout=10,
    )
    client.sid_in = client.get_sid(namespace)
    return client
