"""siobridge-socketio: python-socketio servers in a siobridge cluster, beside
Node.js socket.io servers (@siobridge/socket.io-adapter) and Rust socketioxide
servers, through the siobridged daemon of each host.

    import socketio
    from siobridge_socketio import AsyncSiobridgeManager

    sio = socketio.AsyncServer(client_manager=AsyncSiobridgeManager())
"""

from .errors import PartialResultError, SiobridgeError
from .manager import AsyncSiobridgeManager, RemoteSocket, default_address

__all__ = ["AsyncSiobridgeManager", "PartialResultError", "RemoteSocket", "SiobridgeError", "default_address"]
__version__ = "0.1.0"
