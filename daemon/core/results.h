// What the core hands back to a local server for operations that gather answers
// from other servers. Every result says who did not answer: a request that
// times out returns its partial result and the missing nodes and local servers.
// Plain value types.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "daemon/core/local_server.h"

namespace siobridge::core {

struct Missing {
  std::vector<std::string> nodes;          // uids of other daemons / socketioxide nodes
  std::vector<std::string> local_servers;  // names of servers attached to this daemon
  bool empty() const { return nodes.empty() && local_servers.empty(); }
};

// Why a peer is no longer awaited: it said goodbye (a graceful stop: what it
// had not answered is not missing, it is no longer expected) or its heartbeats
// stopped (what it had not answered is missing). `servers`: how many servers
// it stood for.
struct PeerExit {
  bool graceful = false;
  std::uint32_t servers = 1;
};

struct RoomsResult {
  std::vector<std::string> rooms;  // sorted, each once
  Missing missing;
};

struct RemoteSocket {
  std::string id;
  std::string server_id;  // uid of the node that holds the socket
  std::string ns;
  std::vector<std::string> rooms;
  wire::Bytes handshake;
  wire::Bytes data;
  bool has_details = false;  // false for sockets of socketioxide nodes: only the id is known
};

struct SocketsResult {
  std::vector<RemoteSocket> sockets;
  Missing missing;
};

struct EmitResult {
  std::vector<wire::Bytes> responses;
  std::uint32_t expected = 0;  // servers that should have answered
  Missing missing;
};

// Streamed answer of broadcast_with_ack: counts and acks as they arrive, then
// done once every expected count and every counted ack arrived, or at the
// deadline. Each callback runs on the core thread.
struct AckStream {
  std::function<void(std::uint32_t count)> on_count;
  std::function<void(const std::string& sid, const AckResult& result)> on_ack;
  std::function<void(const Missing& missing, bool timed_out)> on_done;
};

}  // namespace siobridge::core
