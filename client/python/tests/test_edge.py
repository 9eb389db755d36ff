"""The Python manager on one daemon (memory bus) beside Node.js servers: the
packets on the wire, refused calls and their codes, unreadable work from the
cluster, a daemon restarted under the servers, a clean close, and servers that
do not answer."""

import asyncio

import pytest
import socketio
from grpc import aio
from socketio import packet

from siobridge_socketio import AsyncSiobridgeManager, SiobridgeError
from siobridge_socketio._proto import bridge_pb2 as pb
from siobridge_socketio._proto import bridge_pb2_grpc as pb_grpc
from support.daemon import Daemon, eventually
from support.peers import Inbox, NodeClients, PeerError, ServerPeer, binary, python_client


@pytest.fixture(scope="module")
def daemon(loop):
    daemon = loop.run_until_complete(
        Daemon(["--limits-max-message-bytes", "64KiB", "--node-request-timeout", "3s", "--node-local-timeout", "1s"]).start()
    )
    yield daemon
    loop.run_until_complete(daemon.dispose())


class Peers:
    """Processes started by one test, stopped when it ends."""

    def __init__(self):
        self.peers = []

    async def server(self, kind, address, label, **options):
        peer = ServerPeer(kind, address, label, **options)
        self.peers.append(peer)
        return await peer.start()

    async def node_clients(self):
        peer = NodeClients("node-clients")
        self.peers.append(peer)
        return await peer.start()

    async def stop(self):
        for peer in reversed(self.peers):
            await peer.stop()


@pytest.fixture
def peers(loop):
    peers = Peers()
    yield peers
    loop.run_until_complete(peers.stop())


async def counted(servers, n, ns=None):
    async def check():
        for server in servers:
            if await server.do("serverCount", **({"ns": ns} if ns else {})) != n:
                return False
        return True

    await eventually(check, 20, f"{n} servers counted")


class Spy:
    """A raw attachment that records the Commands the daemon sends it."""

    def __init__(self, address):
        self.address = address
        self.commands = asyncio.Queue()

    async def start(self):
        self.channel = aio.insecure_channel(self.address)
        self.outgoing = asyncio.Queue()
        self.outgoing.put_nowait(pb.ServerMessage(hello=pb.Hello(name="spy", namespaces=["/"])))

        async def requests():
            while True:
                message = await self.outgoing.get()
                if message is None:
                    return
                yield message

        self.call = pb_grpc.BridgeStub(self.channel).Attach(requests())
        welcome = await self.call.read()
        assert welcome.WhichOneof("kind") == "welcome"

        async def read():
            while (message := await self.call.read()) is not aio.EOF:
                if message.WhichOneof("kind") == "command":
                    self.commands.put_nowait(message.command)

        self.reader = asyncio.get_running_loop().create_task(read())
        return self

    async def close(self):
        self.outgoing.put_nowait(None)
        self.reader.cancel()
        await self.channel.close()


WIRE_ARGS = ["é ü 😀 \u2028 \"quoted\"\n", 1.5, 100.0, 1e21, 0.000015, -7, {"b": 1, "2": 2, "a": [True, None]},
             binary(b"\x00\xff\x10"), binary(b"second")]


async def test_python_and_node_servers_put_identical_packets_on_the_wire(daemon, peers):
    node = await peers.server("node", daemon.address, "wire-node")
    py = await peers.server("python", daemon.address, "wire-py")
    await counted([node, py], 2)
    spy = await Spy(daemon.address).start()
    try:
        await counted([node, py], 3)
        await node.do("emit", event="wire", args=WIRE_ARGS)
        from_node = await asyncio.wait_for(spy.commands.get(), 15)
        await py.do("emit", event="wire", args=WIRE_ARGS)
        from_py = await asyncio.wait_for(spy.commands.get(), 15)
    finally:
        await spy.close()
    assert from_node.WhichOneof("kind") == from_py.WhichOneof("kind") == "broadcast"
    assert from_py.broadcast.data.data == from_node.broadcast.data.data
    assert list(from_py.broadcast.data.attachments) == list(from_node.broadcast.data.attachments) == [
        b"\x00\xff\x10",
        b"second",
    ]
    assert from_py.broadcast.type == from_node.broadcast.type == 5  # BINARY_EVENT
    assert from_py.broadcast.data.kind == from_node.broadcast.data.kind == 0  # KIND_STR
    assert from_py.opts == from_node.opts


