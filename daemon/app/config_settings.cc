#include "daemon/app/config_settings.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cctype>
#include <charconv>
#include <type_traits>
#include <utility>

#include "daemon/wire/ids.h"

namespace siobridge::app {
namespace {

using Apply = std::function<Status(DaemonConfig&, const std::string&)>;
using Show = std::function<std::string(const DaemonConfig&)>;
using Check = std::function<Status(std::uint64_t)>;

Error bad(const std::string& what) {
  return make_error(ErrorCode::kInvalidArgument, what);
}

// The MongoDB settings of `c`, made (with their defaults) when a mongodb.*
// setting is the first one applied. validate() drops them again without a URI.
bus::mongodb::MongoBusConfig& mongo(DaemonConfig& c) {
  if (!c.mongodb) c.mongodb = default_mongodb_config();
  return *c.mongodb;
}

std::string env_name(const std::string& key) {
  std::string out = "SIOBRIDGE_";
  for (char ch : key)
    out.push_back(ch == '.' ? '_'
                            : static_cast<char>(std::toupper(static_cast<unsigned char>(ch))));
  return out;
}

// The value `field` selects in a copy of `c` (so that a mongodb.* field of a
// configuration without MongoDB shows its default).
template <typename Field>
auto value_of(const Field& field, const DaemonConfig& c) {
  DaemonConfig copy = c;
  return std::decay_t<decltype(field(copy))>(field(copy));
}

SettingDef def(std::string key, std::string help, Show show, Apply apply) {
  SettingInfo info{key, env_name(key), "--", show(default_config()), std::move(help)};
  for (char ch : key) info.flag.push_back(ch == '.' || ch == '_' ? '-' : ch);
  return {std::move(info), std::move(apply), std::move(show)};
}

// A number of at least `min` (refused with `message` below it).
Check at_least(std::uint64_t min, std::string message) {
  return [min, message = std::move(message)](std::uint64_t n) -> Status {
    if (n < min) return bad(message);
    return {};
  };
}

template <typename Field>
SettingDef string_def(std::string key, std::string help, Field field, bool required = false) {
  const std::string empty = "the " + key.substr(key.rfind('.') + 1) + " name is empty";
  return def(
      std::move(key), std::move(help),
      [field](const DaemonConfig& c) { return std::string(value_of(field, c)); },
      [field, required, empty](DaemonConfig& c, const std::string& v) -> Status {
        if (required && v.empty()) return bad(empty);
        field(c) = v;
        return {};
      });
}

template <typename Field>
SettingDef bool_def(std::string key, std::string help, Field field) {
  return def(
      std::move(key), std::move(help),
      [field](const DaemonConfig& c) { return value_of(field, c) ? "true" : "false"; },
      [field](DaemonConfig& c, const std::string& v) -> Status {
        if (v == "true" || v == "yes" || v == "1" || v == "on") {
          field(c) = true;
        } else if (v == "false" || v == "no" || v == "0" || v == "off" || v.empty()) {
          field(c) = false;
        } else {
          return bad(fmt::format("\"{}\" is not true or false", v));
        }
        return {};
      });
}

template <typename Field>
SettingDef duration_def(std::string key, std::string help, Field field, Millis min = Millis{0},
                        std::string too_short = "") {
  return def(
      std::move(key), std::move(help),
      [field](const DaemonConfig& c) { return format_duration(value_of(field, c)); },
      [field, min, too_short](DaemonConfig& c, const std::string& v) -> Status {
        auto d = parse_duration(v);
        if (!d) return d.error();
        if (*d < min) return bad(too_short);
        field(c) = *d;
        return {};
      });
}

template <typename Field>
SettingDef size_def(std::string key, std::string help, Field field, Check check = {}) {
  using T = decltype(value_of(field, std::declval<const DaemonConfig&>()));
  return def(
      std::move(key), std::move(help),
      [field](const DaemonConfig& c) {
        return format_size(static_cast<std::uint64_t>(value_of(field, c)));
      },
      [field, check](DaemonConfig& c, const std::string& v) -> Status {
        auto n = parse_size(v);
        if (!n) return n.error();
        if (check) {
          if (auto s = check(*n); !s.ok()) return s;
        }
        field(c) = static_cast<T>(*n);
        return {};
      });
}

template <typename Field>
SettingDef count_def(std::string key, std::string help, Field field, Check check) {
  return def(
      std::move(key), std::move(help),
      [field](const DaemonConfig& c) { return std::to_string(value_of(field, c)); },
      [field, check](DaemonConfig& c, const std::string& v) -> Status {
        auto n = parse_count(v);
        if (!n) return n.error();
        if (auto s = check(*n); !s.ok()) return s;
        field(c) = *n;
        return {};
      });
}

// One of a fixed set of words, each standing for a value.
template <typename Field, typename T>
SettingDef choice_def(std::string key, std::string help, Field field,
                      std::vector<std::pair<std::string, T>> choices) {
  std::string expected = "expected ";
  for (std::size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) expected += i + 1 == choices.size() ? " or " : ", ";
    expected += choices[i].first;
  }
  return def(
      std::move(key), std::move(help),
      [field, choices](const DaemonConfig& c) {
        const auto value = value_of(field, c);
        for (const auto& [word, meaning] : choices)
          if (meaning == value) return word;
        return std::string("?");
      },
      [field, choices, expected](DaemonConfig& c, const std::string& v) -> Status {
        for (const auto& [word, meaning] : choices) {
          if (word == v) {
            field(c) = meaning;
            return {};
          }
        }
        return bad(expected);
      });
}

// The field accessors: each names one member of a DaemonConfig.
#define SIOBRIDGE_FIELD(member)   \
  [](DaemonConfig & c) -> auto& { \
    return member;                \
  }

std::vector<SettingDef> node_settings() {
  std::vector<SettingDef> d;
  d.push_back(def(
      "node.uid",
      "this node's uid in the cluster (16 characters of [A-Za-z0-9_-]); empty: random per start",
      [](const DaemonConfig& c) { return c.node.uid; },
      [](DaemonConfig& c, const std::string& v) -> Status {
        if (!v.empty() && !wire::is_valid_id(v))
          return bad("a uid is 16 characters of [A-Za-z0-9_-]");
        c.node.uid = v;
        return {};
      }));
  d.push_back(duration_def("node.heartbeat_interval", "heartbeat period per active namespace",
                           SIOBRIDGE_FIELD(c.node.heartbeat_interval)));
  d.push_back(duration_def("node.heartbeat_timeout", "a peer not heard from for this long is gone",
                           SIOBRIDGE_FIELD(c.node.heartbeat_timeout)));
  d.push_back(duration_def("node.request_timeout", "how long to wait for other nodes' answers",
                           SIOBRIDGE_FIELD(c.node.request_timeout)));
  d.push_back(duration_def("node.ack_timeout", "default time clients have to ack a broadcast",
                           SIOBRIDGE_FIELD(c.node.ack_timeout)));
  d.push_back(duration_def("node.local_timeout", "how long to wait for an attached server's answer",
                           SIOBRIDGE_FIELD(c.node.local_timeout)));
  d.push_back(bool_def("node.discovery_lookup",
                       "a namespace packs once MongoDB shows no socketioxide node wrote to it "
                       "lately, not one heartbeat interval after it became active",
                       SIOBRIDGE_FIELD(c.node.discovery_lookup)));
  d.push_back(duration_def("node.restart_grace",
                           "after a restart, how long what the cluster sent meanwhile is held for "
                           "the servers to attach again (MongoDB with a state directory)",
                           SIOBRIDGE_FIELD(c.node.restart_grace)));
  d.push_back(size_def("node.restart_hold_bytes",
                       "after a restart, how much is held for the servers at most (oldest dropped)",
                       SIOBRIDGE_FIELD(c.node.restart_hold_bytes)));
  d.push_back(
      size_def("recovery.log_bytes",
               "connection state recovery: packets kept per namespace at most (oldest dropped)",
               SIOBRIDGE_FIELD(c.node.recovery.max_bytes)));
  d.push_back(
      count_def("recovery.max_sessions",
                "connection state recovery: sessions kept per namespace at most (oldest dropped)",
                SIOBRIDGE_FIELD(c.node.recovery.max_sessions), at_least(1, "at least 1")));
  return d;
}

std::vector<SettingDef> listen_settings() {
  std::vector<SettingDef> d;
  d.push_back(string_def("listen.unix", "Unix socket path for the API; empty: none",
                         SIOBRIDGE_FIELD(c.listen.unix_path)));
  d.push_back(def(
      "listen.unix_mode", "permissions of the Unix socket (octal)",
      [](const DaemonConfig& c) { return fmt::format("{:04o}", c.listen.unix_mode); },
      [](DaemonConfig& c, const std::string& v) -> Status {
        unsigned mode = 0;
        auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), mode, 8);
        if (ec != std::errc() || end != v.data() + v.size() || mode > 0777) {
          return bad(fmt::format("\"{}\" is not an octal mode like 0660", v));
        }
        c.listen.unix_mode = static_cast<mode_t>(mode);
        return {};
      }));
  d.push_back(string_def("listen.tcp", "host:port for the API over TCP; empty: none",
                         SIOBRIDGE_FIELD(c.listen.tcp)));
  d.push_back(string_def("listen.tls_cert", "PEM certificate chain for TCP (TLS)",
                         SIOBRIDGE_FIELD(c.listen.tls_cert)));
  d.push_back(string_def("listen.tls_key", "PEM private key for TCP (TLS)",
                         SIOBRIDGE_FIELD(c.listen.tls_key)));
  d.push_back(string_def("listen.tls_client_ca",
                         "PEM CA certificates: TCP clients must present a certificate they "
                         "signed (mutual TLS; needs tls_cert)",
                         SIOBRIDGE_FIELD(c.listen.tls_client_ca)));
  d.push_back(bool_def("listen.allow_insecure_tcp",
                       "allow TCP without TLS on a non-loopback address",
                       SIOBRIDGE_FIELD(c.listen.allow_insecure_tcp)));
  return d;
}

