"""Connection state recovery with a python-socketio server in the cluster: a
Node.js server with recovery on, its socket.io-client client losing its
transport while the Python server (and the Node one) broadcast; on reconnection
the client gets its session back and every packet it missed, the Python
server's included, each once and in order (docs/recovery.md)."""

import secrets

import pytest

from conftest import topology_params
from support.daemon import eventually, start_daemons
from support.peers import NodeClients, ServerPeer

RECOVERY = {"maxDisconnectionDuration": 60000, "skipMiddlewares": True}


@pytest.fixture(scope="module", params=topology_params())
def peers(request, loop):
    started = {}

    async def start():
        started["daemons"] = await start_daemons(request.param, f"siobridge_py_recovery_{secrets.token_hex(5)}")
        started["node"] = ServerPeer("node", started["daemons"][0].address, "node", recovery=RECOVERY)
        await started["node"].start()
        started["py"] = ServerPeer("python", started["daemons"][1].address, "py")
        await started["py"].start()
        started["clients"] = NodeClients("node-clients")
        await started["clients"].start()

        async def both_counted():
            return await started["node"].do("serverCount") == 2

        await eventually(both_counted, 30, "both servers counted")

    async def stop():
        for name in ("clients", "py", "node"):
            if name in started:
                await started[name].stop()
        for daemon in {id(d): d for d in started.get("daemons", [])}.values():
            await daemon.dispose()

    try:
        loop.run_until_complete(start())
        yield started
    finally:
        loop.run_until_complete(stop())


def texts(client, event):
    # With recovery on, every recoverable packet ends with its offset.
    return [args[0] for args in client.received(event)]


async def test_packets_of_a_python_server_are_recovered_once_in_order(peers):
    node, py, clients = peers["node"], peers["py"], peers["clients"]
    client = await clients.connect(node)
    await py.do("emit", event="n", args=["first"])
    await client.next("n", 1)
    await clients.do("drop", client=client.handle)

    async def close_seen():
        return not any(s["id"] == client.sid for s in await node.do("sockets"))

    await eventually(close_seen, 15, "the Node server saw the close")
    for i in range(50):
        await py.do("emit", event="n", args=[f"py-{i}"])
    await node.do("emit", event="n", args=["node-last"])
    result = await clients.do("reconnect", client=client.handle)
    assert result["recovered"] is True
    assert result["sid"] == client.sid
    await client.next("n", 52)
    got = texts(client, "n")
    assert sorted(got) == sorted(["first", "node-last"] + [f"py-{i}" for i in range(50)])
    assert [t for t in got if t.startswith("py-")] == [f"py-{i}" for i in range(50)]
