"""A Node.js socket.io server (@siobridge/socket.io-adapter) and a Python
python-socketio server (AsyncSiobridgeManager) in one cluster, each in its own
process, with Node.js socket.io-client and python-socketio AsyncClient
clients: every operation in both directions. Two topologies: both servers on
one daemon (memory bus), and each on its own daemon sharing the real MongoDB.

The daemons' cluster timeouts are 30 s and every wait here is shorter: a
server that failed to answer the cluster makes the test fail, it does not
return a partial result quietly.
"""

import asyncio
import os

import pytest

from support.daemon import eventually
from support.peers import Inbox, binary

NEWS = ["hello", 42, {"nested": True, "list": [1, 2.5, None]}]


async def test_emit_to_everyone_both_ways(clients):
    c = clients
    node_on_node = await c.node_client(c.node)
    node_on_py = await c.node_client(c.py)
    py_on_node = await c.python_client(c.node)
    py_on_py = await c.python_client(c.py)
    heard_on_node, heard_on_py = Inbox(py_on_node, "news"), Inbox(py_on_py, "news")

    await c.py.do("emit", event="news", args=NEWS)
    assert (await node_on_node.next("news")) == [NEWS]
    assert (await heard_on_node.next()) == [NEWS]
    assert (await node_on_py.next("news")) == [NEWS]
    assert (await heard_on_py.next()) == [NEWS]

    heard_on_py2 = Inbox(py_on_py, "from-node")
    await c.node.do("emit", event="from-node", args=["hi", 1])
    assert (await node_on_py.next("from-node")) == [["hi", 1]]
    assert (await heard_on_py2.next()) == [["hi", 1]]


async def test_python_emits_to_rooms_one_sid_and_skip_sid(clients):
    c = clients
    red = await c.node_client(c.node, rooms=["red"])
    blue = await c.node_client(c.node, rooms=["blue"])
    red_vip = await c.python_client(c.node, rooms=["red", "vip"])
    vip_inbox = Inbox(red_vip, "ev")

    await c.py.do("emit", event="ev", to="red", skip=[red_vip.sid_in], args=["red-but-skipped"])
    await c.py.do("emit", event="ev", to=["red", "blue"], args=["red-or-blue"])
    await c.py.do("emit", event="ev", to=blue.sid, args=["only-blue"])
    await c.py.do("emit", event="ev", ignoreQueue=True, args=["this-server-only"])
    await c.py.do("emit", event="ev", to=["red", "blue"], args=["marker"])
    # The marker was emitted last by the same server: what came before it has arrived.
    assert await red.next("ev", 3) == [["red-but-skipped"], ["red-or-blue"], ["marker"]]
    assert await blue.next("ev", 3) == [["red-or-blue"], ["only-blue"], ["marker"]]
    assert await vip_inbox.next(2) == [["red-or-blue"], ["marker"]]


async def test_node_emits_to_rooms_except_and_one_sid_on_python(clients):
    c = clients
    red = await c.python_client(c.py, rooms=["red"])
    blue = await c.node_client(c.py, rooms=["blue"])
    red_vip = await c.node_client(c.py, rooms=["red", "vip"])
    red_inbox = Inbox(red, "ev")

    await c.node.do("emit", event="ev", rooms=["red"], **{"except": ["vip"]}, args=["red-not-vip"])
    await c.node.do("emit", event="ev", rooms=[blue.sid], args=["to-one-sid"])
    await c.node.do("emit", event="ev", local=True, args=["node-only"])
    await c.node.do("emit", event="ev", rooms=["red", "blue"], args=["marker"])
    assert await red_inbox.next(2) == [["red-not-vip"], ["marker"]]
    assert await blue.next("ev", 2) == [["to-one-sid"], ["marker"]]
    assert await red_vip.next("ev") == [["marker"]]


async def test_binary_payloads_both_ways(clients):
    c = clients
    node_on_node = await c.node_client(c.node)
    py_on_node = await c.python_client(c.node)
    node_on_py = await c.node_client(c.py)
    py_on_py = await c.python_client(c.py)
    bytes_ = os.urandom(3000)
    on_node, on_py = Inbox(py_on_node, "file"), Inbox(py_on_py, "file")

    await c.py.do("emit", event="file", args=["name.bin", binary(bytes_), {"inner": binary(b"\x00\x01")}])
    expected = ["name.bin", binary(bytes_), {"inner": binary(b"\x00\x01")}]
    assert (await node_on_node.next("file")) == [expected]
    assert (await on_node.next()) == [["name.bin", bytes_, {"inner": b"\x00\x01"}]]

    await c.node.do("emit", event="file", args=["from-node", binary(b"\xff\x00\xfe")])
    # (the Python server's broadcast above reached these clients first)
    assert (await node_on_py.next("file", 2))[-1] == ["from-node", binary(b"\xff\x00\xfe")]
    assert (await on_py.next(2))[-1] == ["from-node", b"\xff\x00\xfe"]


