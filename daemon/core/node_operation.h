// Internal to the core: the operations a Node keeps in flight. An operation is
// registered under a CommandId (quoted by attached servers' answers) and, when
// it waits for other nodes, a request id (quoted by their responses). It ends by
// calling finish(); the Node deletes it after the event that finished it.
//
// Core thread only.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "daemon/core/node.h"

namespace siobridge::core {

class Node::Operation {
 public:
  Operation(Node& node, CommandId id, std::string ns) : node_(node), ns_(std::move(ns)), id_(id) {}
  virtual ~Operation();
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
  void finish();

  Node& node_;
  const std::string ns_;
  std::string request_id_;

 private:
  CommandId id_;
  std::vector<TimerId> timers_;
  bool finished_ = false;
};

// Waits for one answer from each of a set of attached servers and other nodes,
// up to a deadline; whoever has not answered by then is reported missing.
class Node::Gathering : public Node::Operation {
 public:
  using Operation::Operation;

  void expect_local(AttachmentId id) { local_.emplace(id, node_.name_of(id)); }
  void expect_remote(std::vector<std::string> uids, std::string request_id);
  // Starts the deadline; completes at once when nobody is awaited.
  void arm(Millis deadline);

  void on_attachment_gone(AttachmentId id) override;
  void on_peer_gone(const std::string& uid, const PeerExit& exit) override;

 protected:
  // True the first time `id` / `uid` answers; then the answer counts.
  bool local_answered(AttachmentId id);
  bool remote_answered(const std::string& uid);
  void check_done();
  virtual void complete(Missing missing) = 0;

 private:
  std::map<AttachmentId, std::string> local_;  // awaited attached servers, with their names
  std::set<std::string> remote_;               // awaited node uids
  Missing missing_;
};

class Node::RoomsGathering final : public Node::Gathering {
 public:
  RoomsGathering(Node& node, CommandId id, std::string ns, std::function<void(RoomsResult)> done)
      : Gathering(node, id, std::move(ns)), done_(std::move(done)) {}
  void on_rooms(AttachmentId from, std::vector<std::string>& rooms) override;
  void on_response(const wire::Response& response, const wire::Document& document) override;

 private:
  void complete(Missing missing) override;
  std::set<std::string> rooms_;
  std::function<void(RoomsResult)> done_;
};

class Node::SocketsGathering final : public Node::Gathering {
 public:
  SocketsGathering(Node& node, CommandId id, std::string ns,
                   std::function<void(SocketsResult)> done)
      : Gathering(node, id, std::move(ns)), done_(std::move(done)) {}
  void on_sockets(AttachmentId from, std::vector<wire::SocketDetails>& sockets) override;
  void on_response(const wire::Response& response, const wire::Document& document) override;

 private:
  void complete(Missing missing) override;
  std::vector<RemoteSocket> sockets_;
  std::function<void(SocketsResult)> done_;
};

// The requester side of a server-side emit with acks: one answer from each
// attached server, and from each other siobridge node as many answers as it has
// servers (it says how many; until then its heartbeat's count stands).
class Node::EmitQuery final : public Node::Operation {
 public:
  EmitQuery(Node& node, CommandId id, std::string ns, std::function<void(EmitResult)> done)
      : Operation(node, id, std::move(ns)), done_(std::move(done)) {}

  void expect_local(AttachmentId id) { local_.emplace(id, node_.name_of(id)); }
  void expect_remote(const std::string& uid, std::uint32_t servers);
  void set_request_id(std::string request_id) { request_id_ = std::move(request_id); }
  void arm(Millis deadline);

  void on_emit_reply(AttachmentId from, wire::Bytes& payload) override;
  void on_emit_response(const std::string& uid, wire::ServerSideEmitReply& reply) override;
  void on_attachment_gone(AttachmentId id) override;
  void on_peer_gone(const std::string& uid, const PeerExit& exit) override;

 private:
  struct Remote {
    std::uint32_t servers = 0;  // from its heartbeats, then from its own answer
    std::uint32_t answered = 0;
    std::uint32_t gone = 0;
    bool done() const { return answered + gone >= servers; }
  };
  void check_done();
  void complete(bool timed_out);