std::vector<SettingDef> mongodb_settings() {
  using bus::mongodb::Expiration;
  using WriteConcern = bus::mongodb::MongoBusConfig::WriteConcern;
  using ReadPreference = bus::mongodb::MongoBusConfig::ReadPreference;
  std::vector<SettingDef> d;
  d.push_back(def(
      "mongodb.uri", "MongoDB replica set or sharded cluster; empty: this host only (in memory)",
      [](const DaemonConfig& c) { return c.mongodb ? c.mongodb->uri : std::string(); },
      [](DaemonConfig& c, const std::string& v) -> Status {
        if (!v.empty()) mongo(c).uri = v;
        return {};
      }));
  d.push_back(string_def("mongodb.uri_file",
                         "a file holding mongodb.uri (e.g. a Kubernetes Secret or a systemd "
                         "credential), read at start and on SIGHUP; instead of mongodb.uri",
                         SIOBRIDGE_FIELD(c.mongodb_uri_file)));
  d.push_back(string_def("mongodb.password_file",
                         "a file holding the password of the user the URI names (the URI then "
                         "has none), read at start and on SIGHUP",
                         SIOBRIDGE_FIELD(c.mongodb_password_file)));
  d.push_back(string_def("mongodb.database", "database of the shared collection",
                         SIOBRIDGE_FIELD(mongo(c).database), /*required=*/true));
  d.push_back(string_def("mongodb.collection", "the shared collection (socketioxide's default)",
                         SIOBRIDGE_FIELD(mongo(c).collection), /*required=*/true));
  d.push_back(
      choice_def("mongodb.expiration", "ttl (TTL index on createdAt) or capped",
                 SIOBRIDGE_FIELD(mongo(c).expiration.kind),
                 std::vector<std::pair<std::string, Expiration::Kind>>{
                     {"ttl", Expiration::Kind::kTtl}, {"capped", Expiration::Kind::kCapped}}));
  d.push_back(def(
      "mongodb.ttl", "how long documents live (ttl expiration; whole seconds)",
      [](const DaemonConfig& c) {
        DaemonConfig copy = c;
        return format_duration(Millis{mongo(copy).expiration.ttl_seconds * 1000});
      },
      [](DaemonConfig& c, const std::string& v) -> Status {
        auto t = parse_duration(v);
        if (!t) return t.error();
        if (t->count() < 1000 || t->count() % 1000)
          return bad("the ttl is whole seconds, at least 1s");
        mongo(c).expiration.ttl_seconds = t->count() / 1000;
        return {};
      }));
  d.push_back(size_def("mongodb.capped_size", "size of the capped collection (capped expiration)",
                       SIOBRIDGE_FIELD(mongo(c).expiration.capped_bytes),
                       at_least(4096, "a capped collection needs at least 4096 bytes")));
  d.push_back(choice_def(
      "mongodb.data_format",
      "int32-array (socketioxide-compatible) or binary (smaller; siobridge-only clusters)",
      SIOBRIDGE_FIELD(mongo(c).data_format),
      std::vector<std::pair<std::string, wire::DataFormat>>{
          {"int32-array", wire::DataFormat::kInt32Array}, {"binary", wire::DataFormat::kBinary}}));
  d.push_back(bool_def("mongodb.pack_messages",
                       "what only siobridge nodes read goes many messages per document "
                       "(socketioxide nodes still get documents of their own)",
                       SIOBRIDGE_FIELD(mongo(c).pack_messages)));
  d.push_back(bool_def("mongodb.compress_packs",
                       "packs go zstd-compressed when that saves an eighth (read by siobridge "
                       "daemons of this version on; false while older ones run)",
                       SIOBRIDGE_FIELD(mongo(c).compress_packs)));
  d.push_back(bool_def("mongodb.compress_skip",
                       "a namespace whose packs do not compress goes plain for a while untried",
                       SIOBRIDGE_FIELD(mongo(c).compress_skip)));
  d.push_back(def(
      "mongodb.write_window_us",
      "microseconds a fresh write queue may wait to fill packs (0 to 20000)",
      [](const DaemonConfig& c) {
        return std::to_string(value_of(SIOBRIDGE_FIELD(mongo(c).write_window), c).count());
      },
      [](DaemonConfig& c, const std::string& v) -> Status {
        auto n = parse_count(v);
        if (!n) return n.error();
        if (*n > 20000) return bad("at most 20000 (20 ms)");
        mongo(c).write_window = std::chrono::microseconds(*n);
        return {};
      }));
  d.push_back(
      choice_def("mongodb.write_concern",
                 "majority (survives a failover) or 1 (the primary alone; faster); both journaled",
                 SIOBRIDGE_FIELD(mongo(c).write_concern),
                 std::vector<std::pair<std::string, WriteConcern>>{
                     {"majority", WriteConcern::kMajority}, {"1", WriteConcern::kPrimary}}));
  d.push_back(choice_def(
      "mongodb.read_preference",
      "the member the change stream reads from: primary, secondaryPreferred or nearest (a "
      "fleet's streams spread over the replica set)",
      SIOBRIDGE_FIELD(mongo(c).stream_read_preference),
      std::vector<std::pair<std::string, ReadPreference>>{
          {"primary", ReadPreference::kPrimary},
          {"secondaryPreferred", ReadPreference::kSecondaryPreferred},
          {"nearest", ReadPreference::kNearest}}));
  d.push_back(size_def("mongodb.queue_bytes",
                       "what may wait for MongoDB (e.g. while it is unreachable); beyond, "
                       "publishes are refused with UNAVAILABLE",
                       SIOBRIDGE_FIELD(mongo(c).queue_bytes), at_least(1u << 20, "at least 1MiB")));
  d.push_back(size_def("mongodb.write_backpressure_bytes",
                       "while MongoDB takes writes, past this much queued the daemon stops "
                       "reading from its servers until half is written; 0: never",
                       SIOBRIDGE_FIELD(mongo(c).write_backpressure_bytes),
                       [](std::uint64_t n) -> Status {
                         if (n != 0 && n < (1u << 20)) return bad("0, or at least 1MiB");
                         return {};
                       }));
  d.push_back(duration_def("mongodb.queue_age",
                           "queued documents older than this are dropped, not written late; 0: "
                           "the collection's retention (ttl, or 60s when capped)",
                           SIOBRIDGE_FIELD(mongo(c).queue_age)));
  d.push_back(string_def("mongodb.state_dir",
                         "where the node's uid, its hand-over state and the change stream's "
                         "resume token are kept; empty: not kept",
                         SIOBRIDGE_FIELD(mongo(c).state_dir)));
  return d;
}

