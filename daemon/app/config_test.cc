#include "daemon/app/config.h"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "daemon/runtime/engine.h"

using namespace siobridge;
using namespace siobridge::app;

namespace {

struct TempFile {
  std::string path = std::string(std::tmpnam(nullptr)) + ".yaml";
  explicit TempFile(const std::string& text) { std::ofstream(path) << text; }
  ~TempFile() { std::remove(path.c_str()); }
};

const Setting& setting(const LoadedConfig& c, const std::string& key) {
  for (const auto& s : c.settings)
    if (s.key == key) return s;
  FAIL("no setting " << key);
  return c.settings.front();
}

}  // namespace

TEST_CASE("defaults: in-memory bus, socketioxide's defaults") {
  auto loaded = load_config({}, "", {});
  REQUIRE(loaded.ok());
  const auto& c = loaded->config;
  CHECK_FALSE(c.mongodb);
  CHECK(c.node.heartbeat_interval == Millis{10000});
  CHECK(c.node.heartbeat_timeout == Millis{60000});
  CHECK(c.node.request_timeout == Millis{5000});
  CHECK(c.limits.max_message_bytes == 1 << 20);
  CHECK(c.listen.unix_mode == 0660);
  CHECK(c.listen.unix_path == default_unix_socket());
  CHECK(setting(*loaded, "mongodb.collection").source == Source::kDefault);
}

TEST_CASE("flags over environment over file over defaults") {
  TempFile file(
      "mongodb:\n  uri: mongodb://file/?replicaSet=rs0\n  database: from_file\n  collection: "
      "from_file\n"
      "node:\n  request_timeout: 7s\n");
  auto loaded = load_config({{"mongodb.database", "from_flag"}}, file.path,
                            {{"SIOBRIDGE_MONGODB_DATABASE", "from_env"},
                             {"SIOBRIDGE_MONGODB_COLLECTION", "from_env"},
                             {"SIOBRIDGE_UNRELATED", "ignored"}});
  REQUIRE(loaded.ok());
  REQUIRE(loaded->config.mongodb);
  CHECK(loaded->config.mongodb->uri == "mongodb://file/?replicaSet=rs0");
  CHECK(loaded->config.mongodb->database == "from_flag");
  CHECK(loaded->config.mongodb->collection == "from_env");
  CHECK(loaded->config.node.request_timeout == Millis{7000});
  CHECK(setting(*loaded, "mongodb.uri").source == Source::kFile);
  CHECK(setting(*loaded, "mongodb.uri").origin == file.path + ":2");
  CHECK(setting(*loaded, "mongodb.collection").origin == "SIOBRIDGE_MONGODB_COLLECTION");
  CHECK(setting(*loaded, "mongodb.database").origin == "--mongodb-database");
}

TEST_CASE("errors name the setting, the value and where it came from") {
  auto bad_env = load_config({}, "", {{"SIOBRIDGE_NODE_HEARTBEAT_INTERVAL", "often"}});
  REQUIRE_FALSE(bad_env.ok());
  CHECK_THAT(bad_env.error().message,
             Catch::Contains("node.heartbeat_interval") && Catch::Contains("often") &&
                 Catch::Contains("SIOBRIDGE_NODE_HEARTBEAT_INTERVAL") && Catch::Contains("10s"));
  TempFile unknown("node:\n  heartbeat: 1s\n");
  auto bad_key = load_config({}, unknown.path, {});
  REQUIRE_FALSE(bad_key.ok());
  CHECK_THAT(bad_key.error().message, Catch::Contains("node.heartbeat") && Catch::Contains(":2"));
  TempFile broken("node: [1, 2\n");
  CHECK_FALSE(load_config({}, broken.path, {}).ok());
  CHECK_FALSE(load_config({}, "/nonexistent/siobridged.yaml", {}).ok());
  CHECK_FALSE(load_config({{"listen.unix_mode", "999"}}, "", {}).ok());
  CHECK_FALSE(load_config({{"node.uid", "short"}}, "", {}).ok());
  CHECK_FALSE(load_config({{"mongodb.expiration", "forever"}}, "", {}).ok());
  CHECK_FALSE(load_config({{"mongodb.ttl", "1500ms"}}, "", {}).ok());
}

