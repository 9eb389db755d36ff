// siobridgectl: inspect and drive a siobridged from the command line.
//
//   siobridgectl status
//   siobridgectl health                       exit 0 when serving, 1 otherwise (a probe)
//   siobridgectl emit --namespace /chat --room lobby --event news --data '"hello"'
//   siobridgectl rooms --namespace /
//   siobridgectl sockets --namespace / --room lobby
//   siobridgectl disconnect --namespace / --room spammers --close
//
// --address picks the daemon (default: SIOBRIDGE_ADDRESS, else its default Unix
// socket); --json prints machine-readable output. For a TCP address with TLS,
// --tls-ca (SIOBRIDGE_TLS_CA) is the CA of the daemon's certificate, and
// --tls-cert and --tls-key (SIOBRIDGE_TLS_CERT, SIOBRIDGE_TLS_KEY) a client
// certificate for a daemon that asks for one. These, and --timeout-ms, may
// stand before or after the subcommand.
//
// Single-threaded: one call per run.
#include <fmt/format.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <CLI/CLI.hpp>

#include <functional>
#include <iostream>

#include "grpc/health/v1/health.grpc.pb.h"
#include "siobridge/client.h"

using namespace siobridge::client;

namespace {

namespace health = ::grpc::health::v1;

// Options every subcommand shares.
struct Common {
  std::string address = default_address();
  bool json = false;
  int timeout_ms = 10000;
  std::string tls_ca, tls_cert, tls_key;
};

// Which sockets an operation addresses.
struct Selection {
  std::string ns = "/";
  std::vector<std::string> rooms, except;
};

std::string to_json(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

int fail(const grpc::Status& status) {
  std::cerr << "siobridgectl: "
            << (status.error_code() == grpc::StatusCode::UNAVAILABLE
                    ? "cannot reach the daemon or its cluster: "
                    : "")
            << status.error_message() << " (" << status.error_code() << ")\n";
  return 1;
}

std::string ago(std::uint64_t ms) {
  return ms < 1000 ? fmt::format("{} ms ago", ms)
                   : fmt::format("{:.1f} s ago", static_cast<double>(ms) / 1000);
}

void print_missing(const pb::Missing& missing) {
  if (missing.nodes_size() == 0 && missing.local_servers_size() == 0) return;
  std::cout << "incomplete: no answer from";
  for (const auto& n : missing.nodes()) std::cout << " node " << n;
  for (const auto& s : missing.local_servers()) std::cout << " server '" << s << "'";
  std::cout << "\n";
}

pb::BroadcastOptions options_for(const Selection& selection) {
  pb::BroadcastOptions opts;
  // No rooms means every socket of the namespace (docs/PROTOCOL.md's Broadcast flag).
  opts.set_exclude_sid(true);
  for (const auto& r : selection.rooms) opts.add_rooms(r);
  for (const auto& r : selection.except) opts.add_except(r);
  return opts;
}

ClientOptions client_options(const Common& common) {
  ClientOptions options;
  options.address = common.address;
  options.call_timeout = std::chrono::milliseconds(common.timeout_ms);
  options.tls_ca_file = common.tls_ca;
  options.tls_cert_file = common.tls_cert;
  options.tls_key_file = common.tls_key;
  return options;
}

std::unique_ptr<BridgeClient> connect(const Common& common) {
  return std::make_unique<BridgeClient>(client_options(common));
}

int run_status(const Common& common) {
  auto reply = connect(common)->status();
  if (!reply.ok()) return fail(reply.status);
  const auto& s = reply.value;
  if (common.json) {
    std::cout << to_json(s);
    return 0;
  }
  std::cout << fmt::format(
      "node      {}\nversion   {}\nbackend   {}{}\nbus       {}{}\nuptime    {} s\n"
      "in flight {}\n",
      s.node_uid(), s.daemon_version(), s.backend(),
      s.collection().empty() ? "" : " (" + s.collection() + ")", s.bus_state(),
      s.bus_detail().empty() ? "" : ": " + s.bus_detail(), s.uptime_seconds(),
      s.operations_in_flight());
  std::cout << fmt::format("\nattached servers ({})\n", s.attachments_size());
  for (const auto& a : s.attachments()) {
    std::cout << fmt::format("  {:<28} {:<16} queued {:<6} namespaces", a.name(), a.attachment_id(),
                             a.queued_messages());
    for (const auto& n : a.namespaces()) std::cout << " " << n;
    std::cout << "\n";
  }
  for (const auto& n : s.namespaces()) {
    std::cout << fmt::format("\nnamespace {}: {} servers in the cluster, {} here, {} peers{}\n",
                             n.namespace_(), n.server_count(), n.local_servers_size(),
                             n.peers_size(),
                             n.packing() && s.backend() == "mongodb" ? ", packed" : "");
    for (const auto& p : n.peers()) {
      std::cout << fmt::format("  peer {} {:<11} servers {:<3} last seen {}\n", p.uid(),
                               p.siobridge() ? "siobridge" : "socketioxide", p.servers(),
                               ago(p.last_seen_ms_ago()));
    }
  }
  return 0;
}

// grpc.health.v1's Check, without waiting for a daemon that is not there: a
// probe wants an answer within its own deadline.
int run_health(const Common& common, const std::string& service) {
  auto client = connect(common);
  auto stub = health::Health::NewStub(client->channel());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(common.timeout_ms));
  health::HealthCheckRequest request;
  request.set_service(service);
  health::HealthCheckResponse response;
  const grpc::Status status = stub->Check(&context, request, &response);
  const std::string what =
      fmt::format("siobridged at {}{}", common.address,
                  service.empty() ? std::string() : fmt::format(" (service {})", service));
  if (!status.ok()) {
    std::string reason = status.error_message();
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) reason = "unknown service";
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE) reason = "cannot reach it: " + reason;
    if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
      reason = fmt::format("no answer within {} ms", common.timeout_ms);
    if (common.json) {
      std::cout << fmt::format("{{\"status\": \"UNREACHABLE\", \"code\": {}}}\n",
                               static_cast<int>(status.error_code()));
    }
    std::cerr << fmt::format("siobridgectl: {}: {} ({})\n", what, reason,
                             static_cast<int>(status.error_code()));
    return 1;
  }
  const bool serving = response.status() == health::HealthCheckResponse::SERVING;
  if (common.json) {
    std::cout << fmt::format("{{\"status\": \"{}\"}}\n",
                             health::HealthCheckResponse::ServingStatus_Name(response.status()));
  } else if (serving) {
    std::cout << what << ": serving\n";
  } else {
    // Why: the bus's state and detail (what the daemon found wrong with
    // MongoDB), from Status; a daemon that is draining may not answer it.
    std::string why = "starting or draining";
    if (auto reply = client->status(); reply.ok() && reply.value.bus_state() != "ready") {
      why = fmt::format("MongoDB bus {}{}{}", reply.value.bus_state(),
                        reply.value.bus_detail().empty() ? "" : ": ", reply.value.bus_detail());
    }
    std::cerr << fmt::format("siobridgectl: {}: {} (not serving: {})\n", what,
                             health::HealthCheckResponse::ServingStatus_Name(response.status()),
                             why);
  }
  return serving ? 0 : 1;
}

