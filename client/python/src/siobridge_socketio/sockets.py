"""Sockets as the cluster sees them: socket.io's RemoteSocket, and the
handshake and data of this server's own sockets (what a Node server's
fetchSockets() reports). A part of AsyncSiobridgeManager (a mixin that relies
on its attributes), kept apart for size.

Thread-safety: none. Used on the server's asyncio event loop.
"""

import time
import urllib.parse

_NODE_TIME_FORMAT = "%a %b %d %Y %H:%M:%S GMT%z"


class RemoteSocket:
    """A socket somewhere in the cluster, as fetch_sockets returns it
    (socket.io's RemoteSocket). `handshake` and `data` are JSON values; `data`
    is the socket's session on a Python server and `socket.data` on a Node
    server; sockets of socketioxide servers come without them."""

    def __init__(self, manager, id, server_id, namespace, rooms, handshake, data, local):
        self._manager = manager
        self.id = id
        self.server_id = server_id
        self.namespace = namespace
        self.rooms = set(rooms)
        self.handshake = handshake
        self.data = data
        self.local = local

    def __repr__(self):
        return f"RemoteSocket(id={self.id!r}, namespace={self.namespace!r}, rooms={sorted(self.rooms)!r})"

    async def emit(self, event, data=None, callback=None):
        await self._manager.emit(event, data, self.namespace, room=self.id, callback=callback)

    async def enter_room(self, room):
        await self._manager._maybe_await(self._manager.enter_room(self.id, self.namespace, room))

    async def leave_room(self, room):
        await self._manager._maybe_await(self._manager.leave_room(self.id, self.namespace, room))

    async def disconnect(self):
        await self._manager.server.disconnect(self.id, namespace=self.namespace)


class SocketDetails:
    """handshake and data of local sockets; mixed into AsyncSiobridgeManager."""

    def _handshake(self, sid, namespace):
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
        query = {}
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

    async def _socket_data(self, sid, namespace):
        """A local socket's session: what Node keeps in socket.data."""
        try:
            return dict(await self.server.get_session(sid, namespace=namespace))
        except (KeyError, TypeError):
            return {}
