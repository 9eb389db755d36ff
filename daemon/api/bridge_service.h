// BridgeService: the siobridge.v1.Bridge gRPC service on the callback API.
// The separate RPCs and the calls on Attach streams share one Operations;
// nothing blocks a gRPC thread.
//
// Thread-safe.
#pragma once

#include "daemon/api/api_context.h"
#include "daemon/api/operations.h"
#include "daemon/common/time.h"
#include "siobridge/v1/bridge.grpc.pb.h"

namespace siobridge::api {

class BridgeService final : public ::siobridge::v1::Bridge::CallbackService {
 public:
  explicit BridgeService(ApiContext& context);

  // Ends every Attach stream with UNAVAILABLE (graceful shutdown), each once
  // what is queued for its servers is written, or after `bound`.
  void close_attachments(Millis bound);

  using ServerMessage = ::siobridge::v1::ServerMessage;
  using DaemonMessage = ::siobridge::v1::DaemonMessage;

  grpc::ServerBidiReactor<ServerMessage, DaemonMessage>* Attach(
      grpc::CallbackServerContext* call) override;
  grpc::ServerUnaryReactor* Broadcast(grpc::CallbackServerContext* call,
                                      const ::siobridge::v1::BroadcastRequest* request,
                                      ::siobridge::v1::OperationReply* reply) override;
  grpc::ServerWriteReactor<::siobridge::v1::AckEvent>* BroadcastWithAck(
      grpc::CallbackServerContext* call, const ::siobridge::v1::BroadcastRequest* request) override;
  grpc::ServerUnaryReactor* AddSockets(grpc::CallbackServerContext* call,
                                       const ::siobridge::v1::RoomsRequest* request,
                                       ::siobridge::v1::OperationReply* reply) override;
  grpc::ServerUnaryReactor* DelSockets(grpc::CallbackServerContext* call,
                                       const ::siobridge::v1::RoomsRequest* request,
                                       ::siobridge::v1::OperationReply* reply) override;
  grpc::ServerUnaryReactor* DisconnectSockets(grpc::CallbackServerContext* call,
                                              const ::siobridge::v1::DisconnectRequest* request,
                                              ::siobridge::v1::OperationReply* reply) override;
  grpc::ServerUnaryReactor* FetchSockets(grpc::CallbackServerContext* call,
                                         const ::siobridge::v1::QueryRequest* request,
                                         ::siobridge::v1::FetchSocketsReply* reply) override;
  grpc::ServerUnaryReactor* AllRooms(grpc::CallbackServerContext* call,
                                     const ::siobridge::v1::QueryRequest* request,
                                     ::siobridge::v1::AllRoomsReply* reply) override;
  grpc::ServerUnaryReactor* ServerCount(grpc::CallbackServerContext* call,
                                        const ::siobridge::v1::ServerCountRequest* request,
                                        ::siobridge::v1::ServerCountReply* reply) override;
  grpc::ServerUnaryReactor* ServerSideEmit(grpc::CallbackServerContext* call,
                                           const ::siobridge::v1::ServerSideEmitRequest* request,
                                           ::siobridge::v1::ServerSideEmitReply* reply) override;
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* call,
                                   const ::siobridge::v1::StatusRequest* request,
                                   ::siobridge::v1::StatusReply* reply) override;

 private:
  ApiContext& context_;
  Operations operations_;
};

}  // namespace siobridge::api
