"""A python-socketio AsyncServer (aiohttp) with the siobridge client manager,
in its own process, driven by the test over IPC (the framing of
client/node/test/support/server-process.cjs, whose Node servers it stands
beside): every message {id, op, ...} is answered {id, result} or {id, error}.

The operations are written with python-socketio's own API, plus the manager's
extras; Buffers travel as {"$binary": base64}.

Single-threaded asyncio; not for use from other threads.
"""

import asyncio
import base64
import inspect
import json
import os
import signal
import socket
import sys
import time

from aiohttp import web
import socketio

from siobridge_socketio import AsyncSiobridgeManager, PartialResultError

options = json.loads(os.environ["SIOBRIDGE_TEST_SERVER"])
label = options["label"]
received = []
errors = []
paced = {}
writer = None
ports = []


def describe(value):
    if isinstance(value, (bytes, bytearray)):
        return {"$binary": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, (list, tuple)):
        return [describe(item) for item in value]
    if isinstance(value, dict):
        return {key: describe(item) for key, item in value.items()}
    return value


def revive(value):
    if isinstance(value, list):
        return [revive(item) for item in value]
    if isinstance(value, dict):
        if isinstance(value.get("$binary"), str):
            return base64.b64decode(value["$binary"])
        return {key: revive(item) for key, item in value.items()}
    return value


def send(message):
    writer.write((json.dumps(message) + "\n").encode())


def on_error(error):
    errors.append(str(error))
    send({"event": "adapter-error", "message": str(error), "code": getattr(error, "code", None)})


async def maybe(value):
    return await value if inspect.isawaitable(value) else value


def make_server(index):
    manager = AsyncSiobridgeManager(
        options["address"],
        name=label if index == 0 else f"{label} #{index + 1}",
        requests_timeout=options.get("requestsTimeout", 3000) / 1000,
        reconnect=(0.05, 0.5),
        on_error=on_error,
        **({"timeout_messages": options["timeoutMessages"]} if "timeoutMessages" in options else {}),
    )
    return socketio.AsyncServer(client_manager=manager, async_mode="aiohttp"), manager


# One or more servers in this process (their managers share one Attach stream).
servers = [make_server(i) for i in range(options.get("servers", 1))]


def set_up(namespace, sio, manager):
    async def connect(sid, environ, auth=None):
        auth = auth or {}
        async with sio.session(sid, namespace=namespace) as session:
            session["user"] = auth.get("user")
            session["label"] = label
        for room in auth.get("rooms") or []:
            await maybe(sio.enter_room(sid, room, namespace=namespace))

    async def shout(sid, *args):
        await sio.emit("heard", tuple(args), skip_sid=sid, namespace=namespace)

    sio.on("connect", connect, namespace=namespace)
    sio.on("shout", shout, namespace=namespace)
    manager.on_server_side("server-note", lambda *args: received.append({"ns": namespace, "args": list(args)}), namespace)

    async def ping(*args):
        if options.get("silentServerSideEmit"):
            await asyncio.Event().wait()  # never answers
        return f"pong from {label}"

    manager.on_server_side("server-ping", ping, namespace)
    manager.add_namespace(namespace)


for pair in servers:
    set_up("/", *pair)


async def fetch(m, sio, manager):
    sockets = await manager.fetch_sockets(m.get("rooms"), m.get("ns"), skip=m.get("skip"), local=m.get("local", False))
    return [
        {"id": s.id, "auth": (s.handshake or {}).get("auth"), "rooms": sorted(s.rooms), "data": s.data, "local": s.local}
        for s in sockets
    ]


async def emit_with_callback(m, sio, manager):
    answers = []
    done = asyncio.get_running_loop().create_future()

    def callback(*args):
        answers.append(list(args))
        if len(answers) >= m.get("count", 1) and not done.done():
            done.set_result(None)

    await sio.emit(m["event"], tuple(revive(m.get("args", []))), to=m.get("to"), namespace=m.get("ns"), callback=callback)
    try:
        await asyncio.wait_for(done, m.get("timeout", 10))
    except asyncio.TimeoutError:
        return {"error": "timeout", "answers": describe(answers)}
    return {"answers": describe(answers)}


async def server_side_emit_with_ack(m, sio, manager):
    try:
        return {"responses": describe(await manager.server_side_emit_with_ack(m["event"], tuple(revive(m.get("args", []))), m.get("ns")))}
    except PartialResultError as error:
        return {**timed_out(error), "responses": describe(error.responses)}


def timed_out(error):
    """A PartialResultError as the app sees it."""
    return {
        "error": str(error),
        "missing": error.missing,
        "expected": error.expected,
        "python_socketio_timeout": isinstance(error, socketio.exceptions.TimeoutError),
    }


async def query_that_times_out(m, sio, manager):
    try:
        if m["call"] == "allRooms":
            await manager.all_rooms(m.get("ns"))
        else:
            await manager.fetch_sockets(None, m.get("ns"))
    except PartialResultError as error:
        return timed_out(error)
    return {"error": None}


