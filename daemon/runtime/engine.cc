#include "daemon/runtime/engine.h"

#include <spdlog/spdlog.h>

#include "daemon/bus/factory.h"
#include "daemon/common/memory.h"
#include "daemon/common/turn_flush.h"
#include "daemon/wire/ids.h"

namespace siobridge::runtime {

class Engine::MarkingBus final : public bus::Bus {
 public:
  MarkingBus(Engine& engine, bus::Bus& inner) : engine_(engine), inner_(inner) {}

  Status publish(wire::Document document, bus::Audience audience) override {
    if (engine_.current_call_) document.calls.push_back(*engine_.current_call_);
    auto status = inner_.publish(std::move(document), audience);
    if (status.ok()) {
      ++engine_.published_;
      if (!inner_.settles_later()) engine_.settled_ = engine_.published_;
    }
    return status;
  }
  bus::BusState state() const override { return inner_.state(); }
  bool shared() const override { return inner_.shared(); }
  bool settles_later() const override { return inner_.settles_later(); }
  void find_last_call(const std::string& instance,
                      std::function<void(Result<std::uint64_t>)> done) override {
    inner_.find_last_call(instance, std::move(done));
  }
  void find_socketioxide(const std::string& ns, Millis lookback,
                         std::function<void(Result<bool>)> done) override {
    inner_.find_socketioxide(ns, lookback, std::move(done));
  }

 private:
  Engine& engine_;
  bus::Bus& inner_;
};

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
  std::optional<core::Handover> handover;
  if (options.mongodb && !options.mongodb->state_dir.empty()) {
    auto dir = StateDir::open(options.mongodb->state_dir);
    if (!dir.ok()) return dir.error();
    engine->state_dir_.emplace(std::move(*dir));
    auto stored = engine->state_dir_->load_node();
    if (stored.ok()) {
      if (options.node.uid.empty()) {
        options.node.uid = stored->uid;
        spdlog::info("node uid {} kept from {}", stored->uid, engine->state_dir_->path());
      } else if (options.node.uid != stored->uid) {
        spdlog::warn("node.uid is {}, the state directory had {}: peers see a new node",
                     options.node.uid, stored->uid);
      }
      handover = std::move(stored->handover);
    } else if (stored.error().code != ErrorCode::kNotFound) {
      spdlog::warn("{}: starting as a new node", stored.error().message);
    }
  }
  if (options.node.uid.empty()) options.node.uid = wire::generate_id();
  if (!wire::is_valid_id(options.node.uid)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "node uid must be 16 characters of [A-Za-z0-9_-]");
  }
  engine->uid_ = options.node.uid;
  if (options.node.instance.empty()) options.node.instance = wire::generate_id().substr(0, 8);
  engine->instance_ = options.node.instance;
  engine->flow_gate_ = std::make_unique<FlowGate>(options.flow);
  auto bus = bus::make_bus(bus::BusSetup{
      std::move(options.mongodb), engine->uid_, raw,
      [raw](std::function<void()> fn) { raw->enqueue(std::move(fn)); }, engine->flow_gate_.get()});
  if (!bus.ok()) return bus.error();
  engine->bus_ = std::move(*bus);
  engine->marking_bus_ = std::make_unique<MarkingBus>(*raw, *engine->bus_);
  engine->node_ = std::make_unique<core::Node>(options.node, *engine->marking_bus_, engine->clock_,
                                               engine->timers_);
  if (handover && !handover->namespaces.empty()) engine->node_->resume(*handover);
  if (engine->state_dir_) {
    // At once: a daemon that dies early keeps its uid too.
    if (auto s = engine->state_dir_->save_node(engine->uid_, engine->node_->snapshot()); !s.ok()) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("state directory: {}", s.error().message));
    }
    engine->saved_state_version_ = engine->node_->state_version();
  }
  return engine;
}