  std::map<AttachmentId, std::string> local_;  // attached servers yet to answer
  std::map<std::string, Remote> remote_;
  std::uint32_t local_expected_ = 0;
  std::vector<wire::Bytes> responses_;
  std::function<void(EmitResult)> done_;
};

// The responder side of a server-side emit with acks: asks the attached
// servers and publishes each answer as it comes, until all answered or left,
// or the requester's deadline passed.
class Node::EmitResponder final : public Node::Operation {
 public:
  EmitResponder(Node& node, CommandId id, std::string ns, std::string requester,
                std::string request_id)
      : Operation(node, id, std::move(ns)), requester_(std::move(requester)) {
    request_id_ = std::move(request_id);
  }

  void expect_local(AttachmentId id) { pending_.insert(id); }
  void arm(Millis deadline);

  void on_emit_reply(AttachmentId from, wire::Bytes& payload) override;
  void on_attachment_gone(AttachmentId id) override;

 private:
  void publish(wire::ServerSideEmitReply reply);

  std::string requester_;
  std::set<AttachmentId> pending_;
  std::uint32_t servers_ = 0;
};

// The requester side of a broadcast with acks: counts from every attached
// server and node, then the acks they announced (PROTOCOL.md section 5).
class Node::AckQuery final : public Node::Operation {
 public:
  AckQuery(Node& node, CommandId id, std::string ns, AckStream stream, Millis ack_timeout)
      : Operation(node, id, std::move(ns)), stream_(std::move(stream)), ack_timeout_(ack_timeout) {}

  void expect_local(AttachmentId id) {
    sources_.emplace(local_key(id), Source{node_.name_of(id), true, std::nullopt, 0});
  }
  void expect_remote(const std::vector<std::string>& uids, std::string request_id);
  void arm();

  void on_ack_count(AttachmentId from, std::uint32_t count) override;
  void on_ack(AttachmentId from, const std::string& sid, const AckResult& result) override;
  void on_response(const wire::Response& response, const wire::Document& document) override;
  void on_attachment_gone(AttachmentId id) override;
  void on_peer_gone(const std::string& uid, const PeerExit& exit) override;

 private:
  struct Source {
    std::string name;  // attached server name or node uid
    bool local = true;
    std::optional<std::uint32_t> count;
    std::uint32_t acks = 0;
  };
  static std::string local_key(AttachmentId id) { return "#" + std::to_string(id); }
  void counted(const std::string& key, std::uint32_t count);
  void acked(const std::string& key, const std::string& sid, const AckResult& result);
  // The source left: what it announced and did not send is missing; when it
  // left before counting, `graceful` says whether it is missing too.
  void drop(const std::string& key, bool graceful);
  void close_counting();
  void check_done();
  void end(bool timed_out);

  AckStream stream_;
  Millis ack_timeout_;
  std::map<std::string, Source> sources_;
  Missing missing_;
  bool counting_closed_ = false;
};

// The responder side of a broadcast with acks: one count (the sum over the
// attached servers) before any ack, then every ack as it arrives.
class Node::AckResponder final : public Node::Operation {
 public:
  // `siobridge_requester`: acks carry real socket ids, else their aliases.
  AckResponder(Node& node, CommandId id, std::string ns, std::string requester,
               std::string request_id, Millis ack_timeout, bool siobridge_requester)
      : Operation(node, id, std::move(ns)),
        requester_(std::move(requester)),
        siobridge_requester_(siobridge_requester),
        ack_timeout_(ack_timeout) {
    request_id_ = std::move(request_id);
  }

  void expect_local(AttachmentId id) { pending_counts_.emplace(id, node_.name_of(id)); }
  void arm();

  void on_ack_count(AttachmentId from, std::uint32_t count) override;
  void on_ack(AttachmentId from, const std::string& sid, const AckResult& result) override;
  void on_attachment_gone(AttachmentId id) override;

 private:
  void send_count();
  void publish_ack(const std::string& sid, const AckResult& result);
  void check_done();

  std::string requester_;
  bool siobridge_requester_;
  Millis ack_timeout_;
  std::map<AttachmentId, std::string> pending_counts_;
  std::map<AttachmentId, std::pair<std::uint32_t, std::uint32_t>> counted_;  // expected, received
  std::uint32_t total_ = 0;
  bool count_sent_ = false;
  std::vector<std::pair<std::string, AckResult>> buffered_;
};

template <typename Fn>
void Node::with_operation(CommandId id, Fn&& fn) {
  if (Operation* op = find_operation(id)) {
    fn(*op);
    reap(id);
  }
}

}  // namespace siobridge::core
