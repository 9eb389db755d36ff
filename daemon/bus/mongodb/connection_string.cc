#include "daemon/bus/mongodb/connection_string.h"

#include <fmt/format.h>

#include "daemon/common/secrets.h"

namespace siobridge::bus::mongodb {

void init_driver() {
  static const bool initialized = [] {
    mongoc_init();
    return true;
  }();
  (void)initialized;
}

Result<ConnectionString> ConnectionString::parse(const MongoBusConfig& config) {
  init_driver();
  bson_error_t error;
  ConnectionString parsed;
  parsed.uri_.reset(mongoc_uri_new_with_error(config.uri.c_str(), &error));
  if (!parsed.uri_) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("MongoDB URI is not valid: {}", redact(error.message)));
  }
  mongoc_uri_t* uri = parsed.uri_.get();
  if (const char* password = mongoc_uri_get_password(uri)) register_secret(password);
  if (!config.password.empty()) {
    if (!mongoc_uri_get_username(uri)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "a MongoDB password is given (mongodb.password_file) but the URI names "
                        "no user: write it as mongodb://USER@host/...");
    }
    register_secret(config.password);
    mongoc_uri_set_password(uri, config.password.c_str());
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
  return parsed;
}

UriFacts ConnectionString::facts() const {
  const mongoc_uri_t* uri = uri_.get();
  UriFacts facts;
  if (const char* user = mongoc_uri_get_username(uri)) facts.user = user;
  if (const char* source = mongoc_uri_get_auth_source(uri)) facts.auth_source = source;
  if (const char* mechanism = mongoc_uri_get_auth_mechanism(uri)) facts.mechanism = mechanism;
  if (const char* set = mongoc_uri_get_replica_set(uri)) facts.replica_set = set;
  facts.tls = mongoc_uri_get_tls(uri);
  return facts;
}

Result<ClientPool> ConnectionString::new_pool() const {
  bson_error_t error;
  ClientPool pool(mongoc_client_pool_new_with_error(uri_.get(), &error));
  if (!pool) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("MongoDB client pool: {}", redact(error.message)));
  }
  mongoc_client_pool_set_error_api(pool.get(), MONGOC_ERROR_API_VERSION_2);
  return pool;
}

}  // namespace siobridge::bus::mongodb
