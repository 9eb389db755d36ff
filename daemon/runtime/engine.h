// Engine: a Node on its own core thread, a libuv loop, with its bus
// (bus::make_bus): the in-memory bus when no MongoDB URI is configured (this
// host's servers only), the MongoDB bus otherwise. Other threads reach the node only through post()
// and call(); the bus's threads deliver through post() too, so the node itself
// needs no locks.
//
// With a state directory (MongoDB only) the engine keeps the node's uid and
// its hand-over snapshot there, so that a restarted daemon is the same node
// and holds what the cluster sent meanwhile for its servers (core::Handover).
//
// post(), call(), leave_cluster(), set_bus_observer() and the accessors are
// thread-safe; start() and stop() belong to the owner. call() must not be used
// from the core thread.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <uv.h>

#include "daemon/bus/bus.h"
#include "daemon/bus/mongodb/mongo_bus_config.h"
#include "daemon/bus/mongodb/mongo_bus_stats.h"
#include "daemon/common/flow_gate.h"
#include "daemon/common/mutex.h"
#include "daemon/core/node.h"
#include "daemon/runtime/state_dir.h"

namespace siobridge::runtime {

struct EngineOptions {
  core::NodeConfig node;
  std::optional<bus::mongodb::MongoBusConfig> mongodb;  // none: in-memory bus
  // Back-pressure (FlowGate) from the attached servers to the producers. The
  // defaults of all three are the daemon's (app::default_config()), so that
  // tests run the thresholds users get.
  FlowGate::Marks flow{};
};

class Engine final : private bus::BusListener {
 public:
  static Result<std::unique_ptr<Engine>> create(EngineOptions options);
  ~Engine() override;

  // Called on the core thread with the bus state now, then whenever it changes.
  void set_bus_observer(std::function<void(bus::BusState, const std::string&)> observer);
  void start();
  // A graceful stop begins: the hand-over snapshot is saved one last time (the
  // servers detaching now will attach again after a restart) and the other
  // siobridge nodes are told that this node leaves.
  void leave_cluster();
  // Stops the bus (writing what is queued for up to `drain`), then the loop.
  void stop(Millis drain);

  // Runs `fn` on the core thread, after everything posted before it.
  void post(std::function<void(core::Node&)> fn);
  // Runs `fn` on the core thread before the ordinary work still waiting there,
  // within one turn budget (kTurnBudget): for questions about the daemon
  // (Status, metrics) that must not wait behind a backlog. Order among urgent
  // posts is kept; `fn` must only read, or change nothing that ordinary work
  // depends on.
  void post_urgent(std::function<void(core::Node&)> fn);
  // Runs `fn` on the core thread and waits for its result. Once the engine has
  // stopped (or before it starts) it runs `fn` on the calling thread instead.
  // `urgent`: as post_urgent().
  template <typename Fn>
  auto call(Fn&& fn, bool urgent = false) -> decltype(fn(std::declval<core::Node&>()));

  // How long the core thread works through posted work before it ends its turn:
  // the writes that work queued for the servers leave, due timers run and
  // urgent posts are answered, then the rest follows. A backlog of megabytes
  // from MongoDB thus reaches the servers in a stream, not seconds later in one
  // piece, and the stall clock of a server never runs while the core produces.
  static constexpr std::chrono::milliseconds kTurnBudget{10};

  // Runs `fn` on the core thread after `delay`.
  void after(Millis delay, std::function<void()> fn);
  // "database.collection" on MongoDB, empty in memory.
  std::string collection() const;

  // ---- calls of servers that number them (api::AttachStream, "confirm") ----
  // While a scope lives (on the core thread), every document the node
  // publishes carries `mark` (wire::Document::calls), so that the bus can tell
  // after a restart which calls it holds, and every Command the node hands an
  // attached server comes from that call (current_call()).
  class CallScope {
   public:
    CallScope(Engine& engine, wire::CallMark mark) : engine_(engine) {
      engine_.current_call_ = std::move(mark);
    }
    ~CallScope() { engine_.current_call_.reset(); }
    CallScope(const CallScope&) = delete;
    CallScope& operator=(const CallScope&) = delete;

   private:
    Engine& engine_;
  };
  // Core thread only.
  const std::optional<wire::CallMark>& current_call() const { return current_call_; }
  // Documents the bus accepted so far, and how many of them are settled
  // (stored or given up for good, bus::BusListener::on_settled); core thread.
  std::uint64_t published() const { return published_; }
  std::uint64_t settled() const { return settled_; }
  // Called on the core thread whenever settled() moves on.
  void set_settled_observer(std::function<void(std::uint64_t)> observer);
  // Bus::find_last_call, from the core thread; `done` runs there.
  void find_last_call(const std::string& instance, std::function<void(Result<std::uint64_t>)> done);

