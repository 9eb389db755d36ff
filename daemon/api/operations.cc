#include "daemon/api/operations.h"

#include <fmt/format.h>

#include "daemon/api/attach_stream.h"
#include "daemon/api/convert.h"
#include "daemon/api/recovery_offset.h"
#include "daemon/core/validation.h"
#include "daemon/wire/ids.h"

namespace siobridge::api {

namespace pb = ::siobridge::v1;

namespace {

// One operation's bookkeeping: in flight while it runs (for draining), its
// duration reported, `done` called once.
class Tracked {
 public:
  Tracked(ApiContext& context, const char* name) : context_(context), name_(name) {}
  // False (nothing in flight) when the daemon drains.
  bool begin() {
    began_ = context_.begin_operation();
    return began_;
  }
  void end(grpc::StatusCode code) {
    if (context_.observer) {
      context_.observer->request_done(name_, std::chrono::steady_clock::now() - started_, code);
    }
    if (began_) context_.end_operation();
  }

 private:
  ApiContext& context_;
  const char* name_;
  bool began_ = false;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

const grpc::Status kDraining{grpc::StatusCode::UNAVAILABLE, "the daemon is shutting down"};

// Whether an operation waits while attached servers or MongoDB's write queue
// have too much waiting (Engine::when_producers_may_go). Work that adds to
// their queues does, unless it is volatile (dropped for a slow server rather
// than waited for); questions do not.
enum class Gate { kWait, kPass };

// Questions about the daemon itself run before the work waiting on the core
// thread (Engine::post_urgent): a status must not wait behind a backlog.
enum class Lane { kInOrder, kUrgent };

// Validates, then runs `work(node, finish)` on the core thread; `finish`
// reports the outcome once. A numbered call (`hooks`) runs in the order its
// stream read it and between its hooks; while the daemon drains it is neither
// applied nor answered (its server sends it again to the next daemon).
template <typename Reply, typename Work>
void run(ApiContext& context, const Operations::CallHooksPtr& hooks, const char* name,
         const grpc::Status& invalid, std::function<void(const grpc::Status&, Reply)> done,
         Work work, Gate gate = Gate::kPass, Lane lane = Lane::kInOrder) {
  auto tracked = std::make_shared<Tracked>(context, name);
  if (!invalid.ok()) {
    tracked->end(invalid.error_code());
    done(invalid, Reply{});
    if (hooks) {
      // Refused, yet counted: a repeat of it is refused the same way.
      context.engine.post([hooks](core::Node&) {
        (void)hooks->before();
        hooks->after();
      });
    }
    return;
  }
  if (!tracked->begin()) {
    tracked->end(kDraining.error_code());
    if (!hooks) done(kDraining, Reply{});
    return;
  }
  auto finish = [tracked, done = std::move(done)](const grpc::Status& status, Reply reply) {
    tracked->end(status.error_code());
    done(status, std::move(reply));
  };
  if (hooks) gate = Gate::kPass;  // the stream stops reading instead
  auto start = [&context, lane, hooks, work = std::move(work),
                finish = std::move(finish)]() mutable {
    std::function<void(core::Node&)> task = [&context, hooks, work = std::move(work),
                                             finish = std::move(finish)](core::Node& node) mutable {
      if (!hooks) {
        work(node, finish);
        return;
      }
      if (hooks->before()) {
        runtime::Engine::CallScope scope(context.engine, hooks->mark);
        work(node, finish);
      } else {
        finish(grpc::Status::OK, Reply{});  // applied before: done
      }
      hooks->after();
    };
    if (lane == Lane::kUrgent) {
      context.engine.post_urgent(std::move(task));
    } else {
      context.engine.post(std::move(task));
    }
  };
  if (gate == Gate::kWait) {
    context.engine.when_producers_may_go(std::move(start));
  } else {
    start();
  }
}

grpc::Status opts_status(const Result<wire::BroadcastOptions>& opts) {
  return opts.ok() ? grpc::Status::OK : to_grpc(opts.error());
}

struct Empty {};

std::function<void(const grpc::Status&, Empty)> status_only(Operations::StatusDone done) {
  return [done = std::move(done)](const grpc::Status& status, Empty) { done(status); };
}

}  // namespace

void Operations::broadcast(core::AttachmentId from, const pb::BroadcastRequest& request,
                           StatusDone done) {
  auto opts = from_proto(request.opts());
  auto packet = from_proto(request.packet(), context_.limits.max_message_bytes);
  const auto invalid = !opts.ok()     ? opts_status(opts)
                       : !packet.ok() ? to_grpc(packet.error())
                                      : grpc::Status::OK;
  const Gate gate = request.opts().volatile_() ? Gate::kPass : Gate::kWait;
  run<Empty>(
      context_, hooks_, "broadcast", invalid, status_only(std::move(done)),
      [from, opts = opts.ok() ? *opts : wire::BroadcastOptions{},
       packet = packet.ok() ? *packet : wire::Packet{},
       tag = core::RecoveryTag{request.recovery_seq(), request.recovery_only()}](core::Node& node,
                                                                                 auto& finish) {
        finish(to_grpc(node.broadcast(from, packet, opts, tag)), Empty{});
      },
      gate);
}

void Operations::persist_session(core::AttachmentId from, const pb::PersistSessionRequest& request,
                                 StatusDone done) {
  grpc::Status invalid = to_grpc(core::check_namespace(request.namespace_()));
  if (invalid.ok() && (request.pid().empty() || request.pid().size() > 256)) {
    invalid = {grpc::StatusCode::INVALID_ARGUMENT, "persist_session: pid must be 1..256 bytes"};
  }
  if (invalid.ok() && !wire::is_valid_socket_id(request.sid())) {
    invalid = {grpc::StatusCode::INVALID_ARGUMENT,
               "persist_session: sid is not a socket id (1..64 characters of [A-Za-z0-9_-])"};
  }
  if (invalid.ok() && request.ByteSizeLong() > context_.limits.max_message_bytes) {
    invalid = {grpc::StatusCode::RESOURCE_EXHAUSTED,
               fmt::format("persist_session: the session is over the {}-byte message limit",
                           context_.limits.max_message_bytes)};
  }
  core::SessionRecord session{request.pid(),
                              request.sid(),
                              {request.rooms().begin(), request.rooms().end()},
                              request.data()};
  run<Empty>(context_, hooks_, "persist_session", invalid, status_only(std::move(done)),
             [from, ns = request.namespace_(), session = std::move(session)](core::Node& node,
                                                                             auto& finish) mutable {
               finish(to_grpc(node.persist_session(from, ns, std::move(session))), Empty{});
             });
}

void Operations::restore_session(core::AttachmentId from, const pb::RestoreSessionRequest& request,
                                 Done<pb::RestoreSessionReply> done) {
  const grpc::Status invalid = to_grpc(core::check_namespace(request.namespace_()));
  auto point = parse_recovery_offset(context_, request.offset());
  const auto attachment_id = context_.attachment_id(from);
  run<pb::RestoreSessionReply>(
      context_, hooks_, "restore_session", invalid, std::move(done),
      [from, ns = request.namespace_(), pid = request.pid(), point, attachment_id](core::Node& node,
                                                                                   auto& finish) {
        auto answer = [finish, attachment_id](Result<core::RestoredSession> restored) {
          pb::RestoreSessionReply reply;
          if (!restored.ok()) {
            if (restored.error().code != ErrorCode::kNotFound) {
              finish(to_grpc(restored.error()), {});
              return;
            }
            reply.set_reason(restored.error().message);
            finish(grpc::Status::OK, std::move(reply));
            return;
          }
          reply.set_found(true);
          reply.set_sid(restored->session.sid);
          for (const auto& room : restored->session.rooms) reply.add_rooms(room);
          reply.set_data(restored->session.data);
          for (const auto& missed : restored->missed) {
            auto* out = reply.add_missed();
            to_proto(missed.packet, out->mutable_packet());
            out->set_offset(recovery_offset(
                recovery_base(attachment_id, missed.seq, missed.seen_through), restored->own_seq));
          }
          finish(grpc::Status::OK, std::move(reply));
        };
        if (!point.ok()) return answer(point.error());
        node.restore_session(from, ns, pid, *point, std::move(answer));
      });
}

void Operations::broadcast_with_ack(core::AttachmentId from, const pb::BroadcastRequest& request,
                                    std::function<void(pb::AckEvent)> on_event, StatusDone done) {
  auto opts = from_proto(request.opts());
  auto packet = from_proto(request.packet(), context_.limits.max_message_bytes);
  const auto invalid = !opts.ok()     ? opts_status(opts)
                       : !packet.ok() ? to_grpc(packet.error())
                                      : grpc::Status::OK;
  run<Empty>(
      context_, hooks_, "broadcast_with_ack", invalid, status_only(std::move(done)),
      [from, opts = opts.ok() ? *opts : wire::BroadcastOptions{},
       packet = packet.ok() ? *packet : wire::Packet{}, timeout = Millis{request.ack_timeout_ms()},
       on_event = std::move(on_event)](core::Node& node, auto& finish) {
        core::AckStream stream{[on_event](std::uint32_t count) {
                                 pb::AckEvent event;
                                 event.set_count(count);
                                 on_event(std::move(event));
                               },
                               [on_event](const std::string& sid, const core::AckResult& result) {
                                 pb::AckEvent event;
                                 to_proto(sid, result, event.mutable_ack());
                                 on_event(std::move(event));
                               },
                               [on_event, finish](const core::Missing& missing, bool timed_out) {
                                 pb::AckEvent event;
                                 to_proto(missing, event.mutable_done()->mutable_missing());
                                 event.mutable_done()->set_timed_out(timed_out);
                                 on_event(std::move(event));
                                 finish(grpc::Status::OK, Empty{});
                               }};
        auto status = node.broadcast_with_ack(from, packet, opts, timeout, std::move(stream));
        if (!status.ok()) finish(to_grpc(status), Empty{});
      },
      Gate::kWait);
}

void Operations::change_rooms(core::AttachmentId from, const pb::RoomsRequest& request, bool join,
                              StatusDone done) {
  auto opts = from_proto(request.opts());
  grpc::Status invalid = to_grpc(core::check_namespace(request.namespace_()));
  if (invalid.ok()) invalid = opts_status(opts);
  if (invalid.ok()) invalid = to_grpc(core::check_target_rooms(request.rooms(), "rooms"));
  run<Empty>(
      context_, hooks_, join ? "add_sockets" : "del_sockets", invalid, status_only(std::move(done)),
      [from, join, ns = request.namespace_(), opts = opts.ok() ? *opts : wire::BroadcastOptions{},
       rooms = std::vector<std::string>(request.rooms().begin(), request.rooms().end())](
          core::Node& node, auto& finish) {
        finish(to_grpc(join ? node.add_sockets(from, ns, opts, rooms)
                            : node.del_sockets(from, ns, opts, rooms)),
               Empty{});
      },
      Gate::kWait);
}

void Operations::disconnect_sockets(core::AttachmentId from, const pb::DisconnectRequest& request,
                                    StatusDone done) {
  auto opts = from_proto(request.opts());
  grpc::Status invalid = to_grpc(core::check_namespace(request.namespace_()));
  if (invalid.ok()) invalid = opts_status(opts);
  run<Empty>(
      context_, hooks_, "disconnect_sockets", invalid, status_only(std::move(done)),
      [from, ns = request.namespace_(), opts = opts.ok() ? *opts : wire::BroadcastOptions{},
       close = request.close()](core::Node& node, auto& finish) {
        finish(to_grpc(node.disconnect_sockets(from, ns, opts, close)), Empty{});
      },
      Gate::kWait);
}

void Operations::fetch_sockets(core::AttachmentId from, const pb::QueryRequest& request,
                               Done<pb::FetchSocketsReply> done) {
  auto opts = from_proto(request.opts());
  grpc::Status invalid = to_grpc(core::check_namespace(request.namespace_()));
  if (invalid.ok()) invalid = opts_status(opts);
  run<pb::FetchSocketsReply>(
      context_, hooks_, "fetch_sockets", invalid, std::move(done),
      [from, ns = request.namespace_(), opts = opts.ok() ? *opts : wire::BroadcastOptions{}](
          core::Node& node, auto& finish) {
        auto status = node.fetch_sockets(from, ns, opts, [finish](core::SocketsResult result) {
          pb::FetchSocketsReply reply;
          for (const auto& socket : result.sockets) to_proto(socket, reply.add_sockets());
          to_proto(result.missing, reply.mutable_missing());
          finish(grpc::Status::OK, std::move(reply));
        });
        if (!status.ok()) finish(to_grpc(status), {});
      });
}

void Operations::all_rooms(core::AttachmentId from, const pb::QueryRequest& request,
                           Done<pb::AllRoomsReply> done) {
  auto opts = from_proto(request.opts());
  grpc::Status invalid = to_grpc(core::check_namespace(request.namespace_()));
  if (invalid.ok()) invalid = opts_status(opts);
  run<pb::AllRoomsReply>(
      context_, hooks_, "all_rooms", invalid, std::move(done),
      [from, ns = request.namespace_(), opts = opts.ok() ? *opts : wire::BroadcastOptions{}](
          core::Node& node, auto& finish) {
        auto status = node.all_rooms(from, ns, opts, [finish](core::RoomsResult result) {
          pb::AllRoomsReply reply;
          for (const auto& room : result.rooms) reply.add_rooms(room);
          to_proto(result.missing, reply.mutable_missing());
          finish(grpc::Status::OK, std::move(reply));
        });
        if (!status.ok()) finish(to_grpc(status), {});
      });
}

void Operations::server_count(const pb::ServerCountRequest& request,
                              Done<pb::ServerCountReply> done) {
  run<pb::ServerCountReply>(context_, hooks_, "server_count",
                            to_grpc(core::check_namespace(request.namespace_())), std::move(done),
                            [ns = request.namespace_()](core::Node& node, auto& finish) {
                              pb::ServerCountReply reply;
                              reply.set_count(node.server_count(ns));
                              finish(grpc::Status::OK, std::move(reply));
                            });
}

void Operations::server_side_emit(core::AttachmentId from, const pb::ServerSideEmitRequest& request,
                                  Done<pb::ServerSideEmitReply> done) {
  grpc::Status invalid = to_grpc(core::check_namespace(request.namespace_()));
  if (invalid.ok() && request.payload().size() > context_.limits.max_message_bytes) {
    invalid = {grpc::StatusCode::RESOURCE_EXHAUSTED,
               fmt::format("payload of {} bytes exceeds max_message_bytes ({})",
                           request.payload().size(), context_.limits.max_message_bytes)};
  }
  run<pb::ServerSideEmitReply>(
      context_, hooks_, "server_side_emit", invalid, std::move(done),
      [from, ns = request.namespace_(), payload = request.payload(),
       wants_ack = request.wants_ack(),
       timeout = Millis{request.timeout_ms()}](core::Node& node, auto& finish) {
        auto status = node.server_side_emit(from, ns, payload, wants_ack, timeout,
                                            [finish](core::EmitResult result) {
                                              pb::ServerSideEmitReply reply;
                                              for (auto& response : result.responses)
                                                reply.add_responses(std::move(response));
                                              reply.set_expected(result.expected);
                                              to_proto(result.missing, reply.mutable_missing());
                                              finish(grpc::Status::OK, std::move(reply));
                                            });
        if (!status.ok()) finish(to_grpc(status), {});
      },
      Gate::kWait);
}

void Operations::status(Done<pb::StatusReply> done) {
  run<pb::StatusReply>(
      context_, hooks_, "status", grpc::Status::OK, std::move(done),
      [this](core::Node& node, auto& finish) {
        const auto status = node.status();
        pb::StatusReply reply;
        reply.set_node_uid(status.uid);
        reply.set_daemon_version(SIOBRIDGE_VERSION);
        reply.set_backend(context_.engine.uses_mongodb() ? "mongodb" : "memory");
        reply.set_bus_state(bus::to_string(status.bus_state));
        reply.set_bus_detail(status.bus_detail);
        reply.set_collection(context_.engine.collection());
        reply.set_operations_in_flight(status.operations_in_flight);
        reply.set_uptime_seconds(
            static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                           std::chrono::steady_clock::now() - context_.started)
                                           .count()));
        for (const auto& ns : status.namespaces) {
          auto* n = reply.add_namespaces();
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
          n->set_packing(ns.packing);
        }
        std::map<core::AttachmentId, std::size_t> queued;
        for (const auto& a : context_.attachments()) queued[a->id()] = a->queued();
        for (const auto& a : status.attachments) {
          auto* out = reply.add_attachments();
          out->set_attachment_id(context_.attachment_id(a.id));
          out->set_name(a.name);
          for (const auto& ns : a.namespaces) out->add_namespaces(ns);
          out->set_queued_messages(queued[a.id]);
        }
        finish(grpc::Status::OK, std::move(reply));
      },
      Gate::kPass, Lane::kUrgent);
}

}  // namespace siobridge::api
