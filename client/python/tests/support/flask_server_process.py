"""A Flask-SocketIO server (python-socketio's blocking socketio.Server) with
SiobridgeManager, in its own process, under the async mode the test asks for:
"threading" (Werkzeug's threaded server; engine.io long-polling, as Debian
has no simple-websocket) or "gevent" (the standard library patched first;
gevent's WSGI server with gevent-websocket). Driven over IPC like
server_process.py, with the same operations, written with Flask-SocketIO's
and python-socketio's blocking API.

Each operation runs in a background task of the server's async mode.
"""

import json
import os

options = json.loads(os.environ["SIOBRIDGE_TEST_SERVER"])
MODE = options.get("mode", "threading")
if MODE == "gevent":
    from gevent import monkey

    monkey.patch_all()

import base64  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from flask import Flask, request  # noqa: E402
from flask_socketio import SocketIO  # noqa: E402
import socketio as python_socketio  # noqa: E402

from siobridge_socketio import PartialResultError, SiobridgeManager  # noqa: E402

label = options["label"]
received = []
errors = []
paced = {}
send_lock = threading.Lock()
channel = socket.socket(fileno=int(os.environ["SIOBRIDGE_TEST_IPC_FD"]))


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
    data = (json.dumps(message) + "\n").encode()
    with send_lock:
        channel.sendall(data)


def on_error(error):
    errors.append(str(error))
    send({"event": "adapter-error", "message": str(error), "code": getattr(error, "code", None)})


app = Flask(__name__)
manager = SiobridgeManager(
    options["address"],
    name=label,
    requests_timeout=options.get("requestsTimeout", 3000) / 1000,
    reconnect=(0.05, 0.5),
    on_error=on_error,
)
sio = SocketIO(app, client_manager=manager, async_mode=MODE, cors_allowed_origins="*")
server = sio.server


def set_up(namespace):
    def connect(auth=None):
        auth = auth or {}
        session = server.get_session(request.sid, namespace=namespace)
        session["user"] = auth.get("user")
        session["label"] = label
        for room in auth.get("rooms") or []:
            server.enter_room(request.sid, room, namespace=namespace)

    def shout(*args):
        sio.emit("heard", tuple(args), skip_sid=request.sid, namespace=namespace)

    sio.on_event("connect", connect, namespace=namespace)
    sio.on_event("shout", shout, namespace=namespace)
    manager.on_server_side("server-note", lambda *args: received.append({"ns": namespace, "args": list(args)}), namespace)
    manager.on_server_side("server-ping", lambda *args: f"pong from {label}", namespace)
    manager.add_namespace(namespace)


set_up("/")


def fetch(m):
    sockets = manager.fetch_sockets(m.get("rooms"), m.get("ns"), skip=m.get("skip"), local=m.get("local", False))
    return [
        {"id": s.id, "auth": (s.handshake or {}).get("auth"), "rooms": sorted(s.rooms), "data": s.data, "local": s.local}
        for s in sockets
    ]


def emit_with_callback(m):
    answers = []
    done = threading.Event()

    def callback(*args):
        answers.append(list(args))
        if len(answers) >= m.get("count", 1):
            done.set()

    sio.emit(m["event"], tuple(revive(m.get("args", []))), to=m.get("to"), namespace=m.get("ns"), callback=callback)
    if not done.wait(m.get("timeout", 10)):
        return {"error": "timeout", "answers": describe(answers)}
    return {"answers": describe(answers)}


