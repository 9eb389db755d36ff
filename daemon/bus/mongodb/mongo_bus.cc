#include "daemon/bus/mongodb/mongo_bus.h"

#include <spdlog/spdlog.h>

#include "daemon/bus/mongodb/connection_string.h"

namespace siobridge::bus::mongodb {

Result<std::unique_ptr<MongoBus>> MongoBus::create(MongoBusConfig config, std::string own_uid,
                                                   BusListener& listener, Post post,
                                                   FlowGate* flow_gate) {
  auto uri = ConnectionString::parse(config);
  if (!uri.ok()) return uri.error();
  auto pool = uri->new_pool();
  if (!pool.ok()) return pool.error();
  std::unique_ptr<MongoBus> bus(new MongoBus());
  bus->pool_ = std::move(*pool);
  bus->context_ = std::make_unique<BusContext>(std::move(config), std::move(own_uid), listener,
                                               std::move(post), bus->pool_.get(), flow_gate);
  bus->context_->set_uri_facts(uri->facts());
  bus->monitor_ = std::make_unique<TopologyMonitor>(*bus->context_);
  bus->monitor_->install(bus->pool_.get());
  bus->writer_ = std::make_unique<DocumentWriter>(*bus->context_);
  bus->watcher_ = std::make_unique<ChangeWatcher>(*bus->context_);
  bus->lookup_ = std::make_unique<CallLookup>(*bus->context_);
  return bus;
}

MongoBus::~MongoBus() {
  stop(Millis{0});
  // A lookup asked before start() (or after stop()) uses the pool too.
  if (context_) context_->request_stop();
  if (lookup_) lookup_->stop();
}

void MongoBus::start() {
  if (started_) return;
  started_ = true;
  start_threads();
}

void MongoBus::start_threads() {
  std::packaged_task<void()> writer_task([this] { writer_->run(); });
  writer_done_ = writer_task.get_future();
  writer_thread_ = std::thread(std::move(writer_task));
  watcher_thread_ = std::thread([this] { watcher_->run(); });
}

void MongoBus::stop(Millis drain) {
  if (!started_ || stopped_) return;
  stopped_ = true;
  writer_->close(drain);
  // The writer gets `drain` to empty its queue; then every wait is cut short.
  // (The writer logs what it could not write.)
  (void)writer_done_.wait_for(drain);
  context_->request_stop();
  writer_->wake();
  writer_thread_.join();
  watcher_thread_.join();
  lookup_->stop();
}

Status MongoBus::reconnect(std::string uri, std::string password) {
  MongoBusConfig next = context_->config;
  next.uri = std::move(uri);
  next.password = std::move(password);
  auto parsed = ConnectionString::parse(next);
  if (!parsed.ok()) return parsed.error();
  auto pool = parsed->new_pool();
  if (!pool.ok()) return pool.error();
  const bool running = started_ && !stopped_;
  if (running) {
    // Both threads give their clients back: the writer keeps its queue and
    // the batch it was writing, the watcher its resume token.
    context_->request_stop();
    writer_->wake();
    writer_thread_.join();
    watcher_thread_.join();
    context_->clear_stop();
  }
  pool_ = std::move(*pool);
  context_->pool = pool_.get();
  context_->set_uri_facts(parsed->facts());
  monitor_->install(pool_.get());
  if (running) start_threads();
  spdlog::info("MongoDB: reconnecting with the new URI or password");
  return {};
}

Status MongoBus::publish(wire::Document document, Audience audience) {
  return writer_->enqueue(std::move(document), audience);
}

void MongoBus::find_last_call(const std::string& instance,
                              std::function<void(Result<std::uint64_t>)> done) {
  lookup_->ask(instance, std::move(done));
}

void MongoBus::find_socketioxide(const std::string& ns, Millis lookback,
                                 std::function<void(Result<bool>)> done) {
  lookup_->ask_socketioxide(ns, lookback, std::move(done));
}

}  // namespace siobridge::bus::mongodb