async def emit_then_disconnect(m, sio, manager):
    await sio.emit(m["event"], tuple(revive(m.get("args", []))), to=m["sid"], namespace=m.get("ns"))
    await sio.disconnect(m["sid"], namespace=m.get("ns"))
    return True


async def remote_emit(m, sio, manager):
    sockets = await manager.fetch_sockets(m["socketId"], m.get("ns"))
    for remote in sockets:
        await remote.emit(m["event"], tuple(revive(m.get("args", []))))
    return len(sockets)


async def run_op(m):
    op = m["op"]
    ns = m.get("ns")
    sio, manager = servers[m.get("server", 0)]
    if op == "ports":
        return ports
    if op == "of":
        for pair in servers:
            set_up(m["ns"], *pair)
        return True
    if op == "emit":
        await sio.emit(
            m["event"], tuple(revive(m.get("args", []))), to=m.get("to"), skip_sid=m.get("skip"), namespace=ns,
            ignore_queue=m.get("ignoreQueue", False),
        )
        return True
    if op == "emitWithCallback":
        return await emit_with_callback(m, sio, manager)
    if op == "call":
        try:
            result = await sio.call(m["event"], tuple(revive(m.get("args", []))), to=m["to"], namespace=ns, timeout=m.get("timeout", 10))
            return {"result": describe(result)}
        except socketio.exceptions.TimeoutError:
            return {"error": "timeout"}
    if op == "enterRoom":
        await maybe(sio.enter_room(m["sid"], m["room"], namespace=ns))
        return True
    if op == "leaveRoom":
        await maybe(sio.leave_room(m["sid"], m["room"], namespace=ns))
        return True
    if op == "closeRoom":
        await sio.close_room(m["room"], namespace=ns)
        return True
    if op == "disconnect":
        await sio.disconnect(m["sid"], namespace=ns)
        return True
    if op == "emitThenDisconnect":
        return await emit_then_disconnect(m, sio, manager)
    if op == "fetchSockets":
        return await fetch(m, sio, manager)
    if op == "remoteEmit":
        return await remote_emit(m, sio, manager)
    if op == "allRooms":
        return sorted(await manager.all_rooms(ns))
    if op == "queryThatTimesOut":
        return await query_that_times_out(m, sio, manager)
    if op == "serverCount":
        return await manager.server_count(ns)
    if op == "serverSideEmit":
        await manager.server_side_emit(m["event"], tuple(revive(m.get("args", []))), ns)
        return True
    if op == "serverSideEmitWithAck":
        return await server_side_emit_with_ack(m, sio, manager)
    if op == "pace":
        # Numbered emits 0, 1, 2... at `rate` per second, paced by the clock,
        # in the background; "paced" tells how many went.
        async def pace():
            began = time.monotonic()
            for i in range(m["count"]):
                await sio.emit(m["event"], i, namespace=ns)
                paced[m["event"]] = i + 1
                wait = began + (i + 1) / m["rate"] - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)  # pacing, not waiting for an event

        paced[m["event"]] = 0
        asyncio.get_running_loop().create_task(pace())
        return True
    if op == "paced":
        return paced.get(m["event"], 0)
    if op == "resends":
        session = manager._session
        return {"resent": session.resent, "given_up": session.given_up, "kept": len(session.unconfirmed)}
    if op == "received":
        return received
    if op == "errors":
        return errors
    if op == "state":
        session = manager._session
        return {
            "attached": manager.attached,
            "node_uid": manager.node_uid,
            "reads_batches": session.reads_batches,
            "command_batches": session.connection.command_batches,
        }
    if op == "block":
        # The whole process stops, as a server too busy to read its stream
        # would, until the test creates the file.
        while not os.path.exists(m["until"]):
            time.sleep(0.01)
        return True
    if op == "close":
        await manager.close()
        return True
    raise ValueError(f"unknown op {op}")


async def handle(m):
    try:
        send({"id": m["id"], "result": await run_op(m)})
    except Exception as error:
        send({"id": m["id"], "error": f"{type(error).__name__}: {error}", "code": getattr(error, "code", None)})


async def main():
    global writer
    loop = asyncio.get_running_loop()
    channel = socket.socket(fileno=int(os.environ["SIOBRIDGE_TEST_IPC_FD"]))
    reader, writer = await asyncio.open_unix_connection(sock=channel, limit=64 << 20)
    runners = []
    for server, server_manager in servers:
        app = web.Application()
        server.attach(app)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        ports.append(runner.addresses[0][1])
        runners.append(runner)
        await server_manager.start()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    send({"event": "ready"})
    tasks = set()

    async def read():
        while True:
            line = await reader.readline()
            if not line:
                stop.set()
                return
            task = loop.create_task(handle(json.loads(line)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    reading = loop.create_task(read())
    await stop.wait()
    reading.cancel()
    for (_, server_manager), runner in zip(servers, runners):
        await server_manager.close()
        await runner.cleanup()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