TEST_CASE("settings that contradict each other are refused") {
  auto timeouts = load_config({{"node.local_timeout", "6s"}}, "", {});
  REQUIRE_FALSE(timeouts.ok());
  CHECK_THAT(timeouts.error().message, Catch::Contains("local_timeout"));
  auto heartbeat = load_config({{"node.heartbeat_timeout", "5s"}}, "", {});
  REQUIRE_FALSE(heartbeat.ok());
  auto nowhere = load_config({{"listen.unix", ""}}, "", {});
  REQUIRE_FALSE(nowhere.ok());
  CHECK_THAT(nowhere.error().message, Catch::Contains("listen"));
  auto too_big = load_config(
      {{"mongodb.uri", "mongodb://x/?replicaSet=rs0"}, {"limits.max_message_bytes", "4MiB"}}, "",
      {});
  REQUIRE_FALSE(too_big.ok());
  CHECK_THAT(too_big.error().message, Catch::Contains("16 MiB"));
  auto binary = load_config({{"mongodb.uri", "mongodb://x/?replicaSet=rs0"},
                             {"limits.max_message_bytes", "4MiB"},
                             {"mongodb.data_format", "binary"}},
                            "", {});
  CHECK(binary.ok());
  auto no_pause = load_config(
      {{"mongodb.uri", "mongodb://x/?replicaSet=rs0"}, {"mongodb.queue_bytes", "4MiB"}}, "", {});
  REQUIRE_FALSE(no_pause.ok());
  CHECK_THAT(no_pause.error().message, Catch::Contains("mongodb.write_backpressure_bytes"));
  auto paused_earlier = load_config({{"mongodb.uri", "mongodb://x/?replicaSet=rs0"},
                                     {"mongodb.queue_bytes", "4MiB"},
                                     {"mongodb.write_backpressure_bytes", "2MiB"}},
                                    "", {});
  REQUIRE(paused_earlier.ok());
  CHECK(paused_earlier->config.mongodb->write_backpressure_bytes == 2u << 20);
  CHECK(paused_earlier->config.mongodb->compress_packs);
  auto plain_packs = load_config(
      {{"mongodb.uri", "mongodb://x/?replicaSet=rs0"}, {"mongodb.compress_packs", "false"}}, "",
      {});
  REQUIRE(plain_packs.ok());
  CHECK_FALSE(plain_packs->config.mongodb->compress_packs);
  auto unclear = load_config(
      {{"mongodb.uri", "mongodb://x/?replicaSet=rs0"}, {"mongodb.compress_packs", "zstd"}}, "", {});
  REQUIRE_FALSE(unclear.ok());
  CHECK_THAT(unclear.error().message, Catch::Contains("mongodb.compress_packs"));
}

TEST_CASE("the change stream's read preference") {
  using ReadPreference = bus::mongodb::MongoBusConfig::ReadPreference;
  const std::pair<std::string, std::string> uri{"mongodb.uri", "mongodb://x/?replicaSet=rs0"};
  auto plain = load_config({uri}, "", {});
  REQUIRE(plain.ok());
  CHECK(plain->config.mongodb->stream_read_preference == ReadPreference::kPrimary);
  auto spread = load_config({uri, {"mongodb.read_preference", "secondaryPreferred"}}, "", {});
  REQUIRE(spread.ok());
  CHECK(spread->config.mongodb->stream_read_preference == ReadPreference::kSecondaryPreferred);
  auto nearest = load_config({uri, {"mongodb.read_preference", "nearest"}}, "", {});
  REQUIRE(nearest.ok());
  CHECK(nearest->config.mongodb->stream_read_preference == ReadPreference::kNearest);
  // secondary alone is not offered: with no secondary up the stream would
  // stop while the primary still serves.
  auto secondary = load_config({uri, {"mongodb.read_preference", "secondary"}}, "", {});
  REQUIRE_FALSE(secondary.ok());
  CHECK_THAT(secondary.error().message, Catch::Contains("mongodb.read_preference"));
}