async def test_node_emit_with_ack_collects_python_clients_acks(clients):
    c = clients
    node_on_py = await c.node_client(c.py, rooms=["ackers"], answers={"question": binary(b"\x01\x02\x03")})
    py_on_py = await c.python_client(c.py, rooms=["ackers"])
    Inbox(py_on_py, "question", answer=lambda args: "from python")
    node_on_node = await c.node_client(c.node, rooms=["ackers"], answers={"question": "from node"})

    reply = await c.node.do("emitWithAck", event="question", rooms=["ackers"], timeout=60000, wait=15)
    assert "error" not in reply
    assert sorted(map(str, reply["responses"])) == sorted(
        map(str, [binary(b"\x01\x02\x03"), "from python", "from node"])
    )
    assert node_on_py.received("question") == [[]]
    assert node_on_node.received("question") == [[]]


async def test_node_emit_with_ack_to_nobody_on_python_completes(clients):
    c = clients
    await c.python_client(c.py)  # a socket that does not match
    reply = await c.node.do("emitWithAck", event="question", rooms=["nobody-here"], timeout=60000, wait=15)
    assert reply == {"responses": []}


async def test_python_emit_with_callback_to_node_sockets(clients):
    c = clients
    one = await c.node_client(c.node, answers={"question": "node answers", "bytes?": binary(b"\x07\x08")})
    reply = await c.py.do("emitWithCallback", event="question", to=one.sid, args=["why?"])
    assert reply == {"answers": [["node answers"]]}
    assert one.received("question") == [["why?"]]
    reply = await c.py.do("call", event="bytes?", to=one.sid)
    assert reply == {"result": binary(b"\x07\x08")}

    # A room spanning both servers: one callback per answering client.
    await c.node_client(c.node, rooms=["poll"], answers={"poll": "yes from node server"})
    await c.node_client(c.py, rooms=["poll"], answers={"poll": "yes from python server"})
    reply = await c.py.do("emitWithCallback", event="poll", to="poll", count=2)
    assert sorted(a[0] for a in reply["answers"]) == ["yes from node server", "yes from python server"]


async def test_node_fetch_sockets_sees_python_sockets_with_handshake_and_data(clients):
    c = clients
    ada = await c.python_client(c.py, rooms=["fs", "special"], user="ada")
    Inbox(ada, "whoami", answer=lambda args: "I am ada")
    bob = await c.node_client(c.node, rooms=["fs"], user="bob")
    sockets = await c.node.do("fetchSockets", rooms=["fs"], wait=15)
    by_id = {s["id"]: s for s in sockets}
    assert set(by_id) == {ada.sid_in, bob.sid}
    assert by_id[ada.sid_in]["auth"] == {"rooms": ["fs", "special"], "user": "ada"}
    assert by_id[ada.sid_in]["rooms"] == sorted([ada.sid_in, "fs", "special"])
    assert by_id[ada.sid_in]["data"] == {"user": "ada", "label": "py"}

    reply = await c.node.do("remoteEmitWithAck", socketId=ada.sid_in, event="whoami", wait=15)
    assert reply == {"response": "I am ada"}
    await c.node.do("remoteJoin", socketId=ada.sid_in, join="joined-remotely")
    after = await c.node.do("fetchSockets", rooms=["joined-remotely"], wait=15)
    assert [s["id"] for s in after] == [ada.sid_in]


