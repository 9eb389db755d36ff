#include "daemon/common/memory.h"

#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>

namespace siobridge {

namespace {
std::atomic<std::uint64_t> releases{0};
}  // namespace

void limit_malloc_arenas() {
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) ::mallopt(M_ARENA_MAX, 2);
}

void release_free_memory() {
  ::malloc_trim(0);
  releases.fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t memory_releases() {
  return releases.load(std::memory_order_relaxed);
}

std::uint64_t resident_memory_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace siobridge
