"""Sockets as the cluster sees them: socket.io's RemoteSocket, and the
handshake and data of this server's own sockets (what a Node server's
fetchSockets() reports). A part of the managers (a mixin that relies on their
attributes), kept apart for size.

Thread-safety: as the manager using it.
"""

from __future__ import annotations

import time
import urllib.parse
from typing import TYPE_CHECKING, Any, Dict, Iterable, Optional

from .steps import Steps

if TYPE_CHECKING:
    from .manager_core import ManagerCore

_NODE_TIME_FORMAT = "%a %b %d %Y %H:%M:%S GMT%z"


class RemoteSocket:
    """A socket somewhere in the cluster, as fetch_sockets returns it
    (socket.io's RemoteSocket). `handshake` and `data` are JSON values; `data`
    is the socket's session on a Python server and `socket.data` on a Node
    server; sockets of socketioxide servers come without them.

    Its methods are coroutines on AsyncSiobridgeManager's sockets and plain
    calls on SiobridgeManager's."""

    def __init__(
        self,
        manager: "ManagerCore",
        id: str,
        server_id: Optional[str],
        namespace: str,
        rooms: Iterable[str],
        handshake: Dict[str, Any],
        data: Any,
        local: bool,
    ):
        self._manager = manager
        self.id = id
        self.server_id = server_id
        self.namespace = namespace
        self.rooms = set(rooms)
        self.handshake = handshake
        self.data = data
        self.local = local

    def __repr__(self) -> str:
        return f"RemoteSocket(id={self.id!r}, namespace={self.namespace!r}, rooms={sorted(self.rooms)!r})"

    def emit(self, event: str, data: Any = None, callback: Any = None) -> Any:
        return self._manager._run(self._manager._emit_steps(event, data, self.namespace, self.id, None, callback, {}))

    def enter_room(self, room: Any) -> Any:
        return self._manager._run(self._manager._room_change_steps("enter_room", self.id, self.namespace, room))

    def leave_room(self, room: Any) -> Any:
        return self._manager._run(self._manager._room_change_steps("leave_room", self.id, self.namespace, room))

    def disconnect(self) -> Any:
        return self._manager._run(self._manager._server_disconnect_steps(self.id, self.namespace))


class SocketDetails:
    """handshake and data of local sockets; mixed into the managers."""

    server: Any
    _auth: Dict[Any, Any]

    if TYPE_CHECKING:

        def eio_sid_from_sid(self, sid: str, namespace: str) -> Any: ...  # python-socketio's

    def _handshake(self, sid: str, namespace: str) -> Dict[str, Any]:
        """socket.io's handshake object for a local socket, from its environ."""
        eio_sid = self.eio_sid_from_sid(sid, namespace)
        environ = (self.server.environ.get(eio_sid) if self.server is not None else None) or {}
        headers = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                headers[key[5:].replace("_", "-").lower()] = value
        for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
            if key in environ:
                headers[name] = environ[key]
        query_string = environ.get("QUERY_STRING", "")
        query: Dict[str, Any] = {}
        for key, values in urllib.parse.parse_qs(query_string, keep_blank_values=True).items():
            query[key] = values[0] if len(values) == 1 else values
        address = environ.get("REMOTE_ADDR")
        request = environ.get("aiohttp.request")
        if request is not None and getattr(request, "remote", None):
            address = request.remote
        auth, issued = self._auth.get((namespace, sid), (None, int(time.time() * 1000)))
        url = environ.get("RAW_URI") or environ.get("PATH_INFO", "") + ("?" + query_string if query_string else "")
        return {
            "headers": headers,
            "time": time.strftime(_NODE_TIME_FORMAT, time.localtime(issued / 1000)),
            "address": address,
            "xdomain": "HTTP_ORIGIN" in environ,
            "secure": environ.get("wsgi.url_scheme") == "https",
            "issued": issued,
            "url": url,
            "query": query,
            "auth": auth if auth is not None else {},
        }

    def _socket_data_steps(self, sid: str, namespace: str) -> "Steps[Dict[str, Any]]":
        """A local socket's session: what Node keeps in socket.data."""
        try:
            session = yield self.server.get_session(sid, namespace=namespace)
            return dict(session)
        except (KeyError, TypeError):
            return {}
