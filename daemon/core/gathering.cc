#include "daemon/core/gathering.h"

#include <spdlog/spdlog.h>

#include "daemon/wire/ids.h"
#include "daemon/wire/payload_codec.h"

namespace siobridge::core {

// ---- Gathering ----

void Gathering::expect_remote(std::vector<std::string> uids, std::string request_id) {
  remote_.insert(uids.begin(), uids.end());
  request_id_ = std::move(request_id);
}

void Gathering::arm(Millis deadline) {
  after(deadline, [this] {
    for (auto& [id, name] : local_) {
      spdlog::warn("attached server '{}' did not answer within the deadline; left out", name);
      ++stats().local_timeouts;
      missing_.local_servers.push_back(name);
    }
    missing_.nodes.insert(missing_.nodes.end(), remote_.begin(), remote_.end());
    local_.clear();
    remote_.clear();
    complete(std::move(missing_));
    finish();
  });
  check_done();
}

void Gathering::on_attachment_gone(AttachmentId id) {
  if (local_.erase(id)) check_done();
}

void Gathering::on_peer_gone(const std::string& uid, const PeerExit& exit) {
  if (remote_.erase(uid)) {
    if (!exit.graceful) missing_.nodes.push_back(uid);
    check_done();
  }
}

bool Gathering::local_answered(AttachmentId id) {
  return local_.erase(id) != 0;
}

bool Gathering::remote_answered(const std::string& uid) {
  if (remote_.erase(uid)) return true;
  ++stats().late_responses;
  return false;
}

void Gathering::check_done() {
  if (finished() || !local_.empty() || !remote_.empty()) return;
  complete(std::move(missing_));
  finish();
}

// ---- RoomsGathering ----

void RoomsGathering::on_rooms(AttachmentId from, std::vector<std::string>& rooms) {
  if (!local_answered(from)) return;
  rooms_.insert(std::make_move_iterator(rooms.begin()), std::make_move_iterator(rooms.end()));
  check_done();
}

void RoomsGathering::on_response(const wire::Response& response, const wire::Document&) {
  const auto* list = std::get_if<wire::RoomList>(&response.body);
  if (!list || !remote_answered(response.node_id)) return;
  rooms_.insert(list->rooms.begin(), list->rooms.end());
  check_done();
}

void RoomsGathering::complete(Missing missing) {
  done_(RoomsResult{{rooms_.begin(), rooms_.end()}, std::move(missing)});
}

// ---- SocketsGathering ----

void SocketsGathering::on_sockets(AttachmentId from, std::vector<wire::SocketDetails>& sockets) {
  if (!local_answered(from)) return;
  for (auto& socket : sockets) {
    sockets_.push_back(RemoteSocket{std::move(socket.id), uid(), ns(), std::move(socket.rooms),
                                    std::move(socket.handshake), std::move(socket.data), true});
  }
  check_done();
}

void SocketsGathering::on_response(const wire::Response& response, const wire::Document& document) {
  const auto* list = std::get_if<wire::SocketList>(&response.body);
  if (!list || !remote_answered(response.node_id)) return;
  // A siobridge responder adds rooms, handshake and data in its extension.
  std::map<std::string, const wire::SocketDetails*> details;
  std::optional<wire::Extension> extension;
  if (document.extension) {
    if (auto decoded = wire::decode_extension(*document.extension); decoded.ok()) {
      extension = std::move(*decoded);
    }
  }
  if (const auto* fetch = extension ? std::get_if<wire::FetchDetails>(&*extension) : nullptr) {
    for (const auto& socket : fetch->sockets)
      details.emplace(wire::socket_alias(socket.id), &socket);
  }
  for (const auto& ref : list->sockets) {
    RemoteSocket socket{ref.id, ref.server_id, ref.ns, {}, {}, {}, false};
    if (auto it = details.find(ref.id); it != details.end()) {
      socket.id = it->second->id;  // the real id behind the alias
      socket.rooms = it->second->rooms;
      socket.handshake = it->second->handshake;
      socket.data = it->second->data;
      socket.has_details = true;
    }
    sockets_.push_back(std::move(socket));
  }
  check_done();
}

void SocketsGathering::complete(Missing missing) {
  done_(SocketsResult{std::move(sockets_), std::move(missing)});
}

}  // namespace siobridge::core
