#include "tests/support/engine_server.h"

namespace siobridge::testing {

EngineServer::EngineServer(runtime::Engine& engine, std::string name)
    : engine_(engine), state_(std::make_shared<State>(std::move(name))) {}

EngineServer::~EngineServer() {
  if (id_ != 0) detach();
}

core::AttachmentId EngineServer::attach(const std::vector<std::string>& namespaces) {
  id_ = engine_.call([&](core::Node& node) {
    std::lock_guard lock(state_->mutex);
    state_->fake.node = &node;
    state_->fake.id = node.attach(*this, state_->fake.name());
    for (const auto& ns : namespaces) (void)node.join_namespace(state_->fake.id, ns);
    return state_->fake.id;
  });
  return id_;
}

void EngineServer::detach() {
  engine_.call([&](core::Node& node) {
    node.detach(id_);
    return 0;
  });
  id_ = 0;
}

void EngineServer::deliver(const core::Command& command) {
  {
    std::lock_guard lock(state_->mutex);
    state_->fake.deliver(command);
  }
  state_->changed.notify_all();
  // Answers go back through the engine's loop, as they would from a stream;
  // FakeServer::flush drops them once the server is detached.
  engine_.post([state = state_](core::Node&) {
    {
      std::lock_guard lock(state->mutex);
      state->fake.flush();
    }
    state->changed.notify_all();
  });
}

bool EngineServer::wait_until(
    const std::function<bool(const core::testing::FakeServer&)>& predicate,
    std::chrono::milliseconds timeout) {
  std::unique_lock lock(state_->mutex);
  return state_->changed.wait_for(lock, timeout, [&] { return predicate(state_->fake); });
}

bool eventually(runtime::Engine& engine, std::function<bool(core::Node&)> condition,
                std::chrono::milliseconds timeout) {
  auto met = engine.when(std::move(condition));
  return met.wait_for(timeout) == std::future_status::ready;
}

}  // namespace siobridge::testing
