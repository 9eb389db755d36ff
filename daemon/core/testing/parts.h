// Test support for the parts of a Node (node.h) built on their own, without a
// Node: a RecordingBus that keeps what is published, a RecordingServer that
// keeps the commands it is given, and Parts, which builds the parts every
// other part stands on (Outbox, Membership, OperationTable, ConnectionRecovery)
// on a FakeClock and a TimerQueue. Tests of one part use what they need of it.
//
// Not thread-safe; for tests only.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/bus/bus.h"
#include "daemon/core/connection_recovery.h"
#include "daemon/core/membership.h"
#include "daemon/core/node_context.h"
#include "daemon/core/operation.h"
#include "daemon/core/operation_table.h"
#include "daemon/core/outbox.h"
#include "daemon/core/socket_aliases.h"
#include "daemon/core/testing/test_cluster.h"  // event(), json_value()

namespace siobridge::core::testing {

class RecordingBus final : public bus::Bus {
 public:
  struct Published {
    wire::Document document;
    bus::Audience audience;
  };
  Status publish(wire::Document document, bus::Audience audience) override;
  bus::BusState state() const override { return bus::BusState::kReady; }
  bool shared() const override { return is_shared; }

  // Requests published, decoded (heartbeats included), with their documents.
  std::vector<std::pair<wire::Request, Published>> requests() const;
  std::vector<std::pair<wire::Response, Published>> responses() const;
  // Extensions of documents to every siobridge node or of extension responses.
  std::vector<wire::Extension> extensions() const;
  void clear() { published.clear(); }

  std::vector<Published> published;
  bool refuse = false;  // publish fails with kUnavailable
  bool is_shared = false;
};

class RecordingServer final : public LocalServer {
 public:
  void deliver(const Command& command) override { commands.push_back(command); }
  std::vector<Command> commands;
};

struct Parts {
  explicit Parts(NodeConfig node_config = default_config());
  // TestCluster's short timeouts, and a grace of one second.
  static NodeConfig default_config();
  // Moves the clock forward and runs the timers due.
  void advance(Millis by);
  // A server attached as `name`, having joined `namespaces`.
  AttachmentId attach(RecordingServer& server, const std::string& name,
                      const std::vector<std::string>& namespaces = {"/"});
  // A heartbeat from `uid` in `ns`: a siobridge node with `servers`, or a
  // socketioxide node without.
  void heartbeat_from(const std::string& uid, std::optional<std::uint32_t> servers,
                      const std::string& ns = "/",
                      wire::RequestType type = wire::RequestType::kHeartbeat);

  NodeConfig config;
  std::string uid = "nodeSelf00000001";  // a valid 16-character id
  std::string instance = "inst0001";
  FakeClock clock;
  TimerQueue timers;
  NodeStats stats;
  SkipLog skipped_input;
  NodeContext context{config, uid, instance, clock, timers, stats, skipped_input};
  RecordingBus bus;
  SocketAliases aliases{100};
  // Peers gone, as Membership reported them.
  struct Gone {
    std::string ns;
    std::string uid;
    PeerExit exit;
  };
  std::vector<Gone> gone;

  Outbox outbox{context, bus,
                [this](const std::string& ns, const std::optional<std::string>& target) {
                  return membership.audience_for(ns, target);
                }};
  Membership membership{
      context, outbox,
      [this](const std::string& ns, const std::string& peer, const PeerExit& exit) {
        gone.push_back({ns, peer, exit});
      }};
  OperationTable table;
  OperationContext operations{context, table, outbox, aliases};
  ConnectionRecovery recovery{context, outbox, aliases};
};

}  // namespace siobridge::core::testing
