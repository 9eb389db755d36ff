"""pytest set-up: one asyncio event loop for the session, on which coroutine
tests run (no plugin needed), and the topologies the suites share.

Single-threaded; the loop runs only inside run_until_complete.
"""

import asyncio
import inspect
import os
import secrets
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support.daemon import eventually, start_daemons  # noqa: E402
from support.peers import NodeClients, ServerPeer, python_client  # noqa: E402

TEST_TIMEOUT = 90


@pytest.fixture(scope="session", autouse=True)
def loop():
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    loop.close()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    loop = pyfuncitem.funcargs["loop"] if "loop" in pyfuncitem.funcargs else asyncio.get_event_loop()
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    loop.run_until_complete(asyncio.wait_for(pyfuncitem.obj(**args), TEST_TIMEOUT))
    return True


class Cluster:
    """A Node.js server and a Python server, each on a daemon (the same one
    for the memory bus), a process of Node.js clients, and Python clients.
    The Python server is python-socketio's AsyncServer (aiohttp) with
    AsyncSiobridgeManager, or Flask-SocketIO (socketio.Server) with
    SiobridgeManager under threading or gevent."""

    def __init__(self, kind, python="aiohttp"):
        self.kind = kind
        self.python = python
        self.daemons = []
        self.clients = []

    async def start(self):
        # Long cluster timeouts: a server that does not answer shows as a
        # test that runs into its deadline, not as a quietly partial result.
        self.daemons = await start_daemons(
            self.kind, f"siobridge_py_test_{secrets.token_hex(5)}", request_timeout="30s"
        )
        # Assigned before starting: stop() ends whatever did start.
        self.node = ServerPeer("node", self.daemons[0].address, "node", requestsTimeout=30000)
        await self.node.start()
        if self.python == "aiohttp":
            self.py = ServerPeer("python", self.daemons[1].address, "py", requestsTimeout=30000)
        else:
            self.py = ServerPeer("flask", self.daemons[1].address, "py", requestsTimeout=30000, mode=self.python)
        await self.py.start()
        self.node_clients = NodeClients("node-clients")
        await self.node_clients.start()

        async def both_counted():
            return await self.node.do("serverCount") == 2 and await self.py.do("serverCount") == 2

        await eventually(both_counted, 30, "both servers counted")

    async def python_client(self, server, **options):
        client = await python_client(server, **options)
        self.clients.append(client)
        return client

    async def node_client(self, server, **options):
        client = await self.node_clients.connect(server, **options)
        self.clients.append(client)
        return client

    async def close_clients(self):
        clients, self.clients = self.clients, []
        for client in clients:
            try:
                if hasattr(client, "handle"):
                    await client.close()
                else:
                    await client.disconnect()
            except Exception:
                pass

    async def stop(self):
        await self.close_clients()
        for peer in ("node_clients", "py", "node"):
            if hasattr(self, peer):
                await getattr(self, peer).stop()
        for daemon in {id(d): d for d in self.daemons}.values():
            await daemon.dispose()


def topology_params():
    return [
        pytest.param("memory", id="memory-bus"),
        pytest.param(
            "mongodb",
            id="two-daemons-mongodb",
            marks=pytest.mark.skipif(not os.environ.get("MONGODB_URI"), reason="MONGODB_URI not set"),
        ),
    ]


def cluster_params():
    """Each topology with the asyncio server; Flask-SocketIO under both modes
    on one daemon, and under threading on two daemons sharing MongoDB."""
    with_mongodb = pytest.mark.skipif(not os.environ.get("MONGODB_URI"), reason="MONGODB_URI not set")
    return [
        pytest.param(("memory", "aiohttp"), id="memory-bus"),
        pytest.param(("memory", "threading"), id="memory-bus-flask-threading"),
        pytest.param(("memory", "gevent"), id="memory-bus-flask-gevent"),
        pytest.param(("mongodb", "aiohttp"), id="two-daemons-mongodb", marks=with_mongodb),
        pytest.param(("mongodb", "threading"), id="two-daemons-mongodb-flask-threading", marks=with_mongodb),
    ]


@pytest.fixture(scope="module", params=cluster_params())
def cluster(request, loop):
    cluster = Cluster(*request.param)
    try:
        loop.run_until_complete(cluster.start())
        yield cluster
    finally:
        loop.run_until_complete(cluster.stop())


@pytest.fixture
def clients(cluster, loop):
    """Closes the clients a test made when it ends."""
    yield cluster
    loop.run_until_complete(cluster.close_clients())
