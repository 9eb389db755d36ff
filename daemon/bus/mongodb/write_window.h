// The document writer's group-commit window (mongodb.write_window_us): how
// long the writer lets a fresh queue grow before it takes a batch, so that a
// paced stream (a steady 1,000 events/s) fills packs instead of writing one
// document per event, while a document never waits more than the window for
// it. The writer waits only while the oldest queued document is younger than
// the window and the queue would not fill a pack or a batch anyway: under
// load, what queued during the previous insert is older, and goes at once.
//
// Pure; used by the writer thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <optional>

namespace siobridge::bus::mongodb {

struct WriteWindow {
  using Clock = std::chrono::steady_clock;
  // The most a window may be: a few milliseconds is what a paced stream needs
  // to fill packs, and every document may wait that long.
  static constexpr std::chrono::microseconds kMax{20000};

  std::chrono::microseconds length{0};  // 0: no window
  std::size_t full_bytes = 0;           // a queue this large goes at once (a pack's worth)
  std::size_t full_documents = 0;       // so does one of this many documents (a batch)

  // Until when the writer waits before taking a batch from a queue whose
  // oldest document was queued at `oldest`; nullopt: take it now. Never later
  // than `oldest` plus the window, clamped to kMax.
  std::optional<Clock::time_point> wait_until(Clock::time_point oldest, Clock::time_point now,
                                              std::size_t queued_bytes,
                                              std::size_t queued_documents) const {
    const auto window = std::min(length, kMax);
    if (window.count() <= 0) return std::nullopt;
    if (queued_bytes >= full_bytes || queued_documents >= full_documents) return std::nullopt;
    const auto deadline = oldest + window;
    if (deadline <= now) return std::nullopt;
    return deadline;
  }
};

}  // namespace siobridge::bus::mongodb
