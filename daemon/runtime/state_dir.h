// StateDir: the daemon's state directory (mongodb.state_dir). It keeps what a
// restarted daemon needs to carry on where it stopped: its node uid (peers see
// the same node come back, not a new one beside a ghost), the hand-over
// snapshot of its namespaces and peers (node.bson), and the change stream's
// resume token (written by the MongoDB bus).
//
// One daemon per directory: two sharing one would overwrite each other's
// state and a restarted daemon would resume from the other's position, so the
// directory is locked (flock on `siobridged.lock`, released when the process
// dies, however it dies) for as long as the StateDir lives.
//
// Not thread-safe: the engine uses it from its core thread (and before start).
#pragma once

#include <string>

#include "daemon/common/result.h"
#include "daemon/core/node_config.h"

namespace siobridge::runtime {

class StateDir {
 public:
  // Creates the directory if needed and locks it. kFailedPrecondition when
  // another process holds it (its pid is in the message), kInvalidArgument when
  // it cannot be created or locked.
  static Result<StateDir> open(const std::string& directory);

  StateDir(StateDir&& other) noexcept;
  StateDir& operator=(StateDir&& other) noexcept;
  StateDir(const StateDir&) = delete;
  StateDir& operator=(const StateDir&) = delete;
  ~StateDir();

  const std::string& path() const { return path_; }

  struct NodeState {
    std::string uid;
    core::Handover handover;  // peers' seen_ago include the time since it was saved
  };
  // kNotFound when nothing was saved yet, kDecode for a corrupt file.
  Result<NodeState> load_node() const;
  Status save_node(const std::string& uid, const core::Handover& handover) const;

 private:
  StateDir(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_ = -1;
};

}  // namespace siobridge::runtime
