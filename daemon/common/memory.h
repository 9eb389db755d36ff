// The daemon's memory as the system sees it: its resident set size, and
// giving freed heap memory back after large frees. glibc keeps freed chunks in
// its arenas; after a 15 MiB document or a drained backlog of tens of MiB the
// resident size would stay at its peak without malloc_trim.
//
// Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace siobridge {

// Frees of at least this many bytes are followed by release_free_memory().
inline constexpr std::size_t kLargeFreeBytes = 1u << 20;

// At most two malloc arenas, unless MALLOC_ARENA_MAX says otherwise. Call
// before any thread starts. glibc gives each thread that meets contention an
// arena of its own: the gRPC, core, writer and watcher threads each kept a
// burst's freed chunks (a 10 KiB burst through MongoDB peaked 20 MiB higher
// with the default, 8 per core, than with two).
void limit_malloc_arenas();

// Returns the free memory of every malloc arena to the system (malloc_trim)
// and counts the call.
void release_free_memory();

// How many times release_free_memory() ran since the process started.
std::uint64_t memory_releases();

// The resident set size (/proc/self/statm), 0 when unknown.
std::uint64_t resident_memory_bytes();

}  // namespace siobridge
