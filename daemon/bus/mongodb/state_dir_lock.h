// StateDirLock: one daemon per state directory. The resume token of two
// daemons sharing a directory would be overwritten by each other, and a
// restarted daemon would resume from the other's position; so the directory is
// locked (flock on `siobridged.lock`, released when the process dies, however
// it dies) for as long as the bus lives.
//
// Not thread-safe; held by the MongoBus that created it.
#pragma once

#include <string>

#include "daemon/common/result.h"

namespace siobridge::bus::mongodb {

class StateDirLock {
 public:
  // kFailedPrecondition when another process holds the directory (its pid is in
  // the message), kInvalidArgument when the lock file cannot be opened.
  static Result<StateDirLock> acquire(const std::string& directory);

  StateDirLock(StateDirLock&& other) noexcept;
  StateDirLock& operator=(StateDirLock&& other) noexcept;
  StateDirLock(const StateDirLock&) = delete;
  StateDirLock& operator=(const StateDirLock&) = delete;
  ~StateDirLock();

 private:
  explicit StateDirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace siobridge::bus::mongodb
