// AckEventStream: the BroadcastWithAck RPC, a server-streaming reactor. The
// core streams counts and acks into an Outbox as they arrive and ends with
// Done; the RPC finishes once Done is written. If the caller goes away first,
// the rest is dropped.
//
// Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include "daemon/api/api_context.h"
#include "daemon/api/operations.h"
#include "siobridge/v1/bridge.pb.h"

namespace siobridge::api {

class AckEventStream {
 public:
  static grpc::ServerWriteReactor<::siobridge::v1::AckEvent>* start(
      ApiContext& context, Operations& operations,
      const ::siobridge::v1::BroadcastRequest& request);
};

}  // namespace siobridge::api
