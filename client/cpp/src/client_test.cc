// Unit tests of BridgeClient against a fake Bridge service in this process (a
// gRPC server on a Unix socket): calls as a tool, the Attach stream (Welcome,
// commands to the handler, replies, namespace changes), and the one retry of a
// call after the daemon forgot the attachment.
#include "siobridge/client.h"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <vector>

#include "daemon/common/mutex.h"

namespace siobridge::client {
namespace {

using namespace std::chrono_literals;
using Stream = grpc::ServerReaderWriter<pb::DaemonMessage, pb::ServerMessage>;

constexpr auto kDeadline = 20s;

// The daemon's side of the API, as far as these tests need it. Attachment ids
// are "att-1", "att-2", ... in Attach order; forget() makes the current one
// unknown, as a daemon restart does.
class FakeBridge final : public pb::Bridge::Service {
 public:
  grpc::Status Attach(grpc::ServerContext* context, Stream* stream) override {
    pb::ServerMessage hello;
    if (!stream->Read(&hello) || !hello.has_hello()) return {grpc::INVALID_ARGUMENT, "no Hello"};
    pb::DaemonMessage welcome;
    {
      MutexLock lock(mutex_);
      current_ = "att-" + std::to_string(hellos_.size() + 1);
      hellos_.emplace_back(hello.hello().namespaces().begin(), hello.hello().namespaces().end());
      features_.assign(hello.hello().features().begin(), hello.hello().features().end());
      resend_from_.push_back(hello.hello().resend_from());
      context_ = context;
      stream_ = stream;
      welcome.mutable_welcome()->set_attachment_id(current_);
      welcome.mutable_welcome()->set_node_uid("NNNNNNNNNNNNNNNN");
      if (numbers_) welcome.mutable_welcome()->add_features("confirm");
      stream->Write(welcome);
      if (numbers_ && hello.hello().resend_from() > 0) {
        // What "the cluster" holds of the calls sent again.
        pb::DaemonMessage confirmed;
        confirmed.mutable_confirmed()->set_attachment_id(current_);
        confirmed.mutable_confirmed()->set_seq(holds_);
        stream->Write(confirmed);
      }
    }
    pb::ServerMessage message;
    while (stream->Read(&message)) {
      MutexLock lock(mutex_);
      received_.push_back(message);
      if (message.has_call()) {
        seqs_.push_back(message.call().seq());
        if (!silent_) {
          pb::DaemonMessage result;
          result.mutable_result()->set_ref(message.call().ref());
          stream->Write(result);
        }
      }
      changed_.signal_all();
    }
    MutexLock lock(mutex_);
    if (stream_ == stream) stream_ = nullptr, context_ = nullptr;
    return grpc::Status::OK;
  }

  grpc::Status Broadcast(grpc::ServerContext*, const pb::BroadcastRequest* request,
                         pb::OperationReply*) override {
    MutexLock lock(mutex_);
    broadcasts_.push_back(request->attachment_id());
    if (request->attachment_id() != current_) {
      // The client learns of the restart from this answer; its stream ends too.
      if (context_) context_->TryCancel();
      return {grpc::FAILED_PRECONDITION,
              "unknown attachment: the daemon restarted since it was given; attach again"};
    }
    return grpc::Status::OK;
  }

  grpc::Status ServerCount(grpc::ServerContext*, const pb::ServerCountRequest* request,
                           pb::ServerCountReply* reply) override {
    reply->set_count(request->namespace_() == "/three" ? 3 : 0);
    return grpc::Status::OK;
  }

  void forget() {
    MutexLock lock(mutex_);
    current_.clear();
  }
  // Numbered calls: the Welcome accepts "confirm"; calls are answered unless
  // silent; a Hello with calls to send again hears that `holds` is held.
  void numbers(bool silent, std::uint64_t holds) {
    MutexLock lock(mutex_);
    numbers_ = true;
    silent_ = silent;
    holds_ = holds;
  }
  // Ends the current Attach stream, as a daemon that dies.
  void cut() {
    MutexLock lock(mutex_);
    if (context_) context_->TryCancel();
  }
  std::vector<std::uint64_t> seqs() const {
    MutexLock lock(mutex_);
    return seqs_;
  }
  std::vector<std::uint64_t> resend_from() const {
    MutexLock lock(mutex_);
    return resend_from_;
  }
  // Sends `message` on the current Attach stream.
  bool send(const pb::DaemonMessage& message) {
    MutexLock lock(mutex_);
    return stream_ && stream_->Write(message);
  }
  // Waits until `holds` is true of what the streams received.
  bool wait_received(const std::function<bool(const std::vector<pb::ServerMessage>&)>& holds) {
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    MutexLock lock(mutex_);
    while (!holds(received_)) {
      if (!changed_.wait_until(deadline)) return holds(received_);
    }
    return true;
  }
  std::vector<std::vector<std::string>> hellos() const {
    MutexLock lock(mutex_);
    return hellos_;
  }
  std::vector<std::string> features() const {
    MutexLock lock(mutex_);
    return features_;
  }
  std::vector<std::string> broadcasts() const {
    MutexLock lock(mutex_);
    return broadcasts_;
  }

