// CommandBatcher behind an Outbox, as an Attach stream uses them: the group
// commit of Commands queued while a write is in flight.
#include "daemon/api/command_batcher.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "daemon/api/outbox.h"

using namespace siobridge::api;
namespace pb = ::siobridge::v1;

namespace {

pb::DaemonMessage command(std::uint64_t id, std::size_t payload = 10) {
  pb::DaemonMessage message;
  message.mutable_command()->set_id(id);
  message.mutable_command()->set_namespace_(std::string(payload, 'n'));
  return message;
}

pb::DaemonMessage result(std::uint64_t ref) {
  pb::DaemonMessage message;
  message.mutable_result()->set_ref(ref);
  return message;
}

// What the stream wrote, message by message: the Command ids of a Command or a
// CommandBatch ("b" before a batch's), "r<ref>" for a Result.
struct Stream {
  explicit Stream(CommandBatcher::Caps caps = {})
      : batcher(caps),
        outbox([this](const pb::DaemonMessage* message) { writing = message; },
               [this](pb::DaemonMessage& last, std::size_t items, std::size_t bytes,
                      pb::DaemonMessage& next, std::size_t next_bytes) {
                 return batcher.append(last, items, bytes, next, next_bytes);
               }) {}

  void push(pb::DaemonMessage message, bool batch = true) {
    const auto bytes = message.ByteSizeLong();
    REQUIRE(outbox.push(std::move(message), bytes, batch));
  }
  // Completes the write in flight.
  void write_one() {
    REQUIRE(writing != nullptr);
    const auto* message = writing;
    writing = nullptr;
    if (message->has_command()) {
      written.push_back(std::to_string(message->command().id()));
    } else if (message->has_command_batch()) {
      std::string ids = "b";
      for (const auto& c : message->command_batch().commands()) {
        ids += (ids.size() > 1 ? "," : "") + std::to_string(c.id());
      }
      written.push_back(ids);
    } else {
      written.push_back("r" + std::to_string(message->result().ref()));
    }
    outbox.on_write_done(true);
  }
  void drain() {
    while (writing) write_one();
  }

  CommandBatcher batcher;
  Outbox<pb::DaemonMessage> outbox;
  const pb::DaemonMessage* writing = nullptr;
  std::vector<std::string> written;
};

}  // namespace

TEST_CASE("commands queued behind a write go out as one batch, in order") {
  Stream s;
  s.push(command(1));  // nothing in flight: alone, at once
  REQUIRE(s.writing != nullptr);
  for (std::uint64_t id = 2; id <= 5; ++id) s.push(command(id));
  CHECK(s.outbox.size() == 5);      // every command counts toward the limits
  CHECK(s.outbox.messages() == 2);  // the one being written and one batch
  s.drain();
  CHECK(s.written == std::vector<std::string>{"1", "b2,3,4,5"});
  CHECK(s.outbox.size() == 0);
  CHECK(s.outbox.bytes() == 0);
}

TEST_CASE("a single command waiting alone stays a Command") {
  Stream s;
  s.push(command(1));
  s.push(command(2));
  s.drain();
  CHECK(s.written == std::vector<std::string>{"1", "2"});
}

TEST_CASE("other messages keep their place between commands") {
  Stream s;
  s.push(command(1));
  s.push(command(2));
  s.push(command(3));
  s.push(result(7));
  s.push(command(4));
  s.push(command(5));
  s.drain();
  CHECK(s.written == std::vector<std::string>{"1", "b2,3", "r7", "b4,5"});
}

TEST_CASE("commands for a server that reads no batches are never merged") {
  Stream s;
  s.push(command(1), false);
  s.push(command(2), false);
  s.push(command(3), false);
  s.push(command(4), true);  // cannot join a message of single Commands
  s.push(command(5), true);
  s.push(command(6), false);
  s.drain();
  CHECK(s.written == std::vector<std::string>{"1", "2", "3", "b4,5", "6"});
}

TEST_CASE("a batch stays within the count and byte caps") {
  SECTION("count") {
    Stream s(CommandBatcher::Caps{1 << 20, 3});
    for (std::uint64_t id = 1; id <= 8; ++id) s.push(command(id));
    s.drain();
    CHECK(s.written == std::vector<std::string>{"1", "b2,3,4", "b5,6,7", "8"});
  }
  SECTION("bytes") {
    const auto one = command(1, 100).ByteSizeLong();
    Stream s(CommandBatcher::Caps{2 * one, 100});
    for (std::uint64_t id = 1; id <= 6; ++id) s.push(command(id, 100));
    s.push(command(7, 1000));  // larger than the cap: alone
    s.push(command(8, 100));
    s.drain();
    CHECK(s.written == std::vector<std::string>{"1", "b2,3", "b4,5", "6", "7", "8"});
    // The batch is no larger than its commands sent one by one, plus its own framing.
    pb::DaemonMessage batch = command(2, 100);
    pb::DaemonMessage next = command(3, 100);
    REQUIRE(s.batcher.append(batch, 1, one, next, one));
    CHECK(batch.ByteSizeLong() <= 2 * one + 6);
  }
}

TEST_CASE("closing drops the waiting batch and its counts") {
  Stream s;
  s.push(command(1));
  s.push(command(2));
  s.push(command(3));
  s.outbox.close();
  CHECK(s.outbox.size() == 1);  // the one being written
  CHECK_FALSE(s.outbox.push(command(4), 10, true));
  s.drain();
  CHECK(s.written == std::vector<std::string>{"1"});
  CHECK(s.outbox.size() == 0);
  CHECK(s.outbox.bytes() == 0);
}

TEST_CASE("the batcher merges only Commands") {
  CommandBatcher batcher(CommandBatcher::Caps{});
  auto r = result(1);
  auto c = command(2);
  CHECK_FALSE(batcher.append(r, 1, 10, c, 10));
  CHECK(c.has_command());
  CHECK_FALSE(batcher.append(c, 1, 10, r, 10));
  CHECK(c.has_command());
  CHECK(r.has_result());
}
