#include "daemon/app/config.h"

#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <functional>

#include "daemon/app/config_settings.h"
#include "daemon/common/secrets.h"

namespace siobridge::app {
namespace {

Error bad(const std::string& what) {
  return make_error(ErrorCode::kInvalidArgument, what);
}

std::string flag_name(const std::string& key) {
  std::string out = "--";
  for (char ch : key) out.push_back(ch == '.' || ch == '_' ? '-' : ch);
  return out;
}

// Flattens a YAML mapping to dotted keys; scalars only at the leaves.
Status flatten(const YAML::Node& node, const std::string& prefix, const std::string& file,
               std::map<std::string, std::pair<std::string, int>>& out) {
  for (const auto& entry : node) {
    const std::string key = prefix.empty() ? entry.first.as<std::string>()
                                           : prefix + "." + entry.first.as<std::string>();
    const auto& value = entry.second;
    if (value.IsMap()) {
      if (auto s = flatten(value, key, file, out); !s.ok()) return s;
    } else if (value.IsScalar()) {
      out[key] = {value.as<std::string>(), value.Mark().line + 1};
    } else if (value.IsNull()) {
      out[key] = {"", value.Mark().line + 1};
    } else {
      return bad(fmt::format("{}:{}: {} must be a single value", file, value.Mark().line + 1, key));
    }
  }
  return {};
}

// host:port with a port of 1..65535 and a host that is an IPv4 address, a
// bracketed IPv6 address or a host name.
Status check_host_port(const std::string& key, const std::string& value) {
  const auto colon = value.rfind(':');
  const auto fail = [&](const char* why) {
    return bad(fmt::format("{} \"{}\" is not host:port ({})", key, value, why));
  };
  if (colon == std::string::npos || colon == 0) return fail("e.g. 127.0.0.1:7400");
  const std::string host = value.substr(0, colon), port = value.substr(colon + 1);
  unsigned number = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || number == 0 ||
      number > 65535) {
    return fail("the port must be 1..65535");
  }
  if (host.front() == '[') {
    if (host.back() != ']' || host.size() < 3 ||
        host.find_first_not_of("0123456789abcdefABCDEF:.", 1) != host.size() - 1) {
      return fail("a bracketed IPv6 address is [::1]");
    }
    return {};
  }
  if (host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
      std::string::npos) {
    return fail("the host must be an address or a name");
  }
  return {};
}

Status check_readable(const std::string& key, const std::string& path) {
  std::ifstream in(path);
  if (!in) return bad(fmt::format("{}: cannot read {}", key, path));
  return {};
}

Status validate(DaemonConfig& c) {
  const auto& n = c.node;
  if (n.heartbeat_interval.count() <= 0) return bad("node.heartbeat_interval must be positive");
  if (n.heartbeat_timeout <= n.heartbeat_interval) {
    return bad("node.heartbeat_timeout must be longer than node.heartbeat_interval");
  }
  if (n.local_timeout >= n.request_timeout) {
    return bad(
        "node.local_timeout must be shorter than node.request_timeout (attached servers answer "
        "before other nodes give up)");
  }
  if (c.listen.unix_path.empty() && c.listen.tcp.empty()) {
    return bad("nothing to listen on: set listen.unix or listen.tcp");
  }
  if (!c.listen.tls_cert.empty() != !c.listen.tls_key.empty()) {
    return bad("listen.tls_cert and listen.tls_key go together");
  }
  if (!c.listen.tls_client_ca.empty()) {
    if (c.listen.tls_cert.empty() || c.listen.tcp.empty()) {
      return bad(
          "listen.tls_client_ca asks TCP clients for certificates: it needs listen.tcp with "
          "listen.tls_cert and listen.tls_key");
    }
    if (auto s = check_readable("listen.tls_client_ca", c.listen.tls_client_ca); !s.ok()) return s;
  }
  if (!c.listen.tcp.empty()) {
    if (auto s = check_host_port("listen.tcp", c.listen.tcp); !s.ok()) return s;
    if (c.listen.tls_cert.empty() && !is_loopback(c.listen.tcp) && !c.listen.allow_insecure_tcp) {
      return bad(
          fmt::format("listen.tcp {} is not a loopback address: configure listen.tls_cert and "
                      "listen.tls_key, or set listen.allow_insecure_tcp if the network is trusted",
                      c.listen.tcp));
    }
  }
  if (!c.listen.tls_cert.empty()) {
    if (auto s = check_readable("listen.tls_cert", c.listen.tls_cert); !s.ok()) return s;
    if (auto s = check_readable("listen.tls_key", c.listen.tls_key); !s.ok()) return s;
  }
  if (!c.metrics_listen.empty()) {
    if (auto s = check_host_port("metrics.listen", c.metrics_listen); !s.ok()) return s;
  }
  if (!c.mongodb_uri_file.empty() || !c.mongodb_password_file.empty()) {
    const std::string uri = c.mongodb ? c.mongodb->uri : "";
    auto secrets = read_mongodb_secrets(uri, c.mongodb_uri_file, c.mongodb_password_file);
    if (!secrets.ok()) return secrets.error();
    // An empty URI file names no URI (the systemd unit's default credential).
    if (secrets->uri.empty()) {
      secrets->uri = uri;
      c.mongodb_uri_file.clear();
    } else if (!c.mongodb_uri_file.empty() && !uri.empty()) {
      return bad("mongodb.uri and mongodb.uri_file both name a URI: keep one");
    }
    if (!c.mongodb) c.mongodb = default_mongodb_config();
    c.mongodb->uri = secrets->uri;
    c.mongodb->password = secrets->password;
  }
  if (c.mongodb && c.mongodb->uri.empty()) {
    // mongodb.* settings without a URI change nothing: the in-memory bus is used.
    c.mongodb.reset();
  }
  if (c.mongodb) {
    const std::size_t limit = max_message_bytes_for(c.mongodb->data_format);
    if (c.limits.max_message_bytes > limit) {
      return bad(fmt::format(
          "limits.max_message_bytes is at most {} bytes with mongodb.data_format {}: a larger "
          "payload makes a document over MongoDB's 16 MiB limit",
          limit,
          c.mongodb->data_format == wire::DataFormat::kInt32Array ? "int32-array" : "binary"));
    }
    if (c.mongodb->write_backpressure_bytes >= c.mongodb->queue_bytes) {
      return bad(
          "mongodb.write_backpressure_bytes must be less than mongodb.queue_bytes: past "
          "queue_bytes publishes are refused, so servers would never be paused instead");
    }
  }
  if (c.node.restart_grace.count() <= 0) return bad("node.restart_grace must be positive");
  if (c.limits.attachment_queue_bytes < 2 * c.limits.backpressure_bytes) {
    return bad("limits.attachment_queue_bytes must be at least twice limits.backpressure_bytes");
  }
  if (c.limits.total_backpressure_bytes < 2 * c.limits.backpressure_bytes) {
    return bad(
        "limits.total_backpressure_bytes must be at least twice limits.backpressure_bytes: one "
        "server that stopped reading would otherwise pause the others");
  }
  return {};
}

}  // namespace

