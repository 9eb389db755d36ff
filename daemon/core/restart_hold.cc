#include "daemon/core/restart_hold.h"

#include <spdlog/spdlog.h>

#include "daemon/wire/payload_codec.h"

namespace siobridge::core {

RestartHold::~RestartHold() {
  context_.timers.cancel(grace_timer_);
}

void RestartHold::hold_namespace(const std::string& ns, std::uint32_t servers) {
  if (servers == 0) return;
  held_[ns].servers_before = servers;
  spdlog::info("holding what the cluster sends to {} until its {} server(s) attach again", ns,
               servers);
}

void RestartHold::start_grace() {
  if (held_.empty() || grace_timer_ != 0) return;
  grace_timer_ =
      context_.timers.schedule(context_.clock.now() + context_.config.restart_grace, [this] {
        grace_timer_ = 0;
        // Each call releases one: the callback changes held_.
        while (!held_.empty()) {
          const std::string ns = held_.begin()->first;
          grace_over_(ns);
          held_.erase(ns);  // in case the callback did not release it
        }
      });
}

std::uint32_t RestartHold::servers_before(const std::string& ns) const {
  auto it = held_.find(ns);
  return it == held_.end() ? 0 : it->second.servers_before;
}

bool RestartHold::enough(const std::string& ns, std::size_t attached) const {
  auto it = held_.find(ns);
  return it != held_.end() && attached >= it->second.servers_before;
}

std::size_t RestartHold::size_of(const wire::Document& document) {
  return document.data.size() + document.header.ns.size() +
         (document.extension ? document.extension->size() : 0) + 64;
}

bool RestartHold::keep(const wire::Document& document, const std::string& position) {
  auto it = held_.find(document.header.ns);
  if (it == held_.end()) return false;
  Held& held = it->second;
  const bool extension_target =
      document.header.target && *document.header.target == wire::kSiobridgeTarget;
  if (!extension_target) {
    // Heartbeats are not held: the peer table is current when servers attach.
    if (auto request = wire::decode_request(document.data);
        request.ok() && (request->type == wire::RequestType::kHeartbeat ||
                         request->type == wire::RequestType::kInitHeartbeat)) {
      return false;
    }
  }
  const std::size_t bytes = size_of(document);
  const std::size_t limit = context_.config.restart_hold_bytes;
  while (!held.documents.empty() && held.bytes + bytes > limit) {
    held.bytes -= size_of(held.documents.front().first);
    held.documents.pop_front();
    if (++context_.stats.handover_dropped == 1) {
      spdlog::warn(
          "more than {} bytes arrived for {} before its servers attached again: the "
          "oldest are dropped (node.restart_hold_bytes)",
          limit, document.header.ns);
    }
  }
  held.documents.emplace_back(document, position);
  held.bytes += bytes;
  ++context_.stats.handover_held;
  return true;
}

std::deque<RestartHold::HeldDocument> RestartHold::release(const std::string& ns, bool attached) {
  auto it = held_.find(ns);
  if (it == held_.end()) return {};
  auto documents = std::move(it->second.documents);
  held_.erase(it);
  if (held_.empty() && grace_timer_ != 0) {
    context_.timers.cancel(grace_timer_);
    grace_timer_ = 0;
  }
  if (attached) {
    spdlog::info("{}: delivering {} document(s) held since the restart", ns, documents.size());
    context_.stats.handover_delivered += documents.size();
    return documents;
  }
  if (!documents.empty()) {
    spdlog::warn(
        "{}: no server attached again within {} ms of the restart: {} document(s) "
        "held for it are dropped",
        ns, context_.config.restart_grace.count(), documents.size());
  }
  context_.stats.handover_unclaimed += documents.size();
  return {};
}

}  // namespace siobridge::core