std::vector<SettingDef> other_settings() {
  std::vector<SettingDef> d;
  d.push_back(size_def("limits.max_message_bytes", "largest payload accepted from a server",
                       SIOBRIDGE_FIELD(c.limits.max_message_bytes),
                       at_least(1024, "at least 1KiB")));
  d.push_back(size_def("limits.backpressure_bytes",
                       "bytes waiting for one attached server past which the daemon's producers "
                       "pause until it catches up (and its volatile packets are dropped)",
                       SIOBRIDGE_FIELD(c.limits.backpressure_bytes),
                       at_least(64u << 10, "at least 64KiB")));
  d.push_back(size_def("limits.total_backpressure_bytes",
                       "bytes waiting for all attached servers together past which the daemon's "
                       "producers pause, even when the servers holding them stopped reading",
                       SIOBRIDGE_FIELD(c.limits.total_backpressure_bytes)));
  d.push_back(duration_def("limits.stall_timeout",
                           "an attached server that reads nothing for this long while work waits "
                           "is closed (RESOURCE_EXHAUSTED); the adapter reattaches",
                           SIOBRIDGE_FIELD(c.limits.stall_timeout), Millis{1000}, "at least 1s"));
  d.push_back(count_def("limits.attachment_queue_messages",
                        "messages waiting for an attached server past which it is closed",
                        SIOBRIDGE_FIELD(c.limits.attachment_queue_messages),
                        at_least(10, "a count of at least 10")));
  d.push_back(size_def("limits.attachment_queue_bytes",
                       "bytes waiting for an attached server past which it is closed",
                       SIOBRIDGE_FIELD(c.limits.attachment_queue_bytes)));
  d.push_back(choice_def("log.level", "trace, debug, info, warn, error or off",
                         SIOBRIDGE_FIELD(c.log.level),
                         std::vector<std::pair<std::string, std::string>>{{"trace", "trace"},
                                                                          {"debug", "debug"},
                                                                          {"info", "info"},
                                                                          {"warn", "warn"},
                                                                          {"error", "error"},
                                                                          {"off", "off"}}));
  d.push_back(choice_def(
      "log.format", "text or json (one object per line)", SIOBRIDGE_FIELD(c.log.format),
      std::vector<std::pair<std::string, std::string>>{{"text", "text"}, {"json", "json"}}));
  d.push_back(string_def("log.file", "log file (reopened on SIGHUP); empty: standard error",
                         SIOBRIDGE_FIELD(c.log.file)));
  d.push_back(string_def("metrics.listen",
                         "host:port of the Prometheus endpoint (/metrics); empty: none",
                         SIOBRIDGE_FIELD(c.metrics_listen)));
  d.push_back(duration_def("shutdown.drain_timeout",
                           "on SIGTERM, how long in-flight requests and queued writes may take",
                           SIOBRIDGE_FIELD(c.drain_timeout)));
  return d;
}

#undef SIOBRIDGE_FIELD

}  // namespace

std::string format_duration(Millis duration) {
  const auto ms = duration.count();
  if (ms == 0) return "0";
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

std::string format_size(std::uint64_t bytes) {
  if (bytes == 0) return "0";
  if (bytes % (1u << 30) == 0) return fmt::format("{}GiB", bytes >> 30);
  if (bytes % (1u << 20) == 0) return fmt::format("{}MiB", bytes >> 20);
  if (bytes % (1u << 10) == 0) return fmt::format("{}KiB", bytes >> 10);
  return std::to_string(bytes);
}

bus::mongodb::MongoBusConfig default_mongodb_config() {
  bus::mongodb::MongoBusConfig config;
  // As root (a system service) the state is kept where the package puts it.
  if (getuid() == 0) config.state_dir = "/var/lib/siobridge";
  return config;
}

const std::vector<SettingDef>& setting_definitions() {
  static const std::vector<SettingDef> defs = [] {
    std::vector<SettingDef> all;
    for (auto part : {node_settings(), listen_settings(), mongodb_settings(), other_settings()}) {
      for (auto& d : part) all.push_back(std::move(d));
    }
    return all;
  }();
  return defs;
}

}  // namespace siobridge::app
