"""siobridge-socketio: python-socketio servers in a siobridge cluster, beside
Node.js socket.io servers (@siobridge/socket.io-adapter) and Rust socketioxide
servers, through the siobridged daemon of each host; and emitters for
processes that serve no clients.

    import socketio
    from siobridge_socketio import AsyncSiobridgeManager, SiobridgeManager

    sio = socketio.AsyncServer(client_manager=AsyncSiobridgeManager())
    sio = socketio.Server(client_manager=SiobridgeManager())   # Flask-SocketIO too

    from siobridge_socketio import SiobridgeEmitter
    SiobridgeEmitter().emit("news", {"text": "hi"}, to="room1")
"""

from .channel import default_address
from .emitter import AsyncSiobridgeEmitter, SiobridgeEmitter
from .errors import PartialResultError, SiobridgeError
from .manager import AsyncSiobridgeManager
from .manager_core import room_name
from .sockets import RemoteSocket
from .sync_manager import SiobridgeManager

__all__ = [
    "AsyncSiobridgeEmitter",
    "AsyncSiobridgeManager",
    "PartialResultError",
    "RemoteSocket",
    "SiobridgeEmitter",
    "SiobridgeError",
    "SiobridgeManager",
    "default_address",
    "room_name",
]
__version__ = "0.1.0"