 private:
  mutable Mutex mutex_;
  CondVar changed_{mutex_};
  std::string current_ SIOBRIDGE_GUARDED_BY(mutex_);
  grpc::ServerContext* context_ SIOBRIDGE_GUARDED_BY(mutex_) = nullptr;
  Stream* stream_ SIOBRIDGE_GUARDED_BY(mutex_) = nullptr;
  std::vector<std::vector<std::string>> hellos_ SIOBRIDGE_GUARDED_BY(mutex_);
  std::vector<std::string> features_ SIOBRIDGE_GUARDED_BY(mutex_);  // of the last Hello
  std::vector<pb::ServerMessage> received_ SIOBRIDGE_GUARDED_BY(mutex_);
  std::vector<std::string> broadcasts_ SIOBRIDGE_GUARDED_BY(mutex_);
  bool numbers_ SIOBRIDGE_GUARDED_BY(mutex_) = false;
  bool silent_ SIOBRIDGE_GUARDED_BY(mutex_) = false;
  std::uint64_t holds_ SIOBRIDGE_GUARDED_BY(mutex_) = 0;
  std::vector<std::uint64_t> seqs_ SIOBRIDGE_GUARDED_BY(mutex_);         // of the calls received
  std::vector<std::uint64_t> resend_from_ SIOBRIDGE_GUARDED_BY(mutex_);  // of each Hello
};

// The fake on a Unix socket of its own; shut down before the fake goes.
struct Daemon {
  FakeBridge bridge;
  std::string address;
  std::unique_ptr<grpc::Server> server;

  Daemon() {
    static int count = 0;
    address = "/tmp/siobridge-client-test-" + std::to_string(getpid()) + "-" +
              std::to_string(++count) + ".sock";
    unlink(address.c_str());
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + address, grpc::InsecureServerCredentials());
    builder.RegisterService(&bridge);
    server = builder.BuildAndStart();
    REQUIRE(server);
  }
  ~Daemon() {
    server->Shutdown(std::chrono::system_clock::now() + 5s);
    unlink(address.c_str());
  }
};

ClientOptions attaching(const Daemon& daemon, std::vector<std::string> namespaces) {
  ClientOptions options;
  options.address = daemon.address;  // a path: the client adds "unix:"
  options.attach = true;
  options.namespaces = std::move(namespaces);
  options.reconnect_min = 10ms;
  options.call_timeout = kDeadline;
  return options;
}

class Handler final : public CommandHandler {
 public:
  void on_command(const pb::Command& command) override { first_.set_value(command); }
  std::future<pb::Command> first() { return first_.get_future(); }

 private:
  std::promise<pb::Command> first_;
};

// Every Command's id, in the order the handler saw them.
class RecordingHandler final : public CommandHandler {
 public:
  void on_command(const pb::Command& command) override {
    {
      MutexLock lock(mutex_);
      ids_.push_back(command.id());
    }
    changed_.signal_all();
  }
  std::vector<std::uint64_t> wait_for(std::size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    MutexLock lock(mutex_);
    while (ids_.size() < count && changed_.wait_until(deadline)) {
    }
    return ids_;
  }

 private:
  Mutex mutex_;
  CondVar changed_{mutex_};
  std::vector<std::uint64_t> ids_ SIOBRIDGE_GUARDED_BY(mutex_);
};

}  // namespace

TEST_CASE("client: a tool calls operations without attaching") {
  Daemon daemon;
  ClientOptions options;
  options.address = "unix:" + daemon.address;
  BridgeClient client(options);
  auto count = client.server_count("/three");
  REQUIRE(count.ok());
  CHECK(count.value.count() == 3);
  CHECK(client.attachment_id().empty());
  CHECK(daemon.bridge.hellos().empty());
}

TEST_CASE("client: attached, commands reach the handler and replies reach the daemon") {
  Daemon daemon;
  Handler handler;
  auto first = handler.first();
  BridgeClient client(attaching(daemon, {"/", "/chat"}), &handler);
  REQUIRE(client.wait_attached(kDeadline));
  CHECK(client.attachment_id() == "att-1");
  CHECK(client.node_uid() == "NNNNNNNNNNNNNNNN");
  CHECK(client.attach_count() == 1);
  CHECK(daemon.bridge.hellos() == std::vector<std::vector<std::string>>{{"/", "/chat"}});

  pb::DaemonMessage command;
  command.mutable_command()->set_id(5);
  command.mutable_command()->set_namespace_("/chat");
  REQUIRE(daemon.bridge.send(command));
  REQUIRE(first.wait_for(kDeadline) == std::future_status::ready);
  CHECK(first.get().id() == 5);

  pb::Reply reply;
  reply.set_command_id(5);
  reply.set_ack_count(2);
  client.reply(reply);
  client.join_namespace("/admin");
  CHECK(daemon.bridge.wait_received([](const std::vector<pb::ServerMessage>& received) {
    return received.size() == 2 && received[0].reply().command_id() == 5 &&
           received[0].reply().ack_count() == 2 &&
           received[1].join_namespace().namespace_() == "/admin";
  }));
}

