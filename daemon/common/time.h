// Time as the daemon sees it: milliseconds since an arbitrary epoch, read from
// an injected Clock so that tests drive it by hand (the core, the buses'
// timeouts). SteadyClock is thread-safe; FakeClock is not.
#pragma once

#include <chrono>

namespace siobridge {

using Millis = std::chrono::milliseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Millis now() const = 0;
};

class SteadyClock final : public Clock {
 public:
  Millis now() const override {
    return std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now().time_since_epoch());
  }
};

class FakeClock final : public Clock {
 public:
  Millis now() const override { return now_; }
  void set(Millis now) { now_ = now; }
  void advance(Millis by) { now_ += by; }

 private:
  Millis now_{1'000'000};
};

}  // namespace siobridge
