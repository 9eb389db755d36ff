// A socket.io server stand-in attached to a real siobridged through the C++
// client: the FakeServer socket model of daemon/core/testing, fed by the Attach
// stream and answering over it. The test thread inspects it under a lock.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "daemon/core/testing/test_cluster.h"
#include "siobridge/client.h"

namespace siobridge::testing {

class ClientServer final : public client::CommandHandler, private core::testing::ReplySink {
 public:
  ClientServer(const std::string& address, const std::string& name,
               std::vector<std::string> namespaces = {"/"});
  ~ClientServer() override;

  client::BridgeClient& client() { return *client_; }
  // Answers are sent this long after the command (a slow server).
  void set_answer_delay(std::chrono::milliseconds delay);

  template <typename Fn>
  auto with(Fn&& fn) {
    std::lock_guard lock(mutex_);
    return fn(fake_);
  }
  bool wait_until(const std::function<bool(const core::testing::FakeServer&)>& predicate,
                  std::chrono::milliseconds timeout = std::chrono::seconds(20));

  void on_command(const client::pb::Command& command) override;

 private:
  void send_ack_count(core::CommandId command, std::uint32_t count) override;
  void send_ack(core::CommandId command, const std::string& sid,
                const core::AckResult& result) override;
  void send_rooms(core::CommandId command, std::vector<std::string> rooms) override;
  void send_sockets(core::CommandId command, std::vector<wire::SocketDetails> sockets) override;
  void send_emit_reply(core::CommandId command, wire::Bytes payload) override;

  std::recursive_mutex mutex_;
  std::condition_variable_any changed_;
  core::testing::FakeServer fake_;
  std::chrono::milliseconds delay_{0};
  std::vector<std::thread> delayed_;
  std::unique_ptr<client::BridgeClient> client_;  // last: its thread calls on_command
};

}  // namespace siobridge::testing