const std::vector<SettingInfo>& setting_infos() {
  static const std::vector<SettingInfo> infos = [] {
    std::vector<SettingInfo> out;
    for (const auto& d : setting_definitions()) out.push_back(d.info);
    return out;
  }();
  return infos;
}

DaemonConfig default_config() {
  DaemonConfig config;
  config.listen.unix_path = default_unix_socket();
  return config;
}

std::map<std::string, std::string> config_text(const DaemonConfig& config) {
  std::map<std::string, std::string> text;
  for (const auto& d : setting_definitions()) text[d.info.key] = d.show(config);
  return text;
}

Result<LoadedConfig> load_config(const std::map<std::string, std::string>& flags,
                                 const std::string& config_file,
                                 const std::map<std::string, std::string>& environment) {
  std::map<std::string, Setting> effective;
  for (const auto& d : setting_definitions()) {
    effective[d.info.key] = Setting{d.info.key, d.info.default_value, Source::kDefault, ""};
  }
  if (!config_file.empty()) {
    YAML::Node root;
    try {
      root = YAML::LoadFile(config_file);
    } catch (const YAML::BadFile&) {
      return bad(fmt::format("cannot read the config file {}", config_file));
    } catch (const YAML::Exception& e) {
      return bad(fmt::format("{}: {}", config_file, e.what()));
    }
    if (!root.IsNull()) {
      if (!root.IsMap())
        return bad(fmt::format("{}: the top level must be a mapping", config_file));
      std::map<std::string, std::pair<std::string, int>> values;
      if (auto s = flatten(root, "", config_file, values); !s.ok()) return s.error();
      for (const auto& [key, value] : values) {
        auto it = effective.find(key);
        if (it == effective.end()) {
          return bad(fmt::format("{}:{}: unknown setting \"{}\" (siobridged --help lists them)",
                                 config_file, value.second, key));
        }
        it->second = Setting{key, value.first, Source::kFile,
                             fmt::format("{}:{}", config_file, value.second)};
      }
    }
  }
  for (const auto& d : setting_definitions()) {
    if (auto it = environment.find(d.info.env); it != environment.end()) {
      effective[d.info.key] = Setting{d.info.key, it->second, Source::kEnvironment, d.info.env};
    }
  }
  for (const auto& [key, value] : flags) {
    auto it = effective.find(key);
    if (it == effective.end()) return bad(fmt::format("unknown setting \"{}\"", key));
    it->second = Setting{key, value, Source::kFlag, flag_name(key)};
  }

  LoadedConfig loaded;
  for (const auto& d : setting_definitions()) {
    const auto& setting = effective[d.info.key];
    if (auto s = d.apply(loaded.config, setting.value); !s.ok()) {
      const std::string where = setting.source == Source::kDefault ? "default" : setting.origin;
      return bad(fmt::format("{} = \"{}\" (from {}): {}", d.info.key, redact_uri(setting.value),
                             where, s.error().message));
    }
    loaded.settings.push_back(setting);
  }
  if (auto s = validate(loaded.config); !s.ok()) return s.error();
  return loaded;
}

}  // namespace siobridge::app
