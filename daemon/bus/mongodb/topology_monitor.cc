#include "daemon/bus/mongodb/topology_monitor.h"

#include "daemon/bus/mongodb/mongo_handles.h"

namespace siobridge::bus::mongodb {

void TopologyMonitor::install(mongoc_client_pool_t* pool) {
  const ApmCallbacks callbacks(mongoc_apm_callbacks_new());
  mongoc_apm_set_topology_changed_cb(callbacks.get(), &TopologyMonitor::on_topology_changed);
  mongoc_apm_set_server_changed_cb(callbacks.get(), &TopologyMonitor::on_server_changed);
  mongoc_apm_set_server_heartbeat_failed_cb(callbacks.get(), &TopologyMonitor::on_heartbeat_failed);
  mongoc_apm_set_server_heartbeat_succeeded_cb(callbacks.get(),
                                               &TopologyMonitor::on_heartbeat_succeeded);
  // The pool copies the callbacks.
  mongoc_client_pool_set_apm_callbacks(pool, callbacks.get(), this);
}

void TopologyMonitor::on_topology_changed(const mongoc_apm_topology_changed_t* event) {
  auto* self = static_cast<TopologyMonitor*>(mongoc_apm_topology_changed_get_context(event));
  const auto* previous = mongoc_apm_topology_changed_get_previous_description(event);
  const auto* current = mongoc_apm_topology_changed_get_new_description(event);
  const bool was_writable = mongoc_topology_description_has_writable_server(previous);
  const bool writable = mongoc_topology_description_has_writable_server(current);
  if (writable == was_writable) return;
  if (writable) {
    self->context_.report(BusContext::Part::kMonitor, BusState::kReady, "");
    self->context_.kick();
  } else {
    self->context_.report(BusContext::Part::kMonitor, BusState::kUnavailable,
                          "no writable MongoDB server (stopped, unreachable, or an election)");
  }
}

void TopologyMonitor::on_server_changed(const mongoc_apm_server_changed_t* event) {
  auto* self = static_cast<TopologyMonitor*>(mongoc_apm_server_changed_get_context(event));
  const auto* description = mongoc_apm_server_changed_get_new_description(event);
  std::string set_name;
  bson_iter_t it;
  if (const bson_t* hello = mongoc_server_description_hello_response(description);
      hello && bson_iter_init_find(&it, hello, "setName") && BSON_ITER_HOLDS_UTF8(&it)) {
    set_name = bson_iter_utf8(&it, nullptr);
  }
  const std::string host = mongoc_apm_server_changed_get_host(event)->host_and_port;
  if (auto found = diagnose_server(host, mongoc_server_description_type(description), set_name,
                                   self->context_.uri_facts())) {
    self->context_.diagnose(std::move(*found), host);
  }
}

void TopologyMonitor::on_heartbeat_failed(const mongoc_apm_server_heartbeat_failed_t* event) {
  auto* self = static_cast<TopologyMonitor*>(mongoc_apm_server_heartbeat_failed_get_context(event));
  bson_error_t error;
  mongoc_apm_server_heartbeat_failed_get_error(event, &error);
  const std::string host = mongoc_apm_server_heartbeat_failed_get_host(event)->host_and_port;
  if (auto found = diagnose_heartbeat(host, error.domain, error.code, error.message,
                                      self->context_.uri_facts())) {
    self->context_.diagnose(std::move(*found), host);
  }
}

void TopologyMonitor::on_heartbeat_succeeded(const mongoc_apm_server_heartbeat_succeeded_t* event) {
  auto* self =
      static_cast<TopologyMonitor*>(mongoc_apm_server_heartbeat_succeeded_get_context(event));
  self->context_.host_answered(
      mongoc_apm_server_heartbeat_succeeded_get_host(event)->host_and_port);
}

}  // namespace siobridge::bus::mongodb
