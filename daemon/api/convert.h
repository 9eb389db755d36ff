// Between the gRPC API (proto/siobridge/v1) and the core's types: conversion
// both ways, refusing what a caller sends with a precise message (the rules on
// namespaces, rooms and options are the core's: core/validation.h).
// Stateless and thread-safe.
#pragma once

#include <grpcpp/support/status.h>

#include <optional>
#include <string>
#include <vector>

#include "daemon/common/result.h"
#include "daemon/core/local_server.h"
#include "daemon/core/node_status.h"
#include "daemon/core/results.h"
#include "daemon/wire/messages.h"
#include "siobridge/v1/bridge.pb.h"

namespace siobridge::api {

namespace pb = ::siobridge::v1;

grpc::Status to_grpc(const Status& status);
grpc::Status invalid(const std::string& message);

Result<wire::BroadcastOptions> from_proto(const pb::BroadcastOptions& opts);
// `max_bytes` bounds the payload: event data and attachments together.
Result<wire::Packet> from_proto(const pb::Packet& packet, std::size_t max_bytes);
Result<wire::Value> from_proto(const pb::Value& value, std::size_t max_bytes);
core::AckResult from_proto(const pb::Ack& ack);
Result<std::vector<wire::SocketDetails>> from_proto(const pb::SocketList& sockets);

// The inverse of to_proto(Command), for clients written in C++.
Result<core::Command> from_proto(const pb::Command& command);

void to_proto(const wire::BroadcastOptions& opts, pb::BroadcastOptions* out);
void to_proto(const wire::Packet& packet, pb::Packet* out);
void to_proto(const wire::Value& value, pb::Value* out);
void to_proto(const std::string& sid, const core::AckResult& result, pb::Ack* out);
void to_proto(const core::Missing& missing, pb::Missing* out);
void to_proto(const core::RemoteSocket& socket, pb::SocketInfo* out);
void to_proto(const core::Command& command, pb::Command* out);

}  // namespace siobridge::api