def run_op(m):
    op = m["op"]
    ns = m.get("ns")
    args = tuple(revive(m.get("args", [])))
    if op == "ports":
        return ports
    if op == "of":
        set_up(m["ns"])
        return True
    if op == "emit":
        sio.emit(m["event"], args, to=m.get("to"), skip_sid=m.get("skip"), namespace=ns,
                 ignore_queue=m.get("ignoreQueue", False))
        return True
    if op == "pace":
        # Numbered emits 0, 1, 2... at `rate` per second, paced by the clock,
        # in the background; "paced" tells how many went.
        def pace():
            began = time.monotonic()
            for i in range(m["count"]):
                sio.emit(m["event"], i, namespace=ns)
                paced[m["event"]] = i + 1
                wait = began + (i + 1) / m["rate"] - time.monotonic()
                if wait > 0:
                    sio.sleep(wait)  # pacing, not waiting for an event

        paced[m["event"]] = 0
        server.start_background_task(pace)
        return True
    if op == "paced":
        return paced.get(m["event"], 0)
    if op == "resends":
        session = manager._session
        return {"resent": session.resent, "given_up": session.given_up, "kept": len(session.unconfirmed)}
    if op == "emitNumbered":
        for i in range(m["count"]):
            sio.emit(m["event"], i, to=m.get("to"), namespace=ns)
        return True
    if op == "emitWithCallback":
        return emit_with_callback(m)
    if op == "call":
        try:
            return {"result": describe(server.call(m["event"], args, to=m["to"], namespace=ns, timeout=m.get("timeout", 10)))}
        except python_socketio.exceptions.TimeoutError:
            return {"error": "timeout"}
    if op == "enterRoom":
        server.enter_room(m["sid"], m["room"], namespace=ns)
        return True
    if op == "leaveRoom":
        server.leave_room(m["sid"], m["room"], namespace=ns)
        return True
    if op == "closeRoom":
        server.close_room(m["room"], namespace=ns)
        return True
    if op == "disconnect":
        server.disconnect(m["sid"], namespace=ns)
        return True
    if op == "emitThenDisconnect":
        sio.emit(m["event"], args, to=m["sid"], namespace=ns)
        server.disconnect(m["sid"], namespace=ns)
        return True
    if op == "fetchSockets":
        return fetch(m)
    if op == "remoteEmit":
        sockets = manager.fetch_sockets(m["socketId"], ns)
        for remote in sockets:
            remote.emit(m["event"], args)
        return len(sockets)
    if op == "allRooms":
        return sorted(manager.all_rooms(ns))
    if op == "serverCount":
        return manager.server_count(ns)
    if op == "serverSideEmit":
        manager.server_side_emit(m["event"], args, ns)
        return True
    if op == "serverSideEmitWithAck":
        try:
            return {"responses": describe(manager.server_side_emit_with_ack(m["event"], args, ns))}
        except PartialResultError as error:
            return {"error": str(error), "responses": describe(error.responses)}
    if op == "received":
        return received
    if op == "errors":
        return errors
    if op == "state":
        connection = manager.connection
        return {
            "attached": manager.attached,
            "node_uid": manager.node_uid,
            "mode": server.async_mode,
            "reads_batches": manager._session.reads_batches,
            "command_batches": connection.command_batches,
        }
    if op == "block":
        # The stream is not read (its reader waits for the lock) until the
        # test creates the file, as a server too busy to read it.
        with manager.connection.lock:
            while not os.path.exists(m["until"]):
                time.sleep(0.01)
        return True
    if op == "close":
        manager.close()
        return True
    raise ValueError(f"unknown op {op}")


def handle(m):
    try:
        send({"id": m["id"], "result": run_op(m)})
    except Exception as error:
        send({"id": m["id"], "error": f"{type(error).__name__}: {error}", "code": getattr(error, "code", None)})


stopping = threading.Event()


def read():
    buffered = b""
    while True:
        chunk = channel.recv(1 << 16)
        if not chunk:
            break
        buffered += chunk
        while b"\n" in buffered:
            line, buffered = buffered.split(b"\n", 1)
            server.start_background_task(handle, json.loads(line))
    stopping.set()


if MODE == "gevent":
    from gevent import pywsgi
    from geventwebsocket.handler import WebSocketHandler

    http = pywsgi.WSGIServer(("127.0.0.1", 0), app, handler_class=WebSocketHandler, log=None)
    http.start()
    ports = [http.server_port]
else:
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    http = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    ports = [http.server_port]

signal.signal(signal.SIGTERM, lambda *_: stopping.set())
server.start_background_task(read)
manager.start()
send({"event": "ready"})
while not stopping.wait(0.2):
    pass
manager.close()
sys.exit(0)
