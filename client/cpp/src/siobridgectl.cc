// siobridgectl: inspect and drive a siobridged from the command line.
//
//   siobridgectl status
//   siobridgectl emit --namespace /chat --room lobby --event news --data '"hello"'
//   siobridgectl rooms --namespace /
//   siobridgectl sockets --namespace / --room lobby
//   siobridgectl disconnect --namespace / --room spammers --close
//
// --address picks the daemon (default: its default Unix socket); --json
// prints machine-readable output.
#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <CLI/CLI.hpp>

#include <iostream>

#include "siobridge/client.h"

using namespace siobridge::client;

namespace {

std::string json(const google::protobuf::Message& message) {
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

pb::BroadcastOptions options_for(const std::vector<std::string>& rooms,
                                 const std::vector<std::string>& except) {
  pb::BroadcastOptions opts;
  // No rooms means every socket of the namespace (PROTOCOL.md's Broadcast flag).
  opts.set_exclude_sid(true);
  for (const auto& r : rooms) opts.add_rooms(r);
  for (const auto& r : except) opts.add_except(r);
  return opts;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"siobridgectl: inspect and drive a siobridged daemon"};
  app.set_version_flag("--version", std::string("siobridgectl ") + SIOBRIDGE_VERSION);
  app.require_subcommand(1);
  std::string address = default_address();
  bool as_json = false;
  int timeout_ms = 10000;
  app.add_option("-a,--address", address, "daemon address: a Unix socket path or host:port")
      ->envname("SIOBRIDGE_ADDRESS")
      ->capture_default_str();
  app.add_flag("--json", as_json, "print JSON");
  app.add_option("--timeout-ms", timeout_ms, "deadline of each call")->capture_default_str();

  std::string ns = "/";
  std::vector<std::string> rooms, except;
  std::string event, data = "";
  bool close = false;

  auto* status_cmd = app.add_subcommand("status", "the daemon's view of the cluster");
  auto* emit_cmd = app.add_subcommand("emit", "broadcast an event to the sockets of a namespace");
  emit_cmd->add_option("-n,--namespace", ns, "namespace")->capture_default_str();
  emit_cmd->add_option("-r,--room", rooms, "only sockets in this room (repeatable)");
  emit_cmd->add_option("-x,--except", except, "not sockets in this room (repeatable)");
  emit_cmd->add_option("-e,--event", event, "event name")->required();
  emit_cmd->add_option("-d,--data", data,
                       "event arguments as JSON, comma-separated (e.g. '\"hi\",{\"n\":1}')");
  auto* rooms_cmd = app.add_subcommand("rooms", "every room of the namespace in the cluster");
  rooms_cmd->add_option("-n,--namespace", ns, "namespace")->capture_default_str();
  auto* sockets_cmd = app.add_subcommand("sockets", "the sockets of the namespace in the cluster");
  sockets_cmd->add_option("-n,--namespace", ns, "namespace")->capture_default_str();
  sockets_cmd->add_option("-r,--room", rooms, "only sockets in this room (repeatable)");
  auto* disconnect_cmd = app.add_subcommand("disconnect", "disconnect sockets");
  disconnect_cmd->add_option("-n,--namespace", ns, "namespace")->capture_default_str();
  disconnect_cmd->add_option("-r,--room", rooms, "only sockets in this room (repeatable)");
  disconnect_cmd->add_flag("--close", close, "close the underlying connections too");
  CLI11_PARSE(app, argc, argv);

  ClientOptions options;
  options.address = address;
  options.call_timeout = std::chrono::milliseconds(timeout_ms);
  BridgeClient client(options);

  if (status_cmd->parsed()) {
    auto reply = client.status();
    if (!reply.ok()) return fail(reply.status);
    const auto& s = reply.value;
    if (as_json) {
      std::cout << json(s);
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
      std::cout << fmt::format("  {:<28} {:<16} queued {:<6} namespaces", a.name(),
                               a.attachment_id(), a.queued_messages());
      for (const auto& n : a.namespaces()) std::cout << " " << n;
      std::cout << "\n";
    }
    for (const auto& n : s.namespaces()) {
      std::cout << fmt::format("\nnamespace {}: {} servers in the cluster, {} here, {} peers\n",
                               n.namespace_(), n.server_count(), n.local_servers_size(),
                               n.peers_size());
      for (const auto& p : n.peers()) {
        std::cout << fmt::format("  peer {} {:<11} servers {:<3} last seen {}\n", p.uid(),
                                 p.siobridge() ? "siobridge" : "socketioxide", p.servers(),
                                 ago(p.last_seen_ms_ago()));
      }
    }
    return 0;
  }
  if (emit_cmd->parsed()) {
    pb::Packet packet;
    packet.set_namespace_(ns);
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
    auto opts = options_for(rooms, except);
    auto reply = client.broadcast(packet, opts);
    if (!reply.ok()) return fail(reply.status);
    if (!as_json)
      std::cout << "sent " << packet.data().data() << " to " << ns << "\n";
    else
      std::cout << "{\"sent\": true}\n";
    return 0;
  }
  if (rooms_cmd->parsed()) {
    auto reply = client.all_rooms(ns, {});
    if (!reply.ok()) return fail(reply.status);
    if (as_json) {
      std::cout << json(reply.value);
      return 0;
    }
    for (const auto& r : reply.value.rooms()) std::cout << r << "\n";
    print_missing(reply.value.missing());
    return 0;
  }
  if (sockets_cmd->parsed()) {
    auto opts = options_for(rooms, {});
    auto reply = client.fetch_sockets(ns, opts);
    if (!reply.ok()) return fail(reply.status);
    if (as_json) {
      std::cout << json(reply.value);
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
  if (disconnect_cmd->parsed()) {
    auto opts = options_for(rooms, {});
    auto reply = client.disconnect_sockets(ns, opts, close);
    if (!reply.ok()) return fail(reply.status);
    std::cout << (as_json ? "{\"disconnected\": true}\n" : "disconnect sent\n");
    return 0;
  }
  return 0;
}
