#include "daemon/common/turn_flush.h"

namespace siobridge {
namespace {
thread_local std::vector<std::function<void()>>* open_turn = nullptr;
}  // namespace

TurnFlush::Scope::Scope() {
  if (open_turn != nullptr) return;
  open_turn = &flushes_;
  opened_ = true;
}

TurnFlush::Scope::~Scope() {
  if (!opened_) return;
  // A flush that defers again (a stream pushed to while flushing) runs at once:
  // the turn is over.
  open_turn = nullptr;
  for (auto& flush : flushes_) flush();
}

bool TurnFlush::defer(std::function<void()> flush) {
  if (open_turn == nullptr) return false;
  open_turn->push_back(std::move(flush));
  return true;
}

}  // namespace siobridge
