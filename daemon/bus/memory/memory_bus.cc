#include "daemon/bus/memory/memory_bus.h"

namespace siobridge::bus::memory {

void MemoryBus::connect(std::string uid, BusListener* listener, bool siobridge) {
  uid_ = std::move(uid);
  listener_ = listener;
  siobridge_ = siobridge;
}

Status MemoryBus::publish(wire::Document document, Audience) {
  hub_.enqueue(index_, std::move(document));
  return {};
}

bool MemoryBus::shared() const {
  return hub_.endpoints() > 1;
}

MemoryBus& MemoryHub::add_endpoint() {
  endpoints_.push_back(std::make_unique<MemoryBus>(*this, endpoints_.size()));
  return *endpoints_.back();
}

void MemoryHub::enqueue(std::size_t from, wire::Document document) {
  ++published_;
  if (endpoints_.size() < 2) return;  // nobody else to reach
  queue_.emplace_back(from, std::move(document));
}

std::size_t MemoryHub::deliver_all() {
  std::size_t deliveries = 0;
  while (!queue_.empty()) {
    auto [from, document] = std::move(queue_.front());
    queue_.pop_front();
    const auto& target = document.header.target;
    const std::string position = wire::format_position(0, ++delivered_, 0);
    for (std::size_t i = 0; i < endpoints_.size(); ++i) {
      const auto& endpoint = *endpoints_[i];
      if (!endpoint.listener()) continue;
      const bool own = i == from || document.header.origin == endpoint.uid();
      if (own && !(i == from && document.echo)) continue;
      if (!own && target && *target != endpoint.uid() &&
          (*target != wire::kSiobridgeTarget || !endpoint.siobridge())) {
        continue;
      }
      endpoint.listener()->on_document(document, position);
      ++deliveries;
    }
  }
  return deliveries;
}

}  // namespace siobridge::bus::memory