  // Resolves once `condition` holds on the core thread; it is checked after
  // every event the engine processes (commands, documents, timers).
  std::future<void> when(std::function<bool(core::Node&)> condition);

  const std::string& uid() const { return uid_; }
  // This run's token (core::NodeConfig::instance).
  const std::string& instance() const { return instance_; }
  bus::BusState bus_state() const { return bus_->state(); }
  // Null on the in-memory bus.
  const bus::mongodb::MongoBusStats* mongo_stats() const { return bus_->mongodb_stats(); }
  bool uses_mongodb() const { return bus_->mongodb() != nullptr; }
  // Null on the in-memory bus: for a reconnect with new credentials, and the
  // metrics (daemon/bus/mongodb/mongo_bus.h has the type).
  bus::mongodb::MongoBus* mongo_bus() { return bus_->mongodb(); }
  FlowGate& flow_gate() { return *flow_gate_; }
  // Runs `resume` once producers may go on: no attached server has too much
  // waiting (flow_gate) and MongoDB's write queue is not past its back-pressure
  // mark. At once on this thread when both are open, else on the thread that
  // opens the last one.
  void when_producers_may_go(std::function<void()> resume);
  bool running() const { return started_ && !stopped_; }

 private:
  Engine() = default;
  void enqueue(std::function<void()> fn, bool urgent = false);
  void loop_main();
  // One turn: urgent work, then ordinary work for up to kTurnBudget.
  void drain_inbox();
  void arm_timer();
  void update_rank();
  void check_conditions();

  void after_events();
  void save_state(bool force = false);

  void on_document(wire::Document document, const std::string& position) override;
  void on_settled(std::uint64_t count) override;
  void on_bus_state(bus::BusState state, const std::string& detail) override {
    node_->on_bus_state(state, detail);
    if (bus_observer_) bus_observer_(state, detail);
  }

  std::string uid_;
  std::string instance_;
  std::optional<StateDir> state_dir_;
  std::unique_ptr<FlowGate> flow_gate_;
  SteadyClock clock_;
  core::TimerQueue timers_;
  std::unique_ptr<bus::RunningBus> bus_;
  // The bus as the node uses it: marks documents with the current call and
  // counts them (published_, settled_).
  class MarkingBus;
  std::unique_ptr<MarkingBus> marking_bus_;
  std::unique_ptr<core::Node> node_;
  // Core thread only.
  std::optional<wire::CallMark> current_call_;
  std::uint64_t published_ = 0;
  std::uint64_t settled_ = 0;
  std::function<void(std::uint64_t)> settled_observer_;

  uv_loop_t loop_{};
  uv_async_t wakeup_{};
  uv_timer_t timer_{};
  struct Condition {
    std::function<bool(core::Node&)> holds;
    std::promise<void> met;
  };
  std::vector<Condition> conditions_;  // core thread only
  std::uint64_t ranked_peers_version_ = ~std::uint64_t{0};
  std::function<void(bus::BusState, const std::string&)> bus_observer_;
  // The hand-over snapshot (core thread only): the version last saved, when,
  // a save waiting for its turn, and whether saving stopped (leaving).
  std::uint64_t saved_state_version_ = 0;
  Millis last_state_save_{0};
  core::TimerId state_save_timer_ = 0;
  bool state_frozen_ = false;
  std::thread thread_;
  // Ordinary work taken from inbox_ that a turn's budget left for the next
  // turns (core thread only).
  std::deque<std::function<void()>> backlog_;
  Mutex inbox_mutex_;
  std::vector<std::function<void()>> inbox_ SIOBRIDGE_GUARDED_BY(inbox_mutex_);
  std::vector<std::function<void()>> urgent_ SIOBRIDGE_GUARDED_BY(inbox_mutex_);
  bool stopping_ SIOBRIDGE_GUARDED_BY(inbox_mutex_) = false;
  std::atomic<bool> started_{false}, stopped_{false};
};

template <typename Fn>
auto Engine::call(Fn&& fn, bool urgent) -> decltype(fn(std::declval<core::Node&>())) {
  using R = decltype(fn(std::declval<core::Node&>()));
  if (!running()) return fn(*node_);
  auto task = std::make_shared<std::packaged_task<R(core::Node&)>>(std::forward<Fn>(fn));
  auto result = task->get_future();
  std::function<void(core::Node&)> run = [task](core::Node& node) { (*task)(node); };
  if (urgent) {
    post_urgent(std::move(run));
  } else {
    post(std::move(run));
  }
  return result.get();
}

}  // namespace siobridge::runtime
