#include "daemon/app/config.h"

#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <functional>

#include "daemon/common/secrets.h"
#include "daemon/wire/ids.h"

namespace siobridge::app {
namespace {

using Apply = std::function<Status(DaemonConfig&, const std::string&)>;

struct SettingDef {
  SettingInfo info;
  Apply apply;
};

Error bad(const std::string& what) {
  return make_error(ErrorCode::kInvalidArgument, what);
}

Apply duration(Millis core::NodeConfig::*field) {
  return [field](DaemonConfig& c, const std::string& v) -> Status {
    auto d = parse_duration(v);
    if (!d) return d.error();
    c.node.*field = *d;
    return {};
  };
}

Result<bool> parse_bool(const std::string& v) {
  if (v == "true" || v == "yes" || v == "1" || v == "on") return true;
  if (v == "false" || v == "no" || v == "0" || v == "off" || v.empty()) return false;
  return bad(fmt::format("\"{}\" is not true or false", v));
}

bus::mongodb::MongoBusConfig& mongo(DaemonConfig& c) {
  if (!c.mongodb) c.mongodb.emplace();
  return *c.mongodb;
}

std::string env_name(const std::string& key) {
  std::string out = "SIOBRIDGE_";
  for (char ch : key)
    out.push_back(ch == '.' ? '_'
                            : static_cast<char>(std::toupper(static_cast<unsigned char>(ch))));
  return out;
}

std::string flag_name(const std::string& key) {
  std::string out = "--";
  for (char ch : key) out.push_back(ch == '.' || ch == '_' ? '-' : ch);
  return out;
}

SettingDef def(std::string key, std::string default_value, std::string help, Apply apply) {
  SettingInfo info{key, env_name(key), flag_name(key), std::move(default_value), std::move(help)};
  return {std::move(info), std::move(apply)};
}

// A setting of true or false, stored in the field `field` gives.
SettingDef bool_def(std::string key, std::string default_value, std::string help,
                    bool& (*field)(DaemonConfig&)) {
  return def(std::move(key), std::move(default_value), std::move(help),
             [field](DaemonConfig& c, const std::string& v) -> Status {
               auto b = parse_bool(v);
               if (!b) return b.error();
               field(c) = *b;
               return {};
             });
}

const std::vector<SettingDef>& definitions() {
  static const std::vector<SettingDef> defs = [] {
    std::vector<SettingDef> d;
    d.push_back(def(
        "node.uid", "",
        "this node's uid in the cluster (16 characters of [A-Za-z0-9_-]); empty: random per start",
        [](DaemonConfig& c, const std::string& v) -> Status {
          if (!v.empty() && !wire::is_valid_id(v))
            return bad("a uid is 16 characters of [A-Za-z0-9_-]");
          c.node.uid = v;
          return {};
        }));
    d.push_back(def("node.heartbeat_interval", "10s", "heartbeat period per active namespace",
                    duration(&core::NodeConfig::heartbeat_interval)));
    d.push_back(def("node.heartbeat_timeout", "60s", "a peer not heard from for this long is gone",
                    duration(&core::NodeConfig::heartbeat_timeout)));
    d.push_back(def("node.request_timeout", "5s", "how long to wait for other nodes' answers",
                    duration(&core::NodeConfig::request_timeout)));
    d.push_back(def("node.ack_timeout", "5s", "default time clients have to ack a broadcast",
                    duration(&core::NodeConfig::ack_timeout)));
    d.push_back(def("node.local_timeout", "2s", "how long to wait for an attached server's answer",
                    duration(&core::NodeConfig::local_timeout)));
    d.push_back(def("node.restart_grace", "10s",
                    "after a restart, how long what the cluster sent meanwhile is held for the "
                    "servers to attach again (MongoDB with a state directory)",
                    duration(&core::NodeConfig::restart_grace)));
    d.push_back(bool_def("node.discovery_lookup", "true",
                         "a namespace packs once MongoDB shows no socketioxide node wrote to it "
                         "lately, not one heartbeat interval after it became active",
                         [](DaemonConfig& c) -> bool& { return c.node.discovery_lookup; }));
    d.push_back(def("node.restart_hold_bytes", "32MiB",
                    "after a restart, how much is held for the servers at most (oldest dropped)",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      auto n = parse_size(v);
                      if (!n) return n.error();
                      c.node.restart_hold_bytes = *n;
                      return {};
                    }));
    d.push_back(
        def("recovery.log_bytes", "64MiB",
            "connection state recovery: packets kept per namespace at most (oldest dropped)",
            [](DaemonConfig& c, const std::string& v) -> Status {
              auto n = parse_size(v);
              if (!n) return n.error();
              c.node.recovery.max_bytes = *n;
              return {};
            }));
    d.push_back(
        def("recovery.max_sessions", "100000",
            "connection state recovery: sessions kept per namespace at most (oldest dropped)",
            [](DaemonConfig& c, const std::string& v) -> Status {
              auto n = parse_count(v);
              if (!n) return n.error();
              if (*n == 0) return bad("at least 1");
              c.node.recovery.max_sessions = *n;
              return {};
            }));
    d.push_back(def("listen.unix", default_unix_socket(),
                    "Unix socket path for the API; empty: none",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      c.listen.unix_path = v;
                      return {};
                    }));
    d.push_back(def("listen.unix_mode", "0660", "permissions of the Unix socket (octal)",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      unsigned mode = 0;
                      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), mode, 8);
                      if (ec != std::errc() || end != v.data() + v.size() || mode > 0777) {
                        return bad(fmt::format("\"{}\" is not an octal mode like 0660", v));
                      }
                      c.listen.unix_mode = static_cast<mode_t>(mode);
                      return {};
                    }));
    d.push_back(def("listen.tcp", "", "host:port for the API over TCP; empty: none",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      c.listen.tcp = v;
                      return {};
                    }));
    d.push_back(def("listen.tls_cert", "", "PEM certificate chain for TCP (TLS)",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      c.listen.tls_cert = v;
                      return {};
                    }));
    d.push_back(def("listen.tls_key", "", "PEM private key for TCP (TLS)",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      c.listen.tls_key = v;
                      return {};
                    }));
    d.push_back(def("listen.tls_client_ca", "",
                    "PEM CA certificates: TCP clients must present a certificate they signed "
                    "(mutual TLS; needs tls_cert)",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      c.listen.tls_client_ca = v;
                      return {};
                    }));
    d.push_back(bool_def("listen.allow_insecure_tcp", "false",
                         "allow TCP without TLS on a non-loopback address",
                         [](DaemonConfig& c) -> bool& { return c.listen.allow_insecure_tcp; }));
    d.push_back(def("mongodb.uri", "",
                    "MongoDB replica set or sharded cluster; empty: this host only (in memory)",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      if (!v.empty()) mongo(c).uri = v;
                      return {};
                    }));
    d.push_back(def("mongodb.uri_file", "",
                    "a file holding mongodb.uri (e.g. a Kubernetes Secret or a systemd "
                    "credential), read at start and on SIGHUP; instead of mongodb.uri",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      c.mongodb_uri_file = v;
                      return {};
                    }));
    d.push_back(def("mongodb.password_file", "",
                    "a file holding the password of the user the URI names (the URI then has "
                    "none), read at start and on SIGHUP",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      c.mongodb_password_file = v;
                      return {};
                    }));
    d.push_back(def("mongodb.database", "siobridge", "database of the shared collection",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      if (v.empty()) return bad("the database name is empty");
                      mongo(c).database = v;
                      return {};
                    }));
    d.push_back(def("mongodb.collection", "socket.io-adapter",
                    "the shared collection (socketioxide's default)",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      if (v.empty()) return bad("the collection name is empty");
                      mongo(c).collection = v;
                      return {};
                    }));
    d.push_back(def("mongodb.expiration", "ttl", "ttl (TTL index on createdAt) or capped",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      if (v != "ttl" && v != "capped") return bad("expected ttl or capped");
                      mongo(c).expiration.kind = v == "ttl"
                                                     ? bus::mongodb::Expiration::Kind::kTtl
                                                     : bus::mongodb::Expiration::Kind::kCapped;
                      return {};
                    }));
    d.push_back(def("mongodb.ttl", "60s", "how long documents live (ttl expiration; whole seconds)",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      auto t = parse_duration(v);
                      if (!t) return t.error();
                      if (t->count() < 1000 || t->count() % 1000)
                        return bad("the ttl is whole seconds, at least 1s");
                      mongo(c).expiration.ttl_seconds = t->count() / 1000;
                      return {};
                    }));
    d.push_back(def("mongodb.capped_size", "1MiB",
                    "size of the capped collection (capped expiration)",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      auto n = parse_size(v);
                      if (!n) return n.error();
                      if (*n < 4096) return bad("a capped collection needs at least 4096 bytes");
                      mongo(c).expiration.capped_bytes = static_cast<std::int64_t>(*n);
                      return {};
                    }));
    d.push_back(
        def("mongodb.data_format", "int32-array",
            "int32-array (socketioxide-compatible) or binary (smaller; siobridge-only clusters)",
            [](DaemonConfig& c, const std::string& v) -> Status {
              if (v != "int32-array" && v != "binary") return bad("expected int32-array or binary");
              mongo(c).data_format =
                  v == "binary" ? wire::DataFormat::kBinary : wire::DataFormat::kInt32Array;
              return {};
            }));
    d.push_back(bool_def("mongodb.pack_messages", "true",
                         "what only siobridge nodes read goes many messages per document "
                         "(socketioxide nodes still get documents of their own)",
                         [](DaemonConfig& c) -> bool& { return mongo(c).pack_messages; }));
    d.push_back(bool_def("mongodb.compress_packs", "true",
                         "packs go zstd-compressed when that saves an eighth (read by siobridge "
                         "daemons of this version on; false while older ones run)",
                         [](DaemonConfig& c) -> bool& { return mongo(c).compress_packs; }));
    d.push_back(bool_def("mongodb.compress_skip", "true",
                         "a namespace whose packs do not compress goes plain for a while untried",
                         [](DaemonConfig& c) -> bool& { return mongo(c).compress_skip; }));
    d.push_back(def("mongodb.write_window_us", "1000",
                    "microseconds a fresh write queue may wait to fill packs (0 to 20000)",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      auto n = parse_count(v);
                      if (!n) return n.error();
                      if (*n > 20000) return bad("at most 20000 (20 ms)");
                      mongo(c).write_window = std::chrono::microseconds(*n);
                      return {};
                    }));
    d.push_back(def("mongodb.write_concern", "majority",
                    "majority (survives a failover) or 1 (the primary alone; faster); both "
                    "journaled",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      using WriteConcern = bus::mongodb::MongoBusConfig::WriteConcern;
                      if (v == "majority") {
                        mongo(c).write_concern = WriteConcern::kMajority;
                      } else if (v == "1") {
                        mongo(c).write_concern = WriteConcern::kPrimary;
                      } else {
                        return bad("expected majority or 1");
                      }
                      return {};
                    }));
    d.push_back(def("mongodb.queue_bytes", "96MiB",
                    "what may wait for MongoDB (e.g. while it is unreachable); beyond, publishes "
                    "are refused with UNAVAILABLE",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      auto n = parse_size(v);
                      if (!n) return n.error();
                      if (*n < (1u << 20)) return bad("at least 1MiB");
                      mongo(c).queue_bytes = *n;
                      return {};
                    }));
    d.push_back(def("mongodb.write_backpressure_bytes", "4MiB",
                    "while MongoDB takes writes, past this much queued the daemon stops reading "
                    "from its servers until half is written; 0: never",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      auto n = parse_size(v);
                      if (!n) return n.error();
                      if (*n != 0 && *n < (1u << 20)) return bad("0, or at least 1MiB");
                      mongo(c).write_backpressure_bytes = *n;
                      return {};
                    }));
    d.push_back(def("mongodb.queue_age", "0",
                    "queued documents older than this are dropped, not written late; 0: the "
                    "collection's retention (ttl, or 60s when capped)",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      auto t = parse_duration(v);
                      if (!t) return t.error();
                      mongo(c).queue_age = *t;
                      return {};
                    }));
    d.push_back(def("mongodb.state_dir", getuid() == 0 ? "/var/lib/siobridge" : "",
                    "where the node's uid, its hand-over state and the change stream's resume "
                    "token are kept; empty: not kept",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      mongo(c).state_dir = v;
                      return {};
                    }));
    d.push_back(def("limits.max_message_bytes", "1MiB", "largest payload accepted from a server",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      auto n = parse_size(v);
                      if (!n) return n.error();
                      if (*n < 1024) return bad("at least 1KiB");
                      c.limits.max_message_bytes = *n;
                      return {};
                    }));
    d.push_back(def("limits.backpressure_bytes", "4MiB",
                    "bytes waiting for one attached server past which the daemon's producers "
                    "pause until it catches up (and its volatile packets are dropped)",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      auto n = parse_size(v);
                      if (!n) return n.error();
                      if (*n < (64u << 10)) return bad("at least 64KiB");
                      c.limits.backpressure_bytes = *n;
                      return {};
                    }));
    d.push_back(def("limits.total_backpressure_bytes", "16MiB",
                    "bytes waiting for all attached servers together past which the daemon's "
                    "producers pause, even when the servers holding them stopped reading",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      auto n = parse_size(v);
                      if (!n) return n.error();
                      c.limits.total_backpressure_bytes = *n;
                      return {};
                    }));
    d.push_back(def("limits.stall_timeout", "10s",
                    "an attached server that reads nothing for this long while work waits is "
                    "closed (RESOURCE_EXHAUSTED); the adapter reattaches",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      auto t = parse_duration(v);
                      if (!t) return t.error();
                      if (t->count() < 1000) return bad("at least 1s");
                      c.limits.stall_timeout = *t;
                      return {};
                    }));
    d.push_back(def("limits.attachment_queue_messages", "1000000",
                    "messages waiting for an attached server past which it is closed",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      auto n = parse_count(v);
                      if (!n) return n.error();
                      if (*n < 10) return bad("a count of at least 10");
                      c.limits.attachment_queue_messages = *n;
                      return {};
                    }));
    d.push_back(def("limits.attachment_queue_bytes", "64MiB",
                    "bytes waiting for an attached server past which it is closed",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      auto n = parse_size(v);
                      if (!n) return n.error();
                      c.limits.attachment_queue_bytes = *n;
                      return {};
                    }));
    d.push_back(def("log.level", "info", "trace, debug, info, warn, error or off",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      static const std::vector<std::string> levels{"trace", "debug", "info",
                                                                   "warn",  "error", "off"};
                      if (std::find(levels.begin(), levels.end(), v) == levels.end()) {
                        return bad("expected trace, debug, info, warn, error or off");
                      }
                      c.log.level = v;
                      return {};
                    }));
    d.push_back(def("log.format", "text", "text or json (one object per line)",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      if (v != "text" && v != "json") return bad("expected text or json");
                      c.log.format = v;
                      return {};
                    }));
    d.push_back(def("log.file", "", "log file (reopened on SIGHUP); empty: standard error",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      c.log.file = v;
                      return {};
                    }));
    d.push_back(def("metrics.listen", "",
                    "host:port of the Prometheus endpoint (/metrics); empty: none",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      c.metrics_listen = v;
                      return {};
                    }));
    d.push_back(def("shutdown.drain_timeout", "10s",
                    "on SIGTERM, how long in-flight requests and queued writes may take",
                    [](DaemonConfig& c, const std::string& v) -> Status {
                      auto t = parse_duration(v);
                      if (!t) return t.error();
                      c.drain_timeout = *t;
                      return {};
                    }));
    return d;
  }();
  return defs;
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
    mongo(c).uri = secrets->uri;
    mongo(c).password = secrets->password;
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
    for (const auto& d : definitions()) out.push_back(d.info);
    return out;
  }();
  return infos;
}

Result<LoadedConfig> load_config(const std::map<std::string, std::string>& flags,
                                 const std::string& config_file,
                                 const std::map<std::string, std::string>& environment) {
  std::map<std::string, Setting> effective;
  for (const auto& d : definitions()) {
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
  for (const auto& d : definitions()) {
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
  for (const auto& d : definitions()) {
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
