"""SiobridgeEmitter and AsyncSiobridgeEmitter: a process with no socket.io
server sends to the sockets of a Node.js server, a python-socketio
AsyncServer and a Flask-SocketIO server on one daemon. Each call reaches
exactly the sockets socket.io's own emitters would reach; an emitter without
a daemon, with a bad namespace or with a payload past the daemon's limit gets
a clear error at once."""

import asyncio

import pytest

from siobridge_socketio import AsyncSiobridgeEmitter, SiobridgeEmitter, SiobridgeError
from support.daemon import Daemon, eventually
from support.peers import NodeClients, ServerPeer


class World:
    def __init__(self):
        self.peers = []

    async def start(self):
        self.daemon = await Daemon(
            ["--limits-max-message-bytes", "64KiB", "--node-request-timeout", "3s", "--node-local-timeout", "1s"]
        ).start()
        for kind, label, options in (("node", "node", {}), ("python", "py", {}), ("flask", "flask", {"mode": "threading"})):
            peer = ServerPeer(kind, self.daemon.address, label, **options)
            self.peers.append(peer)
            await peer.start()
        self.node, self.py, self.flask = self.peers
        self.clients = NodeClients("node-clients")
        self.peers.append(self.clients)
        await self.clients.start()

        async def counted():
            return all([await server.do("serverCount") == 3 for server in (self.node, self.py, self.flask)])

        await eventually(counted, 30, "three servers counted")

    async def stop(self):
        for peer in reversed(self.peers):
            await peer.stop()
        await self.daemon.dispose()


@pytest.fixture(scope="module")
def world(loop):
    world = World()
    try:
        loop.run_until_complete(world.start())
        yield world
    finally:
        loop.run_until_complete(world.stop())


class Emitter:
    """One interface over both emitters: the blocking one runs in a thread."""

    def __init__(self, kind, address, **options):
        self.kind = kind
        self.inner = (SiobridgeEmitter if kind == "sync" else AsyncSiobridgeEmitter)(address, **options)

    async def __call__(self, method, *args, **kwargs):
        function = getattr(self.inner, method)
        if self.kind == "sync":
            return await asyncio.to_thread(function, *args, **kwargs)
        return await function(*args, **kwargs)

    async def close(self):
        await self("close")


KINDS = [pytest.param("sync", id="SiobridgeEmitter"), pytest.param("async", id="AsyncSiobridgeEmitter")]


@pytest.mark.parametrize("kind", KINDS)
async def test_each_call_reaches_the_sockets_socket_ios_emitters_would(world, kind):
    w = world
    n1 = await w.clients.connect(w.node, rooms=["a"])
    n2 = await w.clients.connect(w.node, rooms=["a", "b"])
    p1 = await w.clients.connect(w.py, rooms=["b"])
    p2 = await w.clients.connect(w.py, rooms=["a"])
    f1 = await w.clients.connect(w.flask, rooms=["a", "c"])
    everyone = {"n1": n1, "n2": n2, "p1": p1, "p2": p2, "f1": f1}
    emitter = Emitter(kind, w.daemon.address)
    try:
        await emitter("emit", "e", 1)
        await emitter("emit", "e", 2, to="a")
        await emitter("emit", "e", 3, to=["b", "c"])
        await emitter("emit", "e", 4, to="a", skip_sid="b")
        await emitter("emit", "e", 5, to=p1.sid)
        await emitter("emit", "e", (6, {"two": "args"}), room="c")
        await emitter("emit", "e", 7, namespace="/elsewhere")
        await emitter("emit", "e", b"\x00\x01", to=n1.sid)
        await emitter("emit", "end")
        for client in everyone.values():
            await client.next("end")
        got = {name: client.received("e") for name, client in everyone.items()}
        assert got == {
            "n1": [[1], [2], [4], [{"$binary": "AAE="}]],
            "n2": [[1], [2], [3]],
            "p1": [[1], [3], [5]],
            "p2": [[1], [2], [4]],
            "f1": [[1], [2], [3], [4], [6, {"two": "args"}]],
        }

        # Sockets join and leave rooms wherever they are; a room selects too.
        await emitter("enter_room", n1.sid, "d")
        await emitter("enter_room", "b", ["d", "dd"])
        await emitter("emit", "in-d", to="d")
        await emitter("leave_room", n1.sid, "d")
        await emitter("close_room", "dd")
        await emitter("emit", "in-d", to=["d", "dd"])
        await emitter("emit", "end")
        for client in everyone.values():
            await client.next("end", 2)
        got = {name: len(client.received("in-d")) for name, client in everyone.items()}
        assert got == {"n1": 1, "n2": 2, "p1": 2, "p2": 0, "f1": 0}

        before = {server.label: len(await server.do("received")) for server in (w.node, w.py, w.flask)}
        await emitter("server_side_emit", "server-note", ("from an emitter", 1))

        async def every_server_heard():
            for server in (w.node, w.py, w.flask):
                notes = await server.do("received")
                if len(notes) != before[server.label] + 1:
                    return False
                assert notes[-1]["args"] == ["from an emitter", 1]
            return True

        await eventually(every_server_heard, 15, "every server received the server-side emit")

        await emitter("disconnect", p1.sid)
        assert await p1.disconnected() == "io server disconnect"
        await emitter("disconnect", "c", close=True)
        assert await f1.disconnected() in ("io server disconnect", "transport close")  # long-polling
        for name in ("n1", "n2", "p2"):
            assert await everyone[name].connected() is True
    finally:
        await emitter.close()
        for client in everyone.values():
            await client.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_an_emitter_without_a_daemon_fails_at_once(kind):
    # An hour to answer: waiting for a daemon would end in the test's deadline.
    emitter = Emitter(kind, "unix:/nonexistent/siobridged.sock", timeout=3600)
    try:
        with pytest.raises(SiobridgeError) as refused:
            await emitter("emit", "news", 1)
        assert refused.value.code == 14  # UNAVAILABLE
        assert str(refused.value).startswith("siobridged is not reachable at unix:/nonexistent/siobridged.sock: ")
    finally:
        await emitter.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_bad_namespaces_and_payloads_past_the_limit_get_clear_errors(world, kind):
    w = world
    client = await w.clients.connect(w.node)
    emitter = Emitter(kind, w.daemon.address)
    try:
        with pytest.raises(SiobridgeError) as refused:
            await emitter("emit", "news", 1, namespace="chat")
        assert refused.value.code == 3  # INVALID_ARGUMENT
        assert "namespace \"chat\" must start with '/'" in str(refused.value)
        with pytest.raises(SiobridgeError) as refused:
            await emitter("server_side_emit", "note", namespace="chat")
        assert refused.value.code == 3

        for size in (100 << 10, 5 << 20):  # past the daemon's limit, and past gRPC's
            with pytest.raises(SiobridgeError) as refused:
                await emitter("emit", "big", "x" * size)
            assert refused.value.code == 8  # RESOURCE_EXHAUSTED
            assert str(refused.value) == (
                f"broadcast: payload of {size + 10} bytes exceeds max_message_bytes (65536) of siobridged: not sent"
            )
        with pytest.raises(SiobridgeError) as refused:
            await emitter("server_side_emit", "big", "x" * (100 << 10))
        assert refused.value.code == 8

        await emitter("emit", "after", 1)
        assert await client.next("after") == [[1]]
        assert client.received("big") == []
    finally:
        await emitter.close()
        await client.close()
