// The in-memory bus: nodes of one process exchange documents without MongoDB.
// A daemon started without a MongoDB URI has a hub with itself as the only
// node (local fan-out between its attached servers needs no bus); tests connect
// several nodes to one hub.
//
// A MemoryHub delivers in publish order and applies the PROTOCOL.md filter: a
// node receives its own documents only when marked echo; a targeted document
// reaches only its target (or every siobridge node for kSiobridgeTarget). Each
// document gets the next position, as MongoDB's operation times order them. Delivery happens in
// deliver_all(), never inside publish(), so a listener is never re-entered.
//
// Not thread-safe: hub, endpoints and listeners live on one thread.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "daemon/bus/bus.h"

namespace siobridge::bus::memory {

class MemoryHub;

class MemoryBus final : public Bus {
 public:
  MemoryBus(MemoryHub& hub, std::size_t index) : hub_(hub), index_(index) {}
  // Who receives for this endpoint, and as which uid. A socketioxide stand-in
  // (siobridge = false) never receives documents addressed to kSiobridgeTarget.
  void connect(std::string uid, BusListener* listener, bool siobridge = true);
  // The audience changes nothing in memory: every node reads every form.
  Status publish(wire::Document document, Audience audience) override;
  BusState state() const override { return BusState::kReady; }
  bool shared() const override;

  const std::string& uid() const { return uid_; }
  BusListener* listener() const { return listener_; }
  bool siobridge() const { return siobridge_; }

 private:
  MemoryHub& hub_;
  std::size_t index_;
  std::string uid_;
  BusListener* listener_ = nullptr;
  bool siobridge_ = true;
};

class MemoryHub {
 public:
  MemoryBus& add_endpoint();
  // Delivers every queued document, including those published meanwhile.
  // Returns how many deliveries happened.
  std::size_t deliver_all();
  std::size_t queued() const { return queue_.size(); }
  std::uint64_t published() const { return published_; }
  std::size_t endpoints() const { return endpoints_.size(); }

 private:
  friend class MemoryBus;
  void enqueue(std::size_t from, wire::Document document);

  std::vector<std::unique_ptr<MemoryBus>> endpoints_;
  std::deque<std::pair<std::size_t, wire::Document>> queue_;
  std::uint64_t published_ = 0;
  std::uint32_t delivered_ = 0;  // documents delivered: the last position
};

}  // namespace siobridge::bus::memory
