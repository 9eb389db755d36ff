#include "daemon/runtime/engine.h"

#include <spdlog/spdlog.h>

#include "daemon/wire/ids.h"

namespace siobridge::runtime {

Result<std::unique_ptr<Engine>> Engine::create(EngineOptions options) {
  std::unique_ptr<Engine> engine(new Engine());
  Engine* raw = engine.get();
  // First: the destructor closes these handles, also when creation fails below.
  uv_loop_init(&engine->loop_);
  uv_async_init(&engine->loop_, &engine->wakeup_,
                [](uv_async_t* handle) { static_cast<Engine*>(handle->data)->drain_inbox(); });
  engine->wakeup_.data = raw;
  uv_timer_init(&engine->loop_, &engine->timer_);
  engine->timer_.data = raw;
  if (options.node.uid.empty()) options.node.uid = wire::generate_id();
  if (!wire::is_valid_id(options.node.uid)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "node uid must be 16 characters of [A-Za-z0-9_-]");
  }
  engine->uid_ = options.node.uid;
  if (options.mongodb) {
    auto bus = bus::mongodb::MongoBus::create(
        std::move(*options.mongodb), engine->uid_, *raw,
        [raw](std::function<void()> fn) { raw->enqueue(std::move(fn)); });
    if (!bus.ok()) return bus.error();
    engine->mongo_bus_ = bus->get();
    engine->bus_ = std::move(*bus);
  } else {
    engine->hub_ = std::make_unique<bus::MemoryHub>();
    auto& endpoint = engine->hub_->add_endpoint();
    endpoint.connect(engine->uid_, raw);
    // The hub owns the endpoint; the engine refers to it through a non-owning wrapper.
    struct Borrowed final : bus::Bus {
      explicit Borrowed(bus::Bus& b) : inner(b) {}
      Status publish(wire::Document d) override { return inner.publish(std::move(d)); }
      bus::BusState state() const override { return inner.state(); }
      bus::Bus& inner;
    };
    engine->bus_ = std::make_unique<Borrowed>(endpoint);
  }
  engine->node_ =
      std::make_unique<core::Node>(options.node, *engine->bus_, engine->clock_, engine->timers_);
  return engine;
}

Engine::~Engine() {
  stop(core::Millis{0});
  if (!started_) {
    // The handles were initialized but the loop never ran: close them here.
    uv_close(reinterpret_cast<uv_handle_t*>(&wakeup_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
  }
  uv_loop_close(&loop_);
}

void Engine::start() {
  if (started_) return;
  started_ = true;
  if (mongo_bus_) mongo_bus_->start();
  thread_ = std::thread([this] { loop_main(); });
}

void Engine::stop(core::Millis drain) {
  if (!started_ || stopped_) return;
  stopped_ = true;
  if (mongo_bus_) mongo_bus_->stop(drain);  // no more posts from the bus after this
  {
    std::lock_guard lock(inbox_mutex_);
    stopping_ = true;
  }
  uv_async_send(&wakeup_);
  thread_.join();
}

void Engine::post(std::function<void(core::Node&)> fn) {
  enqueue([this, fn = std::move(fn)] { fn(*node_); });
}

void Engine::after(core::Millis delay, std::function<void()> fn) {
  enqueue([this, delay, fn = std::move(fn)]() mutable {
    timers_.schedule(clock_.now() + delay, std::move(fn));
  });
}

std::string Engine::collection() const {
  if (!mongo_bus_) return {};
  return mongo_bus_->config().database + "." + mongo_bus_->config().collection;
}

std::future<void> Engine::when(std::function<bool(core::Node&)> condition) {
  auto promise = std::make_shared<std::promise<void>>();
  auto future = promise->get_future();
  enqueue([this, condition = std::move(condition), promise]() mutable {
    conditions_.push_back(Condition{std::move(condition), std::move(*promise)});
  });
  return future;
}

void Engine::check_conditions() {
  for (auto it = conditions_.begin(); it != conditions_.end();) {
    if (it->holds(*node_)) {
      it->met.set_value();
      it = conditions_.erase(it);
    } else {
      ++it;
    }
  }
}

void Engine::enqueue(std::function<void()> fn) {
  {
    std::lock_guard lock(inbox_mutex_);
    if (stopping_) return;
    inbox_.push_back(std::move(fn));
  }
  uv_async_send(&wakeup_);
}

void Engine::loop_main() {
  uv_run(&loop_, UV_RUN_DEFAULT);
}

void Engine::drain_inbox() {
  std::vector<std::function<void()>> batch;
  bool stopping;
  {
    std::lock_guard lock(inbox_mutex_);
    batch.swap(inbox_);
    stopping = stopping_;
  }
  for (auto& fn : batch) fn();
  timers_.run_due(clock_.now());
  update_rank();
  check_conditions();
  if (stopping) {
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&wakeup_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
    return;
  }
  arm_timer();
}

void Engine::arm_timer() {
  auto next = timers_.next_deadline();
  if (!next) {
    uv_timer_stop(&timer_);
    return;
  }
  const auto delay = std::max<std::int64_t>(0, (*next - clock_.now()).count());
  uv_timer_start(
      &timer_,
      [](uv_timer_t* handle) {
        auto* self = static_cast<Engine*>(handle->data);
        self->timers_.run_due(self->clock_.now());
        self->update_rank();
        self->check_conditions();
        self->arm_timer();
      },
      static_cast<std::uint64_t>(delay), 0);
}

// The MongoDB bus staggers re-creating a dropped collection by this node's rank
// among its live peers; kept current whenever the peers change.
void Engine::update_rank() {
  if (!mongo_bus_ || node_->peers_version() == ranked_peers_version_) return;
  ranked_peers_version_ = node_->peers_version();
  unsigned rank = 0;
  for (const auto& uid : node_->all_peers())
    if (uid < uid_) ++rank;
  mongo_bus_->set_rank(rank);
}

}  // namespace siobridge::runtime