async def test_refused_calls_are_reported_with_their_codes(daemon, peers):
    py = await peers.server("python", daemon.address, "errors")
    await py.do("emit", event="big", args=["x" * (100 << 10)])
    await py.do("enterRoom", sid="a-socket-elsewhere", room="")
    reported = await py.wait_event(lambda e: e.get("event") == "adapter-error", 2)
    assert "exceeds max_message_bytes (65536)" in reported[0]["message"]
    assert reported[0]["code"] == 8  # RESOURCE_EXHAUSTED
    assert "empty room" in reported[1]["message"]
    assert reported[1]["code"] == 3  # INVALID_ARGUMENT
    with pytest.raises(PeerError) as refused:
        await py.do("serverCount", ns="admin")
    assert refused.value.code == 3
    assert "must start with '/'" in str(refused.value)
    reported = await py.wait_event(lambda e: e.get("event") == "adapter-error", 3)
    assert reported[2]["message"] == "namespace admin: namespace \"admin\" must start with '/'"

    # The refused namespace does not stop the server from attaching again.
    await daemon.restart()

    async def attached_again():
        return (await py.do("state"))["attached"] and await py.do("serverCount") == 1

    await eventually(attached_again, 30, "attached again after the restart")


async def test_a_refused_namespace_is_reported_with_the_daemons_status_code(daemon):
    reported = asyncio.Queue()
    manager = AsyncSiobridgeManager(daemon.address, name="namespaces", on_error=reported.put_nowait)
    socketio.AsyncServer(client_manager=manager, async_mode="aiohttp")
    try:
        await manager.wait_attached(15)
        # A malformed namespace: INVALID_ARGUMENT.
        manager.add_namespace("admin")
        malformed = await asyncio.wait_for(reported.get(), 15)
        assert isinstance(malformed, SiobridgeError)
        assert malformed.code == 3 and malformed.status.name == "INVALID_ARGUMENT"
        assert str(malformed) == "namespace admin: namespace \"admin\" must start with '/'"
        # A join for an attachment this stream does not hold (a server of the
        # connection that detached meanwhile): FAILED_PRECONDITION.
        session = manager._session
        instance = session.attachment_id.split(".")[0]
        session.connection.write(
            pb.ServerMessage(join_namespace=pb.NamespaceChange(namespace="/late", attachment_id=f"{instance}.999"))
        )
        unknown = await asyncio.wait_for(reported.get(), 15)
        assert unknown.code == 9 and unknown.status.name == "FAILED_PRECONDITION"
        assert str(unknown).startswith(f"namespace /late: attachment {instance}.999 is not attached")
        assert (await manager.server_count()) >= 1  # still attached and serving
    finally:
        await manager.close()


async def test_each_managers_errors_reach_its_own_on_error(daemon):
    first, second = asyncio.Queue(), asyncio.Queue()
    one = AsyncSiobridgeManager(daemon.address, name="first", on_error=first.put_nowait)
    two = AsyncSiobridgeManager(daemon.address, name="second", on_error=second.put_nowait)
    socketio.AsyncServer(client_manager=one, async_mode="aiohttp")
    socketio.AsyncServer(client_manager=two, async_mode="aiohttp")
    try:
        await one.wait_attached(15)
        await two.wait_attached(15)
        assert one._session.connection is two._session.connection  # one stream for both
        # Refused by the daemon, answered only because it failed.
        entered = two.enter_room("a-socket-elsewhere", "/", "")
        if asyncio.iscoroutine(entered):  # async in newer python-socketio
            await entered
        refused = await asyncio.wait_for(second.get(), 15)
        assert refused.code == 3 and "empty room" in str(refused)
        # A round trip of the first after the refusal: its handler heard nothing.
        assert (await one.server_count()) >= 2
        assert first.empty()
    finally:
        await one.close()
        await two.close()


async def test_unreadable_work_is_skipped_and_reported_never_thrown_into_the_app(daemon, peers):
    py = await peers.server("python", daemon.address, "unreadable")
    await counted([py], 1)  # attached, in "/": the external emitter's work reaches it
    client = await python_client(py)
    try:
        heard = Inbox(client, "fine")
        async with daemon.channel() as channel:
            stub = pb_grpc.BridgeStub(channel)
            for data in (b"not json", b'["fine",1]'):
                await stub.Broadcast(
                    pb.BroadcastRequest(
                        packet=pb.Packet(namespace="/", type=2, data=pb.Value(kind=0, data=data)),
                        opts=pb.BroadcastOptions(exclude_sid=True),
                    )
                )
        assert await heard.next() == [[1]]
        errors = await py.do("errors")
        assert len(errors) == 1
        assert errors[0].startswith("skipped a broadcast command in /: event data is not JSON")
    finally:
        await client.disconnect()