TEST_CASE("the writer's window is bounded") {
  const std::map<std::string, std::string> uri{{"mongodb.uri", "mongodb://x/?replicaSet=rs0"}};
  auto with = [&](const std::string& us) {
    auto values = uri;
    values["mongodb.write_window_us"] = us;
    return load_config(values, "", {});
  };
  auto defaults = load_config(uri, "", {});
  REQUIRE(defaults.ok());
  CHECK(defaults->config.mongodb->write_window == std::chrono::microseconds(1000));
  CHECK(defaults->config.mongodb->compress_skip);
  REQUIRE(with("0").ok());
  CHECK(with("20000")->config.mongodb->write_window == std::chrono::microseconds(20000));
  REQUIRE_FALSE(with("20001").ok());
  CHECK_THAT(with("20001").error().message, Catch::Contains("mongodb.write_window_us"));
}

TEST_CASE("the MongoDB URI and password from files, never shown in errors") {
  TempFile uri_file("mongodb://siobridge:s3cret-pass@db1,db2/?replicaSet=rs0\n");
  auto from_file = load_config({}, "", {{"SIOBRIDGE_MONGODB_URI_FILE", uri_file.path}});
  REQUIRE(from_file.ok());
  CHECK(from_file->config.mongodb->uri ==
        "mongodb://siobridge:s3cret-pass@db1,db2/?replicaSet=rs0");
  CHECK(from_file->config.mongodb_uri_file == uri_file.path);
  CHECK(setting(*from_file, "mongodb.uri").value.empty());

  TempFile password_file("rotated-password\nignored second line\n");
  auto with_password = load_config({{"mongodb.uri", "mongodb://siobridge@db1/?replicaSet=rs0"},
                                    {"mongodb.password_file", password_file.path}},
                                   "", {});
  REQUIRE(with_password.ok());
  CHECK(with_password->config.mongodb->password == "rotated-password");

  auto both = load_config({{"mongodb.uri", "mongodb://x/?replicaSet=rs0"}}, "",
                          {{"SIOBRIDGE_MONGODB_URI_FILE", uri_file.path}});
  REQUIRE_FALSE(both.ok());
  CHECK_THAT(both.error().message, Catch::Contains("keep one"));
  // An empty URI file (systemd's default credential) leaves mongodb.uri in charge.
  TempFile empty_uri("");
  auto fallback = load_config({{"mongodb.uri", "mongodb://x/?replicaSet=rs0"}}, "",
                              {{"SIOBRIDGE_MONGODB_URI_FILE", empty_uri.path}});
  REQUIRE(fallback.ok());
  CHECK(fallback->config.mongodb->uri == "mongodb://x/?replicaSet=rs0");
  CHECK(fallback->config.mongodb_uri_file.empty());
  auto nothing = load_config({}, "", {{"SIOBRIDGE_MONGODB_URI_FILE", empty_uri.path}});
  REQUIRE(nothing.ok());
  CHECK_FALSE(nothing->config.mongodb);
  auto missing = load_config({{"mongodb.uri_file", "/nonexistent/uri"}}, "", {});
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.error().message, Catch::Contains("cannot read /nonexistent/uri"));
  TempFile empty_password("\n");
  CHECK_FALSE(load_config({{"mongodb.uri", "mongodb://u@x/?replicaSet=rs0"},
                           {"mongodb.password_file", empty_password.path}},
                          "", {})
                  .ok());
  TempFile two_lines("mongodb://a/?replicaSet=rs0\nmongodb://b/?replicaSet=rs0\n");
  CHECK_FALSE(load_config({{"mongodb.uri_file", two_lines.path}}, "", {}).ok());

  // A URI given to the wrong setting: the error shows it without the password.
  auto refused =
      load_config({{"mongodb.expiration", "mongodb://u:s3cret-pass@x/?replicaSet=rs0"}}, "", {});
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.error().message, Catch::Contains("mongodb://u:***@x"));
  CHECK(refused.error().message.find("s3cret-pass") == std::string::npos);
}

