"""SiobridgeManager under Flask-SocketIO (python-socketio's blocking Server),
in its own process, under threading and under gevent, beside a Node.js
socket.io server on one daemon: order over 1,000 emits both ways, a daemon
restarted under it, calls too large for the daemon, and the async modes it
refuses. The operations of both languages against it are test_cluster.py's
(its Flask-SocketIO topologies)."""

import pytest
import socketio

from siobridge_socketio import SiobridgeError, SiobridgeManager
from support.daemon import Daemon, eventually
from support.peers import Inbox, NodeClients, ServerPeer, python_client

MODES = [pytest.param("threading", id="flask-threading"), pytest.param("gevent", id="flask-gevent")]


class Started:
    """Processes and daemons a test started, stopped when it ends."""

    def __init__(self):
        self.peers = []
        self.daemons = []
        self.clients = []

    async def daemon(self, *args):
        daemon = Daemon(["--node-request-timeout", "3s", "--node-local-timeout", "1s", *args])
        self.daemons.append(daemon)
        return await daemon.start()

    async def server(self, kind, address, label, **options):
        peer = ServerPeer(kind, address, label, **options)
        self.peers.append(peer)
        return await peer.start()

    async def node_clients(self):
        peer = NodeClients("node-clients")
        self.peers.append(peer)
        return await peer.start()

    async def python_client(self, server, **options):
        client = await python_client(server, **options)
        self.clients.append(client)
        return client

    async def stop(self):
        for client in self.clients:
            try:
                await client.disconnect()
            except Exception:
                pass
        for peer in reversed(self.peers):
            await peer.stop()
        for daemon in self.daemons:
            await daemon.dispose()


@pytest.fixture
def started(loop):
    started = Started()
    yield started
    loop.run_until_complete(started.stop())


async def counted(servers, n):
    async def check():
        return all([await server.do("serverCount") == n for server in servers])

    await eventually(check, 30, f"{n} servers counted")


@pytest.mark.parametrize("mode", MODES)
async def test_a_thousand_numbered_emits_arrive_in_order_both_ways(started, mode):
    daemon = await started.daemon()
    node = await started.server("node", daemon.address, "node")
    flask = await started.server("flask", daemon.address, "flask", mode=mode)
    await counted([node, flask], 2)
    assert (await flask.do("state"))["mode"] == mode
    clients = await started.node_clients()
    on_node = await clients.connect(node, rooms=["numbers"])
    node_on_flask = await clients.connect(flask, rooms=["numbers"])
    inboxes = []
    if flask.transports == ["websocket"]:
        # python-engineio 4.3.4's asyncio client over long-polling loses
        # events that arrive several to a poll, with or without siobridge:
        # python clients are checked where the server has websocket.
        on_flask = await started.python_client(flask, rooms=["numbers"])
        inboxes = [Inbox(on_flask, "n"), Inbox(on_flask, "m")]

    await flask.do("emitNumbered", event="n", to="numbers", count=1000, wait=60)
    assert [args[0] for args in await on_node.next("n", 1000, timeout=60)] == list(range(1000))
    assert [args[0] for args in await node_on_flask.next("n", 1000, timeout=60)] == list(range(1000))

    await node.do("emit", event="m", rooms=["numbers"], times=1000, numbered=True)
    assert [args[0] for args in await node_on_flask.next("m", 1000, timeout=60)] == list(range(1000))
    for inbox in inboxes:
        assert [args[0] for args in await inbox.next(1000, timeout=60)] == list(range(1000))
    assert await flask.do("errors") == []


@pytest.mark.parametrize("mode", MODES)
async def test_a_daemon_restarted_under_the_sync_server(started, mode):
    """The manager reattaches by itself; what it emitted while the daemon was
    away goes out once it is back, and nothing sent toward it afterwards is lost."""
    daemon = await started.daemon()
    node = await started.server("node", daemon.address, "node")
    flask = await started.server("flask", daemon.address, "flask", mode=mode)
    await counted([node, flask], 2)
    clients = await started.node_clients()
    receiver = await clients.connect(node)
    on_flask = await clients.connect(flask)

    for i in range(5):
        await flask.do("emit", event="msg", args=[i])
    await receiver.next("msg", 5)

    await daemon.stop()

    async def detached():
        return not (await flask.do("state"))["attached"]

    await eventually(detached, 20, "the manager saw the daemon go")
    for i in range(5, 8):  # queued while the daemon is away
        await flask.do("emit", event="msg", args=[i])

    await daemon.start()

    async def attached():
        return (await flask.do("state"))["attached"]

    await eventually(attached, 30, "the manager reattached")
    await counted([node, flask], 2)
    for i in range(8, 12):
        await flask.do("emit", event="msg", args=[i])
    await flask.do("emit", event="end")
    await receiver.next("end")
    # The Node server reattached on its own: what was sent while it was not
    # there yet may have missed it (at most once), the rest arrived once.
    got = receiver.received("msg")
    assert got[:5] == [[i] for i in range(5)] and got[-4:] == [[i] for i in range(8, 12)]
    assert len(got) == len({i for [i] in got})

    await node.do("emit", event="back", times=100, numbered=True)
    assert [args[0] for args in await on_flask.next("back", 100)] == list(range(100))
    reported = [e["message"] for e in flask.errors()]
    assert reported and all("siobridged stream" in message for message in reported)


@pytest.mark.parametrize("mode", MODES)
async def test_a_call_too_large_for_the_daemon_is_refused_alone(started, mode):
    daemon = await started.daemon("--limits-max-message-bytes", "64KiB")
    node = await started.server("node", daemon.address, "node")
    flask = await started.server("flask", daemon.address, "flask", mode=mode)
    await counted([node, flask], 2)
    clients = await started.node_clients()
    receiver = await clients.connect(node)
    await flask.do("emit", event="n", args=["x" * (5 << 20)])
    for i in range(20):
        await flask.do("emit", event="n", args=[i])
    assert [args[0] for args in await receiver.next("n", 20)] == list(range(20))
    reported = await flask.wait_event(lambda e: e.get("event") == "adapter-error")
    assert reported[0]["code"] == 8  # RESOURCE_EXHAUSTED
    assert "broadcast: payload of 5242888 bytes exceeds max_message_bytes (65536) of siobridged: not sent" in reported[0]["message"]
    assert (await flask.do("state"))["attached"]


def test_eventlet_is_refused_with_a_reason():
    with pytest.raises(SiobridgeError) as refused:
        socketio.Server(client_manager=SiobridgeManager("unix:/nowhere"), async_mode="eventlet")
    assert refused.value.code == 9  # FAILED_PRECONDITION
    assert "does not run under eventlet" in str(refused.value)


def test_gevent_without_the_standard_library_patched_is_refused_with_a_reason():
    with pytest.raises(SiobridgeError) as refused:
        socketio.Server(client_manager=SiobridgeManager("unix:/nowhere"), async_mode="gevent")
    assert refused.value.code == 9
    assert "gevent.monkey.patch_all()" in str(refused.value)


def test_rooms_of_any_other_type_are_refused_where_they_are_made():
    manager = SiobridgeManager("unix:/nowhere")
    server = socketio.Server(client_manager=manager, async_mode="threading")
    try:
        with pytest.raises(SiobridgeError) as refused:
            server.enter_room("some-sid", ("a", "tuple"))
        assert refused.value.code == 3
        assert "a room of type tuple" in str(refused.value)
    finally:
        manager.close()
