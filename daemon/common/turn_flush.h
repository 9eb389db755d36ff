// Flushes deferred to the end of a thread's turn. The core thread handles what
// was posted to it in turns (Engine::drain_inbox); an outbound stream that
// would start a write for every Command registers one flush for the end of
// the turn instead, so everything one turn queued for one stream leaves as one
// message. Group commit that waits only for work already in hand: a turn is
// never held open for more.
//
// Thread-compatible: each thread has its own turn, and flushes run on the
// thread that registered them.
#pragma once

#include <functional>
#include <vector>

namespace siobridge {

class TurnFlush {
 public:
  // Opens a turn on this thread unless one is open already; the scope that
  // opened it runs the turn's flushes, in the order registered, when it ends.
  class Scope {
   public:
    Scope();
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    std::vector<std::function<void()>> flushes_;
    bool opened_ = false;
  };

  // Registers `flush` for the end of this thread's open turn. False when no
  // turn is open: the caller flushes now.
  static bool defer(std::function<void()> flush);
};

}  // namespace siobridge