TEST_CASE("listen.tls_client_ca needs a TLS listener on TCP") {
  TempFile ca("-----BEGIN CERTIFICATE-----\n");
  auto alone = load_config({{"listen.tls_client_ca", ca.path}}, "", {});
  REQUIRE_FALSE(alone.ok());
  CHECK_THAT(alone.error().message, Catch::Contains("listen.tls_cert"));
  auto mutual = load_config({{"listen.tcp", "0.0.0.0:7400"},
                             {"listen.tls_cert", ca.path},
                             {"listen.tls_key", ca.path},
                             {"listen.tls_client_ca", ca.path}},
                            "", {});
  REQUIRE(mutual.ok());
  CHECK(mutual->config.listen.tls_client_ca == ca.path);
  CHECK_FALSE(load_config({{"listen.tcp", "0.0.0.0:7400"},
                           {"listen.tls_cert", ca.path},
                           {"listen.tls_key", ca.path},
                           {"listen.tls_client_ca", "/nonexistent/ca.pem"}},
                          "", {})
                  .ok());
}

TEST_CASE("durations and sizes") {
  CHECK(parse_duration("250ms").value() == Millis{250});
  CHECK(parse_duration("10s").value() == Millis{10000});
  CHECK(parse_duration("2m").value() == Millis{120000});
  CHECK(parse_duration("1h").value() == Millis{3600000});
  CHECK(parse_duration("0").value() == Millis{0});
  CHECK_FALSE(parse_duration("10").ok());
  CHECK_FALSE(parse_duration("s").ok());
  CHECK_FALSE(parse_duration("10 s").ok());
  CHECK(parse_size("1048576").value() == 1048576);
  CHECK(parse_size("512KiB").value() == 512 * 1024);
  CHECK(parse_size("16MiB").value() == 16u << 20);
  CHECK_FALSE(parse_size("1MB").ok());
  CHECK_FALSE(parse_size("").ok());
}

TEST_CASE("every setting has a variable and a flag named after its key") {
  for (const auto& info : setting_infos()) {
    INFO(info.key);
    CHECK(info.env.rfind("SIOBRIDGE_", 0) == 0);
    CHECK(info.flag.rfind("--", 0) == 0);
    CHECK_FALSE(info.help.empty());
  }
}

TEST_CASE("config/siobridged.yaml loads and documents every setting") {
  const std::string path = std::string(SIOBRIDGE_SOURCE_DIR) + "/config/siobridged.yaml";
  auto loaded = load_config({}, path, {});
  INFO((loaded.ok() ? "" : loaded.error().message));
  REQUIRE(loaded.ok());
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const auto& info : setting_infos()) {
    INFO(info.key);
    // The last part of the key appears as a YAML key (maybe commented out).
    const auto leaf = info.key.substr(info.key.rfind('.') + 1);
    CHECK(text.find(" " + leaf + ":") != std::string::npos);
  }
  // The sample sets nothing but the defaults.
  auto defaults = load_config({}, "", {});
  REQUIRE(defaults.ok());
  for (std::size_t i = 0; i < defaults->settings.size(); ++i) {
    INFO(defaults->settings[i].key);
    CHECK(loaded->settings[i].value == defaults->settings[i].value);
  }
}

