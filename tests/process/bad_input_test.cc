// siobridged as a process given bad or outsized input through its gRPC API:
// attachment ids that are not one from a Welcome, MessageBatches nested or
// sent before the Hello, a Hello that lists
// thousands of namespaces, a backlog of many MiB for a server that reads
// nothing. In-memory bus (no MongoDB needed).
#include <catch2/catch.hpp>

#include <algorithm>
#include <sstream>

#include "tests/process/process_helpers.h"
#include "tests/support/client_server.h"
#include "tests/support/daemon_process.h"

using namespace siobridge;
using namespace siobridge::testing;
namespace pb = siobridge::v1;

namespace {

std::size_t lines_containing(const std::string& text, const std::string& needle) {
  std::istringstream in(text);
  std::size_t count = 0;
  for (std::string line; std::getline(in, line);) count += line.find(needle) != std::string::npos;
  return count;
}

}  // namespace

TEST_CASE("attachment ids that are not one from a Welcome are refused as malformed") {
  DaemonProcess daemon;
  REQUIRE(daemon.wait_ready());
  ClientServer a(daemon.address(), "a"), b(daemon.address(), "b");
  a.with([](auto& s) {
    s.add_socket("a1");
    return 0;
  });
  b.with([](auto& s) {
    s.add_socket("b1");
    return 0;
  });
  REQUIRE(a.client().wait_attached(std::chrono::seconds(20)));
  REQUIRE(b.client().wait_attached(std::chrono::seconds(20)));
  const std::string id = a.client().attachment_id();  // "<instance>.<n>"
  const std::string instance = id.substr(0, id.find('.'));

  // Each would name attachment a (or another one) if read loosely.
  const std::vector<std::string> malformed = {id + "x",
                                              id + " ",
                                              id + ".1",
                                              instance + ".+1",
                                              instance + ".",
                                              "bogus.1",
                                              "bogus." + id.substr(id.find('.') + 1),
                                              "." + id};
  for (const auto& bad : malformed) {
    INFO("attachment id \"" << bad << "\"");
    auto status = raw_broadcast(daemon.address(), bad, json_event("[\"stray\"]"));
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(status.error_message(), Catch::Contains("is not an attachment id"));
    CHECK_THAT(status.error_message(), !Catch::Contains("restarted"));
  }
  // Well-formed, but of no attachment of this daemon.
  auto foreign = raw_broadcast(daemon.address(), "AbCdEfGh.1", json_event("[\"stray\"]"));
  CHECK(foreign.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK_THAT(foreign.error_message(), Catch::Contains("AbCdEfGh.1"));

  // On the Attach stream too: a Call and a namespace change naming "<a>x".
  auto stub = pb::Bridge::NewStub(
      grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = stub->Attach(&context);
  pb::ServerMessage hello;
  hello.mutable_hello()->set_name("raw");
  REQUIRE(stream->Write(hello));
  pb::DaemonMessage message;
  REQUIRE(stream->Read(&message));
  REQUIRE(message.has_welcome());
  const std::string own = message.welcome().attachment_id();
  pb::ServerMessage call;
  call.mutable_call()->set_ref(1);
  call.mutable_call()->set_attachment_id(own + "x");
  *call.mutable_call()->mutable_broadcast()->mutable_packet() = json_event("[\"stray\"]");
  REQUIRE(stream->Write(call));
  pb::ServerMessage join;
  join.mutable_join_namespace()->set_namespace_("/");
  join.mutable_join_namespace()->set_attachment_id(own + "x");
  REQUIRE(stream->Write(join));
  bool result_seen = false, namespace_error_seen = false;
  while (!(result_seen && namespace_error_seen) && stream->Read(&message)) {
    if (message.has_result()) {
      result_seen = true;
      CHECK(message.result().ref() == 1);
      CHECK(message.result().status_code() == grpc::StatusCode::INVALID_ARGUMENT);
      CHECK_THAT(message.result().status_message(), Catch::Contains("is not an attachment id"));
    }
    if (message.has_namespace_error()) {
      namespace_error_seen = true;
      CHECK(message.namespace_error().status_code() == grpc::StatusCode::INVALID_ARGUMENT);
      CHECK(message.namespace_error().attachment_id() == own + "x");
      CHECK_THAT(message.namespace_error().message(), Catch::Contains("is not an attachment id"));
    }
  }
  CHECK(result_seen);
  CHECK(namespace_error_seen);
  context.TryCancel();

  // Nothing of the above reached a server: the first packet b gets is a's real one.
  REQUIRE(raw_broadcast(daemon.address(), id, json_event("[\"real\"]")).ok());
  REQUIRE(b.wait_until([](auto& s) { return !s.delivered.empty(); }));
  CHECK(b.with([](auto& s) { return s.delivered.size(); }) == 1);
  CHECK(b.with([](auto& s) { return s.delivered[0].packet.data->bytes; }) == "[\"real\"]");
  CHECK(a.with([](auto& s) { return s.delivered.size(); }) == 0);
}

TEST_CASE(
    "a MessageBatch is applied as its messages in order; nested or first, it ends the stream") {
  DaemonProcess daemon;
  REQUIRE(daemon.wait_ready());
  ClientServer listener(daemon.address(), "listener");
  listener.with([](auto& s) {
    s.add_socket("l1");
    return 0;
  });
  REQUIRE(listener.client().wait_attached(std::chrono::seconds(20)));
  auto stub = pb::Bridge::NewStub(
      grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials()));
  const auto broadcast = [](pb::ServerMessage& message, int n) {
    auto* call = message.mutable_call();
    call->set_ref(static_cast<std::uint64_t>(n));
    *call->mutable_broadcast()->mutable_packet() = json_event("[" + std::to_string(n) + "]");
    *call->mutable_broadcast()->mutable_opts() = to_everyone();
  };

  SECTION("as the first message of a stream") {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    auto stream = stub->Attach(&context);
    pb::ServerMessage batch;
    *batch.mutable_batch()->add_messages()->mutable_hello() = pb::Hello{};
    REQUIRE(stream->Write(batch));
    pb::DaemonMessage message;
    CHECK_FALSE(stream->Read(&message));
    const auto status = stream->Finish();
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(status.error_message(), Catch::Contains("must be Hello"));
  }

  SECTION("after the Hello") {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    auto stream = stub->Attach(&context);
    pb::ServerMessage hello;
    hello.mutable_hello()->set_name("batching");
    hello.mutable_hello()->add_namespaces("/");
    hello.mutable_hello()->add_features("message_batch");
    REQUIRE(stream->Write(hello));
    pb::DaemonMessage message;
    REQUIRE(stream->Read(&message));
    REQUIRE(message.has_welcome());
    CHECK(std::vector<std::string>(message.welcome().features().begin(),
                                   message.welcome().features().end()) ==
          std::vector<std::string>{"message_batch"});

    // Three calls in one batch, a fourth alone: the listener gets 1, 2, 3, 4.
    pb::ServerMessage batch;
    for (int n = 1; n <= 3; ++n) broadcast(*batch.mutable_batch()->add_messages(), n);
    REQUIRE(stream->Write(batch));
    pb::ServerMessage single;
    broadcast(single, 4);
    REQUIRE(stream->Write(single));
    REQUIRE(listener.wait_until([](auto& s) { return s.delivered.size() >= 4; }));
    CHECK(listener.with([](auto& s) {
      std::vector<std::string> data;
      for (const auto& d : s.delivered) data.push_back(d.packet.data->bytes);
      return data;
    }) == std::vector<std::string>{"[1]", "[2]", "[3]", "[4]"});

    // A batch inside a batch ends the stream; what came before it in the
    // outer batch was applied, what came after it was not.
    pb::ServerMessage nested;
    broadcast(*nested.mutable_batch()->add_messages(), 5);
    broadcast(*nested.mutable_batch()->add_messages()->mutable_batch()->add_messages(), 6);
    broadcast(*nested.mutable_batch()->add_messages(), 7);
    REQUIRE(stream->Write(nested));
    while (stream->Read(&message)) {
    }
    const auto status = stream->Finish();
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(status.error_message(), Catch::Contains("MessageBatch inside a MessageBatch"));
    // A marker another server sends now arrives right after 5: 6 and 7 never came.
    ClientServer marker(daemon.address(), "marker");
    REQUIRE(marker.client().wait_attached(std::chrono::seconds(20)));
    REQUIRE(
        raw_broadcast(daemon.address(), marker.client().attachment_id(), json_event("[\"marker\"]"))
            .ok());
    REQUIRE(listener.wait_until([](auto& s) { return s.delivered.size() >= 6; }));
    CHECK(listener.with([](auto& s) {
      std::vector<std::string> data;
      for (const auto& d : s.delivered) data.push_back(d.packet.data->bytes);
      return data;
    }) == std::vector<std::string>{"[1]", "[2]", "[3]", "[4]", "[5]", "[\"marker\"]"});
  }
}

TEST_CASE("a Hello with 10,000 namespaces is logged in one line") {
  DaemonProcess daemon;
  REQUIRE(daemon.wait_ready());
  auto stub = pb::Bridge::NewStub(
      grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  auto stream = stub->Attach(&context);
  constexpr int kNamespaces = 10'000;
  pb::ServerMessage hello;
  hello.mutable_hello()->set_name("many");
  for (int i = 0; i < kNamespaces; ++i)
    hello.mutable_hello()->add_namespaces("/ns-" + std::to_string(i));
  REQUIRE(stream->Write(hello));
  pb::DaemonMessage welcome;
  REQUIRE(stream->Read(&welcome));
  REQUIRE(welcome.has_welcome());
  // The summary is written once every namespace is joined; the log reaches
  // the file within a second.
  REQUIRE(poll_until([&] { return daemon.log().find("attached as") != std::string::npos; },
                     std::chrono::seconds(60)));
  context.TryCancel();
  REQUIRE(daemon.terminate() == 0);  // every line flushed
  const std::string log = daemon.log();
  INFO(log.substr(0, 4000));
  CHECK(lines_containing(log, "/ns-") == 1);
  const auto at = log.find("attached as");
  const std::string line = log.substr(at, log.find('\n', at) - at);
  CHECK_THAT(line, Catch::Contains("10000 namespaces") && Catch::Contains("/ns-0, /ns-1") &&
                       Catch::Contains("and 9995 more"));
  // Far fewer lines than namespaces, whatever else start-up and shutdown say.
  CHECK(static_cast<std::size_t>(std::count(log.begin(), log.end(), '\n')) < 100);
}

TEST_CASE("the memory of a backlog of many MiB is given back when its reader is closed") {
  const int metrics_port = free_port();
  // The backlog of a reader that takes nothing grows (it holds nobody up) until
  // all queues together reach 24 MiB and the senders wait, and is dropped when
  // the stream is closed for stalling.
  DaemonProcess daemon({"--limits-backpressure-bytes", "12MiB", "--limits-total-backpressure-bytes",
                        "24MiB", "--limits-attachment-queue-bytes", "48MiB",
                        "--limits-stall-timeout", "2s", "--metrics-listen",
                        "127.0.0.1:" + std::to_string(metrics_port)});
  REQUIRE(daemon.wait_ready());
  StalledReader stalled(daemon.address(), "stalled");
  REQUIRE(stalled.hello_sent());
  ClientServer sender(daemon.address(), "sender");
  REQUIRE(sender.client().wait_attached(std::chrono::seconds(20)));
  REQUIRE(poll_until([&] { return is_attached(sender.client(), "stalled"); }));
  const auto metrics_before = http_get(metrics_port, "/metrics");
  const double releases_before = metric_value(metrics_before, "siobridge_memory_releases_total");
  REQUIRE(releases_before >= 0);

  const std::string chunk(60 << 10, 'x');
  // Up to 60 MiB; the stream is closed after 24 MiB and 2 s without a read.
  for (int i = 0; i < 1000 && (i % 20 != 19 || is_attached(sender.client(), "stalled")); ++i) {
    REQUIRE(sender.client().broadcast(json_event("[\"" + chunk + "\"]"), to_everyone()).ok());
  }
  REQUIRE(poll_until([&] { return !is_attached(sender.client(), "stalled"); }));
  const auto metrics = http_get(metrics_port, "/metrics");
  INFO(metrics);
  CHECK(metric_value(metrics, "siobridge_attachments_closed_total{reason=\"stalled reader\"}") ==
        1);
  CHECK(metric_value(metrics, "siobridge_memory_releases_total") >= releases_before + 1);
}
