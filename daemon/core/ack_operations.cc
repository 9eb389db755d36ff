#include "daemon/core/ack_operations.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace siobridge::core {

// ---- AckQuery ----

void AckQuery::expect_remote(const std::vector<std::string>& uids, std::string request_id) {
  for (const auto& uid : uids) sources_.emplace(uid, Source{uid, false, {}, 0});
  request_id_ = std::move(request_id);
}

void AckQuery::arm() {
  // The caller's timeout is socket.io's: from the emit, for every ack. Counts
  // that come later than that announce acks that would be late anyway.
  const Millis deadline = ack_timeout_ + kAckSlack;
  after(std::min(config().request_timeout, deadline), [this] { close_counting(); });
  after(deadline, [this] { end(true); });
  check_done();
}

void AckQuery::on_ack_count(AttachmentId from, std::uint32_t count) {
  counted(local_key(from), count);
}

void AckQuery::on_ack(AttachmentId from, const std::string& sid, const AckResult& result) {
  acked(local_key(from), sid, result);
}

void AckQuery::on_response(const wire::Response& response, const wire::Document&) {
  const std::string& uid = response.node_id;
  if (const auto* count = std::get_if<wire::BroadcastAckCount>(&response.body)) {
    // A node that joined after the request went out still answers it.
    if (!counting_closed_) sources_.try_emplace(uid, Source{uid, false, {}, 0});
    counted(uid, count->count);
  } else if (const auto* ack = std::get_if<wire::BroadcastAck>(&response.body)) {
    acked(uid, ack->sid, ack->result);
  }
}

void AckQuery::on_attachment_gone(AttachmentId id) {
  drop(local_key(id), true);
}

void AckQuery::on_peer_gone(const std::string& uid, const PeerExit& exit) {
  drop(uid, exit.graceful);
}

void AckQuery::counted(const std::string& key, std::uint32_t count) {
  auto it = sources_.find(key);
  if (it == sources_.end() || it->second.count) {
    ++stats().late_responses;
    return;
  }
  it->second.count = count;
  if (stream_.on_count) stream_.on_count(count);
  check_done();
}

void AckQuery::acked(const std::string& key, const std::string& sid, const AckResult& result) {
  auto it = sources_.find(key);
  if (it == sources_.end() || !it->second.count || it->second.acks >= *it->second.count) {
    ++stats().late_responses;
    return;
  }
  ++it->second.acks;
  if (stream_.on_ack) stream_.on_ack(sid, result);
  check_done();
}

void AckQuery::drop(const std::string& key, bool graceful) {
  auto it = sources_.find(key);
  if (it == sources_.end()) return;
  const Source& source = it->second;
  if (source.count ? source.acks < *source.count : !graceful) {
    (source.local ? missing_.local_servers : missing_.nodes).push_back(source.name);
  }
  sources_.erase(it);
  check_done();
}

void AckQuery::close_counting() {
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

void AckQuery::check_done() {
  if (finished()) return;
  for (const auto& [key, source] : sources_) {
    if (!source.count || source.acks < *source.count) return;
  }
  end(false);
}

void AckQuery::end(bool timed_out) {
  if (finished()) return;
  if (timed_out) close_counting();
  if (finished()) return;  // close_counting completed it
  if (stream_.on_done) stream_.on_done(missing_, timed_out);
  finish();
}

// ---- AckResponder ----

void AckResponder::arm() {
  after(config().local_timeout, [this] {
    if (count_sent_) return;
    for (const auto& [id, name] : pending_counts_) {
      spdlog::warn("attached server '{}' sent no ack count within {} ms; left out", name,
                   config().local_timeout.count());
      ++stats().local_timeouts;
    }
    pending_counts_.clear();
    send_count();
  });
  after(config().local_timeout + ack_timeout_, [this] { finish(); });
  if (pending_counts_.empty()) send_count();
}

void AckResponder::on_ack_count(AttachmentId from, std::uint32_t count) {
  if (!pending_counts_.erase(from)) {
    ++stats().late_responses;
    return;
  }
  counted_[from] = {count, 0};
  total_ += count;
  if (pending_counts_.empty()) send_count();
}

void AckResponder::on_ack(AttachmentId from, const std::string& sid, const AckResult& result) {
  auto it = counted_.find(from);
  if (it == counted_.end() || it->second.second >= it->second.first) {
    ++stats().late_responses;
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

void AckResponder::on_attachment_gone(AttachmentId id) {
  counted_.erase(id);
  if (pending_counts_.erase(id) && pending_counts_.empty() && !count_sent_) {
    send_count();
  } else {
    check_done();
  }
}

void AckResponder::send_count() {
  count_sent_ = true;
  context_.outbox.publish_response(ns(), requester_, request_id_,
                                   wire::Response{uid(), wire::BroadcastAckCount{total_}},
                                   std::nullopt);
  for (const auto& [sid, result] : buffered_) publish_ack(sid, result);
  buffered_.clear();
  check_done();
}

void AckResponder::publish_ack(const std::string& sid, const AckResult& result) {
  context_.outbox.publish_response(
      ns(), requester_, request_id_,
      wire::Response{
          uid(),
          wire::BroadcastAck{siobridge_requester_ ? sid : context_.aliases.report(sid), result}},
      std::nullopt);
}

void AckResponder::check_done() {
  if (!count_sent_ || finished()) return;
  for (const auto& [id, counts] : counted_) {
    if (counts.second < counts.first) return;
  }
  finish();
}

}  // namespace siobridge::core
