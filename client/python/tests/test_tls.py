"""TLS and mutual TLS between the python-socketio manager and siobridged
(listen.tls_cert; listen.tls_client_ca), with certificates made here with
openssl: a python-socketio server over TLS, and one over mutual TLS, each
beside a Node.js server on the daemon's Unix socket, with broadcasts both
ways between real socket.io clients; a manager without a certificate, or
with one another CA signed, is refused by the daemon; options that cannot
work are refused when the manager starts.
"""

import os
import shutil
import subprocess

import pytest
import socketio
from aiohttp import web

from siobridge_socketio import AsyncSiobridgeManager, SiobridgeError
from siobridge_socketio import errors
from support.daemon import Daemon, eventually
from support.peers import ServerPeer, python_client

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A CA, the daemon's certificate (127.0.0.1) and a client certificate it
    signed, and a client certificate of another CA."""
    directory = str(tmp_path_factory.mktemp("certificates"))
    for name, subject in (("ca", "/CN=siobridge test CA"), ("other-ca", "/CN=another CA")):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject,
                "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=directory)
    for name, issuer, extension in (
        ("daemon", "ca", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ("client", "ca", "extendedKeyUsage=clientAuth"),
        ("stranger", "other-ca", "extendedKeyUsage=clientAuth"),
    ):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=directory)
        with open(os.path.join(directory, f"{name}.ext"), "w") as file:
            file.write(extension + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{issuer}.pem", "-CAkey", f"{issuer}.key",
                "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=directory)
    return {name: os.path.join(directory, name) for name in ("ca", "other-ca", "daemon", "client", "stranger")}


def free_port():
    import socket as sockets

    with sockets.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def tls_daemon(certificates, mutual):
    address = f"127.0.0.1:{free_port()}"
    daemon = Daemon([
        "--listen-tcp", address,
        "--listen-tls-cert", certificates["daemon"] + ".pem", "--listen-tls-key", certificates["daemon"] + ".key",
        *(["--listen-tls-client-ca", certificates["ca"] + ".pem"] if mutual else []),
    ])
    await daemon.start()
    daemon.tcp = address
    return daemon


class PythonServer:
    """A python-socketio server in this process, its manager on `address`."""

    def __init__(self, address, name, **tls):
        self.manager = AsyncSiobridgeManager(address, name=name, reconnect=(0.05, 0.5), **tls)
        self.sio = socketio.AsyncServer(client_manager=self.manager, async_mode="aiohttp")
        self.runner = None
        self.transports = ["websocket"]

    async def start(self):
        app = web.Application()
        self.sio.attach(app)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.urls = [f"http://127.0.0.1:{port}"]
        await self.manager.start()
        return self

    async def stop(self):
        await self.manager.close()
        if self.runner is not None:
            await self.runner.cleanup()


async def heard(client, event, send):
    """`send()` until `client` receives `event`; returns its first arguments."""
    received = []
    client.on(event, lambda *args: received.append(args))

    async def arrived():
        await send()
        return bool(received)

    await eventually(arrived, 30, f"{event} received")
    return received[0]


@pytest.mark.parametrize("mutual", [False, True], ids=["tls", "mutual-tls"])
async def test_broadcasts_both_ways_over_tls(certificates, mutual):
    daemon = await tls_daemon(certificates, mutual)
    node = python = None
    clients = []
    try:
        node = await ServerPeer("node", daemon.address, "node").start()
        tls = {"tls_ca": certificates["ca"] + ".pem"}
        if mutual:
            tls.update(tls_cert=certificates["client"] + ".pem", tls_key=certificates["client"] + ".key")
        python = await PythonServer(daemon.tcp, "python over TLS", **tls).start()
        await python.manager.wait_attached(20)

        on_node = await python_client(node)
        on_python = await python_client(python)
        clients += [on_node, on_python]
        args = await heard(on_node, "news", lambda: python.sio.emit("news", "from python over TLS"))
        assert args == ("from python over TLS",)
        args = await heard(on_python, "note", lambda: node.do("emit", event="note", args=["from node"]))
        assert args == ("from node",)
    finally:
        for client in clients:
            await client.disconnect()
        if python is not None:
            await python.stop()
        if node is not None:
            await node.stop()
        await daemon.dispose()


@pytest.mark.parametrize("certificate", [None, "stranger"], ids=["no-certificate", "another-ca"])
async def test_refused_without_a_certificate_the_daemon_trusts(certificates, certificate):
    daemon = await tls_daemon(certificates, mutual=True)
    python = None
    try:
        tls = {"tls_ca": certificates["ca"] + ".pem"}
        if certificate:
            tls.update(tls_cert=certificates[certificate] + ".pem", tls_key=certificates[certificate] + ".key")
        python = await PythonServer(daemon.tcp, "refused", **tls).start()
        refusal = "certificate verify failed" if certificate else "peer did not return a certificate"

        async def refused():
            with open(os.path.join(daemon.dir, "daemon.log")) as log:
                return refusal in log.read()

        await eventually(refused, 20, "the daemon refused the handshake")
        assert not python.manager.attached
        assert [a.name for a in (await daemon.status()).attachments] == []
    finally:
        if python is not None:
            await python.stop()
        await daemon.dispose()


async def test_options_that_cannot_work_are_refused(certificates, tmp_path):
    """Refused when the channel is made (as the manager starts), never
    replaced by a channel without TLS."""
    ca = certificates["ca"] + ".pem"
    client = certificates["client"]
    cases = [
        ("unix:/tmp/x.sock", {"tls_ca": ca}, "TCP address"),
        ("127.0.0.1:7400", {"tls_ca": str(tmp_path / "missing.pem")}, "cannot read"),
        ("127.0.0.1:7400", {"tls_ca": ca, "tls_cert": client + ".pem"}, "go together"),
        ("127.0.0.1:7400", {"tls_cert": client + ".pem", "tls_key": client + ".key"}, "tls_ca"),
    ]
    for address, tls, reason in cases:
        server = PythonServer(address, "refused options", **tls)
        with pytest.raises(SiobridgeError, match=reason) as refused:
            await server.manager.start()
        assert refused.value.code == errors.INVALID_ARGUMENT