Engine::~Engine() {
  stop(Millis{0});
  if (!started_) {
    // The handles were initialized but the loop never ran: close them here.
    uv_close(reinterpret_cast<uv_handle_t*>(&wakeup_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
  }
  uv_loop_close(&loop_);
}

void Engine::set_bus_observer(std::function<void(bus::BusState, const std::string&)> observer) {
  post([this, observer = std::move(observer)](core::Node& node) {
    bus_observer_ = observer;
    if (bus_observer_) {
      const auto status = node.status();
      bus_observer_(status.bus_state, status.bus_detail);
    }
  });
}

void Engine::leave_cluster() {
  post([this](core::Node& node) {
    if (state_dir_ && !state_frozen_) save_state(/*force=*/true);
    state_frozen_ = true;
    node.leave_cluster();
  });
}

void Engine::start() {
  if (started_) return;
  started_ = true;
  bus_->start();
  thread_ = std::thread([this] { loop_main(); });
}

void Engine::stop(Millis drain) {
  if (!started_ || stopped_) return;
  stopped_ = true;
  bus_->stop(drain);  // no more posts from the bus after this
  {
    MutexLock lock(inbox_mutex_);
    stopping_ = true;
  }
  uv_async_send(&wakeup_);
  thread_.join();
  // The core thread is gone: the last snapshot is written here, and the state
  // directory is free for a successor (the watcher saved its token).
  save_state(/*force=*/true);
  state_dir_.reset();
}

void Engine::post(std::function<void(core::Node&)> fn) {
  enqueue([this, fn = std::move(fn)] { fn(*node_); });
}

void Engine::post_urgent(std::function<void(core::Node&)> fn) {
  enqueue([this, fn = std::move(fn)] { fn(*node_); }, /*urgent=*/true);
}

void Engine::after(Millis delay, std::function<void()> fn) {
  enqueue([this, delay, fn = std::move(fn)]() mutable {
    timers_.schedule(clock_.now() + delay, std::move(fn));
  });
}

void Engine::when_producers_may_go(std::function<void()> resume) {
  flow_gate_->when_open([this, resume = std::move(resume)]() mutable {
    if (auto* write_gate = bus_->write_gate()) {
      write_gate->when_open(std::move(resume));
    } else {
      resume();
    }
  });
}

std::string Engine::collection() const {
  return bus_->location();
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

void Engine::enqueue(std::function<void()> fn, bool urgent) {
  {
    MutexLock lock(inbox_mutex_);
    if (stopping_) return;
    (urgent ? urgent_ : inbox_).push_back(std::move(fn));
  }
  uv_async_send(&wakeup_);
}

void Engine::loop_main() {
  uv_run(&loop_, UV_RUN_DEFAULT);
}

void Engine::drain_inbox() {
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::function<void()>> urgent;
  bool stopping;
  {
    MutexLock lock(inbox_mutex_);
    urgent.swap(urgent_);
    for (auto& fn : inbox_) backlog_.push_back(std::move(fn));
    inbox_.clear();
    stopping = stopping_;
  }
  {
    // What this turn queues for one Attach stream leaves as one write when it ends.
    TurnFlush::Scope turn;
    for (auto& fn : urgent) fn();
    // At least one item a turn, so that work always moves; all of it when stopping.
    do {
      if (backlog_.empty()) break;
      auto fn = std::move(backlog_.front());
      backlog_.pop_front();
      fn();
    } while (stopping || std::chrono::steady_clock::now() - started < kTurnBudget);
    timers_.run_due(clock_.now());
    after_events();
  }
  if (stopping) {
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&wakeup_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
    return;
  }
  // The rest in a later turn of the loop: due timers run before it.
  if (!backlog_.empty()) uv_async_send(&wakeup_);
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
        TurnFlush::Scope turn;
        self->timers_.run_due(self->clock_.now());
        self->after_events();
        self->arm_timer();
      },
      static_cast<std::uint64_t>(delay), 0);
}

void Engine::on_document(wire::Document document, const std::string& position) {
  const bool large = document.data.size() >= kLargeFreeBytes;
  node_->on_document(document, position);
  if (large) {
    document = {};
    release_free_memory();  // give the memory of a large message back now
  }
}

void Engine::on_settled(std::uint64_t count) {
  settled_ = std::max(settled_, count);
  if (settled_observer_) settled_observer_(settled_);
}

void Engine::set_settled_observer(std::function<void(std::uint64_t)> observer) {
  post([this, observer = std::move(observer)](core::Node&) { settled_observer_ = observer; });
}

void Engine::find_last_call(const std::string& instance,
                            std::function<void(Result<std::uint64_t>)> done) {
  marking_bus_->find_last_call(instance, std::move(done));
}

void Engine::after_events() {
  update_rank();
  save_state();
  check_conditions();
}

// The hand-over snapshot follows the node's namespaces and peers, written at
// most once a second: it is small, and what matters is that it is current
// when the daemon dies.
void Engine::save_state(bool force) {
  if (!state_dir_ || state_frozen_) return;
  if (!force && node_->state_version() == saved_state_version_) return;
  const Millis now = clock_.now();
  const Millis next = last_state_save_ + Millis{1000};
  if (!force && now < next) {
    if (!state_save_timer_) {
      state_save_timer_ = timers_.schedule(next, [this] {
        state_save_timer_ = 0;
        save_state();
      });
    }
    return;
  }
  last_state_save_ = now;
  saved_state_version_ = node_->state_version();
  if (auto s = state_dir_->save_node(uid_, node_->snapshot()); !s.ok()) {
    spdlog::warn("cannot keep the node state: {}", s.error().message);
  }
}

// The MongoDB bus staggers re-creating a dropped collection by this node's rank
// among its live peers; kept current whenever the peers change.
void Engine::update_rank() {
  if (!bus_->shared() || node_->peers_version() == ranked_peers_version_) return;
  ranked_peers_version_ = node_->peers_version();
  unsigned rank = 0;
  for (const auto& uid : node_->all_peers())
    if (uid < uid_) ++rank;
  bus_->set_rank(rank);
}

}  // namespace siobridge::runtime
