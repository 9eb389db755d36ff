#include "daemon/core/emit_operations.h"

#include <algorithm>

namespace siobridge::core {

// ---- EmitQuery ----

void EmitQuery::expect_remote(const std::string& uid, std::uint32_t servers) {
  remote_[uid].servers = servers;
}

void EmitQuery::arm(Millis deadline) {
  local_expected_ = static_cast<std::uint32_t>(local_.size());
  after(deadline, [this] { complete(true); });
  check_done();
}

void EmitQuery::on_emit_reply(AttachmentId from, wire::Bytes& payload) {
  if (!local_.erase(from)) {
    ++stats().late_responses;
    return;
  }
  responses_.push_back(std::move(payload));
  check_done();
}

void EmitQuery::on_emit_response(const std::string& uid, wire::ServerSideEmitReply& reply) {
  auto it = remote_.find(uid);
  if (it == remote_.end() || it->second.done()) {
    ++stats().late_responses;
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

void EmitQuery::on_attachment_gone(AttachmentId id) {
  if (local_.erase(id)) {
    --local_expected_;  // it left: no longer expected
    check_done();
  }
}

void EmitQuery::on_peer_gone(const std::string& uid, const PeerExit& exit) {
  auto it = remote_.find(uid);
  if (it == remote_.end() || it->second.done()) return;
  if (exit.graceful) {
    it->second.gone = it->second.servers - it->second.answered;
    check_done();
  }
  // A peer whose heartbeats stopped stays awaited: it is reported missing at
  // the deadline.
}

void EmitQuery::check_done() {
  if (finished() || !local_.empty()) return;
  for (const auto& [uid, remote] : remote_) {
    if (!remote.done()) return;
  }
  complete(false);
}

void EmitQuery::complete(bool timed_out) {
  if (finished()) return;
  EmitResult result;
  result.expected = local_expected_;
  for (const auto& [uid, remote] : remote_) {
    result.expected += remote.servers - std::min(remote.gone, remote.servers);
    if (!remote.done()) result.missing.nodes.push_back(uid);
  }
  for (const auto& [id, name] : local_) {
    if (timed_out) ++stats().local_timeouts;
    result.missing.local_servers.push_back(name);
  }
  result.responses = std::move(responses_);
  done_(std::move(result));
  finish();
}

// ---- EmitResponder ----

void EmitResponder::arm(Millis deadline) {
  servers_ = static_cast<std::uint32_t>(pending_.size());
  // The first answer says how many servers there are; with none, it is all.
  if (pending_.empty()) {
    publish(wire::ServerSideEmitReply{{}, 0, servers_});
    finish();
    return;
  }
  after(deadline, [this] { finish(); });
}

void EmitResponder::on_emit_reply(AttachmentId from, wire::Bytes& payload) {
  if (!pending_.erase(from)) {
    ++stats().late_responses;
    return;
  }
  publish(wire::ServerSideEmitReply{{std::move(payload)}, 0, servers_});
  if (pending_.empty()) finish();
}

void EmitResponder::on_attachment_gone(AttachmentId id) {
  if (!pending_.erase(id)) return;
  publish(wire::ServerSideEmitReply{{}, 1, servers_});
  if (pending_.empty()) finish();
}

void EmitResponder::publish(wire::ServerSideEmitReply reply) {
  context_.outbox.publish_emit_reply(ns(), requester_, request_id_, std::move(reply));
}

}  // namespace siobridge::core