TEST_CASE("client: a call the daemon refuses for a forgotten attachment is retried once") {
  Daemon daemon;
  BridgeClient client(attaching(daemon, {"/"}));
  REQUIRE(client.wait_attached(kDeadline));
  client.join_namespace("/b");
  client.leave_namespace("/");
  daemon.bridge.forget();

  pb::Packet packet;
  packet.set_namespace_("/b");
  auto outcome = client.broadcast(packet, {});
  CHECK(outcome.ok());
  CHECK(daemon.bridge.broadcasts() == std::vector<std::string>{"att-1", "att-2"});
  // The new stream's Hello carries the namespaces as they are now.
  CHECK(daemon.bridge.hellos().back() == std::vector<std::string>{"/b"});
}

TEST_CASE("client: asks for CommandBatches and hands their Commands over in order") {
  Daemon daemon;
  RecordingHandler handler;
  BridgeClient client(attaching(daemon, {"/"}), &handler);
  REQUIRE(client.wait_attached(kDeadline));
  CHECK(daemon.bridge.features() == std::vector<std::string>{"command_batch", "confirm"});

  pb::DaemonMessage single;
  single.mutable_command()->set_id(1);
  REQUIRE(daemon.bridge.send(single));
  pb::DaemonMessage batch;
  for (std::uint64_t id : {2, 3, 4}) batch.mutable_command_batch()->add_commands()->set_id(id);
  REQUIRE(daemon.bridge.send(batch));
  pb::DaemonMessage after;
  after.mutable_command()->set_id(5);
  REQUIRE(daemon.bridge.send(after));
  CHECK(handler.wait_for(5) == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
}

TEST_CASE("client: numbered, a broadcast cut off by a daemon restart is sent again and returns") {
  // The first daemon takes call 1 and dies before answering; the next holds
  // none of it: the client sends call 1 again, with its number.
  for (std::uint64_t held : {0, 1}) {
    INFO("the restarted daemon holds up to call " << held);
    Daemon daemon;
    daemon.bridge.numbers(/*silent=*/true, held);
    BridgeClient client(attaching(daemon, {"/"}));
    REQUIRE(client.wait_attached(kDeadline));
    pb::Packet packet;
    packet.set_namespace_("/");
    auto outcome = std::async(std::launch::async, [&] { return client.broadcast(packet, {}); });
    REQUIRE(daemon.bridge.wait_received(
        [](const std::vector<pb::ServerMessage>& received) { return !received.empty(); }));
    daemon.bridge.numbers(/*silent=*/false, held);
    daemon.bridge.cut();
    REQUIRE(outcome.wait_for(kDeadline) == std::future_status::ready);
    CHECK(outcome.get().ok());
    CHECK(daemon.bridge.resend_from() == std::vector<std::uint64_t>{0, 1});
    if (held == 0) {
      CHECK(daemon.bridge.seqs() == std::vector<std::uint64_t>{1, 1});  // the same number again
      CHECK(client.resent() == 1);
    } else {
      CHECK(daemon.bridge.seqs() == std::vector<std::uint64_t>{1});  // the cluster had it
      CHECK(client.resent() == 0);
    }
    CHECK(client.kept() == 0 + (held == 0 ? 1 : 0));  // kept until a Confirmed covers it
    // The next call gets the next number.
    CHECK(client.broadcast(packet, {}).ok());
    CHECK(daemon.bridge.seqs().back() == 2);
  }
}

TEST_CASE("client: TLS options that cannot work fail every call, naming why") {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  ClientOptions plain;
  plain.address = "127.0.0.1:7400";
  CHECK(channel_credentials(plain, &credentials).ok());

  ClientOptions unix_socket;
  unix_socket.address = "/tmp/siobridged.sock";
  unix_socket.tls_ca_file = "/etc/hostname";
  auto status = channel_credentials(unix_socket, &credentials);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(status.error_message(), Catch::Contains("TCP address"));

  ClientOptions missing = plain;
  missing.tls_ca_file = "/nonexistent/ca.pem";
  CHECK_THAT(channel_credentials(missing, &credentials).error_message(),
             Catch::Contains("tls_ca_file: cannot read /nonexistent/ca.pem"));
  ClientOptions half = plain;
  half.tls_ca_file = "/etc/hostname";
  half.tls_cert_file = "/etc/hostname";
  CHECK_THAT(channel_credentials(half, &credentials).error_message(),
             Catch::Contains("go together"));
  ClientOptions no_ca = plain;
  no_ca.tls_cert_file = no_ca.tls_key_file = "/etc/hostname";
  CHECK_THAT(channel_credentials(no_ca, &credentials).error_message(),
             Catch::Contains("tls_ca_file"));

  // A client made with them refuses every call with that status, and never attaches.
  missing.call_timeout = std::chrono::milliseconds(100);
  missing.attach = true;
  BridgeClient client(missing);
  auto outcome = client.status();
  CHECK(outcome.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_FALSE(client.wait_attached(std::chrono::milliseconds(10)));
}

}  // namespace siobridge::client