namespace {

std::string read_source_file(const std::string& relative) {
  std::ifstream in(std::string(SIOBRIDGE_SOURCE_DIR) + "/" + relative);
  REQUIRE(in);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

const SettingInfo* find_setting(const std::string& key) {
  for (const auto& info : setting_infos())
    if (info.key == key) return &info;
  return nullptr;
}

std::vector<std::string> split(const std::string& text, const std::string& separator) {
  std::vector<std::string> parts;
  std::size_t from = 0;
  for (auto at = text.find(separator); at != std::string::npos; at = text.find(separator, from)) {
    parts.push_back(text.substr(from, at - from));
    from = at + separator.size();
  }
  parts.push_back(text.substr(from));
  return parts;
}

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(' ');
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(' ') - first + 1);
}

}  // namespace

TEST_CASE("nothing set: the value types' own defaults") {
  auto loaded = load_config({}, "", {});
  REQUIRE(loaded.ok());
  CHECK(config_text(loaded->config) == config_text(default_config()));
  const core::NodeConfig node;
  const auto& n = loaded->config.node;
  CHECK(n.heartbeat_interval == node.heartbeat_interval);
  CHECK(n.heartbeat_timeout == node.heartbeat_timeout);
  CHECK(n.request_timeout == node.request_timeout);
  CHECK(n.ack_timeout == node.ack_timeout);
  CHECK(n.local_timeout == node.local_timeout);
  CHECK(n.restart_grace == node.restart_grace);
  CHECK(n.restart_hold_bytes == node.restart_hold_bytes);
  CHECK(n.recovery.max_bytes == node.recovery.max_bytes);
  CHECK(n.recovery.max_sessions == node.recovery.max_sessions);
  const api::ApiLimits limits;
  const auto& l = loaded->config.limits;
  CHECK(l.max_message_bytes == limits.max_message_bytes);
  CHECK(l.backpressure_bytes == limits.backpressure_bytes);
  CHECK(l.total_backpressure_bytes == limits.total_backpressure_bytes);
  CHECK(l.stall_timeout == limits.stall_timeout);
  CHECK(l.attachment_queue_messages == limits.attachment_queue_messages);
  CHECK(l.attachment_queue_bytes == limits.attachment_queue_bytes);
  CHECK(loaded->config.drain_timeout == DaemonConfig{}.drain_timeout);
  CHECK(loaded->config.listen.unix_mode == ListenConfig{}.unix_mode);
  CHECK(loaded->config.log.level == LogConfig{}.level);
}

TEST_CASE("a MongoDB URI alone: the MongoDB bus's own defaults") {
  auto loaded = load_config({{"mongodb.uri", "mongodb://db/?replicaSet=rs0"}}, "", {});
  REQUIRE(loaded.ok());
  REQUIRE(loaded->config.mongodb);
  const auto& m = *loaded->config.mongodb;
  const bus::mongodb::MongoBusConfig bus;
  CHECK(m.database == bus.database);
  CHECK(m.collection == bus.collection);
  CHECK(m.expiration.kind == bus.expiration.kind);
  CHECK(m.expiration.ttl_seconds == bus.expiration.ttl_seconds);
  CHECK(m.expiration.capped_bytes == bus.expiration.capped_bytes);
  CHECK(m.data_format == bus.data_format);
  CHECK(m.pack_messages == bus.pack_messages);
  CHECK(m.compress_packs == bus.compress_packs);
  CHECK(m.write_concern == bus.write_concern);
  CHECK(m.queue_bytes == bus.queue_bytes);
  CHECK(m.write_backpressure_bytes == bus.write_backpressure_bytes);
  CHECK(m.queue_age == bus.queue_age);
  CHECK(m.state_dir == (getuid() == 0 ? "/var/lib/siobridge" : bus.state_dir));
}

