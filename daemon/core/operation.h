// Operation: one request in flight in a Node, in either direction. It is
// registered in an OperationTable under a CommandId (quoted by attached
// servers' answers) and, when it waits for other nodes, a request id (quoted
// by their responses). It ends by calling finish(); the table deletes it after
// the event that finished it. The kinds: gathering.h (fetch_sockets,
// all_rooms), emit_operations.h (server-side emit with acks),
// ack_operations.h (broadcast with acks).
//
// Not thread-safe: core thread only. Callbacks an operation invokes run on
// that thread and must not call back into the Node before returning.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "daemon/core/local_server.h"
#include "daemon/core/node_context.h"
#include "daemon/core/outbox.h"
#include "daemon/core/results.h"
#include "daemon/core/socket_aliases.h"
#include "daemon/wire/extension.h"
#include "daemon/wire/messages.h"

namespace siobridge::core {

class OperationTable;

// What an operation may use besides its own state.
struct OperationContext {
  const NodeContext& node;
  OperationTable& table;  // reaps the operation after its timers fire
  Outbox& outbox;         // responders answer through it
  SocketAliases& aliases;
};

class Operation {
 public:
  Operation(const OperationContext& context, CommandId id, std::string ns)
      : context_(context), ns_(std::move(ns)), id_(id) {}
  virtual ~Operation();  // cancels its timers
  Operation(const Operation&) = delete;
  Operation& operator=(const Operation&) = delete;

  CommandId id() const { return id_; }
  const std::string& ns() const { return ns_; }
  bool finished() const { return finished_; }
  const std::string& request_id() const { return request_id_; }

  // Answers of attached servers.
  virtual void on_ack_count(AttachmentId, std::uint32_t) {}
  virtual void on_ack(AttachmentId, const std::string&, const AckResult&) {}
  virtual void on_rooms(AttachmentId, std::vector<std::string>&) {}
  virtual void on_sockets(AttachmentId, std::vector<wire::SocketDetails>&) {}
  virtual void on_emit_reply(AttachmentId, wire::Bytes&) {}
  // Answers of other nodes.
  virtual void on_response(const wire::Response&, const wire::Document&) {}
  virtual void on_emit_response(const std::string& /*uid*/, wire::ServerSideEmitReply&) {}
  // Someone it may be waiting for is gone. An attached server that detaches is
  // no longer expected (it left, with its sockets); a peer that left is not
  // either, one whose heartbeats stopped is missing (PeerExit).
  virtual void on_attachment_gone(AttachmentId) {}
  virtual void on_peer_gone(const std::string& /*uid*/, const PeerExit& /*exit*/) {}

 protected:
  // Runs `fn` after `delay` unless the operation ended before.
  void after(Millis delay, std::function<void()> fn);
  void finish() { finished_ = true; }
  const NodeConfig& config() const { return context_.node.config; }
  NodeStats& stats() const { return context_.node.stats; }
  const std::string& uid() const { return context_.node.uid; }

  const OperationContext context_;
  const std::string ns_;
  std::string request_id_;

 private:
  CommandId id_;
  std::vector<TimerId> timers_;
  bool finished_ = false;
};

}  // namespace siobridge::core
