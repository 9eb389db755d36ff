# Node.js for the project's scripts; sourced by setup, test, demo and bench.
#
# The adapter, its tests, the demo and the end-to-end benchmark need Node.js
# >= 20. Debian 12's own nodejs is 18, so when the node on PATH is missing or
# older, scripts/setup installs Node.js 20 from the npm registry: the package
# node-linux-<arch> carries the official `node` binary (no install script, no
# dependency). Its tarball is fetched with `npm pack`, checked against the
# sha512 pinned below (the registry's published integrity for that version),
# and unpacked into .cache/node/. siobridge_use_node then puts it first on PATH.
#
# Expects $root (the repository root). Defines functions only.

SIOBRIDGE_NODE_VERSION=20.20.2

# sha512 of node-linux-<arch>-$SIOBRIDGE_NODE_VERSION.tgz, hex.
siobridge_node_sha512() {
  case "$1" in
    x64) echo 3de1d033cc007661ed640d66068732819c6ce4b8945adb097b3413901774898f7cecaa46ac3d4edad544c9dbcc662b9771e45a9f1b7bae34e70c407038fba3a1 ;;
    arm64) echo 2c25c99cd4c58b21ae601c36819488e4e04531b92300fb7cb2a0ff34aad6a04d90983812b9b4ea16783a19a349f4427c1e9c413067165a96db72ce15a3e0a71a ;;
    *) return 1 ;;
  esac
}

siobridge_node_arch() {
  case "$(uname -m)" in
    x86_64 | amd64) echo x64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) return 1 ;;
  esac
}

# The major version of the node on PATH, or nothing.
siobridge_node_major() {
  command -v node >/dev/null 2>&1 || return 0
  node --version 2>/dev/null | sed -n 's/^v\([0-9][0-9]*\)\..*/\1/p'
}

siobridge_node_suitable() {
  local major
  major=$(siobridge_node_major)
  [[ -n "$major" && "$major" -ge 20 ]]
}

siobridge_node_dir() {
  echo "$root/.cache/node/node-v$SIOBRIDGE_NODE_VERSION-linux-$(siobridge_node_arch)"
}

# Puts a Node.js >= 20 first on PATH: the system's when it is recent enough,
# else the one scripts/setup installed. Fails with a message when there is none.
siobridge_use_node() {
  siobridge_node_suitable && return 0
  local dir
  dir=$(siobridge_node_dir)
  if [[ -x "$dir/bin/node" ]]; then
    PATH="$dir/bin:$PATH"
    export PATH
    return 0
  fi
  echo "no Node.js >= 20 on PATH and none in ${dir#"$root"/}: run scripts/setup" >&2
  return 1
}

# Installs Node.js $SIOBRIDGE_NODE_VERSION into .cache/node/ unless a suitable
# node is already there; needs npm. Idempotent.
siobridge_install_node() {
  siobridge_node_suitable && return 0
  local arch dir want tmp tarball got
  arch=$(siobridge_node_arch) || {
    echo "no Node.js build for $(uname -m): install Node.js >= 20 by hand" >&2
    return 1
  }
  dir=$(siobridge_node_dir)
  if [[ ! -x "$dir/bin/node" ]]; then
    want=$(siobridge_node_sha512 "$arch")
    tmp="$dir.tmp"
    rm -rf "$tmp" && mkdir -p "$tmp"
    (cd "$tmp" && npm pack --silent "node-linux-$arch@$SIOBRIDGE_NODE_VERSION" >/dev/null) || {
      echo "could not fetch node-linux-$arch@$SIOBRIDGE_NODE_VERSION" >&2
      rm -rf "$tmp"
      return 1
    }
    tarball="$tmp/node-linux-$arch-$SIOBRIDGE_NODE_VERSION.tgz"
    got=$(sha512sum "$tarball" | cut -d' ' -f1)
    if [[ "$got" != "$want" ]]; then
      echo "node-linux-$arch-$SIOBRIDGE_NODE_VERSION.tgz: sha512 mismatch: got $got, want $want" >&2
      rm -rf "$tmp"
      return 1
    fi
    tar -xzf "$tarball" -C "$tmp" --strip-components=1 package/bin/node package/LICENSE
    rm -f "$tarball"
    rm -rf "$dir" && mv "$tmp" "$dir"
  fi
  PATH="$dir/bin:$PATH"
  export PATH
}