int run_emit(const Common& common, const Selection& selection, const std::string& event,
             const std::string& data) {
  // Checked here: the daemon forwards event data as it is, and every client
  // of the namespace would fail to parse text that is not JSON.
  google::protobuf::ListValue arguments;
  if (auto parsed = google::protobuf::util::JsonStringToMessage("[" + data + "]", &arguments);
      !parsed.ok()) {
    std::cerr << "siobridgectl: --data is not JSON values separated by commas: "
              << parsed.ToString() << "\n";
    return 2;
  }
  pb::Packet packet;
  packet.set_namespace_(selection.ns);
  packet.set_type(pb::Packet::TYPE_EVENT);
  packet.mutable_data()->set_kind(pb::Value::KIND_STR);
  // The socket.io JSON parser's form: ["event", args...].
  std::string name_json;
  for (char c : event) {
    if (c == '"' || c == '\\') name_json.push_back('\\');
    name_json.push_back(c);
  }
  packet.mutable_data()->set_data("[\"" + name_json + "\"" + (data.empty() ? "" : "," + data) +
                                  "]");
  auto reply = connect(common)->broadcast(packet, options_for(selection));
  if (!reply.ok()) return fail(reply.status);
  if (common.json)
    std::cout << "{\"sent\": true}\n";
  else
    std::cout << "sent " << packet.data().data() << " to " << selection.ns << "\n";
  return 0;
}

int run_rooms(const Common& common, const Selection& selection) {
  auto reply = connect(common)->all_rooms(selection.ns, {});
  if (!reply.ok()) return fail(reply.status);
  if (common.json) {
    std::cout << to_json(reply.value);
    return 0;
  }
  for (const auto& r : reply.value.rooms()) std::cout << r << "\n";
  print_missing(reply.value.missing());
  return 0;
}

