#include "daemon/api/bridge_service.h"

#include "daemon/api/ack_event_stream.h"
#include "daemon/api/attach_stream.h"
#include "daemon/api/convert.h"

namespace siobridge::api {

namespace pb = ::siobridge::v1;

namespace {

// Resolves the caller of a separate RPC; on error finishes the call.
std::optional<core::AttachmentId> caller(ApiContext& context, grpc::ServerUnaryReactor* reactor,
                                         const std::string& attachment) {
  auto from = context.parse_attachment(attachment);
  if (!from.ok()) {
    reactor->Finish(to_grpc(from.error()));
    return std::nullopt;
  }
  return *from;
}

template <typename Reply>
Operations::Done<Reply> into(grpc::ServerUnaryReactor* reactor, Reply* out) {
  return [reactor, out](const grpc::Status& status, Reply reply) {
    if (status.ok()) *out = std::move(reply);
    reactor->Finish(status);
  };
}

Operations::StatusDone finish(grpc::ServerUnaryReactor* reactor) {
  return [reactor](const grpc::Status& status) { reactor->Finish(status); };
}

}  // namespace

BridgeService::BridgeService(ApiContext& context) : context_(context), operations_(context) {}

grpc::ServerBidiReactor<pb::ServerMessage, pb::DaemonMessage>* BridgeService::Attach(
    grpc::CallbackServerContext* call) {
  if (context_.draining()) {
    struct Refused final : grpc::ServerBidiReactor<pb::ServerMessage, pb::DaemonMessage> {
      Refused() { Finish({grpc::StatusCode::UNAVAILABLE, "the daemon is shutting down"}); }
      void OnDone() override { delete this; }
    };
    return new Refused();
  }
  return AttachStream::start(context_, operations_, call);
}

void BridgeService::close_attachments(Millis bound) {
  for (auto& attachment : context_.attachments()) {
    attachment->close_when_written({grpc::StatusCode::UNAVAILABLE, "the daemon is shutting down"},
                                   "shutdown", bound);
  }
}

grpc::ServerUnaryReactor* BridgeService::Broadcast(grpc::CallbackServerContext* call,
                                                   const pb::BroadcastRequest* request,
                                                   pb::OperationReply*) {
  auto* reactor = call->DefaultReactor();
  if (auto from = caller(context_, reactor, request->attachment_id())) {
    operations_.broadcast(*from, *request, finish(reactor));
  }
  return reactor;
}

grpc::ServerWriteReactor<pb::AckEvent>* BridgeService::BroadcastWithAck(
    grpc::CallbackServerContext*, const pb::BroadcastRequest* request) {
  return AckEventStream::start(context_, operations_, *request);
}

grpc::ServerUnaryReactor* BridgeService::AddSockets(grpc::CallbackServerContext* call,
                                                    const pb::RoomsRequest* request,
                                                    pb::OperationReply*) {
  auto* reactor = call->DefaultReactor();
  if (auto from = caller(context_, reactor, request->attachment_id())) {
    operations_.change_rooms(*from, *request, true, finish(reactor));
  }
  return reactor;
}

grpc::ServerUnaryReactor* BridgeService::DelSockets(grpc::CallbackServerContext* call,
                                                    const pb::RoomsRequest* request,
                                                    pb::OperationReply*) {
  auto* reactor = call->DefaultReactor();
  if (auto from = caller(context_, reactor, request->attachment_id())) {
    operations_.change_rooms(*from, *request, false, finish(reactor));
  }
  return reactor;
}

grpc::ServerUnaryReactor* BridgeService::DisconnectSockets(grpc::CallbackServerContext* call,
                                                           const pb::DisconnectRequest* request,
                                                           pb::OperationReply*) {
  auto* reactor = call->DefaultReactor();
  if (auto from = caller(context_, reactor, request->attachment_id())) {
    operations_.disconnect_sockets(*from, *request, finish(reactor));
  }
  return reactor;
}

grpc::ServerUnaryReactor* BridgeService::FetchSockets(grpc::CallbackServerContext* call,
                                                      const pb::QueryRequest* request,
                                                      pb::FetchSocketsReply* reply) {
  auto* reactor = call->DefaultReactor();
  if (auto from = caller(context_, reactor, request->attachment_id())) {
    operations_.fetch_sockets(*from, *request, into(reactor, reply));
  }
  return reactor;
}

grpc::ServerUnaryReactor* BridgeService::AllRooms(grpc::CallbackServerContext* call,
                                                  const pb::QueryRequest* request,
                                                  pb::AllRoomsReply* reply) {
  auto* reactor = call->DefaultReactor();
  if (auto from = caller(context_, reactor, request->attachment_id())) {
    operations_.all_rooms(*from, *request, into(reactor, reply));
  }
  return reactor;
}

grpc::ServerUnaryReactor* BridgeService::ServerCount(grpc::CallbackServerContext* call,
                                                     const pb::ServerCountRequest* request,
                                                     pb::ServerCountReply* reply) {
  auto* reactor = call->DefaultReactor();
  operations_.server_count(*request, into(reactor, reply));
  return reactor;
}

grpc::ServerUnaryReactor* BridgeService::ServerSideEmit(grpc::CallbackServerContext* call,
                                                        const pb::ServerSideEmitRequest* request,
                                                        pb::ServerSideEmitReply* reply) {
  auto* reactor = call->DefaultReactor();
  if (auto from = caller(context_, reactor, request->attachment_id())) {
    operations_.server_side_emit(*from, *request, into(reactor, reply));
  }
  return reactor;
}

grpc::ServerUnaryReactor* BridgeService::Status(grpc::CallbackServerContext* call,
                                                const pb::StatusRequest*, pb::StatusReply* reply) {
  auto* reactor = call->DefaultReactor();
  operations_.status(into(reactor, reply));
  return reactor;
}

}  // namespace siobridge::api
