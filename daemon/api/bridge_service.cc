#include "daemon/api/bridge_service.h"

#include <spdlog/spdlog.h>

#include "daemon/api/ack_event_stream.h"
#include "daemon/api/attachment.h"
#include "daemon/api/convert.h"

namespace siobridge::api {

namespace pb = ::siobridge::v1;

namespace {

// One unary call: counts as in flight for draining, reports its duration, and
// finishes exactly once from whichever thread has the answer.
class UnaryCall {
 public:
  UnaryCall(ApiContext& context, grpc::CallbackServerContext* call, const char* operation)
      : context_(context), reactor_(call->DefaultReactor()), operation_(operation) {}

  // False (and finished with UNAVAILABLE) when the daemon is draining.
  bool begin() {
    if (context_.begin_operation()) return true;
    reactor_->Finish({grpc::StatusCode::UNAVAILABLE, "the daemon is shutting down"});
    return false;
  }
  // For calls that failed validation before begin().
  void reject(const grpc::Status& status) {
    reactor_->Finish(status);
    observe(status.error_code());
  }
  void finish(const grpc::Status& status) {
    reactor_->Finish(status);
    observe(status.error_code());
    context_.end_operation();
  }
  grpc::ServerUnaryReactor* reactor() const { return reactor_; }

 private:
  void observe(grpc::StatusCode code) {
    if (context_.observer) {
      context_.observer->request_done(operation_, std::chrono::steady_clock::now() - started_,
                                      code);
    }
  }
  ApiContext& context_;
  grpc::ServerUnaryReactor* reactor_;
  const char* operation_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

// Validates the parts every operation shares; on error finishes the call.
struct Target {
  core::AttachmentId from = core::kNoAttachment;
  wire::BroadcastOptions opts;
};

std::optional<Target> resolve(ApiContext& context, const std::shared_ptr<UnaryCall>& call,
                              const std::string& attachment, const std::string* ns,
                              const pb::BroadcastOptions* opts) {
  auto from = context.parse_attachment(attachment);
  if (!from.ok()) {
    call->reject(to_grpc(from.error()));
    return std::nullopt;
  }
  if (ns) {
    if (auto s = check_namespace(*ns); !s.ok()) {
      call->reject(s);
      return std::nullopt;
    }
  }
  Target target{*from, {}};
  if (opts) {
    auto parsed = from_proto(*opts);
    if (!parsed.ok()) {
      call->reject(to_grpc(parsed.error()));
      return std::nullopt;
    }
    target.opts = std::move(*parsed);
  }
  return target;
}

}  // namespace

grpc::ServerBidiReactor<pb::ServerMessage, pb::DaemonMessage>* BridgeService::Attach(
    grpc::CallbackServerContext* call) {
  if (context_.draining()) {
    struct Refused final : grpc::ServerBidiReactor<pb::ServerMessage, pb::DaemonMessage> {
      Refused() { Finish({grpc::StatusCode::UNAVAILABLE, "the daemon is shutting down"}); }
      void OnDone() override { delete this; }
    };
    return new Refused();
  }
  return Attachment::start(context_, call);
}

void BridgeService::close_attachments() {
  for (auto& attachment : context_.attachments()) {
    attachment->close({grpc::StatusCode::UNAVAILABLE, "the daemon is shutting down"}, "shutdown");
  }
}

grpc::ServerUnaryReactor* BridgeService::Broadcast(grpc::CallbackServerContext* call,
                                                   const pb::BroadcastRequest* request,
                                                   pb::OperationReply*) {
  auto op = std::make_shared<UnaryCall>(context_, call, "broadcast");
  auto target = resolve(context_, op, request->attachment_id(), nullptr, &request->opts());
  if (!target) return op->reactor();
  auto packet = from_proto(request->packet(), context_.limits.max_message_bytes);
  if (!packet.ok()) {
    op->reject(to_grpc(packet.error()));
    return op->reactor();
  }
  if (!op->begin()) return op->reactor();
  context_.engine.post([op, from = target->from, opts = std::move(target->opts),
                        packet = std::move(*packet)](core::Node& node) {
    op->finish(to_grpc(node.broadcast(from, packet, opts)));
  });
  return op->reactor();
}

grpc::ServerWriteReactor<pb::AckEvent>* BridgeService::BroadcastWithAck(
    grpc::CallbackServerContext* call, const pb::BroadcastRequest* request) {
  return AckEventStream::start(context_, call, *request);
}

namespace {

grpc::ServerUnaryReactor* rooms_operation(ApiContext& context, grpc::CallbackServerContext* call,
                                          const pb::RoomsRequest* request, bool join) {
  auto op = std::make_shared<UnaryCall>(context, call, join ? "add_sockets" : "del_sockets");
  auto target =
      resolve(context, op, request->attachment_id(), &request->namespace_(), &request->opts());
  if (!target) return op->reactor();
  if (request->rooms_size() == 0) {
    op->reject(invalid("rooms: at least one room is needed"));
    return op->reactor();
  }
  if (auto s = check_rooms(request->rooms(), "rooms"); !s.ok()) {
    op->reject(s);
    return op->reactor();
  }
  if (!op->begin()) return op->reactor();
  std::vector<std::string> rooms(request->rooms().begin(), request->rooms().end());
  context.engine.post([op, join, ns = request->namespace_(), from = target->from,
                       opts = std::move(target->opts), rooms = std::move(rooms)](core::Node& node) {
    op->finish(to_grpc(join ? node.add_sockets(from, ns, opts, rooms)
                            : node.del_sockets(from, ns, opts, rooms)));
  });
  return op->reactor();
}

}  // namespace

grpc::ServerUnaryReactor* BridgeService::AddSockets(grpc::CallbackServerContext* call,
                                                    const pb::RoomsRequest* request,
                                                    pb::OperationReply*) {
  return rooms_operation(context_, call, request, true);
}

grpc::ServerUnaryReactor* BridgeService::DelSockets(grpc::CallbackServerContext* call,
                                                    const pb::RoomsRequest* request,
                                                    pb::OperationReply*) {
  return rooms_operation(context_, call, request, false);
}

grpc::ServerUnaryReactor* BridgeService::DisconnectSockets(grpc::CallbackServerContext* call,
                                                           const pb::DisconnectRequest* request,
                                                           pb::OperationReply*) {
  auto op = std::make_shared<UnaryCall>(context_, call, "disconnect_sockets");
  auto target =
      resolve(context_, op, request->attachment_id(), &request->namespace_(), &request->opts());
  if (!target || !op->begin()) return op->reactor();
  context_.engine.post([op, ns = request->namespace_(), from = target->from,
                        opts = std::move(target->opts),
                        close = request->close()](core::Node& node) {
    op->finish(to_grpc(node.disconnect_sockets(from, ns, opts, close)));
  });
  return op->reactor();
}

grpc::ServerUnaryReactor* BridgeService::FetchSockets(grpc::CallbackServerContext* call,
                                                      const pb::QueryRequest* request,
                                                      pb::FetchSocketsReply* reply) {
  auto op = std::make_shared<UnaryCall>(context_, call, "fetch_sockets");
  auto target =
      resolve(context_, op, request->attachment_id(), &request->namespace_(), &request->opts());
  if (!target || !op->begin()) return op->reactor();
  context_.engine.post([op, reply, ns = request->namespace_(), from = target->from,
                        opts = std::move(target->opts)](core::Node& node) {
    auto status = node.fetch_sockets(from, ns, opts, [op, reply](core::SocketsResult result) {
      for (const auto& socket : result.sockets) to_proto(socket, reply->add_sockets());
      to_proto(result.missing, reply->mutable_missing());
      op->finish(grpc::Status::OK);
    });
    if (!status.ok()) op->finish(to_grpc(status));
  });
  return op->reactor();
}

grpc::ServerUnaryReactor* BridgeService::AllRooms(grpc::CallbackServerContext* call,
                                                  const pb::QueryRequest* request,
                                                  pb::AllRoomsReply* reply) {
  auto op = std::make_shared<UnaryCall>(context_, call, "all_rooms");
  auto target =
      resolve(context_, op, request->attachment_id(), &request->namespace_(), &request->opts());
  if (!target || !op->begin()) return op->reactor();
  context_.engine.post([op, reply, ns = request->namespace_(), from = target->from,
                        opts = std::move(target->opts)](core::Node& node) {
    auto status = node.all_rooms(from, ns, opts, [op, reply](core::RoomsResult result) {
      for (const auto& room : result.rooms) reply->add_rooms(room);
      to_proto(result.missing, reply->mutable_missing());
      op->finish(grpc::Status::OK);
    });
    if (!status.ok()) op->finish(to_grpc(status));
  });
  return op->reactor();
}

grpc::ServerUnaryReactor* BridgeService::ServerCount(grpc::CallbackServerContext* call,
                                                     const pb::ServerCountRequest* request,
                                                     pb::ServerCountReply* reply) {
  auto op = std::make_shared<UnaryCall>(context_, call, "server_count");
  if (auto s = check_namespace(request->namespace_()); !s.ok()) {
    op->reject(s);
    return op->reactor();
  }
  if (!op->begin()) return op->reactor();
  context_.engine.post([op, reply, ns = request->namespace_()](core::Node& node) {
    reply->set_count(node.server_count(ns));
    op->finish(grpc::Status::OK);
  });
  return op->reactor();
}

grpc::ServerUnaryReactor* BridgeService::ServerSideEmit(grpc::CallbackServerContext* call,
                                                        const pb::ServerSideEmitRequest* request,
                                                        pb::ServerSideEmitReply* reply) {
  auto op = std::make_shared<UnaryCall>(context_, call, "server_side_emit");
  auto target = resolve(context_, op, request->attachment_id(), &request->namespace_(), nullptr);
  if (!target) return op->reactor();
  if (request->payload().size() > context_.limits.max_message_bytes) {
    op->reject({grpc::StatusCode::RESOURCE_EXHAUSTED,
                fmt::format("payload of {} bytes exceeds max_message_bytes ({})",
                            request->payload().size(), context_.limits.max_message_bytes)});
    return op->reactor();
  }
  if (!op->begin()) return op->reactor();
  context_.engine.post([op, reply, ns = request->namespace_(), from = target->from,
                        payload = request->payload(), wants_ack = request->wants_ack(),
                        timeout = core::Millis{request->timeout_ms()}](core::Node& node) {
    auto done = [op, reply](core::EmitResult result) {
      for (auto& response : result.responses) reply->add_responses(std::move(response));
      reply->set_expected(result.expected);
      to_proto(result.missing, reply->mutable_missing());
      op->finish(grpc::Status::OK);
    };
    auto status = node.server_side_emit(from, ns, payload, wants_ack, timeout, done);
    if (!status.ok()) op->finish(to_grpc(status));
  });
  return op->reactor();
}

grpc::ServerUnaryReactor* BridgeService::Status(grpc::CallbackServerContext* call,
                                                const pb::StatusRequest*, pb::StatusReply* reply) {
  auto op = std::make_shared<UnaryCall>(context_, call, "status");
  if (!op->begin()) return op->reactor();
  context_.engine.post([this, op, reply](core::Node& node) {
    const auto status = node.status();
    reply->set_node_uid(status.uid);
    reply->set_daemon_version(SIOBRIDGE_VERSION);
    reply->set_backend(context_.engine.uses_mongodb() ? "mongodb" : "memory");
    reply->set_bus_state(bus::to_string(status.bus_state));
    reply->set_bus_detail(status.bus_detail);
    reply->set_collection(context_.engine.collection());
    reply->set_operations_in_flight(status.operations_in_flight);
    reply->set_uptime_seconds(
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::steady_clock::now() - context_.started)
                                       .count()));
    for (const auto& ns : status.namespaces) {
      auto* n = reply->add_namespaces();
      n->set_namespace_(ns.ns);
      for (const auto& s : ns.local_servers) n->add_local_servers(s);
      for (const auto& p : ns.peers) {
        auto* peer = n->add_peers();
        peer->set_uid(p.uid);
        peer->set_last_seen_ms_ago(static_cast<std::uint64_t>(p.last_seen_ago.count()));
        peer->set_siobridge(p.siobridge);
        peer->set_servers(p.servers);
      }
      n->set_server_count(ns.server_count);
    }
    std::map<core::AttachmentId, std::size_t> queued;
    for (const auto& a : context_.attachments()) queued[a->id()] = a->queued();
    for (const auto& a : status.attachments) {
      auto* out = reply->add_attachments();
      out->set_attachment_id(context_.attachment_id(a.id));
      out->set_name(a.name);
      for (const auto& ns : a.namespaces) out->add_namespaces(ns);
      out->set_queued_messages(queued[a.id]);
    }
    op->finish(grpc::Status::OK);
  });
  return op->reactor();
}

}  // namespace siobridge::api
