// Helpers shared by the tests that run siobridged processes.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <random>
#include <regex>
#include <string>
#include <thread>

#include "siobridge/client.h"

namespace siobridge::testing {

// Another process's state can only be observed by asking it: asks `check`
// every 20 ms until it holds or `timeout` passes.
inline bool poll_until(const std::function<bool()>& check,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (check()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return check();
}

inline client::pb::Packet json_event(const std::string& json, const std::string& ns = "/") {
  client::pb::Packet packet;
  packet.set_namespace_(ns);
  packet.set_type(client::pb::Packet::TYPE_EVENT);
  packet.mutable_data()->set_kind(client::pb::Value::KIND_STR);
  packet.mutable_data()->set_data(json);
  return packet;
}

inline client::pb::BroadcastOptions to_everyone() {
  client::pb::BroadcastOptions opts;
  opts.set_exclude_sid(true);
  return opts;
}

// A unary Broadcast with `attachment` as given, as any client might send it.
inline grpc::Status raw_broadcast(const std::string& address, const std::string& attachment,
                                  const client::pb::Packet& packet,
                                  const client::pb::BroadcastOptions& opts = to_everyone()) {
  auto stub =
      client::pb::Bridge::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  client::pb::BroadcastRequest request;
  request.set_attachment_id(attachment);
  *request.mutable_packet() = packet;
  *request.mutable_opts() = opts;
  client::pb::OperationReply reply;
  return stub->Broadcast(&context, request, &reply);
}

// A server that attaches to "/" and then never reads its stream.
class StalledReader {
 public:
  StalledReader(const std::string& address, const std::string& name)
      : stub_(client::pb::Bridge::NewStub(
            grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))),
        stream_(stub_->Attach(&context_)) {
    client::pb::ServerMessage hello;
    hello.mutable_hello()->set_name(name);
    hello.mutable_hello()->add_namespaces("/");
    hello_sent_ = stream_->Write(hello);
  }
  ~StalledReader() { context_.TryCancel(); }
  bool hello_sent() const { return hello_sent_; }
  // Reads what is left, then the status the daemon ended the stream with.
  grpc::Status drain() {
    client::pb::DaemonMessage message;
    while (stream_->Read(&message)) {
    }
    return stream_->Finish();
  }

 private:
  std::unique_ptr<client::pb::Bridge::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<client::pb::ServerMessage, client::pb::DaemonMessage>>
      stream_;
  bool hello_sent_ = false;
};

// Whether the daemon lists a server called `name` among its attachments.
inline bool is_attached(client::BridgeClient& client, const std::string& name) {
  auto status = client.status();
  if (!status.ok()) return false;
  for (const auto& a : status.value.attachments()) {
    if (a.name() == name) return true;
  }
  return false;
}

// A loopback port nothing listens on right now.
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// The body of GET http://127.0.0.1:port/path (HTTP/1.0, enough for /metrics).
inline std::string http_get(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return "";
  }
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  (void)::write(fd, request.data(), request.size());
  std::string response;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0)
    response.append(buffer, static_cast<std::size_t>(n));
  ::close(fd);
  const auto body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

// The value of the first sample of `metric` (with its labels) in Prometheus text.
inline double metric_value(const std::string& text, const std::string& metric) {
  const auto at = text.find("\n" + metric + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + metric.size() + 2));
}

}  // namespace siobridge::testing
