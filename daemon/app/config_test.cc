#include "daemon/app/config.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>

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
