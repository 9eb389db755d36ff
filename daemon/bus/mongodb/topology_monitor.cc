#include "daemon/bus/mongodb/topology_monitor.h"

#include <memory>

namespace siobridge::bus::mongodb {
namespace {

struct CallbacksDeleter {
  void operator()(mongoc_apm_callbacks_t* callbacks) const {
    mongoc_apm_callbacks_destroy(callbacks);
  }
};

}  // namespace

void TopologyMonitor::install(mongoc_client_pool_t* pool) {
  std::unique_ptr<mongoc_apm_callbacks_t, CallbacksDeleter> callbacks(mongoc_apm_callbacks_new());
  mongoc_apm_set_topology_changed_cb(callbacks.get(), &TopologyMonitor::on_topology_changed);
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

}  // namespace siobridge::bus::mongodb
