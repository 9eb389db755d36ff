#include "tests/support/client_server.h"

#include "daemon/api/convert.h"

namespace siobridge::testing {

ClientServer::ClientServer(const std::string& address, const std::string& name,
                           std::vector<std::string> namespaces)
    : fake_(name) {
  fake_.sink = this;
  client::ClientOptions options;
  options.address = address;
  options.attach = true;
  options.name = name;
  options.namespaces = std::move(namespaces);
  options.call_timeout = std::chrono::seconds(20);
  client_ = std::make_unique<client::BridgeClient>(options, this);
}

ClientServer::~ClientServer() {
  client_.reset();
  for (auto& t : delayed_) t.join();
}

void ClientServer::set_answer_delay(std::chrono::milliseconds delay) {
  std::lock_guard lock(mutex_);
  delay_ = delay;
}

bool ClientServer::wait_until(
    const std::function<bool(const core::testing::FakeServer&)>& predicate,
    std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return predicate(fake_); });
}

void ClientServer::on_command(const client::pb::Command& command) {
  auto converted = api::from_proto(command);
  if (!converted.ok()) return;
  std::chrono::milliseconds delay;
  {
    std::lock_guard lock(mutex_);
    fake_.deliver(*converted);
    delay = delay_;
    if (delay.count() == 0) fake_.flush();
  }
  changed_.notify_all();
  if (delay.count() > 0) {
    // A slow server: it answers later, from another thread.
    delayed_.emplace_back([this, delay] {
      std::this_thread::sleep_for(delay);
      std::lock_guard lock(mutex_);
      fake_.flush();
    });
  }
}

void ClientServer::send_ack_count(core::CommandId command, std::uint32_t count) {
  client::pb::Reply reply;
  reply.set_command_id(command);
  reply.set_ack_count(count);
  client_->reply(reply);
}

void ClientServer::send_ack(core::CommandId command, const std::string& sid,
                            const core::AckResult& result) {
  client::pb::Reply reply;
  reply.set_command_id(command);
  api::to_proto(sid, result, reply.mutable_ack());
  client_->reply(reply);
}

void ClientServer::send_rooms(core::CommandId command, std::vector<std::string> rooms) {
  client::pb::Reply reply;
  reply.set_command_id(command);
  for (const auto& r : rooms) reply.mutable_rooms()->add_rooms(r);
  client_->reply(reply);
}

void ClientServer::send_sockets(core::CommandId command, std::vector<wire::SocketDetails> sockets) {
  client::pb::Reply reply;
  reply.set_command_id(command);
  for (const auto& s : sockets) {
    auto* out = reply.mutable_sockets()->add_sockets();
    out->set_id(s.id);
    for (const auto& r : s.rooms) out->add_rooms(r);
    out->set_handshake(s.handshake);
    out->set_data(s.data);
  }
  client_->reply(reply);
}

void ClientServer::send_emit_reply(core::CommandId command, wire::Bytes payload) {
  client::pb::Reply reply;
  reply.set_command_id(command);
  reply.set_emit_reply(payload);
  client_->reply(reply);
}

}  // namespace siobridge::testing
