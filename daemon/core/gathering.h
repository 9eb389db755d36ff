// Gatherings: operations that wait for one answer from each of a set of
// attached servers and other nodes, up to a deadline; whoever has not answered
// by then is reported missing. RoomsGathering answers all_rooms,
// SocketsGathering fetch_sockets, on the requester side (answers of the whole
// cluster) and on the responder side (the attached servers only).
//
// Not thread-safe: core thread only (operation.h).
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "daemon/core/operation.h"

namespace siobridge::core {

class Gathering : public Operation {
 public:
  using Operation::Operation;

  // `name`: how the server is reported when it does not answer.
  void expect_local(AttachmentId id, std::string name) { local_.emplace(id, std::move(name)); }
  void expect_remote(std::vector<std::string> uids, std::string request_id);
  // Starts the deadline; completes at once when nobody is awaited.
  void arm(Millis deadline);

  void on_attachment_gone(AttachmentId id) override;
  void on_peer_gone(const std::string& uid, const PeerExit& exit) override;

 protected:
  // True the first time `id` / `uid` answers; then the answer counts.
  bool local_answered(AttachmentId id);
  bool remote_answered(const std::string& uid);
  void check_done();
  virtual void complete(Missing missing) = 0;

 private:
  std::map<AttachmentId, std::string> local_;  // awaited attached servers, with their names
  std::set<std::string> remote_;               // awaited node uids
  Missing missing_;
};

class RoomsGathering final : public Gathering {
 public:
  RoomsGathering(const OperationContext& context, CommandId id, std::string ns,
                 std::function<void(RoomsResult)> done)
      : Gathering(context, id, std::move(ns)), done_(std::move(done)) {}
  void on_rooms(AttachmentId from, std::vector<std::string>& rooms) override;
  void on_response(const wire::Response& response, const wire::Document& document) override;

 private:
  void complete(Missing missing) override;
  std::set<std::string> rooms_;
  std::function<void(RoomsResult)> done_;
};

class SocketsGathering final : public Gathering {
 public:
  SocketsGathering(const OperationContext& context, CommandId id, std::string ns,
                   std::function<void(SocketsResult)> done)
      : Gathering(context, id, std::move(ns)), done_(std::move(done)) {}
  void on_sockets(AttachmentId from, std::vector<wire::SocketDetails>& sockets) override;
  // A siobridge responder adds rooms, handshake and data in its extension.
  void on_response(const wire::Response& response, const wire::Document& document) override;

 private:
  void complete(Missing missing) override;
  std::vector<RemoteSocket> sockets_;
  std::function<void(SocketsResult)> done_;
};

}  // namespace siobridge::core
