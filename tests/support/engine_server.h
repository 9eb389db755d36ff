// Support for tests of running Engines: EngineServer attaches a FakeServer (the
// socket model of daemon/core/testing) to an Engine. It answers commands on the
// core thread, like an attached socket.io server would over its stream, and the
// test thread inspects it under a lock and waits for what it expects.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/core/testing/test_cluster.h"
#include "daemon/runtime/engine.h"

namespace siobridge::testing {

class EngineServer final : public core::LocalServer {
 public:
  EngineServer(runtime::Engine& engine, std::string name);
  ~EngineServer() override;  // detaches

  // Attaches and joins `namespaces`, on the core thread.
  core::AttachmentId attach(const std::vector<std::string>& namespaces = {"/"});
  void detach();
  core::AttachmentId id() const { return id_; }

  // Runs `fn` on the FakeServer under the lock (test thread).
  template <typename Fn>
  auto with(Fn&& fn) {
    std::lock_guard lock(state_->mutex);
    return fn(state_->fake);
  }
  // Waits until `predicate` holds; false after `timeout`.
  bool wait_until(const std::function<bool(const core::testing::FakeServer&)>& predicate,
                  std::chrono::milliseconds timeout = std::chrono::seconds(20));

  void deliver(const core::Command& command) override;

 private:
  // Shared with the answers posted to the engine, which may run after this
  // wrapper is gone.
  struct State {
    explicit State(std::string name) : fake(std::move(name)) {}
    std::recursive_mutex mutex;
    std::condition_variable_any changed;
    core::testing::FakeServer fake;
  };
  runtime::Engine& engine_;
  std::shared_ptr<State> state_;
  core::AttachmentId id_ = 0;
};

// Waits for `future` up to `timeout`; fails the test if it does not come.
template <typename T>
T await(std::future<T>& future, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  if (future.wait_for(timeout) != std::future_status::ready) {
    throw std::runtime_error("no result within the deadline");
  }
  return future.get();
}

// Waits until `condition` holds on the core thread of `engine` (checked after
// every event there); false after `timeout`.
bool eventually(runtime::Engine& engine, std::function<bool(core::Node&)> condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(20));

}  // namespace siobridge::testing