async def test_acks_the_cluster_asks_for_end_in_values_timeouts_or_closed_sockets(daemon, peers):
    py = await peers.server("python", daemon.address, "acks")
    await counted([py], 1)  # attached, in "/": the external emitter's work reaches it
    clients = await peers.node_clients()
    answering = await clients.connect(py, rooms=["acks"], answers={"q": "yes"})
    silent = await clients.connect(py, rooms=["acks"])
    leaving = await clients.connect(py, rooms=["acks"])
    events = []

    async def ask():
        async with daemon.channel() as channel:
            call = pb_grpc.BridgeStub(channel).BroadcastWithAck(
                pb.BroadcastRequest(
                    packet=pb.Packet(namespace="/", type=2, data=pb.Value(kind=0, data=b'["q",1]')),
                    opts=pb.BroadcastOptions(rooms=["acks"], exclude_sid=True),
                    ack_timeout_ms=1500,
                )
            )
            while (event := await call.read()) is not aio.EOF:
                events.append(event)
                if event.WhichOneof("kind") == "count":
                    await leaving.close()  # before it answered

    await asyncio.wait_for(ask(), 15)
    assert [e.WhichOneof("kind") for e in events] == ["count", "ack", "ack", "ack", "done"]
    assert events[0].count == 3
    acks = {e.ack.sid: e.ack for e in events[1:4]}
    assert acks[answering.sid].value.data == b'["yes"]'
    assert acks[silent.sid].error == pb.ACK_ERROR_TIMEOUT
    assert acks[leaving.sid].error == pb.ACK_ERROR_SOCKET_CLOSED
    assert not events[4].done.timed_out
    assert list(events[4].done.missing.local_servers) == []


async def test_a_python_server_without_a_handler_answers_server_side_emits_at_once(daemon, peers):
    node = await peers.server("node", daemon.address, "asks", requestsTimeout=30000)
    py = await peers.server("python", daemon.address, "no-handler")
    await counted([node, py], 2)
    # 30 s to answer, 15 s to wait: a server that does not answer fails the test.
    assert await node.do("serverSideEmitWithAck", event="nobody-handles-this", wait=15) == {"responses": [None]}


# socket.io 4.8's messages, word for word (python-socketio has no cluster
# requests, so no words of its own for them): @socket.io/mongo-adapter's by
# default, socket.io-adapter's ClusterAdapterWithHeartbeat with
# timeout_messages="cluster". The error is a socketio.exceptions.TimeoutError;
# who did not answer is in .missing, never in the message.
WORDING = {
    "mongo": ("timeout reached: only 1 responses received out of 2", "timeout reached: only 0 responses received out of 1"),
    "cluster": ("timeout reached: missing 1 responses", "timeout reached: missing 1 responses"),
}


@pytest.mark.parametrize("wording", ["mongo", "cluster"])
async def test_server_side_emit_with_ack_that_a_server_does_not_answer_times_out_in_socketios_words(
    daemon, peers, wording
):
    options = {} if wording == "mongo" else {"timeoutMessages": wording}
    asking = await peers.server("python", daemon.address, "asking", requestsTimeout=1000, **options)
    silent = await peers.server("node", daemon.address, "silent", silentServerSideEmit=True)
    talking = await peers.server("node", daemon.address, "talking")
    await counted([asking, silent, talking], 3)
    reply = await asking.do("serverSideEmitWithAck", event="server-ping")
    assert reply == {
        "error": WORDING[wording][0],
        "missing": {"nodes": [], "local_servers": ["silent"]},
        "expected": 2,
        "python_socketio_timeout": True,
        "responses": ["pong from talking"],
    }


@pytest.mark.parametrize("wording", ["mongo", "cluster"])
async def test_queries_that_a_server_does_not_answer_time_out_in_socketios_words(daemon, peers, wording):
    options = {} if wording == "mongo" else {"timeoutMessages": wording}
    spy = await Spy(daemon.address).start()  # attached, never answers
    try:
        asking = await peers.server("python", daemon.address, "asking", **options)
        await counted([asking], 2)
        for call in ["fetchSockets", "allRooms"]:
            reply = await asking.do("queryThatTimesOut", call=call)
            assert reply == {
                "error": WORDING[wording][1],
                "missing": {"nodes": [], "local_servers": ["spy"]},
                "expected": 1,
                "python_socketio_timeout": True,
            }, call
    finally:
        await spy.close()


def test_a_timeout_wording_the_manager_does_not_know_is_refused():
    with pytest.raises(ValueError, match='timeout_messages must be one of "mongo", "cluster", not \'redis\''):
        AsyncSiobridgeManager("unix:/nonexistent", timeout_messages="redis")


