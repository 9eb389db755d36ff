"""Numbered calls (docs/PROTOCOL.md section 20) from python-socketio servers:
the daemon under a Python server dies (kill -9) while it emits a paced stream
of numbered events toward a Node server on another daemon; once the daemon is
back, every event has reached the Node server's client once and in order. The
manager kept what was not confirmed and sent it again; the daemon applied what
the cluster did not hold yet.

On the code before issue 26 the events written to the dying daemon were lost
(a few per run at this rate), reported as UNAVAILABLE. The ResendBuffer's rules
(pure logic) are tested at the end.
"""

import os
import secrets

import pytest

from support.daemon import eventually, start_daemons
from support.peers import NodeClients, ServerPeer
from siobridge_socketio.resend import ResendBuffer

MONGODB = pytest.mark.skipif(not os.environ.get("MONGODB_URI"), reason="MONGODB_URI not set")
COUNT = 1200
RATE = 200


@MONGODB
@pytest.mark.parametrize("kind", ["python", "threading"])
async def test_kill_9_of_the_daemon_under_a_python_server_loses_and_repeats_nothing(kind):
    daemons = await start_daemons("mongodb", f"siobridge_py_test_{secrets.token_hex(5)}", request_timeout="30s")
    a, b = daemons
    peers = []
    try:
        sender = (
            ServerPeer("python", a.address, "sender")
            if kind == "python"
            else ServerPeer("flask", a.address, "sender", mode=kind)
        )
        peers.append(sender)
        await sender.start()
        node = ServerPeer("node", b.address, "node")
        peers.append(node)
        await node.start()
        clients = NodeClients("clients")
        peers.append(clients)
        await clients.start()

        async def counted():
            return await sender.do("serverCount") == 2 and await node.do("serverCount") == 2

        await eventually(counted, 30, "both servers counted")
        receiver = await clients.connect(node)
        await sender.do("pace", event="n", count=COUNT, rate=RATE)

        async def flowing():
            return await sender.do("paced", event="n") >= RATE

        await eventually(flowing, 30, "the stream flowing")
        await a.kill()
        await a.start()

        async def all_sent():
            return await sender.do("paced", event="n") == COUNT

        await eventually(all_sent, 60, "every event emitted")
        # Behind every numbered event, repeats included: the cluster keeps order.
        await sender.do("emit", event="end")
        await receiver.next("end", timeout=60)
        numbers = [args[0] for args in receiver.received("n")]
        resends = await sender.do("resends")
        assert numbers == list(range(COUNT)), (
            f"missing {sorted(set(range(COUNT)) - set(numbers))[:20]}, {len(numbers) - len(set(numbers))} twice"
        )
        assert resends["given_up"] == 0
    finally:
        for peer in reversed(peers):
            await peer.stop()
        for daemon in daemons:
            await daemon.dispose()


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_resend_buffer_keeps_in_order_until_confirmed():
    buffer = ResendBuffer(max_bytes=100, timeout=10, clock=Clock())
    for seq in (1, 2, 3, 4):
        assert buffer.keep(seq, "broadcast", None, ref=seq, size=10) == 0
    assert buffer.first_seq() == 1
    buffer.confirm(2)
    assert [kept.seq for kept in buffer.pending()] == [3, 4]
    assert buffer.bytes == 20
    assert buffer.forget(4)  # failed: not to be sent again
    assert not buffer.forget(99)
    assert [kept.seq for kept in buffer.pending()] == [3]
    buffer.confirm(1)  # never goes back
    assert buffer.confirmed == 2 and buffer.first_seq() == 3
    buffer.confirm(3)
    assert len(buffer) == 0 and buffer.first_seq() == 0 and buffer.bytes == 0


def test_resend_buffer_lets_the_oldest_go_past_its_bounds():
    clock = Clock()
    buffer = ResendBuffer(max_bytes=25, timeout=10, clock=clock)
    assert buffer.keep(1, "broadcast", None, ref=1, size=10) == 0
    assert buffer.keep(2, "broadcast", None, ref=2, size=10) == 0
    assert buffer.keep(3, "broadcast", None, ref=3, size=10) == 1  # 30 bytes: call 1 goes
    assert [kept.seq for kept in buffer.pending()] == [2, 3]
    clock.now = 10.5
    assert buffer.keep(4, "broadcast", None, ref=4, size=1) == 2  # 2 and 3 waited past 10 s
    assert [kept.seq for kept in buffer.pending()] == [4]
