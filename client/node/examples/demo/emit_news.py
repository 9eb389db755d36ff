"""The demo's emitter: a process that serves no socket.io clients (a worker,
a cron job) sends a chat line to a room of the cluster with SiobridgeEmitter.

    SIOBRIDGE_ADDRESS=unix:/tmp/siobridge-0/siobridged.sock \
        PYTHONPATH=client/python/src python3 emit_news.py lobby "the build is green"
"""

import sys

from siobridge_socketio import SiobridgeEmitter

room, text = sys.argv[1], sys.argv[2]
with SiobridgeEmitter() as emitter:  # the daemon at $SIOBRIDGE_ADDRESS
    emitter.emit("said", {"from": "a worker", "via": "SiobridgeEmitter", "text": text}, to=room)
print(f"  emit_news.py sent {text!r} to the room {room!r}")