async def test_close_detaches_cleanly(daemon, peers):
    stays = await peers.server("node", daemon.address, "stays")
    leaves = await peers.server("python", daemon.address, "leaves")
    await counted([stays, leaves], 2)
    assert await leaves.do("close") is True
    await counted([stays], 1)
    # The Node server is named "<hostname> pid <pid>".
    names = [a.name for a in (await daemon.status()).attachments]
    assert len(names) == 1 and "leaves" not in names


async def test_a_daemon_restarted_under_the_servers(peers):
    # Two python-socketio servers in one process (one Attach stream) and a
    # Node.js server. The second Python server's client receives everything
    # the first emits: before the restart, while the daemon is away (queued,
    # sent once reattached: the stream re-attaches both servers before it sends
    # any queued call), and after.
    daemon = await Daemon(["--node-request-timeout", "3s", "--node-local-timeout", "1s"]).start()
    try:
        node = await peers.server("node", daemon.address, "node")
        py = await peers.server("python", daemon.address, "py", servers=2)
        clients = await peers.node_clients()
        await counted([node, py], 3)
        receiver = await clients.connect(py, index=1)
        node_receiver = await clients.connect(node)
        py_client = await python_client(py)
        back = Inbox(py_client, "back")

        for i in range(5):
            await py.do("emit", event="msg", args=[i])
        await receiver.next("msg", 5)
        await node_receiver.next("msg", 5)

        await daemon.stop()

        async def detached():
            return not (await py.do("state"))["attached"]

        await eventually(detached, 20, "the manager saw the daemon go")
        for i in range(5, 8):  # queued while the daemon is away
            await py.do("emit", event="msg", args=[i])

        await daemon.start()

        async def attached():
            return (await py.do("state"))["attached"]

        await eventually(attached, 30, "the manager reattached")
        await counted([node, py], 3)
        for i in range(8, 12):
            await py.do("emit", event="msg", args=[i])
        await py.do("emit", event="end")
        await receiver.next("end")
        await node_receiver.next("end")
        # Every message exactly once, in order, none lost while the daemon was away.
        assert receiver.received("msg") == [[i] for i in range(12)]
        # The Node server reattached on its own: what was sent while it was not
        # there yet may have missed it (at most once), the rest arrived once.
        got = node_receiver.received("msg")
        assert got[:5] == [[i] for i in range(5)] and got[-4:] == [[i] for i in range(8, 12)]
        assert len(got) == len({i for [i] in got})

        await node.do("emit", event="back", args=["after the restart"])
        assert await back.next() == [["after the restart"]]
        names = [a.name for a in (await daemon.status()).attachments]
        assert len(names) == 3 and names.count("py") == 1 and names.count("py #2") == 1
        await py_client.disconnect()
    finally:
        await daemon.dispose()


async def test_calls_wait_for_an_unreachable_daemon_up_to_a_bound():
    errors = []
    manager = AsyncSiobridgeManager(
        "unix:/nonexistent/siobridged.sock", max_queued_calls=2, requests_timeout=0.2, on_error=errors.append
    )
    socketio.AsyncServer(client_manager=manager, async_mode="aiohttp")
    try:
        for i in range(3):
            await manager.server_side_emit("note", i)
        assert len(errors) == 1
        assert isinstance(errors[0], SiobridgeError)
        assert errors[0].code == 14  # UNAVAILABLE
        assert "unreachable at unix:/nonexistent/siobridged.sock: 2 calls are waiting" in str(errors[0])
        with pytest.raises(SiobridgeError) as waited:
            await manager.server_count()
        assert waited.value.code in (4, 14)
    finally:
        await manager.close()


class MsgPackLikePacket(packet.Packet):
    # What python-socketio's serializer="msgpack" packet class declares.
    uses_binary_events = False


def test_a_msgpack_serializer_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="default JSON serializer"):
        socketio.AsyncServer(client_manager=AsyncSiobridgeManager("unix:/nowhere"), serializer=MsgPackLikePacket)


