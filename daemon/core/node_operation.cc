#include "daemon/core/node_operation.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "daemon/wire/ids.h"

namespace siobridge::core {

// ---- Operation ----

Node::Operation::~Operation() {
  for (TimerId timer : timers_) node_.timers_.cancel(timer);
}

void Node::Operation::after(Millis delay, std::function<void()> fn) {
  Node* node = &node_;
  const CommandId id = id_;
  timers_.push_back(
      node_.timers_.schedule(node_.clock_.now() + delay, [node, id, fn = std::move(fn)] {
        fn();
        node->reap(id);
      }));
}

void Node::Operation::finish() {
  finished_ = true;
}

// ---- Gathering ----

void Node::Gathering::expect_remote(std::vector<std::string> uids, std::string request_id) {
  remote_.insert(uids.begin(), uids.end());
  request_id_ = std::move(request_id);
}

void Node::Gathering::arm(Millis deadline) {
  after(deadline, [this] {
    for (auto& [id, name] : local_) {
      spdlog::warn("attached server '{}' did not answer within the deadline; left out", name);
      ++node_.stats_.local_timeouts;
      missing_.local_servers.push_back(name);
    }
    missing_.nodes.insert(missing_.nodes.end(), remote_.begin(), remote_.end());
    local_.clear();
    remote_.clear();
    complete(std::move(missing_));
    finish();
  });
  check_done();
}

void Node::Gathering::on_attachment_gone(AttachmentId id) {
  if (local_.erase(id)) check_done();
}

void Node::Gathering::on_peer_gone(const std::string& uid, const PeerExit& exit) {
  if (remote_.erase(uid)) {
    if (!exit.graceful) missing_.nodes.push_back(uid);
    check_done();
  }
}

bool Node::Gathering::local_answered(AttachmentId id) {
  return local_.erase(id) != 0;
}

bool Node::Gathering::remote_answered(const std::string& uid) {
  if (remote_.erase(uid)) return true;
  ++node_.stats_.late_responses;
  return false;
}

void Node::Gathering::check_done() {
  if (finished() || !local_.empty() || !remote_.empty()) return;
  complete(std::move(missing_));
  finish();
}

// ---- RoomsGathering ----

void Node::RoomsGathering::on_rooms(AttachmentId from, std::vector<std::string>& rooms) {
  if (!local_answered(from)) return;
  rooms_.insert(std::make_move_iterator(rooms.begin()), std::make_move_iterator(rooms.end()));
  check_done();
}

void Node::RoomsGathering::on_response(const wire::Response& response, const wire::Document&) {
  const auto* list = std::get_if<wire::RoomList>(&response.body);
  if (!list || !remote_answered(response.node_id)) return;
  rooms_.insert(list->rooms.begin(), list->rooms.end());
  check_done();
}

void Node::RoomsGathering::complete(Missing missing) {
  done_(RoomsResult{{rooms_.begin(), rooms_.end()}, std::move(missing)});
}

// ---- SocketsGathering ----

void Node::SocketsGathering::on_sockets(AttachmentId from,
                                        std::vector<wire::SocketDetails>& sockets) {
  if (!local_answered(from)) return;
  for (auto& socket : sockets) {
    sockets_.push_back(RemoteSocket{std::move(socket.id), node_.uid_, ns(), std::move(socket.rooms),
                                    std::move(socket.handshake), std::move(socket.data), true});
  }
  check_done();
}

void Node::SocketsGathering::on_response(const wire::Response& response,
                                         const wire::Document& document) {
  const auto* list = std::get_if<wire::SocketList>(&response.body);
  if (!list || !remote_answered(response.node_id)) return;
  // A siobridge responder adds rooms, handshake and data in its extension.
  std::map<std::string, const wire::SocketDetails*> details;
  std::optional<wire::Extension> extension;
  if (document.extension) {
    if (auto decoded = wire::decode_extension(*document.extension); decoded.ok()) {
      extension = std::move(*decoded);
    }
  }
  if (const auto* fetch = extension ? std::get_if<wire::FetchDetails>(&*extension) : nullptr) {
    for (const auto& socket : fetch->sockets)
      details.emplace(wire::socket_alias(socket.id), &socket);
  }
  for (const auto& ref : list->sockets) {
    RemoteSocket socket{ref.id, ref.server_id, ref.ns, {}, {}, {}, false};
    if (auto it = details.find(ref.id); it != details.end()) {
      socket.id = it->second->id;  // the real id behind the alias
      socket.rooms = it->second->rooms;
      socket.handshake = it->second->handshake;
      socket.data = it->second->data;
      socket.has_details = true;
    }
    sockets_.push_back(std::move(socket));
  }
  check_done();
}

void Node::SocketsGathering::complete(Missing missing) {
  done_(SocketsResult{std::move(sockets_), std::move(missing)});
}

// ---- EmitQuery ----

void Node::EmitQuery::expect_remote(const std::string& uid, std::uint32_t servers) {
  remote_[uid].servers = servers;
}

void Node::EmitQuery::arm(Millis deadline) {
  local_expected_ = static_cast<std::uint32_t>(local_.size());
  after(deadline, [this] { complete(true); });
  check_done();
}

void Node::EmitQuery::on_emit_reply(AttachmentId from, wire::Bytes& payload) {
  if (!local_.erase(from)) {
    ++node_.stats_.late_responses;
    return;
  }
  responses_.push_back(std::move(payload));
  check_done();
}

void Node::EmitQuery::on_emit_response(const std::string& uid, wire::ServerSideEmitReply& reply) {
  auto it = remote_.find(uid);
  if (it == remote_.end() || it->second.done()) {
    ++node_.stats_.late_responses;
    return;
  }
  auto& remote = it->second;
  if (reply.servers) remote.servers = *reply.servers;
  remote.gone += reply.gone;
  for (auto& response : reply.responses) {
    if (remote.answered >= remote.servers) break;
    ++remote.answered;
    responses_.push_back(std::move(response));
  }
  check_done();
}

void Node::EmitQuery::on_attachment_gone(AttachmentId id) {
  if (local_.erase(id)) {
    --local_expected_;  // it left: no longer expected
    check_done();
  }
}

void Node::EmitQuery::on_peer_gone(const std::string& uid, const PeerExit& exit) {
  auto it = remote_.find(uid);
  if (it == remote_.end() || it->second.done()) return;
  if (exit.graceful) {
    it->second.gone = it->second.servers - it->second.answered;
    check_done();
  }
  // A peer whose heartbeats stopped stays awaited: it is reported missing at
  // the deadline.
}

void Node::EmitQuery::check_done() {
  if (finished() || !local_.empty()) return;
  for (const auto& [uid, remote] : remote_) {
    if (!remote.done()) return;
  }
  complete(false);
}

void Node::EmitQuery::complete(bool timed_out) {
  if (finished()) return;
  EmitResult result;
  result.expected = local_expected_;
  for (const auto& [uid, remote] : remote_) {
    result.expected += remote.servers - std::min(remote.gone, remote.servers);
    if (!remote.done()) result.missing.nodes.push_back(uid);
  }
  for (const auto& [id, name] : local_) {
    if (timed_out) ++node_.stats_.local_timeouts;
    result.missing.local_servers.push_back(name);
  }
  result.responses = std::move(responses_);
  done_(std::move(result));
  finish();
}

// ---- EmitResponder ----

void Node::EmitResponder::arm(Millis deadline) {
  servers_ = static_cast<std::uint32_t>(pending_.size());
  // The first answer says how many servers there are; with none, it is all.
  if (pending_.empty()) {
    publish(wire::ServerSideEmitReply{{}, 0, servers_});
    finish();
    return;
  }
  after(deadline, [this] { finish(); });
}

void Node::EmitResponder::on_emit_reply(AttachmentId from, wire::Bytes& payload) {
  if (!pending_.erase(from)) {
    ++node_.stats_.late_responses;
    return;
  }
  publish(wire::ServerSideEmitReply{{std::move(payload)}, 0, servers_});
  if (pending_.empty()) finish();
}

void Node::EmitResponder::on_attachment_gone(AttachmentId id) {
  if (!pending_.erase(id)) return;
  publish(wire::ServerSideEmitReply{{}, 1, servers_});
  if (pending_.empty()) finish();
}

void Node::EmitResponder::publish(wire::ServerSideEmitReply reply) {
  wire::Document doc{{wire::MessageKind::kResponse, ns(), node_.uid_, requester_, request_id_},
                     {},
                     wire::encode_extension(std::move(reply))};
  if (node_.bus_.publish(std::move(doc), bus::Audience::kSiobridgeOnly).ok()) {
    ++node_.stats_.extensions_out;
  } else {
    ++node_.stats_.publish_failures;
  }
}

// ---- AckQuery ----

void Node::AckQuery::expect_remote(const std::vector<std::string>& uids, std::string request_id) {
  for (const auto& uid : uids) sources_.emplace(uid, Source{uid, false, {}, 0});
  request_id_ = std::move(request_id);
}

void Node::AckQuery::arm() {
  // The caller's timeout is socket.io's: from the emit, for every ack. Counts
  // that come later than that announce acks that would be late anyway.
  const Millis deadline = ack_timeout_ + kAckSlack;
  after(std::min(node_.config_.request_timeout, deadline), [this] { close_counting(); });
  after(deadline, [this] { end(true); });
  check_done();
}

void Node::AckQuery::on_ack_count(AttachmentId from, std::uint32_t count) {
  counted(local_key(from), count);
}

void Node::AckQuery::on_ack(AttachmentId from, const std::string& sid, const AckResult& result) {
  acked(local_key(from), sid, result);
}

void Node::AckQuery::on_response(const wire::Response& response, const wire::Document&) {
  const std::string& uid = response.node_id;
  if (const auto* count = std::get_if<wire::BroadcastAckCount>(&response.body)) {
    // A node that joined after the request went out still answers it.
    if (!counting_closed_) sources_.try_emplace(uid, Source{uid, false, {}, 0});
    counted(uid, count->count);
  } else if (const auto* ack = std::get_if<wire::BroadcastAck>(&response.body)) {
    acked(uid, ack->sid, ack->result);
  }
}

void Node::AckQuery::on_attachment_gone(AttachmentId id) {
  drop(local_key(id), true);
}

void Node::AckQuery::on_peer_gone(const std::string& uid, const PeerExit& exit) {
  drop(uid, exit.graceful);
}

void Node::AckQuery::counted(const std::string& key, std::uint32_t count) {
  auto it = sources_.find(key);
  if (it == sources_.end() || it->second.count) {
    ++node_.stats_.late_responses;
    return;
  }
  it->second.count = count;
  if (stream_.on_count) stream_.on_count(count);
  check_done();
}

void Node::AckQuery::acked(const std::string& key, const std::string& sid,
                           const AckResult& result) {
  auto it = sources_.find(key);
  if (it == sources_.end() || !it->second.count || it->second.acks >= *it->second.count) {
    ++node_.stats_.late_responses;
    return;
  }
  ++it->second.acks;
  if (stream_.on_ack) stream_.on_ack(sid, result);
  check_done();
}

void Node::AckQuery::drop(const std::string& key, bool graceful) {
  auto it = sources_.find(key);
  if (it == sources_.end()) return;
  const Source& source = it->second;
  if (source.count ? source.acks < *source.count : !graceful) {
    (source.local ? missing_.local_servers : missing_.nodes).push_back(source.name);
  }
  sources_.erase(it);
  check_done();
}

void Node::AckQuery::close_counting() {
  counting_closed_ = true;
  for (auto it = sources_.begin(); it != sources_.end();) {
    if (it->second.count) {
      ++it;
      continue;
    }
    (it->second.local ? missing_.local_servers : missing_.nodes).push_back(it->second.name);
    it = sources_.erase(it);
  }
  check_done();
}

void Node::AckQuery::check_done() {
  if (finished()) return;
  for (const auto& [key, source] : sources_) {
    if (!source.count || source.acks < *source.count) return;
  }
  end(false);
}

void Node::AckQuery::end(bool timed_out) {
  if (finished()) return;
  if (timed_out) close_counting();
  if (finished()) return;  // close_counting completed it
  if (stream_.on_done) stream_.on_done(missing_, timed_out);
  finish();
}

// ---- AckResponder ----

void Node::AckResponder::arm() {
  after(node_.config_.local_timeout, [this] {
    if (count_sent_) return;
    for (const auto& [id, name] : pending_counts_) {
      spdlog::warn("attached server '{}' sent no ack count within {} ms; left out", name,
                   node_.config_.local_timeout.count());
      ++node_.stats_.local_timeouts;
    }
    pending_counts_.clear();
    send_count();
  });
  after(node_.config_.local_timeout + ack_timeout_, [this] { finish(); });
  if (pending_counts_.empty()) send_count();
}

void Node::AckResponder::on_ack_count(AttachmentId from, std::uint32_t count) {
  if (!pending_counts_.erase(from)) {
    ++node_.stats_.late_responses;
    return;
  }
  counted_[from] = {count, 0};
  total_ += count;
  if (pending_counts_.empty()) send_count();
}

void Node::AckResponder::on_ack(AttachmentId from, const std::string& sid,
                                const AckResult& result) {
  auto it = counted_.find(from);
  if (it == counted_.end() || it->second.second >= it->second.first) {
    ++node_.stats_.late_responses;
    return;
  }
  ++it->second.second;
  if (count_sent_) {
    publish_ack(sid, result);
    check_done();
  } else {
    buffered_.emplace_back(sid, result);
  }
}

void Node::AckResponder::on_attachment_gone(AttachmentId id) {
  counted_.erase(id);
  if (pending_counts_.erase(id) && pending_counts_.empty() && !count_sent_) {
    send_count();
  } else {
    check_done();
  }
}

void Node::AckResponder::send_count() {
  count_sent_ = true;
  node_.publish_response(ns(), requester_, request_id_,
                         wire::Response{node_.uid_, wire::BroadcastAckCount{total_}}, std::nullopt);
  for (const auto& [sid, result] : buffered_) publish_ack(sid, result);
  buffered_.clear();
  check_done();
}

void Node::AckResponder::publish_ack(const std::string& sid, const AckResult& result) {
  node_.publish_response(
      ns(), requester_, request_id_,
      wire::Response{
          node_.uid_,
          wire::BroadcastAck{siobridge_requester_ ? sid : node_.aliases_.report(sid), result}},
      std::nullopt);
}

void Node::AckResponder::check_done() {
  if (!count_sent_ || finished()) return;
  for (const auto& [id, counts] : counted_) {
    if (counts.second < counts.first) return;
  }
  finish();
}

}  // namespace siobridge::core
