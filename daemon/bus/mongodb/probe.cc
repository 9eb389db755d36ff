#include "daemon/bus/mongodb/probe.h"

#include <fmt/format.h>

#include <memory>
#include <optional>

#include "daemon/bus/mongodb/collection_setup.h"
#include "daemon/bus/mongodb/connection_string.h"
#include "daemon/bus/mongodb/mongo_handles.h"
#include "daemon/bus/mongodb/privileges.h"
#include "daemon/common/secrets.h"

namespace siobridge::bus::mongodb {
namespace {

// What the client's server monitoring found (its callbacks run on the
// calling thread: the client is single-threaded).
struct Monitoring {
  UriFacts facts;
  std::optional<Diagnosis> found;
};

void on_server_changed(const mongoc_apm_server_changed_t* event) {
  auto* monitoring = static_cast<Monitoring*>(mongoc_apm_server_changed_get_context(event));
  const auto* description = mongoc_apm_server_changed_get_new_description(event);
  std::string set_name;
  bson_iter_t it;
  if (const bson_t* hello = mongoc_server_description_hello_response(description);
      hello && bson_iter_init_find(&it, hello, "setName") && BSON_ITER_HOLDS_UTF8(&it)) {
    set_name = bson_iter_utf8(&it, nullptr);
  }
  if (auto d = diagnose_server(mongoc_apm_server_changed_get_host(event)->host_and_port,
                               mongoc_server_description_type(description), set_name,
                               monitoring->facts)) {
    monitoring->found = std::move(d);
  }
}

void on_heartbeat_failed(const mongoc_apm_server_heartbeat_failed_t* event) {
  auto* monitoring =
      static_cast<Monitoring*>(mongoc_apm_server_heartbeat_failed_get_context(event));
  bson_error_t error;
  mongoc_apm_server_heartbeat_failed_get_error(event, &error);
  if (auto d = diagnose_heartbeat(mongoc_apm_server_heartbeat_failed_get_host(event)->host_and_port,
                                  error.domain, error.code, error.message, monitoring->facts)) {
    monitoring->found = std::move(d);
  }
}

}  // namespace

ProbeReport probe_mongodb(const MongoBusConfig& config) {
  ProbeReport report;
  auto uri = ConnectionString::parse(config);
  if (!uri.ok()) {
    report.code = uri.error().code;
    report.error = uri.error().message;
    return report;
  }
  Monitoring monitoring{uri->facts(), std::nullopt};
  const Client client(mongoc_client_new_from_uri(uri->get()));
  if (!client) {
    report.code = ErrorCode::kInvalidArgument;
    report.error = "MongoDB URI: the driver cannot make a client of it";
    return report;
  }
  mongoc_client_set_error_api(client.get(), MONGOC_ERROR_API_VERSION_2);
  const ApmCallbacks callbacks(mongoc_apm_callbacks_new());
  mongoc_apm_set_server_changed_cb(callbacks.get(), &on_server_changed);
  mongoc_apm_set_server_heartbeat_failed_cb(callbacks.get(), &on_heartbeat_failed);
  mongoc_client_set_apm_callbacks(client.get(), callbacks.get(), &monitoring);

  // Each step as the daemon takes it; the first failure ends the probe.
  const auto fail = [&](const Error& error, std::optional<Diagnosis> diagnosis) {
    const auto& driver_error = last_setup_error();
    // A server selection that failed says less than what the monitoring saw.
    if (!diagnosis && driver_error.domain == MONGOC_ERROR_SERVER_SELECTION) {
      diagnosis = monitoring.found;
    }
    if (!diagnosis && driver_error.domain != 0) {
      diagnosis = diagnose_error(driver_error.domain, driver_error.code, driver_error.message,
                                 monitoring.facts);
    }
    if (!diagnosis) diagnosis = monitoring.found;
    report.code = error.code;
    report.cause = diagnosis ? diagnosis->cause : Cause::kNone;
    report.error = redact(diagnosis ? diagnosis->message : error.message);
    return report;
  };
  clear_setup_error();
  if (auto s = check_change_streams_supported(client.get()); !s.ok()) {
    return fail(s.error(), std::nullopt);
  }
  report.checked.push_back(
      monitoring.facts.replica_set.empty()
          ? "server: answers, has change streams"
          : fmt::format("server: answers, replica set {}", monitoring.facts.replica_set));
  auto privileges = read_privileges(client.get());
  if (!privileges.ok()) return fail(privileges.error(), std::nullopt);
  const GrantedPrivileges* granted = *privileges ? &**privileges : nullptr;
  if (granted) {
    const std::string missing =
        granted->missing(config.database, config.collection, needed_to_run(config.expiration));
    if (!missing.empty()) {
      const std::string message = fmt::format(
          "user {} lacks what siobridged needs: {} (docs/running.md, "
          "\"MongoDB privileges\")",
          granted->users(), missing);
      return fail(make_error(ErrorCode::kFailedPrecondition, message),
                  Diagnosis{Cause::kNotAuthorized, message});
    }
    report.checked.push_back(
        fmt::format("login: {}, with every privilege siobridged needs", granted->users()));
  } else {
    report.checked.push_back(monitoring.facts.user.empty()
                                 ? "login: none (the URI names no user)"
                                 : "login: none needed (the server has no access control)");
  }
  clear_setup_error();
  auto collection = inspect_collection(client.get(), config.database, config.collection,
                                       config.expiration, granted);
  if (!collection.ok()) {
    std::optional<Diagnosis> diagnosis;
    if (last_setup_error().domain == 0 &&
        collection.error().code == ErrorCode::kFailedPrecondition) {
      diagnosis = Diagnosis{Cause::kNotAuthorized, collection.error().message};
    }
    return fail(collection.error(), diagnosis);
  }
  report.checked.push_back("collection: " + *collection);
  report.ok = true;
  return report;
}

}  // namespace siobridge::bus::mongodb