def test_commands_already_applied_are_skipped_by_position():
    """After a daemon restart the daemon replays its last moments; a server
    applies each command that came through MongoDB once (PROTOCOL.md section 16),
    whether it came alone or in a CommandBatch."""
    from siobridge_socketio.connection import Connection, Session

    class Sink:
        def __init__(self):
            self.applied = []

        def on_command(self, command, generation):
            self.applied.append(command.id)

    connection = Connection("unix:/nonexistent", 0.1, 1.0, 10, lambda error: None)
    sink = Sink()
    session = Session(connection, "1", "s", sink)
    session.attachment_id = "a.1"
    connection.by_attachment["a.1"] = session

    def command(id, position=""):
        return pb.DaemonMessage(command=pb.Command(id=id, attachment_id="a.1", position=position))

    p = lambda seconds, index: f"{seconds:08x}{1:08x}{index:08x}"
    for message in [command(1, p(10, 0)), command(2, p(10, 1)), command(3),  # local: no position
                    command(2, p(10, 1)), command(1, p(10, 0)),              # replayed
                    command(4, p(11, 0))]:
        connection.dispatch(message)
    assert sink.applied == [1, 2, 3, 4]
    assert session.repeats_skipped == 2
    # A CommandBatch is those Commands one by one, in order.
    batch = [command(4, p(11, 0)), command(5, p(11, 1)), command(6)]
    connection.dispatch(pb.DaemonMessage(command_batch=pb.CommandBatch(commands=[m.command for m in batch])))
    assert sink.applied == [1, 2, 3, 4, 5, 6]
    assert session.repeats_skipped == 3
    assert connection.command_batches == 1


async def test_a_call_past_grpcs_own_limit_is_refused_alone_and_nothing_after_it_is_lost(daemon, peers):
    """With limits.max_message_bytes at 64 KiB the daemon's gRPC server takes
    messages up to 4.25 MiB: a 5 MiB emit sent anyway would end the stream
    shared by the process's servers, and the emits made right after it with
    it. It is refused before it is sent, with RESOURCE_EXHAUSTED."""
    node = await peers.server("node", daemon.address, "receives")
    py = await peers.server("python", daemon.address, "oversized")
    await counted([node, py], 2)
    clients = await peers.node_clients()
    client = await clients.connect(node)
    big = "x" * (5 << 20)
    await py.do("emit", event="n", args=[big])
    for i in range(20):
        await py.do("emit", event="n", args=[i])
    assert [args[0] for args in await client.next("n", 20)] == list(range(20))
    reported = await py.wait_event(lambda e: e.get("event") == "adapter-error")
    assert reported[0]["code"] == 8  # RESOURCE_EXHAUSTED
    assert "exceeds max_message_bytes (65536) of siobridged: not sent" in reported[0]["message"]
    # A call that answers fails alone too.
    with pytest.raises(PeerError) as refused:
        await py.do("serverSideEmitWithAck", event="server-ping", args=[big])
    assert refused.value.code == 8
    assert (await py.do("state"))["attached"]
    assert await py.do("serverCount") == 2
    assert [e for e in py.errors() if "stream" in e["message"]] == []


async def test_rooms_that_are_numbers_are_the_rooms_javascript_names_the_same(daemon, peers):
    """python-socketio takes any hashable room; the cluster names rooms by
    text. A number or a boolean is the room JavaScript's String() names: a
    Python socket in room 4242 is in the Node servers' room "4242"."""
    node = await peers.server("node", daemon.address, "node-rooms")
    py = await peers.server("python", daemon.address, "py-rooms")
    await counted([node, py], 2)
    clients = await peers.node_clients()
    on_node = await clients.connect(node, rooms=["4242", "1.5"])
    on_py = await python_client(py)
    try:
        heard = Inbox(on_py, "ev")
        await py.do("enterRoom", sid=on_py.sid_in, room=4242)
        await py.do("enterRoom", sid=on_py.sid_in, room=True)
        await node.do("emit", event="ev", rooms=["4242"], args=["from-node-to-4242"])
        await node.do("emit", event="ev", rooms=["true"], args=["from-node-to-true"])
        assert await heard.next(2) == [["from-node-to-4242"], ["from-node-to-true"]]
        await py.do("emit", event="ev", to=4242, args=["from-py-to-4242"])
        await py.do("emit", event="ev", to=[1.5], args=["from-py-to-1.5"])
        assert await on_node.next("ev", 3) == [["from-node-to-4242"], ["from-py-to-4242"], ["from-py-to-1.5"]]
        assert await heard.next(3) == [["from-node-to-4242"], ["from-node-to-true"], ["from-py-to-4242"]]
        found = {s["id"]: s["rooms"] for s in await py.do("fetchSockets", rooms=[4242])}
        assert found == {
            on_py.sid_in: sorted([on_py.sid_in, "4242", "true"]),
            on_node.sid: sorted([on_node.sid, "4242", "1.5"]),
        }
        # A room no JavaScript server could name is refused where it is made.
        with pytest.raises(PeerError) as refused:
            await py.do("enterRoom", sid=on_py.sid_in, room={"a": 1})
        assert refused.value.code == 3
        assert "a room of type dict" in str(refused.value)
    finally:
        await on_py.disconnect()
