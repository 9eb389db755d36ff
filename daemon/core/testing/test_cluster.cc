#include "daemon/core/testing/test_cluster.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>

#include "daemon/wire/ids.h"
#include "daemon/wire/payload_codec.h"

namespace siobridge::core::testing {
namespace {

// Core tests log only warnings unless SIOBRIDGE_TEST_LOG=debug|info asks for more.
const bool quiet_logs = [] {
  const char* level = std::getenv("SIOBRIDGE_TEST_LOG");
  spdlog::set_level(level ? spdlog::level::from_str(level) : spdlog::level::warn);
  return true;
}();

}  // namespace

// ---- FakeServer ----

void FakeServer::add_socket(const std::string& sid, std::set<std::string> rooms,
                            const std::string& ns) {
  rooms.insert(sid);  // socket.io puts every socket in a room named by its id
  sockets_[ns][sid] = std::move(rooms);
}

std::set<std::string> FakeServer::select(const std::string& ns,
                                         const wire::BroadcastOptions& opts) const {
  std::set<std::string> out;
  auto it = sockets_.find(ns);
  if (it == sockets_.end()) return out;
  const auto& sockets = it->second;
  auto in_any = [](const std::set<std::string>& rooms, const std::vector<std::string>& wanted) {
    return std::any_of(wanted.begin(), wanted.end(), [&](const auto& r) { return rooms.count(r); });
  };
  std::set<std::string> except;
  for (const auto& [sid, rooms] : sockets)
    if (in_any(rooms, opts.except)) except.insert(sid);
  if (opts.has(wire::broadcast_flags::kBroadcast) && opts.sid) except.insert(*opts.sid);
  if (!opts.rooms.empty()) {
    for (const auto& [sid, rooms] : sockets)
      if (in_any(rooms, opts.rooms) && !except.count(sid)) out.insert(sid);
  } else if (opts.has(wire::broadcast_flags::kBroadcast)) {
    for (const auto& [sid, rooms] : sockets)
      if (!except.count(sid)) out.insert(sid);
  } else if (opts.sid && sockets.count(*opts.sid)) {
    out.insert(*opts.sid);
  }
  return out;
}

void FakeServer::deliver(const Command& command) {
  commands.push_back(command);
  if (!answers) return;
  const auto targets = select(command.ns, command.opts);
  auto& sockets = sockets_[command.ns];
  switch (command.kind) {
    case CommandKind::kBroadcast:
      for (const auto& sid : targets) delivered.push_back({sid, *command.packet});
      break;
    case CommandKind::kBroadcastWithAck: {
      for (const auto& sid : targets) delivered.push_back({sid, *command.packet});
      const auto count = static_cast<std::uint32_t>(targets.size());
      answers_.push_back([this, id = command.id, count] { to().send_ack_count(id, count); });
      if (clients_ack) {
        for (const auto& sid : targets) {
          answers_.push_back([this, id = command.id, sid] {
            to().send_ack(id, sid, json_value("[\"ack:" + sid + "\"]"));
          });
        }
      }
      break;
    }
    case CommandKind::kAddSockets:
      for (const auto& sid : targets)
        for (const auto& room : command.rooms) sockets[sid].insert(room);
      break;
    case CommandKind::kDelSockets:
      for (const auto& sid : targets)
        for (const auto& room : command.rooms) sockets[sid].erase(room);
      break;
    case CommandKind::kDisconnectSockets:
      for (const auto& sid : targets) {
        sockets.erase(sid);
        disconnected.insert(sid);
      }
      break;
    case CommandKind::kFetchSockets: {
      std::vector<wire::SocketDetails> found;
      for (const auto& sid : targets) {
        const auto& rooms = sockets[sid];
        found.push_back({sid,
                         {rooms.begin(), rooms.end()},
                         "{\"server\":\"" + name_ + "\"}",
                         "{\"sid\":\"" + sid + "\"}"});
      }
      answers_.push_back([this, id = command.id, found] { to().send_sockets(id, found); });
      break;
    }
    case CommandKind::kAllRooms: {
      std::set<std::string> all;
      for (const auto& [sid, rooms] : sockets) all.insert(rooms.begin(), rooms.end());
      answers_.push_back([this, id = command.id, all] {
        to().send_rooms(id, {all.begin(), all.end()});
      });
      break;
    }
    case CommandKind::kRecoveryMark:
      break;
    case CommandKind::kServerSideEmit:
      emits_received.push_back(command.payload);
      if (command.wants_ack) {
        answers_.push_back([this, id = command.id] { to().send_emit_reply(id, emit_reply); });
      }
      break;
  }
}

bool FakeServer::flush() {
  if (answers_.empty()) return false;
  while (!answers_.empty()) {
    auto answer = std::move(answers_.front());
    answers_.pop_front();
    answer();
  }
  return true;
}

void FakeServer::send_ack_count(CommandId command, std::uint32_t count) {
  if (node && node->has_attachment(id)) node->on_ack_count(id, command, count);
}
void FakeServer::send_ack(CommandId command, const std::string& sid, const AckResult& result) {
  if (node && node->has_attachment(id)) node->on_ack(id, command, sid, result);
}
void FakeServer::send_rooms(CommandId command, std::vector<std::string> rooms) {
  if (node && node->has_attachment(id)) node->on_rooms(id, command, std::move(rooms));
}
void FakeServer::send_sockets(CommandId command, std::vector<wire::SocketDetails> sockets) {
  if (node && node->has_attachment(id)) node->on_sockets(id, command, std::move(sockets));
}
void FakeServer::send_emit_reply(CommandId command, wire::Bytes payload) {
  if (node && node->has_attachment(id)) node->on_emit_reply(id, command, std::move(payload));
}

std::vector<Command> FakeServer::commands_of(CommandKind kind) const {
  std::vector<Command> out;
  for (const auto& c : commands)
    if (c.kind == kind) out.push_back(c);
  return out;
}

std::set<std::string> FakeServer::rooms_of(const std::string& sid, const std::string& ns) const {
  auto it = sockets_.find(ns);
  if (it == sockets_.end()) return {};
  auto s = it->second.find(sid);
  return s == it->second.end() ? std::set<std::string>{} : s->second;
}

std::set<std::string> FakeServer::sids_reached() const {
  std::set<std::string> out;
  for (const auto& d : delivered) out.insert(d.sid);
  return out;
}

// ---- TestNode / RawPeer ----

TestNode::TestNode(TestCluster& cluster, NodeConfig config)
    : bus_(cluster.hub.add_endpoint()),
      node_(std::make_unique<Node>(std::move(config), bus_, cluster.clock, cluster.timers)) {
  bus_.connect(node_->uid(), this);
}

AttachmentId TestNode::attach(FakeServer& server, const std::vector<std::string>& namespaces) {
  server.node = node_.get();
  server.id = node_->attach(server, server.name());
  for (const auto& ns : namespaces) (void)node_->join_namespace(server.id, ns);
  return server.id;
}

RawPeer::RawPeer(TestCluster& cluster, std::string peer_uid)
    : uid(std::move(peer_uid)), bus_(cluster.hub.add_endpoint()) {
  bus_.connect(uid, this, /*siobridge=*/false);
}

void RawPeer::publish_request(const wire::Request& request, const std::string& ns) {
  publish({{wire::MessageKind::kRequest, ns, uid, std::nullopt, std::nullopt},
           wire::encode_request(request),
           std::nullopt});
}

void RawPeer::announce(const std::string& ns) {
  publish_request({uid, wire::generate_id(), wire::RequestType::kInitHeartbeat, {}, {}, {}}, ns);
}

// ---- TestCluster ----

TestCluster::TestCluster() = default;

NodeConfig TestCluster::default_config() {
  NodeConfig config;
  config.heartbeat_interval = Millis{1000};
  config.heartbeat_timeout = Millis{5000};
  config.request_timeout = Millis{500};
  config.ack_timeout = Millis{500};
  config.local_timeout = Millis{200};
  return config;
}

TestNode& TestCluster::add_node(NodeConfig config) {
  nodes_.push_back(std::make_unique<TestNode>(*this, std::move(config)));
  return *nodes_.back();
}

RawPeer& TestCluster::add_raw_peer(std::string uid) {
  raw_peers_.push_back(std::make_unique<RawPeer>(*this, std::move(uid)));
  return *raw_peers_.back();
}

FakeServer& TestCluster::server(std::string name) {
  servers_.push_back(std::make_unique<FakeServer>(std::move(name)));
  return *servers_.back();
}

void TestCluster::settle() {
  for (int round = 0; round < 10000; ++round) {
    bool moved = hub.deliver_all() > 0;
    for (auto& server : servers_) moved = server->flush() || moved;
    if (!moved) return;
  }
}

void TestCluster::advance(Millis by) {
  const Millis target = clock.now() + by;
  settle();
  while (auto next = timers.next_deadline()) {
    if (*next > target) break;
    clock.set(std::max(*next, clock.now()));
    timers.run_due(clock.now());
    settle();
  }
  clock.set(target);
}

wire::Value json_value(const std::string& text) {
  return {wire::ValueKind::kStr, text, std::nullopt};
}

wire::Packet event(const std::string& json, const std::string& ns) {
  return {ns, wire::PacketType::kEvent, json_value(json), std::nullopt, std::nullopt};
}

}  // namespace siobridge::core::testing
