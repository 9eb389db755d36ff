#include "daemon/bus/mongodb/diagnosis.h"

#include <fmt/format.h>
#include <mongoc/mongoc.h>

#include <string_view>

namespace siobridge::bus::mongodb {
namespace {

constexpr std::uint32_t kUnauthorized = 13;
constexpr std::uint32_t kAuthenticationFailed = 18;

bool contains(const std::string& text, const char* part) {
  return text.find(part) != std::string::npos;
}

std::string who(const UriFacts& facts) {
  return fmt::format("user \"{}\" (authSource \"{}\", authMechanism {})", facts.user,
                     facts.auth_source, facts.mechanism.empty() ? "default" : facts.mechanism);
}

Diagnosis authentication(const std::string& message, const UriFacts& facts) {
  if (contains(message, "mechanism")) {
    return {Cause::kAuthMechanism,
            fmt::format("authentication failed for {}: {} (authMechanism in the URI: a user with "
                        "a password uses SCRAM-SHA-256 or SCRAM-SHA-1; leave it out to let the "
                        "server choose)",
                        who(facts), message)};
  }
  return {Cause::kAuthentication,
          fmt::format("authentication failed for {}: {} (the password does not match, the user "
                      "is unknown, or the user was created in another database than authSource)",
                      who(facts), message)};
}

// "not authorized on db to execute command { create: \"c\", capped: true, lsid: ...,
// $clusterTime: ... }" -> "not authorized on db to execute command create".
std::string without_command_body(const std::string& message) {
  constexpr std::string_view kCommand = "to execute command { ";
  const auto at = message.find(kCommand);
  if (at == std::string::npos) return message;
  const auto name = at + kCommand.size();
  const auto end = message.find(':', name);
  if (end == std::string::npos) return message;
  return message.substr(0, at) + "to execute command " + message.substr(name, end - name);
}

Diagnosis not_authorized(const std::string& full_message, const UriFacts& facts) {
  const std::string message = without_command_body(full_message);
  if (facts.user.empty()) {
    return {Cause::kNotAuthorized,
            fmt::format("not authorized: {} (the server has access control on and the URI names "
                        "no user: add user:password@ to the URI, or use mongodb.uri_file)",
                        message)};
  }
  return {Cause::kNotAuthorized,
          fmt::format("not authorized: {} (user \"{}\" lacks a privilege siobridged needs: "
                      "docs/running.md, \"MongoDB privileges\")",
                      message, facts.user)};
}

std::string tls_hint(const std::string& host, const std::string& message, const UriFacts& facts) {
  if (contains(message, "mismatch")) {
    return fmt::format(
        " (the server's certificate does not name {}: connect by a name it holds, or fix the "
        "certificate)",
        host.substr(0, host.rfind(':')));
  }
  if (contains(message, "certificate verify failed") || contains(message, "issuer")) {
    return " (tlsCAFile in the URI must hold the CA that signed the server's certificate)";
  }
  if (contains(message, "initialize TLS")) {
    return " (the URI's tlsCAFile or tlsCertificateKeyFile cannot be read)";
  }
  if (facts.tls) {
    return fmt::format(" (does {} speak TLS? a server without TLS does not answer a handshake)",
                       host);
  }
  return "";
}

}  // namespace

const char* cause_label(Cause cause) {
  switch (cause) {
    case Cause::kNone:
      return "none";
    case Cause::kUnreachable:
      return "unreachable";
    case Cause::kTls:
      return "tls";
    case Cause::kAuthentication:
      return "authentication_failed";
    case Cause::kAuthMechanism:
      return "auth_mechanism";
    case Cause::kNotAuthorized:
      return "not_authorized";
    case Cause::kReplicaSetName:
      return "replica_set_name";
    case Cause::kStandalone:
      return "standalone";
  }
  return "none";
}

std::optional<Diagnosis> diagnose_error(std::uint32_t domain, std::uint32_t code,
                                        const std::string& message, const UriFacts& facts) {
  switch (domain) {
    case MONGOC_ERROR_CLIENT:
      if (code == MONGOC_ERROR_CLIENT_AUTHENTICATE) return authentication(message, facts);
      return std::nullopt;
    case MONGOC_ERROR_SASL:
    case MONGOC_ERROR_SCRAM:
      return authentication(message, facts);
    case MONGOC_ERROR_SERVER:
    case MONGOC_ERROR_QUERY:
    case MONGOC_ERROR_COMMAND:
      if (code == kUnauthorized) return not_authorized(message, facts);
      if (code == kAuthenticationFailed) return authentication(message, facts);
      return std::nullopt;
    case MONGOC_ERROR_STREAM:
      if (contains(message, "TLS")) {
        return Diagnosis{Cause::kTls, fmt::format("TLS failed: {}{}", message,
                                                  tls_hint("the server", message, facts))};
      }
      return Diagnosis{Cause::kUnreachable, fmt::format("cannot reach MongoDB: {}", message)};
    case MONGOC_ERROR_SERVER_SELECTION:
      // The driver quotes what its monitoring saw, e.g. "[TLS handshake failed: ...]".
      if (contains(message, "TLS")) {
        return Diagnosis{Cause::kTls, fmt::format("TLS failed: {}{}", message,
                                                  tls_hint("the server", message, facts))};
      }
      if (contains(message, "Failed to connect") || contains(message, "Failed to resolve") ||
          contains(message, "connection refused")) {
        return Diagnosis{Cause::kUnreachable, fmt::format("cannot reach MongoDB: {}", message)};
      }
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

std::optional<Diagnosis> diagnose_heartbeat(const std::string& host, std::uint32_t domain,
                                            std::uint32_t code, const std::string& message,
                                            const UriFacts& facts) {
  if (code == 0 || message.empty()) return std::nullopt;  // a monitor stopping, not a failure
  if (contains(message, "TLS")) {
    return Diagnosis{Cause::kTls, fmt::format("TLS to {} failed: {}{}", host, message,
                                              tls_hint(host, message, facts))};
  }
  if (contains(message, "Failed to resolve")) {
    return Diagnosis{Cause::kUnreachable,
                     fmt::format("cannot reach MongoDB at {}: {} (the host name does not resolve)",
                                 host, message)};
  }
  const bool closed_at_once =
      (domain == MONGOC_ERROR_STREAM && contains(message, "Failed to read")) ||
      contains(message, "connection closed");
  if (!facts.tls && closed_at_once) {
    return Diagnosis{
        Cause::kUnreachable,
        fmt::format("cannot reach MongoDB at {}: {} (it closed the connection without answering; "
                    "a server or proxy that expects TLS does so to a client without TLS: then "
                    "add tls=true and tlsCAFile to the URI)",
                    host, message)};
  }
  return Diagnosis{Cause::kUnreachable,
                   fmt::format("cannot reach MongoDB at {}: {}", host, message)};
}

std::optional<Diagnosis> diagnose_server(const std::string& host, const std::string& type,
                                         const std::string& set_name, const UriFacts& facts) {
  if (facts.replica_set.empty()) return std::nullopt;
  if (type == "Standalone") {
    return Diagnosis{
        Cause::kStandalone,
        fmt::format("{} is a standalone server, but the URI names replica set \"{}\": siobridge "
                    "needs a replica set (start mongod with --replSet and run rs.initiate(); one "
                    "member is enough) or a sharded cluster",
                    host, facts.replica_set)};
  }
  if (type == "Mongos") {
    return Diagnosis{Cause::kStandalone,
                     fmt::format("{} is a mongos (a sharded cluster), but the URI names replica "
                                 "set \"{}\": leave replicaSet out of the URI",
                                 host, facts.replica_set)};
  }
  if (type.rfind("RS", 0) == 0 && !set_name.empty() && set_name != facts.replica_set) {
    return Diagnosis{
        Cause::kReplicaSetName,
        fmt::format("replica set name mismatch: {} is a member of replica set \"{}\", but the "
                    "URI names replicaSet={}: correct the URI",
                    host, set_name, facts.replica_set)};
  }
  return std::nullopt;
}

std::optional<Diagnosis> diagnose_driver_log(const std::string& domain, const std::string& message,
                                             const UriFacts& facts) {
  // "Failed authentication to 127.0.0.1:27017 (Authentication failed.)"
  constexpr std::string_view kFailed = "Failed authentication to ";
  if (domain != "cluster" || message.rfind(kFailed, 0) != 0) return std::nullopt;
  const auto open = message.find(" (");
  if (open == std::string::npos || message.back() != ')') return std::nullopt;
  return authentication(message.substr(open + 2, message.size() - open - 3), facts);
}

bool driver_log_repeats_diagnosis(const std::string& domain, const std::string& message) {
  // Ending sessions at shutdown fails the way the login did.
  return (domain == "cluster" && contains(message, "Failed authentication")) ||
         contains(message, "Last server removed from topology") ||
         (domain == "client" && contains(message, "endSessions"));
}

}  // namespace siobridge::bus::mongodb
