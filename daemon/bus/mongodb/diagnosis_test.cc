// The rules that name a MongoDB trouble's cause, on the errors, heartbeat
// failures and server descriptions libmongoc 1.23 gives for each (the texts
// below are the driver's and MongoDB 7.0's own, seen against the test
// MongoDB with access control, behind a TLS proxy, and with wrong URIs).
#include "daemon/bus/mongodb/diagnosis.h"

#include <mongoc/mongoc.h>
#include <catch2/catch.hpp>

using namespace siobridge::bus::mongodb;

namespace {

UriFacts facts(std::string user = "siobridge", std::string set = "rs0", bool tls = false) {
  UriFacts f;
  f.user = std::move(user);
  f.auth_source = "admin";
  f.replica_set = std::move(set);
  f.tls = tls;
  return f;
}

bool has(const std::optional<Diagnosis>& d, const std::string& part) {
  return d && d->message.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("a failed login is named with the user and authSource, never the password") {
  auto d = diagnose_error(MONGOC_ERROR_CLIENT, MONGOC_ERROR_CLIENT_AUTHENTICATE,
                          "Authentication failed.", facts());
  REQUIRE(d);
  CHECK(d->cause == Cause::kAuthentication);
  CHECK(has(d, "authentication failed for user \"siobridge\" (authSource \"admin\""));
  CHECK(std::string(cause_label(d->cause)) == "authentication_failed");
}

TEST_CASE("an unknown or disabled mechanism is named as such") {
  auto unknown = diagnose_error(MONGOC_ERROR_CLIENT, MONGOC_ERROR_CLIENT_AUTHENTICATE,
                                "Unknown authentication mechanism \"FOO\".", facts());
  REQUIRE(unknown);
  CHECK(unknown->cause == Cause::kAuthMechanism);
  auto disabled =
      diagnose_error(MONGOC_ERROR_CLIENT, MONGOC_ERROR_CLIENT_AUTHENTICATE,
                     "Received authentication for mechanism PLAIN which is not enabled", facts());
  REQUIRE(disabled);
  CHECK(disabled->cause == Cause::kAuthMechanism);
}

TEST_CASE("a refused command is not authorized; without a user the URI is blamed") {
  auto refused = diagnose_error(
      MONGOC_ERROR_SERVER, 13,
      "not authorized on siobridge to execute command { listCollections: 1 }", facts());
  REQUIRE(refused);
  CHECK(refused->cause == Cause::kNotAuthorized);
  CHECK(has(refused, "MongoDB privileges"));
  // The command's body (session ids, cluster time signatures) is left out.
  CHECK(has(refused,
            "not authorized: not authorized on siobridge to execute command "
            "listCollections (user \"siobridge\""));
  auto anonymous = diagnose_error(MONGOC_ERROR_SERVER, 13,
                                  "Command listCollections requires authentication", facts(""));
  REQUIRE(anonymous);
  CHECK(has(anonymous, "names no user"));
}

TEST_CASE("errors that name no cause are left to the state's own detail") {
  CHECK_FALSE(diagnose_error(MONGOC_ERROR_SERVER_SELECTION, 13053,
                             "No suitable servers found: `serverSelectionTimeoutMS` expired",
                             facts()));
  CHECK_FALSE(diagnose_error(MONGOC_ERROR_SERVER, 11000, "E11000 duplicate key", facts()));
  CHECK_FALSE(diagnose_heartbeat("h:1", 0, 0, "", facts()));
}

TEST_CASE("TLS failures name TLS and what to check") {
  auto wrong_ca = diagnose_heartbeat(
      "127.0.0.1:27231", MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_SOCKET,
      "TLS handshake failed: certificate verify failed (20): unable to get local issuer "
      "certificate",
      facts("u", "", true));
  REQUIRE(wrong_ca);
  CHECK(wrong_ca->cause == Cause::kTls);
  CHECK(has(wrong_ca, "tlsCAFile"));
  auto wrong_name = diagnose_heartbeat(
      "127.0.0.1:27231", MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_SOCKET,
      "TLS handshake failed: certificate verify failed (64): IP address mismatch",
      facts("u", "", true));
  REQUIRE(wrong_name);
  CHECK(has(wrong_name, "does not name 127.0.0.1"));
  auto plain_server =
      diagnose_heartbeat("127.0.0.1:27230", MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_SOCKET,
                         "TLS handshake failed: Connection timed out", facts("u", "", true));
  REQUIRE(plain_server);
  CHECK(has(plain_server, "speak TLS"));
  // A client without TLS at a TLS endpoint: the endpoint hangs up at once.
  auto plain_client =
      diagnose_heartbeat("127.0.0.1:27231", MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_SOCKET,
                         "Failed to read 4 bytes: socket error or timeout", facts("u", "", false));
  REQUIRE(plain_client);
  CHECK(has(plain_client, "tls=true"));
  // The same, as a single-threaded client's monitoring words it.
  CHECK(has(diagnose_heartbeat("localhost:27231", MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_SOCKET,
                               "connection closed calling hello on 'localhost:27231'",
                               facts("u", "", false)),
            "tls=true"));
}

TEST_CASE("a host that cannot be reached or resolved is named") {
  auto refused =
      diagnose_heartbeat("127.0.0.1:27239", MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_CONNECT,
                         "Failed to connect to target host: 127.0.0.1:27239", facts());
  REQUIRE(refused);
  CHECK(refused->cause == Cause::kUnreachable);
  CHECK(has(refused, "cannot reach MongoDB at 127.0.0.1:27239"));
  auto unknown_name = diagnose_heartbeat("nosuch.invalid:27017", MONGOC_ERROR_STREAM,
                                         MONGOC_ERROR_STREAM_NAME_RESOLUTION,
                                         "Failed to resolve nosuch.invalid", facts());
  REQUIRE(unknown_name);
  CHECK(has(unknown_name, "does not resolve"));
}

TEST_CASE("a server of another replica set, a standalone server and a mongos are named") {
  auto other_set = diagnose_server("127.0.0.1:27230", "RSPrimary", "rs0", facts("u", "rsX"));
  REQUIRE(other_set);
  CHECK(other_set->cause == Cause::kReplicaSetName);
  CHECK(has(other_set, "member of replica set \"rs0\", but the URI names replicaSet=rsX"));
  auto standalone = diagnose_server("127.0.0.1:27017", "Standalone", "", facts("u", "rs0"));
  REQUIRE(standalone);
  CHECK(standalone->cause == Cause::kStandalone);
  CHECK(diagnose_server("h:1", "Mongos", "", facts("u", "rs0"))->cause == Cause::kStandalone);
  CHECK_FALSE(diagnose_server("h:1", "RSPrimary", "rs0", facts("u", "rs0")));
  CHECK_FALSE(diagnose_server("h:1", "Unknown", "", facts("u", "rs0")));
  // Without replicaSet in the URI the driver itself decides (and a standalone
  // server is refused later, with its own message).
  CHECK_FALSE(diagnose_server("h:1", "Standalone", "", facts("u", "")));
}

TEST_CASE("a failed login in the driver's own log is diagnosed") {
  auto d = diagnose_driver_log(
      "cluster", "Failed authentication to 127.0.0.1:27230 (Authentication failed.)", facts());
  REQUIRE(d);
  CHECK(d->cause == Cause::kAuthentication);
  CHECK(has(d, ": Authentication failed. ("));
  auto mechanism = diagnose_driver_log(
      "cluster", "Failed authentication to h:1 (Unknown authentication mechanism \"FOO\".)",
      facts());
  REQUIRE(mechanism);
  CHECK(mechanism->cause == Cause::kAuthMechanism);
  CHECK_FALSE(diagnose_driver_log("monitor", "Failed authentication to h:1 (x)", facts()));
  CHECK_FALSE(diagnose_driver_log("cluster", "Speculative authentication failed", facts()));
}

TEST_CASE("the driver's own lines that repeat a diagnosis are recognized") {
  CHECK(driver_log_repeats_diagnosis(
      "cluster", "Failed authentication to 127.0.0.1:27230 (Authentication failed.)"));
  CHECK(driver_log_repeats_diagnosis("mongoc", "Last server removed from topology"));
  CHECK_FALSE(driver_log_repeats_diagnosis("cluster", "Something else"));
}