int run_sockets(const Common& common, const Selection& selection) {
  auto reply = connect(common)->fetch_sockets(selection.ns, options_for(selection));
  if (!reply.ok()) return fail(reply.status);
  if (common.json) {
    std::cout << to_json(reply.value);
    return 0;
  }
  for (const auto& s : reply.value.sockets()) {
    std::cout << fmt::format("{:<22} node {} rooms", s.id(), s.server_id());
    for (const auto& r : s.rooms()) std::cout << " " << r;
    std::cout << "\n";
  }
  std::cout << reply.value.sockets_size() << " sockets\n";
  print_missing(reply.value.missing());
  return 0;
}

int run_disconnect(const Common& common, const Selection& selection, bool close) {
  auto reply = connect(common)->disconnect_sockets(selection.ns, options_for(selection), close);
  if (!reply.ok()) return fail(reply.status);
  std::cout << (common.json ? "{\"disconnected\": true}\n" : "disconnect sent\n");
  return 0;
}

void add_namespace(CLI::App* command, Selection& selection) {
  command->add_option("-n,--namespace", selection.ns, "namespace")->capture_default_str();
}

void add_rooms(CLI::App* command, Selection& selection) {
  command->add_option("-r,--room", selection.rooms, "only sockets in this room (repeatable)");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"siobridgectl: inspect and drive a siobridged daemon"};
  app.set_version_flag("--version", std::string("siobridgectl ") + SIOBRIDGE_VERSION);
  app.require_subcommand(1);
  // Subcommands created after this pass the options they do not know (the
  // common ones below) to the app, so they may follow the subcommand too.
  app.fallthrough();

  Common common;
  app.add_option("-a,--address", common.address, "daemon address: a Unix socket path or host:port")
      ->envname("SIOBRIDGE_ADDRESS")
      ->capture_default_str();
  app.add_flag("--json", common.json, "print JSON");
  app.add_option("--timeout-ms", common.timeout_ms, "deadline of each call")->capture_default_str();
  app.add_option("--tls-ca", common.tls_ca,
                 "TLS to a TCP address: the CA certificate (PEM) of the daemon's certificate")
      ->envname("SIOBRIDGE_TLS_CA");
  app.add_option("--tls-cert", common.tls_cert,
                 "a client certificate (PEM), for a daemon that requires one")
      ->envname("SIOBRIDGE_TLS_CERT");
  app.add_option("--tls-key", common.tls_key, "the client certificate's key (PEM)")
      ->envname("SIOBRIDGE_TLS_KEY");

  Selection selection;
  std::string event, data, service;
  bool close = false;
  std::vector<std::pair<CLI::App*, std::function<int()>>> commands;

  auto* status = app.add_subcommand("status", "the daemon's view of the cluster");
  commands.emplace_back(status, [&] { return run_status(common); });

  auto* health_cmd =
      app.add_subcommand("health", "ask the gRPC health service: exit 0 when serving, 1 otherwise");
  health_cmd->add_option("--service", service, "a service name; empty: the daemon as a whole");
  commands.emplace_back(health_cmd, [&] { return run_health(common, service); });

  auto* emit = app.add_subcommand("emit", "broadcast an event to the sockets of a namespace");
  add_namespace(emit, selection);
  add_rooms(emit, selection);
  emit->add_option("-x,--except", selection.except, "not sockets in this room (repeatable)");
  emit->add_option("-e,--event", event, "event name")->required();
  emit->add_option("-d,--data", data,
                   "event arguments as JSON, comma-separated (e.g. '\"hi\",{\"n\":1}')");
  commands.emplace_back(emit, [&] { return run_emit(common, selection, event, data); });

  auto* rooms = app.add_subcommand("rooms", "every room of the namespace in the cluster");
  add_namespace(rooms, selection);
  commands.emplace_back(rooms, [&] { return run_rooms(common, selection); });

  auto* sockets = app.add_subcommand("sockets", "the sockets of the namespace in the cluster");
  add_namespace(sockets, selection);
  add_rooms(sockets, selection);
  commands.emplace_back(sockets, [&] { return run_sockets(common, selection); });

  auto* disconnect = app.add_subcommand("disconnect", "disconnect sockets");
  add_namespace(disconnect, selection);
  add_rooms(disconnect, selection);
  disconnect->add_flag("--close", close, "close the underlying connections too");
  commands.emplace_back(disconnect, [&] { return run_disconnect(common, selection, close); });

  CLI11_PARSE(app, argc, argv);
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (auto s = channel_credentials(client_options(common), &credentials); !s.ok()) {
    std::cerr << "siobridgectl: " << s.error_message() << "\n";
    return 2;
  }
  for (const auto& [command, run] : commands) {
    if (command->parsed()) return run();
  }
  return 0;
}
