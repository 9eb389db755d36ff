// The configuration of siobridged: one YAML file, SIOBRIDGE_* environment
// variables and command-line flags, flags over environment over file over
// defaults. Every setting has one key (e.g. mongodb.uri), one variable
// (SIOBRIDGE_MONGODB_URI) and one flag (--mongodb-uri); config/siobridged.yaml
// documents them all.
//
// Plain value types and pure functions.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "daemon/api/api_context.h"
#include "daemon/bus/mongodb/mongo_bus_config.h"
#include "daemon/common/result.h"
#include "daemon/core/node_config.h"
#include "daemon/wire/document.h"

namespace siobridge::app {

struct ListenConfig {
  std::string unix_path;  // empty: no Unix socket
  mode_t unix_mode = 0660;
  std::string tcp;  // host:port; empty: no TCP
  std::string tls_cert, tls_key;
  // PEM CA certificates: when set, TCP clients must present a certificate
  // signed by one of them (mutual TLS).
  std::string tls_client_ca;
  bool allow_insecure_tcp = false;
};

struct LogConfig {
  std::string level = "info";
  std::string format = "text";  // or "json"
  std::string file;             // empty: standard error
};

struct DaemonConfig {
  core::NodeConfig node;
  ListenConfig listen;
  std::optional<bus::mongodb::MongoBusConfig> mongodb;  // none: in-memory bus
  // Where mongodb.uri and its password were read from (empty: not from a
  // file): read again on SIGHUP.
  std::string mongodb_uri_file, mongodb_password_file;
  api::ApiLimits limits;
  LogConfig log;
  std::string metrics_listen;  // host:port; empty: no metrics endpoint
  Millis drain_timeout{10'000};
};

// Where a setting's value came from.
enum class Source { kDefault, kFile, kEnvironment, kFlag };
const char* to_string(Source source);

struct Setting {
  std::string key;
  std::string value;
  Source source = Source::kDefault;
  std::string origin;  // the file, variable or flag that set it
};

struct LoadedConfig {
  DaemonConfig config;
  std::vector<Setting> settings;  // the effective value of every key
};

// Settings given as flags (key -> value), the config file path (may be empty)
// and the environment (name -> value).
Result<LoadedConfig> load_config(const std::map<std::string, std::string>& flags,
                                 const std::string& config_file,
                                 const std::map<std::string, std::string>& environment);

struct SettingInfo {
  std::string key, env, flag, default_value, help;
};
const std::vector<SettingInfo>& setting_infos();

// The configuration when nothing is set: the value types' own defaults (their
// initializers are the only place a default is written), with this host's
// Unix socket. A setting's default_value is its text in this configuration.
DaemonConfig default_config();
// Every key's value in `config` (key -> the text a file would give it).
std::map<std::string, std::string> config_text(const DaemonConfig& config);

// The default Unix socket of this user: /run/siobridge/siobridged.sock for
// root, /tmp/siobridge-<uid>/siobridged.sock otherwise (clients use the same).
std::string default_unix_socket();

// The largest limits.max_message_bytes with which a payload of text or binary
// attachments still fits a MongoDB document in `format`. (A payload whose
// msgpack encoding is longer than itself, e.g. non-ASCII text, can be refused
// below it: the daemon checks every message's exact size.)
std::size_t max_message_bytes_for(wire::DataFormat format);

// The MongoDB URI and password the files name (either may be empty: then
// `uri` or no password): the whole URI file, the first line of the password
// file, without trailing white space or line end.
struct MongoSecrets {
  std::string uri, password;
  bool operator==(const MongoSecrets& other) const {
    return uri == other.uri && password == other.password;
  }
};
Result<MongoSecrets> read_mongodb_secrets(const std::string& uri, const std::string& uri_file,
                                          const std::string& password_file);

// "host:port" is on a loopback address (127.0.0.0/8, ::1, localhost).
bool is_loopback(const std::string& host_port);

// "10s" / "250ms" / "2m" / "1h".
Result<Millis> parse_duration(const std::string& text);
// "1048576" / "512KiB" / "16MiB" / "1GiB".
Result<std::uint64_t> parse_size(const std::string& text);
// "100000": digits only.
Result<std::uint64_t> parse_count(const std::string& text);

}  // namespace siobridge::app
