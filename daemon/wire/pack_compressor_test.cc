// The compressor's skip rule (PackCompressor): a namespace whose packs do not
// compress goes plain, untried, for a bounded number of packs or time, then is
// tried again, so that it recovers when its data becomes compressible.
#include <catch2/catch.hpp>
#include <chrono>
#include <random>
#include <string>

#include "daemon/wire/pack.h"

using namespace siobridge::wire;
using namespace std::chrono_literals;
using Clock = PackCompressor::Clock;

namespace {

Bytes noise(std::size_t bytes, unsigned seed) {
  std::mt19937 random(seed);
  Bytes out(bytes, '\0');
  for (auto& c : out) c = static_cast<char>(random());
  return out;
}

Bytes text(std::size_t bytes) {
  Bytes out;
  for (int i = 0; out.size() < bytes; ++i) {
    out += R"({"user":"user-)" + std::to_string(i % 7) + R"(","room":"general","text":"hello"})";
  }
  out.resize(bytes);
  return out;
}

PackCompressor::SkipRule rule() {
  PackCompressor::SkipRule r;
  r.packs = 3;
  r.time = 10s;
  return r;
}

}  // namespace

TEST_CASE("a sample that does not compress leaves the pack plain, untried") {
  PackCompressor compressor(rule());
  const Clock::time_point t0{};
  CHECK_FALSE(compressor.compress("/", noise(64 << 10, 1), t0));
  CHECK(compressor.counters().samples == 1);
  CHECK(compressor.counters().samples_refused == 1);
  CHECK(compressor.counters().skipped == 1);
}

TEST_CASE("a namespace whose packs do not compress stays plain for N packs, then is tried again") {
  PackCompressor compressor(rule());
  const Clock::time_point t0{};
  CHECK_FALSE(compressor.compress("/", noise(64 << 10, 1), t0));
  // Remembered: even compressible packs go plain untried for the next 3.
  for (int i = 0; i < 3; ++i) CHECK_FALSE(compressor.compress("/", text(64 << 10), t0));
  CHECK(compressor.counters().samples == 1);
  CHECK(compressor.counters().skipped == 4);
  // Then a sample again, which now pays: compressed, and from then on without samples.
  CHECK(compressor.compress("/", text(64 << 10), t0));
  CHECK(compressor.compress("/", text(64 << 10), t0));
  CHECK(compressor.counters().samples == 2);
  CHECK(compressor.counters().skipped == 4);
}

TEST_CASE("the memory of a namespace that does not compress ends after its time") {
  PackCompressor compressor(rule());
  const Clock::time_point t0{};
  CHECK_FALSE(compressor.compress("/", noise(64 << 10, 1), t0));
  CHECK_FALSE(compressor.compress("/", text(64 << 10), t0 + 9s));
  CHECK(compressor.compress("/", text(64 << 10), t0 + 10s));
}

TEST_CASE("each namespace is judged on its own packs") {
  PackCompressor compressor(rule());
  const Clock::time_point t0{};
  CHECK_FALSE(compressor.compress("/noise", noise(64 << 10, 1), t0));
  CHECK(compressor.compress("/chat", text(64 << 10), t0));
  CHECK_FALSE(compressor.compress("/noise", text(64 << 10), t0));
}

TEST_CASE("a compressing namespace whose data stops compressing learns it from a whole pack") {
  PackCompressor compressor(rule());
  const Clock::time_point t0{};
  CHECK(compressor.compress("/", text(64 << 10), t0));
  CHECK_FALSE(compressor.compress("/", noise(64 << 10, 2), t0));  // tried whole, no sample
  CHECK(compressor.counters().samples == 1);
  CHECK(compressor.counters().skipped == 0);
  CHECK_FALSE(compressor.compress("/", text(64 << 10), t0));  // remembered
  CHECK(compressor.counters().skipped == 1);
}

TEST_CASE("packs smaller than two samples are tried whole") {
  PackCompressor compressor(rule());
  CHECK_FALSE(compressor.compress("/", noise(6000, 3), Clock::time_point{}));
  CHECK(compressor.counters().samples == 0);
  CHECK(compressor.counters().skipped == 0);
}

TEST_CASE("with the skip rule off every pack is tried") {
  auto off = rule();
  off.enabled = false;
  PackCompressor compressor(off);
  const Clock::time_point t0{};
  for (int i = 0; i < 3; ++i) CHECK_FALSE(compressor.compress("/", noise(64 << 10, 1), t0));
  CHECK(compressor.compress("/", text(64 << 10), t0));
  CHECK(compressor.counters().samples == 0);
  CHECK(compressor.counters().skipped == 0);
}

TEST_CASE("a skipped pack is the plain Pack of its messages") {
  PackCompressor compressor(rule());
  const std::vector<PackedMessage> messages = {
      {MessageKind::kRequest, "/", std::nullopt, std::nullopt, noise(32 << 10, 4), std::nullopt}};
  const std::string origin(16, 'A');
  for (int i = 0; i < 2; ++i) {  // tried, then skipped untried
    const auto built = build_pack(origin, messages, compressor);
    CHECK_FALSE(built.compressed);
    CHECK(built.document == pack_document(origin, messages));
    CHECK(built.message_bytes == encode_packed_messages(messages).size());
  }
  CHECK(compressor.counters().skipped == 2);
}
