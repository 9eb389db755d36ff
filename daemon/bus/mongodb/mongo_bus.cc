#include "daemon/bus/mongodb/mongo_bus.h"

#include <spdlog/spdlog.h>

namespace siobridge::bus::mongodb {
namespace {

// mongoc_init once per process, before any other thread uses the driver.
void init_driver() {
  static const bool initialized = [] {
    mongoc_init();
    return true;
  }();
  (void)initialized;
}

}  // namespace

Result<std::unique_ptr<MongoBus>> MongoBus::create(MongoBusConfig config, std::string own_uid,
                                                   BusListener& listener, Post post,
                                                   FlowGate* flow_gate) {
  init_driver();
  bson_error_t error;
  mongoc_uri_t* uri = mongoc_uri_new_with_error(config.uri.c_str(), &error);
  if (!uri) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("MongoDB URI is not valid: {}", error.message));
  }
  if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS)) {
    mongoc_uri_set_option_as_int32(
        uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
        static_cast<std::int32_t>(config.server_selection_timeout.count()));
  }
  if (!mongoc_uri_has_option(uri, MONGOC_URI_HEARTBEATFREQUENCYMS)) {
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_HEARTBEATFREQUENCYMS,
                                   static_cast<std::int32_t>(config.heartbeat_frequency.count()));
  }
  if (!mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS)) {
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS,
                                   static_cast<std::int32_t>(config.socket_timeout.count()));
  }
  if (!mongoc_uri_has_option(uri, MONGOC_URI_APPNAME)) {
    mongoc_uri_set_appname(uri, "siobridged");
  }
  std::unique_ptr<MongoBus> bus(new MongoBus());
  bus->pool_ = mongoc_client_pool_new_with_error(uri, &error);
  mongoc_uri_destroy(uri);
  if (!bus->pool_) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("MongoDB client pool: {}", error.message));
  }
  mongoc_client_pool_set_error_api(bus->pool_, MONGOC_ERROR_API_VERSION_2);
  bus->context_ = std::make_unique<BusContext>(std::move(config), std::move(own_uid), listener,
                                               std::move(post), bus->pool_, flow_gate);
  bus->monitor_ = std::make_unique<TopologyMonitor>(*bus->context_);
  bus->monitor_->install(bus->pool_);
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
  if (pool_) mongoc_client_pool_destroy(pool_);
}

void MongoBus::start() {
  if (started_) return;
  started_ = true;
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

Status MongoBus::publish(wire::Document document, Audience audience) {
  return writer_->enqueue(std::move(document), audience);
}

void MongoBus::find_last_call(const std::string& instance,
                              std::function<void(Result<std::uint64_t>)> done) {
  lookup_->ask(instance, std::move(done));
}

}  // namespace siobridge::bus::mongodb