async def test_python_fetch_sockets_sees_node_sockets_with_handshake_and_data(clients):
    c = clients
    bob = await c.node_client(c.node, rooms=["pfs"], user="bob")
    ann = await c.python_client(c.py, rooms=["pfs"], user="ann")
    sockets = await c.py.do("fetchSockets", rooms=["pfs"])
    by_id = {s["id"]: s for s in sockets}
    assert set(by_id) == {bob.sid, ann.sid_in}
    assert by_id[bob.sid] == {
        "id": bob.sid, "auth": {"rooms": ["pfs"], "user": "bob"}, "rooms": sorted([bob.sid, "pfs"]),
        "data": {"user": "bob", "label": "node"}, "local": False,
    }
    assert by_id[ann.sid_in]["local"] is True
    assert by_id[ann.sid_in]["data"] == {"user": "ann", "label": "py"}
    local = await c.py.do("fetchSockets", rooms=["pfs"], local=True)
    assert [s["id"] for s in local] == [ann.sid_in]
    skipped = await c.py.do("fetchSockets", rooms=["pfs"], skip=[bob.sid])
    assert [s["id"] for s in skipped] == [ann.sid_in]

    assert await c.py.do("remoteEmit", socketId=bob.sid, event="direct", args=["to bob"]) == 1
    assert (await bob.next("direct")) == [["to bob"]]


async def test_node_sockets_join_and_leave_python_sockets(clients):
    c = clients
    member = await c.python_client(c.py, rooms=["team"])
    outsider = await c.python_client(c.py)

    async def ids(room):
        return sorted(s["id"] for s in await c.node.do("fetchSockets", rooms=[room], wait=15))

    await c.node.do("socketsJoin", rooms=["team"], join="team-chat")
    await c.node.do("socketsJoin", rooms=[outsider.sid_in], join="solo")
    # Calls of one server are applied in order: the fetch sees the joins.
    assert await ids("team-chat") == [member.sid_in]
    assert await ids("solo") == [outsider.sid_in]
    heard = Inbox(member, "in-team-chat")
    await c.node.do("emit", event="in-team-chat", rooms=["team-chat"], args=[1])
    assert await heard.next() == [[1]]
    await c.node.do("socketsLeave", rooms=["team"], leave="team-chat")
    assert await ids("team-chat") == []


async def test_python_enter_leave_and_close_rooms_of_node_sockets(clients):
    c = clients
    node_socket = await c.node_client(c.node)
    in_closing = await c.node_client(c.node, rooms=["closing"])
    py_in_closing = await c.python_client(c.py, rooms=["closing"])

    async def ids(room):
        return sorted(s["id"] for s in await c.py.do("fetchSockets", rooms=[room]))

    await c.py.do("enterRoom", sid=node_socket.sid, room="made-in-python")
    assert await ids("made-in-python") == [node_socket.sid]
    await c.py.do("emit", event="hello-room", to="made-in-python", args=["welcome"])
    assert (await node_socket.next("hello-room")) == [["welcome"]]
    await c.py.do("leaveRoom", sid=node_socket.sid, room="made-in-python")
    assert await ids("made-in-python") == []

    assert await ids("closing") == sorted([in_closing.sid, py_in_closing.sid_in])
    await c.py.do("closeRoom", room="closing")
    assert await ids("closing") == []
    assert sorted(s["id"] for s in await c.node.do("fetchSockets", rooms=["closing"], wait=15)) == []


async def test_node_disconnects_python_sockets_with_and_without_close(clients):
    c = clients
    await c.py.do("of", ns="/companion")
    await c.node.do("of", ns="/companion")
    py_soft = await c.python_client(c.py, rooms=["bye-soft"])
    soft = await c.node_client(c.py, rooms=["bye-soft"])
    hard = await c.node_client(c.py, rooms=["bye-hard"])
    soft_companion = await soft.companion("/companion")
    hard_companion = await hard.companion("/companion")

    await c.node.do("disconnectSockets", rooms=["bye-soft"])
    await c.node.do("disconnectSockets", rooms=["bye-hard"], close=True)
    assert await soft.disconnected() == "io server disconnect"
    # The whole connection closed: every socket on it goes. Over long-polling
    # python-engineio ends the session before the client's next poll could
    # collect the DISCONNECT packets: the client sees its transport close.
    closed = ("io server disconnect",) if c.py.transports == ["websocket"] else ("io server disconnect", "transport close")
    assert await hard.disconnected() in closed
    assert await hard_companion.disconnected() in closed
    assert await eventually(lambda: _done(py_soft.gone), 15, "python client disconnected")
    assert await soft_companion.connected() is True


async def _done(future):
    return future.done()


async def test_python_disconnects_node_sockets_in_order(clients):
    c = clients
    target = await c.node_client(c.node)
    await c.py.do("disconnect", sid=target.sid)
    assert await target.disconnected() == "io server disconnect"

    last_words = await c.node_client(c.node)
    await c.py.do("emitThenDisconnect", sid=last_words.sid, event="farewell", args=["bye"])
    await last_words.disconnected()
    mine = [
        e for e in c.node_clients.events
        if e.get("client") == last_words.handle and e["event"] in ("client-event", "client-disconnect")
    ]
    assert [e.get("name", e["event"]) for e in mine] == ["farewell", "client-disconnect"]


