// What is wrong between the daemon and MongoDB, named so that an operator
// knows what to change: the password, a privilege, the replica set name in the
// URI, TLS, or the network. The driver reports these as errors of operations,
// failed heartbeats of its server monitoring, and server descriptions that do
// not fit the URI; each function below turns one of them into a Diagnosis (or
// none, for what names no cause, e.g. a timeout of server selection alone).
//
// Pure functions on plain values (no driver types), so that every rule is
// unit-tested; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace siobridge::bus::mongodb {

enum class Cause : std::uint8_t {
  kNone,
  kUnreachable,     // connection refused or cut, a name that does not resolve
  kTls,             // the TLS handshake failed (CA, host name, TLS on one side only)
  kAuthentication,  // wrong password, unknown user, or a user of another authSource
  kAuthMechanism,   // an authMechanism the driver or the server does not offer
  kNotAuthorized,   // the user lacks a privilege (or the URI has no user at all)
  kReplicaSetName,  // the server's replica set is not the one the URI names
  kStandalone,      // a standalone server (or a mongos) where the URI names a set
};
inline constexpr Cause kAllCauses[] = {Cause::kUnreachable,    Cause::kTls,
                                       Cause::kAuthentication, Cause::kAuthMechanism,
                                       Cause::kNotAuthorized,  Cause::kReplicaSetName,
                                       Cause::kStandalone};

// The metric label: "unreachable", "tls", "authentication_failed",
// "auth_mechanism", "not_authorized", "replica_set_name", "standalone".
const char* cause_label(Cause cause);

struct Diagnosis {
  Cause cause = Cause::kNone;
  std::string message;  // one line, starting with what it is ("authentication failed: ...")
  bool operator==(const Diagnosis& other) const {
    return cause == other.cause && message == other.message;
  }
};

// What the URI says that explains an error (never the password).
struct UriFacts {
  std::string user;         // empty: no credentials
  std::string auth_source;  // as the driver resolves it
  std::string mechanism;    // empty: the driver's default
  std::string replica_set;  // empty: none named
  bool tls = false;
};

// An operation's error (bson_error_t's domain, code and message).
std::optional<Diagnosis> diagnose_error(std::uint32_t domain, std::uint32_t code,
                                        const std::string& message, const UriFacts& facts);
// A failed heartbeat of the driver's monitoring of `host`.
std::optional<Diagnosis> diagnose_heartbeat(const std::string& host, std::uint32_t domain,
                                            std::uint32_t code, const std::string& message,
                                            const UriFacts& facts);
// A server description: `type` as libmongoc names it ("RSPrimary",
// "Standalone", "Mongos", ...), `set_name` from the server's hello (may be empty).
std::optional<Diagnosis> diagnose_server(const std::string& host, const std::string& type,
                                         const std::string& set_name, const UriFacts& facts);

// A line of the driver's own log (mongoc_log_set_handler): a failed login is
// logged there before any operation fails with it.
std::optional<Diagnosis> diagnose_driver_log(const std::string& domain, const std::string& message,
                                             const UriFacts& facts);

// Whether the driver's own log line `message` (of `domain`) says what a
// Diagnosis already says: the daemon logs those at debug level, so that one
// cause makes one line at error level, not one per retry.
bool driver_log_repeats_diagnosis(const std::string& domain, const std::string& message);

}  // namespace siobridge::bus::mongodb
