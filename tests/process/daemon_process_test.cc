// siobridged as a process: configuration, the Unix socket, every error code,
// graceful shutdown, restarts under attached clients, bounded memory under a
// stalled reader. In-memory bus (no MongoDB needed).
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <map>
#include <thread>

#include "tests/process/process_helpers.h"
#include "tests/support/client_server.h"
#include "tests/support/daemon_process.h"

using namespace siobridge;
using namespace siobridge::testing;
namespace pb = siobridge::v1;

namespace {

std::string line_of(const std::string& output, const std::string& key) {
  auto at = output.find(key + " ");
  if (at == std::string::npos) return "";
  return output.substr(at, output.find('\n', at) - at);
}

}  // namespace

TEST_CASE("configuration: flags over environment over file over defaults") {
  char path[] = "/tmp/siobridged-config-XXXXXX";
  const int fd = ::mkstemp(path);
  ::close(fd);
  std::ofstream(path) << "mongodb:\n  uri: mongodb://from-file/?replicaSet=rs0\n  database: file\n"
                         "  collection: file\nnode:\n  request_timeout: 7s\n";
  auto [code, out] = run_daemon_command(
      {"--check-config", "--config", path, "--mongodb-database", "flag"},
      {{"SIOBRIDGE_MONGODB_DATABASE", "env"}, {"SIOBRIDGE_MONGODB_COLLECTION", "env"}});
  std::remove(path);
  INFO(out);
  REQUIRE(code == 0);
  CHECK_THAT(line_of(out, "mongodb.uri"),
             Catch::Contains("mongodb://from-file") && Catch::Contains("(file:"));
  CHECK_THAT(line_of(out, "mongodb.database"),
             Catch::Contains("flag") && Catch::Contains("--mongodb-database"));
  CHECK_THAT(line_of(out, "mongodb.collection"),
             Catch::Contains("env") && Catch::Contains("SIOBRIDGE_MONGODB_COLLECTION"));
  CHECK_THAT(line_of(out, "node.request_timeout"), Catch::Contains("7s"));
  CHECK_THAT(line_of(out, "node.heartbeat_interval"), Catch::Contains("(default)"));

  auto [bad_code, bad_out] =
      run_daemon_command({"--check-config"}, {{"SIOBRIDGE_NODE_ACK_TIMEOUT", "soon"}});
  CHECK(bad_code == 2);
  CHECK_THAT(bad_out,
             Catch::Contains("node.ack_timeout") && Catch::Contains("SIOBRIDGE_NODE_ACK_TIMEOUT"));

  auto [help_code, help] = run_daemon_command({"--help"});
  CHECK(help_code == 0);
  CHECK_THAT(help, Catch::Contains("--mongodb-uri") && Catch::Contains("SIOBRIDGE_MONGODB_URI") &&
                       Catch::Contains("--check-config"));
  auto [version_code, version] = run_daemon_command({"--version"});
  CHECK(version_code == 0);
  CHECK_THAT(version, Catch::StartsWith("siobridged "));
}

