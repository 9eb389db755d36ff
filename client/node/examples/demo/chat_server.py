"""The demo's Python chat server: python-socketio (aiohttp) with the siobridge
client manager, in the same cluster as the Node.js chat servers
(chat-server.cjs) and speaking to the same clients. Everything it does to the
cluster is python-socketio's API plus the manager's extras.

    SIOBRIDGE_ADDRESS=unix:/tmp/siobridge-0/siobridged.sock PORT=3103 NAME=gamma \
        PYTHONPATH=client/python/src python3 chat_server.py

Run by run.mjs, which speaks to it over Node's IPC channel (NODE_CHANNEL_FD,
one JSON message a line). Single-threaded asyncio.
"""

import asyncio
import inspect
import json
import os
import signal
import socket
import sys

import socketio
from aiohttp import web

from siobridge_socketio import AsyncSiobridgeManager

name = os.environ.get("NAME", "chat")
manager = AsyncSiobridgeManager(name=name, on_error=lambda error: print(f"[{name}] {error}", file=sys.stderr))
sio = socketio.AsyncServer(client_manager=manager, async_mode="aiohttp")


@sio.event
async def connect(sid, environ, auth=None):
    auth = auth or {}
    async with sio.session(sid) as session:
        session.update(user=auth.get("user"), server=name, room=auth.get("room"))
    if auth.get("room"):
        joined = sio.enter_room(sid, auth["room"])  # a coroutine on python-socketio >= 5.10
        if inspect.isawaitable(joined):
            await joined


@sio.event
async def say(sid, text):
    # A chat line goes to everyone in the sender's room, on every server.
    session = await sio.get_session(sid)
    line = {"from": session["user"], "via": name, "text": text}
    await sio.emit("said", line, to=session["room"] or sid)


@sio.event
async def shout(sid, text):
    session = await sio.get_session(sid)
    await sio.emit("said", {"from": session["user"], "via": name, "text": text, "everyone": True})


@manager.on_server_side("ping-servers")
def ping_servers(sender):
    return f"{name} got a ping from {sender}"


async def who(args):
    return [
        {"id": s.id, "user": (s.data or {}).get("user"), "server": (s.data or {}).get("server"), "rooms": sorted(s.rooms)}
        for s in await manager.fetch_sockets()
    ]


# What the demo asks of this server.
actions = {
    "serverCount": lambda args: manager.server_count(),
    "who": who,
    "announce": lambda args: sio.emit("said", {"from": name, "via": name, "text": args["text"]}, to=args["room"]),
    "pingServers": lambda args: manager.server_side_emit_with_ack("ping-servers", name),
    "rooms": lambda args: _rooms(),
}


async def _rooms():
    return sorted(await manager.all_rooms())


async def main():
    loop = asyncio.get_running_loop()
    channel = socket.socket(fileno=int(os.environ["NODE_CHANNEL_FD"]))
    reader, writer = await asyncio.open_unix_connection(sock=channel)

    def send(message):
        writer.write((json.dumps(message) + "\n").encode())

    async def answer(message):
        try:
            send({"id": message["id"], "result": await actions[message["action"]](message.get("args") or {})})
        except Exception as error:
            send({"id": message["id"], "error": str(error)})

    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", int(os.environ.get("PORT", "0")))
    await site.start()
    await manager.start()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    send({"ready": True, "port": runner.addresses[0][1]})

    async def read():
        while line := await reader.readline():
            loop.create_task(answer(json.loads(line)))
        stop.set()

    reading = loop.create_task(read())
    await stop.wait()
    reading.cancel()
    await manager.close()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