async def test_all_rooms_both_ways(clients):
    c = clients
    on_node = await c.node_client(c.node, rooms=["room-on-node"])
    on_py = await c.python_client(c.py, rooms=["room-on-python"])
    expected = {"room-on-node", "room-on-python", on_node.sid, on_py.sid_in}
    from_node = set(await c.node.do("allRooms", wait=15))
    from_py = set(await c.py.do("allRooms"))
    assert expected <= from_node
    assert expected <= from_py
    assert from_node == from_py


async def test_server_side_emit_both_ways(clients):
    c = clients
    before_py = len(await c.py.do("received"))
    before_node = len(await c.node.do("received"))
    await c.node.do("serverSideEmit", event="server-note", args=["from node", 7, {"b": True}])
    await eventually(lambda: _count(c.py, before_py + 1), 15, "python received the server-side emit")
    assert (await c.py.do("received"))[-1] == {"ns": "/", "args": ["from node", 7, {"b": True}]}

    await c.py.do("serverSideEmit", event="server-note", args=["from python", 1.5])
    await eventually(lambda: _count(c.node, before_node + 1), 15, "node received the server-side emit")
    assert (await c.node.do("received"))[-1] == {"ns": "/", "args": ["from python", 1.5]}
    assert len(await c.py.do("received")) == before_py + 1  # not sent back to the emitter

    assert await c.node.do("serverSideEmitWithAck", event="server-ping", wait=15) == {"responses": ["pong from py"]}
    assert await c.py.do("serverSideEmitWithAck", event="server-ping", wait=15) == {"responses": ["pong from node"]}


async def _count(peer, n):
    return len(await peer.do("received")) >= n


async def test_namespaces_created_later(clients):
    c = clients
    await c.py.do("of", ns="/later")
    await c.node.do("of", ns="/later")
    await eventually(lambda: _servers(c.py, "/later"), 15, "both servers in /later")
    node_client = await c.node_client(c.node, namespace="/later")
    py_client = await c.python_client(c.py, namespace="/later")
    heard = Inbox(py_client, "late", namespace="/later")
    await c.py.do("emit", event="late", ns="/later", args=["news"])
    assert (await node_client.next("late")) == [["news"]]
    await c.node.do("emit", event="late", ns="/later", args=["more"])
    assert (await heard.next(2)) == [["news"], ["more"]]


async def _servers(peer, ns):
    return await peer.do("serverCount", ns=ns) == 2


async def test_server_count_both_ways(clients):
    assert await clients.node.do("serverCount", wait=15) == 2
    assert await clients.py.do("serverCount") == 2
    assert await clients.py.do("errors") == []


async def test_a_burst_queued_for_a_busy_python_server_arrives_whole_and_in_order_in_command_batches(
    clients, tmp_path
):
    """The Python server asks for CommandBatches: what queued in its daemon
    while it could not read comes several Commands to a message, each applied
    once and in order."""
    c = clients
    if c.py.transports != ["websocket"]:
        pytest.skip("10 MB in one burst over engine.io long-polling: python-engineio's client took only the first "
                    "event (1,000 small numbered emits: test_sync.py)")
    events = 1000
    py_on_py = await c.python_client(c.py)
    heard = Inbox(py_on_py, "burst")
    assert (await c.py.do("state"))["reads_batches"] is True
    resume = tmp_path / "resume"
    busy = asyncio.ensure_future(c.py.do("block", until=str(resume)))
    await c.node.do("emit", event="burst", args=[{"$repeat": 10240}], times=events, numbered=True)

    async def queued_for_python():
        status = await c.daemons[-1].status()
        return any(a.name == "py" and a.queued_messages >= 100 for a in status.attachments)

    await eventually(queued_for_python, 30, "Commands queued for the busy Python server")
    resume.touch()
    await busy
    try:
        await heard.next(events, timeout=60)
    finally:
        print("DEBUG", await c.py.do("errors"), await c.py.do("state"), len(heard.items))
    assert [item[0] for item in heard.items] == list(range(events))
    assert all(len(item[1]) == 10240 for item in heard.items)
    assert (await c.py.do("state"))["command_batches"] > 0
