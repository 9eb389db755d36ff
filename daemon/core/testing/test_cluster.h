// Test support for the core: several Nodes on one MemoryHub, one FakeClock and
// one TimerQueue, with FakeServers standing in for attached socket.io servers.
// A FakeServer holds sockets and rooms, applies commands by the PROTOCOL.md
// rule (options -> sockets) and queues its answers; settle() delivers documents
// and answers until nothing moves, advance() moves time deadline by deadline.
//
// Not thread-safe; for tests only.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "daemon/bus/memory/memory_bus.h"
#include "daemon/core/node.h"

namespace siobridge::core::testing {

// Where a FakeServer's answers go: by default straight to its Node; tests of
// the daemon send them over an Attach stream instead.
class ReplySink {
 public:
  virtual ~ReplySink() = default;
  virtual void send_ack_count(CommandId command, std::uint32_t count) = 0;
  virtual void send_ack(CommandId command, const std::string& sid, const AckResult& result) = 0;
  virtual void send_rooms(CommandId command, std::vector<std::string> rooms) = 0;
  virtual void send_sockets(CommandId command, std::vector<wire::SocketDetails> sockets) = 0;
  virtual void send_emit_reply(CommandId command, wire::Bytes payload) = 0;
};

class FakeServer final : public LocalServer, private ReplySink {
 public:
  explicit FakeServer(std::string name) : name_(std::move(name)) {}

  // Sockets of namespace "/" (or `ns`), each in its own room and in `rooms`.
  void add_socket(const std::string& sid, std::set<std::string> rooms = {},
                  const std::string& ns = "/");

  void deliver(const Command& command) override;
  // Runs queued answers; returns true if there were any.
  bool flush();

  // Behaviour switches.
  bool answers = true;      // false: never answers (a stuck server)
  bool clients_ack = true;  // false: counts are sent, acks never come
  std::string emit_reply = "[\"pong\"]";

  // What happened here.
  struct Delivery {
    std::string sid;
    wire::Packet packet;
  };
  std::vector<Command> commands;
  std::vector<Delivery> delivered;  // packets that reached a socket
  std::set<std::string> disconnected;
  std::vector<wire::Bytes> emits_received;

  std::vector<Command> commands_of(CommandKind kind) const;
  std::set<std::string> rooms_of(const std::string& sid, const std::string& ns = "/") const;
  std::set<std::string> sids_reached() const;
  const std::string& name() const { return name_; }

  // Set by TestNode::attach.
  Node* node = nullptr;
  AttachmentId id = 0;
  // Overrides where answers go (not owned).
  ReplySink* sink = nullptr;

 private:
  ReplySink& to() { return sink ? *sink : *this; }
  // ReplySink to `node` (answers are dropped once detached).
  void send_ack_count(CommandId command, std::uint32_t count) override;
  void send_ack(CommandId command, const std::string& sid, const AckResult& result) override;
  void send_rooms(CommandId command, std::vector<std::string> rooms) override;
  void send_sockets(CommandId command, std::vector<wire::SocketDetails> sockets) override;
  void send_emit_reply(CommandId command, wire::Bytes payload) override;

  std::set<std::string> select(const std::string& ns, const wire::BroadcastOptions& opts) const;
  std::map<std::string, std::map<std::string, std::set<std::string>>>
      sockets_;  // ns -> sid -> rooms
  std::deque<std::function<void()>> answers_;
  std::string name_;
};

class TestCluster;

class TestNode final : public bus::BusListener {
 public:
  TestNode(TestCluster& cluster, NodeConfig config);
  Node& node() { return *node_; }
  const std::string& uid() const { return node_->uid(); }
  AttachmentId attach(FakeServer& server, const std::vector<std::string>& namespaces = {"/"});

  void on_document(wire::Document document, const std::string& position) override {
    node_->on_document(document, position);
  }
  void on_bus_state(bus::BusState, const std::string&) override {}

 private:
  bus::memory::MemoryBus& bus_;
  std::unique_ptr<Node> node_;
};

// A bare endpoint on the hub: publishes hand-written documents and records what
// reaches it, like a socketioxide node would.
class RawPeer final : public bus::BusListener {
 public:
  RawPeer(TestCluster& cluster, std::string uid);
  void publish(wire::Document document) {
    (void)bus_.publish(std::move(document), bus::Audience::kEveryNode);
  }
  // `request` to every node of `ns`, as socketioxide publishes it.
  void publish_request(const wire::Request& request, const std::string& ns = "/");
  // Its first heartbeat (InitHeartbeat): the nodes of `ns` count it as a peer.
  void announce(const std::string& ns = "/");
  void on_document(wire::Document document, const std::string&) override {
    received.push_back(std::move(document));
  }
  void on_bus_state(bus::BusState, const std::string&) override {}
  const std::string uid;
  std::vector<wire::Document> received;

 private:
  bus::memory::MemoryBus& bus_;
};

class TestCluster {
 public:
  TestCluster();
  static NodeConfig default_config();

  TestNode& add_node(NodeConfig config = default_config());
  RawPeer& add_raw_peer(std::string uid);
  FakeServer& server(std::string name);

  // Delivers documents and server answers until nothing moves.
  void settle();
  // Moves the clock forward, firing timers in order and settling after each.
  void advance(Millis by);

  FakeClock clock;
  TimerQueue timers;
  bus::memory::MemoryHub hub;

 private:
  std::vector<std::unique_ptr<TestNode>> nodes_;
  std::vector<std::unique_ptr<RawPeer>> raw_peers_;
  std::vector<std::unique_ptr<FakeServer>> servers_;
};

// A Value of the JSON parser for event data, e.g. json_value("[\"hi\"]").
wire::Value json_value(const std::string& text);
wire::Packet event(const std::string& json, const std::string& ns = "/");

}  // namespace siobridge::core::testing
