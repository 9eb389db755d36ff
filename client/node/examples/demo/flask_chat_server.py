"""The demo's Flask-SocketIO chat server: a Flask app on python-socketio's
blocking socketio.Server (threading mode) with SiobridgeManager, in the same
cluster as the Node.js chat servers (chat-server.cjs) and the asyncio one
(chat_server.py), speaking to the same clients. Everything it does to the
cluster is Flask-SocketIO's API plus the manager's extras.

    SIOBRIDGE_ADDRESS=unix:/tmp/siobridge-0/siobridged.sock PORT=3104 NAME=delta \
        PYTHONPATH=client/python/src python3 flask_chat_server.py

Under threading, Debian's engine.io has long-polling only (no simple-websocket):
its clients poll. Run by run.mjs over Node's IPC channel (NODE_CHANNEL_FD, one
JSON message a line), each request answered from a thread of its own.
"""

import json
import logging
import os
import signal
import socket
import sys
import threading

from flask import Flask, request
from flask_socketio import SocketIO, emit, join_room
from werkzeug.serving import make_server

from siobridge_socketio import SiobridgeManager

name = os.environ.get("NAME", "flask-chat")
app = Flask(__name__)
manager = SiobridgeManager(name=name, on_error=lambda error: print(f"[{name}] {error}", file=sys.stderr))
socketio = SocketIO(app, client_manager=manager, async_mode="threading")
sessions = {}


@socketio.on("connect")
def connect(auth=None):
    auth = auth or {}
    sessions[request.sid] = {"user": auth.get("user"), "room": auth.get("room")}
    socketio.server.get_session(request.sid).update(user=auth.get("user"), server=name, room=auth.get("room"))
    if auth.get("room"):
        join_room(auth["room"])


@socketio.on("disconnect")
def disconnect():
    sessions.pop(request.sid, None)


@socketio.on("say")
def say(text):
    # A chat line goes to everyone in the sender's room, on every server.
    session = sessions[request.sid]
    emit("said", {"from": session["user"], "via": name, "text": text}, to=session["room"] or request.sid)


@socketio.on("shout")
def shout(text):
    emit("said", {"from": sessions[request.sid]["user"], "via": name, "text": text, "everyone": True}, broadcast=True)


@manager.on_server_side("ping-servers")
def ping_servers(sender):
    return f"{name} got a ping from {sender}"


def who(args):
    return [
        {"id": s.id, "user": (s.data or {}).get("user"), "server": (s.data or {}).get("server"), "rooms": sorted(s.rooms)}
        for s in manager.fetch_sockets()
    ]


# What the demo asks of this server.
actions = {
    "serverCount": lambda args: manager.server_count(),
    "who": who,
    "announce": lambda args: socketio.emit("said", {"from": name, "via": name, "text": args["text"]}, to=args["room"]),
    "pingServers": lambda args: manager.server_side_emit_with_ack("ping-servers", name),
    "rooms": lambda args: sorted(manager.all_rooms()),
}


def main():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # engine.io says once that websocket is missing: the demo's client polls.
    logging.getLogger("engineio.server").setLevel(logging.CRITICAL)
    channel = socket.socket(fileno=int(os.environ["NODE_CHANNEL_FD"]))
    sending = threading.Lock()

    def send(message):
        with sending:
            channel.sendall((json.dumps(message) + "\n").encode())

    def answer(message):
        try:
            send({"id": message["id"], "result": actions[message["action"]](message.get("args") or {})})
        except Exception as error:
            send({"id": message["id"], "error": str(error)})

    http = make_server("127.0.0.1", int(os.environ.get("PORT", "0")), app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    manager.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    send({"ready": True, "port": http.server_port})

    def read():
        for line in channel.makefile("r"):
            threading.Thread(target=answer, args=(json.loads(line),), daemon=True).start()
        stop.set()

    threading.Thread(target=read, daemon=True).start()
    while not stop.wait(0.5):
        pass
    manager.close()
    http.shutdown()


if __name__ == "__main__":
    main()
