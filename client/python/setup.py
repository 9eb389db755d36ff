"""Build hook: generates the gRPC stubs of proto/siobridge/v1/bridge.proto into
siobridge_socketio/_proto while building (build_py), with protoc and
grpc_python_plugin (Debian: protobuf-compiler, protobuf-compiler-grpc).

The proto is taken from the package directory (an sdist carries a copy) or
from the repository the package lives in. The metadata is in pyproject.toml.
"""

import os
import re
import shutil
import subprocess
import tempfile

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join("siobridge", "v1", "bridge.proto")


def proto_root():
    for root in (os.path.join(HERE, "proto"), os.path.join(HERE, "..", "..", "proto")):
        if os.path.isfile(os.path.join(root, PROTO)):
            return os.path.abspath(root)
    raise SystemExit(f"setup.py: {PROTO} not found in {HERE}/proto nor in the repository's proto/")


def generate(out_dir):
    protoc = shutil.which("protoc")
    plugin = shutil.which("grpc_python_plugin")
    if not protoc or not plugin:
        raise SystemExit(
            "setup.py: protoc and grpc_python_plugin are needed to build this package "
            "(Debian: apt-get install protobuf-compiler protobuf-compiler-grpc)"
        )
    root = proto_root()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [protoc, f"--plugin=protoc-gen-grpc_python={plugin}", f"-I{root}",
             f"--python_out={tmp}", f"--grpc_python_out={tmp}", os.path.join(root, PROTO)],
            check=True,
        )
        os.makedirs(out_dir, exist_ok=True)
        generated = os.path.join(tmp, "siobridge", "v1")
        for name in ("bridge_pb2.py", "bridge_pb2_grpc.py"):
            with open(os.path.join(generated, name), encoding="utf-8") as f:
                text = f.read()
            # The stubs live in this package, not in a top-level "siobridge.v1".
            text = re.sub(r"^from siobridge\.v1 import ", "from . import ", text, flags=re.M)
            with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
                f.write(text)
    with open(os.path.join(out_dir, "__init__.py"), "w", encoding="utf-8") as f:
        f.write('"""gRPC stubs generated from proto/siobridge/v1/bridge.proto while building."""\n')


class BuildPy(build_py):
    def run(self):
        generate(os.path.join(HERE, "src", "siobridge_socketio", "_proto"))
        if "siobridge_socketio._proto" not in self.packages:
            self.packages.append("siobridge_socketio._proto")
        super().run()

    def byte_compile(self, files):
        # Only when asked (as setuptools does), without its warning under
        # PYTHONDONTWRITEBYTECODE when nothing was asked.
        if self.compile or self.optimize:
            super().byte_compile(files)


class Sdist(sdist):
    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        target = os.path.join(base_dir, "proto", os.path.dirname(PROTO))
        os.makedirs(target, exist_ok=True)
        shutil.copy(os.path.join(proto_root(), PROTO), target)


setup(
    package_dir={"": "src"},
    # siobridge_socketio._proto is added by BuildPy once generated.
    packages=["siobridge_socketio"],
    package_data={"siobridge_socketio": ["py.typed"]},
    cmdclass={"build_py": BuildPy, "sdist": Sdist},
)
