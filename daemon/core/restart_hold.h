// RestartHold: after a daemon restart (Node::resume, node_config.h Handover),
// what the cluster sends to the namespaces that were in use is held until as
// many servers use them again, or restart_grace passes, then handed back in
// order: servers that reattach after a daemon restart miss nothing the cluster
// sent meanwhile. Heartbeats are never held (the peer table must be current
// when servers attach); past restart_hold_bytes the oldest documents go.
//
// Not thread-safe: core thread only. `grace_over` runs on that thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "daemon/core/node_context.h"
#include "daemon/wire/document.h"

namespace siobridge::core {

class RestartHold {
 public:
  // A held document with its bus position.
  using HeldDocument = std::pair<wire::Document, std::string>;

  // `grace_over(ns)` is called for every namespace still held when
  // restart_grace has passed; it is expected to release() it.
  RestartHold(const NodeContext& context, std::function<void(const std::string& ns)> grace_over)
      : context_(context), grace_over_(std::move(grace_over)) {}
  ~RestartHold();  // cancels the grace timer
  RestartHold(const RestartHold&) = delete;
  RestartHold& operator=(const RestartHold&) = delete;

  // Holds `ns` until `servers` servers use it again (0: not at all).
  void hold_namespace(const std::string& ns, std::uint32_t servers);
  // Arms restart_grace for every namespace held; a no-op when there is none.
  void start_grace();

  bool holds(const std::string& ns) const { return held_.count(ns) != 0; }
  // How many servers `ns` had before the restart while it is held, else 0.
  std::uint32_t servers_before(const std::string& ns) const;
  // Whether `attached` servers are enough to end the hold of a held `ns`.
  bool enough(const std::string& ns, std::size_t attached) const;
  // Keeps a document of a held namespace; false when it is not to be held (a
  // heartbeat, or a namespace not held) and must be handled now.
  bool keep(const wire::Document& document, const std::string& position);
  // Ends the hold of `ns`: the documents held, in order, when `attached`
  // (servers came back), else none (they are counted as unclaimed).
  std::deque<HeldDocument> release(const std::string& ns, bool attached);

 private:
  struct Held {
    std::uint32_t servers_before = 0;
    std::deque<HeldDocument> documents;
    std::size_t bytes = 0;
  };
  static std::size_t size_of(const wire::Document& document);

  const NodeContext context_;
  std::function<void(const std::string&)> grace_over_;
  std::map<std::string, Held> held_;
  TimerId grace_timer_ = 0;
};

}  // namespace siobridge::core
