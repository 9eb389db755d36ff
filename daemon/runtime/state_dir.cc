#include "daemon/runtime/state_dir.h"

#include <bson/bson.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>

#include "daemon/wire/bson_file.h"
#include "daemon/wire/ids.h"
#include "daemon/wire/owned_bson.h"

namespace siobridge::runtime {
namespace {

namespace fs = std::filesystem;

std::string read_holder(int fd) {
  char buffer[32] = {};
  const ssize_t n = pread(fd, buffer, sizeof buffer - 1, 0);
  std::string pid = n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : "";
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid.empty() ? "unknown" : pid;
}

std::int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string node_file(const std::string& directory) {
  return (fs::path(directory) / "node.bson").string();
}

Error corrupt(const std::string& path, const std::string& what) {
  return make_error(ErrorCode::kDecode, fmt::format("{}: {}", path, what));
}

std::optional<std::string> utf8_field(const bson_t* doc, const char* key) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_UTF8(&it)) return std::nullopt;
  return std::string(bson_iter_utf8(&it, nullptr));
}

}  // namespace

Result<StateDir> StateDir::open(const std::string& directory) {
  std::error_code ec;
  fs::create_directories(directory, ec);
  if (ec) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("state directory {}: {}", directory, ec.message()));
  }
  const std::string path = (fs::path(directory) / "siobridged.lock").string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("state directory lock {}: {}", path, std::strerror(errno)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    const std::string holder = read_holder(fd);
    close(fd);
    if (error == EWOULDBLOCK) {
      return make_error(ErrorCode::kFailedPrecondition,
                        fmt::format("state directory {} is in use by another siobridged (pid {}); "
                                    "give each daemon of a host its own mongodb.state_dir",
                                    directory, holder));
    }
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("state directory lock {}: {}", path, std::strerror(error)));
  }
  const std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The pid is only for the message above; the lock itself holds.
  }
  return StateDir(directory, fd);
}

StateDir::StateDir(StateDir&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

StateDir& StateDir::operator=(StateDir&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

StateDir::~StateDir() {
  if (fd_ >= 0) close(fd_);
}

Result<StateDir::NodeState> StateDir::load_node() const {
  const std::string file = node_file(path_);
  auto read = wire::read_bson_file(file);
  if (!read.ok()) {
    if (read.error().code == ErrorCode::kNotFound) {
      return make_error(ErrorCode::kNotFound, "no node state at " + file);
    }
    return corrupt(file, "not a BSON document");
  }
  const bson_t* stored = read->get();
  NodeState state;
  auto uid = utf8_field(stored, "uid");
  if (!uid || !wire::is_valid_id(*uid)) return corrupt(file, "no valid uid");
  state.uid = std::move(*uid);
  bson_iter_t it;
  std::int64_t saved_at = wall_clock_ms();
  if (bson_iter_init_find(&it, stored, "savedAt") && BSON_ITER_HOLDS_DATE_TIME(&it)) {
    saved_at = bson_iter_date_time(&it);
  }
  const Millis since_saved{std::max<std::int64_t>(0, wall_clock_ms() - saved_at)};
  if (!bson_iter_init_find(&it, stored, "namespaces") || !BSON_ITER_HOLDS_ARRAY(&it)) {
    return state;
  }
  bson_iter_t entries;
  bson_iter_recurse(&it, &entries);
  while (bson_iter_next(&entries)) {
    if (!BSON_ITER_HOLDS_DOCUMENT(&entries)) return corrupt(file, "a namespace is not a document");
    bson_iter_t fields;
    bson_iter_recurse(&entries, &fields);
    std::string ns;
    core::NamespaceSnapshot snapshot;
    while (bson_iter_next(&fields)) {
      const std::string key = bson_iter_key(&fields);
      if (key == "ns" && BSON_ITER_HOLDS_UTF8(&fields)) ns = bson_iter_utf8(&fields, nullptr);
      if (key == "servers" && BSON_ITER_HOLDS_INT32(&fields)) {
        snapshot.servers = static_cast<std::uint32_t>(std::max(0, bson_iter_int32(&fields)));
      }
      if (key != "peers" || !BSON_ITER_HOLDS_ARRAY(&fields)) continue;
      bson_iter_t peers;
      bson_iter_recurse(&fields, &peers);
      while (bson_iter_next(&peers)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&peers)) continue;
        bson_iter_t p;
        bson_iter_recurse(&peers, &p);
        core::PeerSnapshot peer;
        while (bson_iter_next(&p)) {
          const std::string name = bson_iter_key(&p);
          if (name == "uid" && BSON_ITER_HOLDS_UTF8(&p)) peer.uid = bson_iter_utf8(&p, nullptr);
          if (name == "servers" && BSON_ITER_HOLDS_INT32(&p)) {
            peer.servers = static_cast<std::uint32_t>(std::max(0, bson_iter_int32(&p)));
          }
          if (name == "seenAgoMs" && BSON_ITER_HOLDS_INT64(&p)) {
            peer.seen_ago = Millis{bson_iter_int64(&p)} + since_saved;
          }
        }
        if (wire::is_valid_id(peer.uid)) snapshot.peers.push_back(std::move(peer));
      }
    }
    if (ns.empty() || ns[0] != '/') return corrupt(file, "a namespace without a valid name");
    state.handover.namespaces.emplace(std::move(ns), std::move(snapshot));
  }
  return state;
}

Status StateDir::save_node(const std::string& uid, const core::Handover& handover) const {
  wire::OwnedBson doc;
  BSON_APPEND_UTF8(doc.get(), "uid", uid.c_str());
  BSON_APPEND_DATE_TIME(doc.get(), "savedAt", wall_clock_ms());
  bson_t namespaces;
  BSON_APPEND_ARRAY_BEGIN(doc.get(), "namespaces", &namespaces);
  std::size_t i = 0;
  for (const auto& [ns, snapshot] : handover.namespaces) {
    const std::string key = std::to_string(i++);
    bson_t entry, peers;
    BSON_APPEND_DOCUMENT_BEGIN(&namespaces, key.c_str(), &entry);
    BSON_APPEND_UTF8(&entry, "ns", ns.c_str());
    BSON_APPEND_INT32(&entry, "servers", static_cast<std::int32_t>(snapshot.servers));
    BSON_APPEND_ARRAY_BEGIN(&entry, "peers", &peers);
    std::size_t j = 0;
    for (const auto& peer : snapshot.peers) {
      const std::string peer_key = std::to_string(j++);
      bson_t p;
      BSON_APPEND_DOCUMENT_BEGIN(&peers, peer_key.c_str(), &p);
      BSON_APPEND_UTF8(&p, "uid", peer.uid.c_str());
      if (peer.servers) BSON_APPEND_INT32(&p, "servers", static_cast<std::int32_t>(*peer.servers));
      BSON_APPEND_INT64(&p, "seenAgoMs", peer.seen_ago.count());
      bson_append_document_end(&peers, &p);
    }
    bson_append_array_end(&entry, &peers);
    bson_append_document_end(&namespaces, &entry);
  }
  bson_append_array_end(doc.get(), &namespaces);

  return wire::write_bson_file(node_file(path_), doc.get());
}

}  // namespace siobridge::runtime
