#include "daemon/bus/bus.h"

namespace siobridge::bus {

const char* to_string(BusState state) {
  switch (state) {
    case BusState::kStarting:
      return "starting";
    case BusState::kReady:
      return "ready";
    case BusState::kUnavailable:
      return "unavailable";
    case BusState::kFailed:
      return "failed";
  }
  return "unknown";
}

}  // namespace siobridge::bus