TEST_CASE("the Unix socket gets the configured permissions") {
  {
    DaemonProcess daemon;
    REQUIRE(daemon.wait_ready());
    struct stat info {};
    REQUIRE(::stat(daemon.socket().c_str(), &info) == 0);
    CHECK(S_ISSOCK(info.st_mode));
    CHECK((info.st_mode & 0777) == 0660);
  }
  DaemonProcess strict({"--listen-unix-mode", "0600"});
  REQUIRE(strict.wait_ready());
  struct stat info {};
  REQUIRE(::stat(strict.socket().c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);
  CHECK(strict.terminate() == 0);
  CHECK_FALSE(std::ifstream(strict.socket()).good());  // removed on exit
}

TEST_CASE("every error code, with a message a person can act on") {
  DaemonProcess daemon({"--limits-max-message-bytes", "64KiB"});
  REQUIRE(daemon.wait_ready());
  ClientServer a(daemon.address(), "a");
  REQUIRE(a.client().wait_attached(std::chrono::seconds(20)));
  const auto id = a.client().attachment_id();

  SECTION("INVALID_ARGUMENT") {
    auto bad_ns = raw_broadcast(daemon.address(), id, json_event("[\"x\"]", "admin"));
    CHECK(bad_ns.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(bad_ns.error_message(), Catch::Contains("must start with '/'"));
    pb::BroadcastOptions bad_sid = to_everyone();
    bad_sid.set_sid("not a socket id");
    auto sid = raw_broadcast(daemon.address(), id, json_event("[\"x\"]"), bad_sid);
    CHECK(sid.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(sid.error_message(), Catch::Contains("opts.sid"));
    pb::BroadcastOptions bad_server;
    bad_server.set_server_id("short");
    CHECK(raw_broadcast(daemon.address(), id, json_event("[\"x\"]"), bad_server).error_code() ==
          grpc::StatusCode::INVALID_ARGUMENT);
    auto rooms = a.client().add_sockets("/", to_everyone(), {""});
    CHECK(rooms.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(rooms.status.error_message(), Catch::Contains("empty room"));
    auto bad_id = raw_broadcast(daemon.address(), "nonsense", json_event("[\"x\"]"));
    CHECK(bad_id.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    // An Attach stream that does not start with Hello.
    auto stub = pb::Bridge::NewStub(
        grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    auto stream = stub->Attach(&context);
    pb::ServerMessage join;
    join.mutable_join_namespace()->set_namespace_("/");
    stream->Write(join);
    stream->WritesDone();
    pb::DaemonMessage ignored;
    while (stream->Read(&ignored)) {
    }
    auto status = stream->Finish();
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(status.error_message(), Catch::Contains("Hello"));
  }
  SECTION("FAILED_PRECONDITION") {
    auto stale = raw_broadcast(daemon.address(), "AbCdEfGh.7", json_event("[\"x\"]"));
    CHECK(stale.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
    CHECK_THAT(stale.error_message(), Catch::Contains("attach again"));
    auto not_joined = raw_broadcast(daemon.address(), id, json_event("[\"x\"]", "/elsewhere"));
    CHECK(not_joined.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
    CHECK_THAT(not_joined.error_message(), Catch::Contains("/elsewhere"));
    auto gone = a.client().attachment_id();
    const std::string unknown = gone.substr(0, gone.find('.')) + ".999999";
    CHECK(raw_broadcast(daemon.address(), unknown, json_event("[\"x\"]")).error_code() ==
          grpc::StatusCode::FAILED_PRECONDITION);
  }
  SECTION("RESOURCE_EXHAUSTED") {
    auto big = json_event("[\"" + std::string(100 << 10, 'x') + "\"]");
    auto over = raw_broadcast(daemon.address(), id, big);
    CHECK(over.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    CHECK_THAT(over.error_message(),
               Catch::Contains("max_message_bytes") && Catch::Contains("65536"));
    auto huge =
        raw_broadcast(daemon.address(), id, json_event("[\"" + std::string(2 << 20, 'x') + "\"]"));
    CHECK(huge.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    // Attachments count toward the limit too.
    auto packet = json_event("[\"file\",{\"_placeholder\":true,\"num\":0}]");
    packet.mutable_data()->add_attachments(std::string(70 << 10, '\x01'));
    CHECK(raw_broadcast(daemon.address(), id, packet).error_code() ==
          grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  // Still serving after all that.
  CHECK(raw_broadcast(daemon.address(), id, json_event("[\"fine\"]")).ok());
}

TEST_CASE("while MongoDB cannot be reached: broadcasts queue, questions are UNAVAILABLE at once") {
  DaemonProcess daemon(
      {"--mongodb-uri", "mongodb://127.0.0.1:1/?replicaSet=rs0&serverSelectionTimeoutMS=300"});
  REQUIRE(daemon.wait_ready());
  ClientServer a(daemon.address(), "a");
  REQUIRE(a.client().wait_attached(std::chrono::seconds(20)));
  REQUIRE(poll_until([&] {
    auto status = a.client().status();
    return status.ok() && status.value.bus_state() == "unavailable";
  }));
  // Queued for when MongoDB is back (mongodb.queue_bytes), not refused.
  CHECK(a.client().broadcast(json_event("[\"x\"]"), to_everyone()).status.ok());
  auto rooms = a.client().all_rooms("/", {});
  CHECK(rooms.status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK_THAT(rooms.status.error_message(), Catch::Contains("MongoDB"));
}

TEST_CASE("a MongoDB URI that is not one stops the start with a clear message") {
  DaemonProcess scratch;  // only for its directory
  auto [code, output] =
      run_daemon_command({"--mongodb-uri", "mongo://db1", "--listen-unix",
                          scratch.dir() + "/bad-uri.sock", "--mongodb-state-dir", ""});
  CHECK(code != 0);
  CHECK_THAT(output, Catch::Contains("MongoDB URI is not valid"));
}

TEST_CASE("two daemons cannot share a state directory") {
  const std::string unreachable =
      "mongodb://127.0.0.1:1/?replicaSet=rs0&serverSelectionTimeoutMS=300";
  DaemonProcess first({"--mongodb-uri", unreachable});
  REQUIRE(first.wait_ready());
  auto [code, output] = run_daemon_command({"--mongodb-uri", unreachable, "--listen-unix",
                                            first.dir() + "/second.sock", "--mongodb-state-dir",
                                            first.dir() + "/state"});
  CHECK(code != 0);
  CHECK_THAT(output, Catch::Contains("is in use by another siobridged") &&
                         Catch::Contains("its own mongodb.state_dir"));
}

TEST_CASE(
    "graceful shutdown: requests in flight finish, new ones are refused or wait for the next "
    "daemon") {
  DaemonProcess daemon({"--shutdown-drain-timeout", "20s"});
  REQUIRE(daemon.wait_ready());
  ClientServer slow(daemon.address(), "slow");
  ClientServer caller(daemon.address(), "caller");
  client::ClientOptions tool_options;
  tool_options.address = daemon.address();
  client::BridgeClient tool(tool_options);  // not attached: its calls are not numbered
  slow.with([](auto& s) {
    s.add_socket("s1", {"room-of-slow"});
    return 0;
  });
  slow.set_answer_delay(std::chrono::milliseconds(3000));
  REQUIRE(slow.client().wait_attached(std::chrono::seconds(20)));
  REQUIRE(caller.client().wait_attached(std::chrono::seconds(20)));

  auto pending = std::async(std::launch::async, [&] { return caller.client().all_rooms("/", {}); });
  REQUIRE(slow.wait_until([](auto& s) { return !s.commands.empty(); }));
  daemon.signal(SIGTERM);
  // While the request runs, new work is refused...
  grpc::Status refused;
  CHECK(poll_until(
      [&] {
        refused = tool.broadcast(json_event("[\"late\"]"), to_everyone()).status;
        return refused.error_code() == grpc::StatusCode::UNAVAILABLE;
      },
      std::chrono::milliseconds(2500)));
  CHECK_THAT(refused.error_message(), Catch::Contains("shutting down"));
  // ...or, numbered by an attached server, neither applied nor refused: it
  // waits for the next daemon (docs/PROTOCOL.md section 20).
  auto numbered = std::async(std::launch::async, [&] {
    return caller.client().broadcast(json_event("[\"numbered\"]"), to_everyone()).status;
  });
  CHECK(pending.wait_for(std::chrono::seconds(0)) != std::future_status::ready);
  auto rooms = pending.get();
  REQUIRE(rooms.ok());
  CHECK(std::count(rooms.value.rooms().begin(), rooms.value.rooms().end(), "room-of-slow") == 1);
  CHECK(daemon.wait_exit(std::chrono::seconds(30)) == 0);
  CHECK_THAT(daemon.log(), Catch::Contains("draining") && Catch::Contains("stopped"));
  CHECK(numbered.wait_for(std::chrono::seconds(0)) != std::future_status::ready);
  daemon.start();
  REQUIRE(daemon.wait_ready());
  REQUIRE(numbered.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  CHECK(numbered.get().ok());
  CHECK(caller.client().resent() == 1);
}

TEST_CASE("a daemon restarted under attached clients: they reattach and work continues") {
  DaemonProcess daemon;
  REQUIRE(daemon.wait_ready());
  ClientServer a(daemon.address(), "a", {"/", "/chat"});
  ClientServer b(daemon.address(), "b", {"/", "/chat"});
  a.with([](auto& s) {
    s.add_socket("a1", {}, "/chat");
    return 0;
  });
  REQUIRE(a.client().wait_attached(std::chrono::seconds(20)));
  REQUIRE(b.client().wait_attached(std::chrono::seconds(20)));
  REQUIRE(b.client().broadcast(json_event("[\"before\"]", "/chat"), to_everyone()).ok());
  REQUIRE(a.wait_until([](auto& s) { return s.delivered.size() == 1; }));

  CHECK(daemon.terminate() == 0);
  daemon.start();
  REQUIRE(daemon.wait_ready());
  REQUIRE(
      poll_until([&] { return a.client().attach_count() == 2 && b.client().attach_count() == 2; }));
  // Namespaces were restored with the new attachment; the old id is retried transparently.
  REQUIRE(b.client().broadcast(json_event("[\"after\"]", "/chat"), to_everyone()).ok());
  REQUIRE(a.wait_until([](auto& s) { return s.delivered.size() == 2; }));
  CHECK(a.with([](auto& s) { return s.delivered.back().packet.data->bytes; }) == "[\"after\"]");
  auto count = b.client().server_count("/chat");
  REQUIRE(count.ok());
  CHECK(count.value.count() == 2);
}

TEST_CASE("memory stays bounded when an attached server stops reading") {
  // A server that stops reading holds nobody up: its queue grows until its
  // own limit closes it (a small attachment_queue_bytes), or until all queues
  // together reach limits.total_backpressure_bytes, which holds the producers
  // back until limits.stall_timeout closes it.
  const bool queue_limit = GENERATE(true, false);
  INFO((queue_limit ? "closed for its queue" : "closed for stalling"));
  // Under AddressSanitizer freed memory stays resident in its quarantine
  // (256 MiB by default); a small one keeps RSS meaningful.
  const int metrics_port = free_port();
  DaemonProcess daemon(
      {"--limits-attachment-queue-bytes", queue_limit ? "4MiB" : "64MiB",
       "--limits-total-backpressure-bytes", "8MiB", "--limits-attachment-queue-messages", "100000",
       "--limits-backpressure-bytes", "1MiB", "--limits-stall-timeout", "2s", "--metrics-listen",
       "127.0.0.1:" + std::to_string(metrics_port)},
      {{"ASAN_OPTIONS", "quarantine_size_mb=8:detect_leaks=0"}});
  REQUIRE(daemon.wait_ready());
  StalledReader stalled(daemon.address(), "stalled");
  REQUIRE(stalled.hello_sent());

  ClientServer sender(daemon.address(), "sender");
  REQUIRE(sender.client().wait_attached(std::chrono::seconds(20)));
  REQUIRE(poll_until([&] {
    auto s = sender.client().status();
    return s.ok() && s.value.attachments_size() == 2;
  }));
  const long rss_before = daemon.rss_kib();
  const std::string chunk(60 << 10, 'x');
  pb::BroadcastOptions volatile_opts = to_everyone();
  volatile_opts.set_volatile_(true);
  // 3,000 x 60 KiB = 180 MiB offered to a reader that takes nothing. Plain
  // broadcasts wait once it is past limits.backpressure_bytes (back-pressure);
  // volatile ones, sent beside them, are dropped for it instead.
  auto stalled_gone = [&] {
    auto s = sender.client().status();
    return s.ok() && !is_attached(sender.client(), "stalled");
  };
  std::atomic<bool> closed{false};
  std::thread volatile_sender([&] {
    ClientServer other(daemon.address(), "volatile sender");
    if (!other.client().wait_attached(std::chrono::seconds(20))) return;
    while (!closed)
      (void)other.client().broadcast(json_event("[\"" + chunk + "\"]"), volatile_opts);
  });
  for (int i = 0; i < 3000 && !closed; ++i) {
    REQUIRE(sender.client().broadcast(json_event("[\"" + chunk + "\"]"), to_everyone()).ok());
    if (i % 100 == 99) closed = stalled_gone();
  }
  REQUIRE(poll_until(stalled_gone));
  closed = true;
  volatile_sender.join();
  // What the proto promises such a server: RESOURCE_EXHAUSTED, saying why.
  const auto ended = stalled.drain();
  CHECK(ended.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  const long growth_kib = daemon.rss_kib() - rss_before;
  INFO("RSS grew by " << growth_kib << " KiB");
  CHECK(growth_kib < 64 * 1024);
  // Volatile packets went first, then the attachment.
  const auto metrics = http_get(metrics_port, "/metrics");
  CHECK(metric_value(metrics, "siobridge_volatile_dropped_total") > 0);
  if (queue_limit) {
    CHECK_THAT(ended.error_message(), Catch::Contains("did not keep up"));
    CHECK(metric_value(metrics, "siobridge_attachments_closed_total{reason=\"queue limit\"}") == 1);
  } else {
    CHECK_THAT(ended.error_message(), Catch::Contains("stopped reading"));
    CHECK_THAT(daemon.log(), Catch::Contains("stopped reading its Attach stream"));
    CHECK(metric_value(metrics, "siobridge_attachments_closed_total{reason=\"stalled reader\"}") ==
          1);
  }
}

TEST_CASE("one Attach stream, two servers: separate identities, calls answered in order") {
  DaemonProcess daemon;
  REQUIRE(daemon.wait_ready());
  auto stub = pb::Bridge::NewStub(
      grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = stub->Attach(&context);
  for (const char* ref : {"one", "two"}) {
    pb::ServerMessage hello;
    hello.mutable_hello()->set_name(std::string("server-") + ref);
    hello.mutable_hello()->add_namespaces("/");
    hello.mutable_hello()->set_client_ref(ref);
    REQUIRE(stream->Write(hello));
  }
  std::map<std::string, std::string> ids;
  pb::DaemonMessage message;
  while (ids.size() < 2 && stream->Read(&message)) {
    if (message.has_welcome())
      ids[message.welcome().client_ref()] = message.welcome().attachment_id();
  }
  REQUIRE(ids.size() == 2);
  REQUIRE(ids["one"] != ids["two"]);

  auto call = [&](std::uint64_t ref, auto fill) {
    pb::ServerMessage m;
    m.mutable_call()->set_ref(ref);
    m.mutable_call()->set_attachment_id(ids["one"]);
    fill(*m.mutable_call());
    REQUIRE(stream->Write(m));
  };
  // From server one: a broadcast, a disconnect, a query, a broken call.
  call(1, [](pb::Call& c) {
    *c.mutable_broadcast()->mutable_packet() = json_event("[\"hi\"]");
    *c.mutable_broadcast()->mutable_opts() = to_everyone();
  });
  call(2, [](pb::Call& c) {
    c.mutable_disconnect_sockets()->set_namespace_("/");
    *c.mutable_disconnect_sockets()->mutable_opts() = to_everyone();
  });
  call(3, [](pb::Call& c) { c.mutable_all_rooms()->set_namespace_("/"); });
  call(4, [](pb::Call& c) { c.mutable_server_count()->set_namespace_("no-slash"); });

  // Server two gets the work of server one, in order, and answers the query.
  std::vector<pb::Command> commands;
  std::map<std::uint64_t, pb::Result> results;
  while ((commands.size() < 3 || results.size() < 2) && stream->Read(&message)) {
    if (message.has_command()) {
      CHECK(message.command().attachment_id() == ids["two"]);
      commands.push_back(message.command());
      if (message.command().has_all_rooms()) {
        pb::ServerMessage reply;
        reply.mutable_reply()->set_command_id(message.command().id());
        reply.mutable_reply()->set_attachment_id(ids["two"]);
        reply.mutable_reply()->mutable_rooms()->add_rooms("room-of-two");
        REQUIRE(stream->Write(reply));
      }
    }
    if (message.has_result()) results[message.result().ref()] = message.result();
  }
  REQUIRE(commands.size() == 3);
  CHECK(commands[0].has_broadcast());
  CHECK(commands[1].has_disconnect_sockets());
  CHECK(commands[2].has_all_rooms());
  REQUIRE(results.count(3));
  CHECK(results[3].status_code() == 0);
  REQUIRE(results[3].all_rooms().rooms_size() == 1);
  CHECK(results[3].all_rooms().rooms(0) == "room-of-two");
  REQUIRE(results.count(4));
  CHECK(results[4].status_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_FALSE(results.count(1));  // fire-and-forget calls answer only on failure
  context.TryCancel();
}