TEST_CASE("the engine's defaults are the daemon's") {
  const runtime::EngineOptions engine;
  const auto daemon = default_config();
  CHECK(engine.flow == FlowGate::Marks::for_limits(daemon.limits.backpressure_bytes,
                                                   daemon.limits.total_backpressure_bytes));
  CHECK(FlowGate::Marks{} == FlowGate::Marks::for_limits(FlowGate::Marks::kDefaultBytes,
                                                         FlowGate::Marks::kDefaultTotalBytes));
  auto with_engine_node = daemon;
  with_engine_node.node = engine.node;
  CHECK(config_text(with_engine_node) == config_text(daemon));
}

TEST_CASE("every value a setting shows reads back as itself") {
  auto text = config_text(default_config());
  REQUIRE(text.size() == setting_infos().size());
  for (const auto& info : setting_infos()) {
    INFO(info.key);
    CHECK(text.at(info.key) == info.default_value);
  }
  // Values the defaults do not show: other units, zero.
  auto loaded = load_config({{"node.request_timeout", "5500ms"},
                             {"node.restart_hold_bytes", "1000"},
                             {"limits.attachment_queue_bytes", "1GiB"},
                             {"recovery.log_bytes", "0"}},
                            "", {});
  REQUIRE(loaded.ok());
  const auto shown = config_text(loaded->config);
  CHECK(shown.at("node.request_timeout") == "5500ms");
  CHECK(shown.at("node.restart_hold_bytes") == "1000");
  CHECK(shown.at("limits.attachment_queue_bytes") == "1GiB");
  CHECK(shown.at("recovery.log_bytes") == "0");
}

TEST_CASE("the defaults docs/running.md and docs/PROTOCOL.md give are the daemon's") {
  // Rows of running.md's tables: "| `a.key` / `other` | `1s` / `2s` | ... |"; a
  // second key without a dot is in the first one's section.
  int compared = 0;
  std::istringstream lines(read_source_file("docs/running.md"));
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("| `", 0) != 0) continue;
    const auto cells = split(line, "|");
    if (cells.size() < 3) continue;
    const auto keys = split(trim(cells[1]), " / ");
    const auto values = split(trim(cells[2]), " / ");
    std::string section;
    for (std::size_t i = 0; i < keys.size() && i < values.size(); ++i) {
      std::string key = trim(keys[i]);
      if (key.size() < 2 || key.front() != '`' || key.back() != '`') continue;
      key = key.substr(1, key.size() - 2);
      if (key.find('.') == std::string::npos) key = section + key;
      section = key.substr(0, key.find('.') + 1);
      const SettingInfo* info = find_setting(key);
      const std::string value = trim(values[i]);
      // Host-dependent defaults are documented for root.
      if (!info || (value.find("as root") != std::string::npos && getuid() != 0)) continue;
      std::string documented;
      if (value.rfind("empty", 0) == 0) {
        documented = "";
      } else if (value.front() == '`') {
        documented = value.substr(1, value.find('`', 1) - 1);
      } else {
        continue;  // in words ("the retention")
      }
      INFO(line);
      CHECK(documented == info->default_value);
      ++compared;
    }
  }
  CHECK(compared >= 15);
  // PROTOCOL.md: "`mongodb.pack_messages` (default `true`)".
  const std::string protocol = read_source_file("docs/PROTOCOL.md");
  int in_protocol = 0;
  for (auto at = protocol.find("` (default `"); at != std::string::npos;
       at = protocol.find("` (default `", at + 1)) {
    const auto key_start = protocol.rfind('`', at - 1) + 1;
    const auto value_start = at + std::string("` (default `").size();
    const std::string key = protocol.substr(key_start, at - key_start);
    const std::string value =
        protocol.substr(value_start, protocol.find('`', value_start) - value_start);
    INFO(key);
    const SettingInfo* info = find_setting(key);
    REQUIRE(info);
    CHECK(value == info->default_value);
    ++in_protocol;
  }
  CHECK(in_protocol >= 2);
}
