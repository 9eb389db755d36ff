#include "daemon/bus/factory.h"

#include "daemon/bus/memory/memory_bus.h"
#include "daemon/bus/mongodb/mongo_bus.h"

namespace siobridge::bus {
namespace {

// A hub with one endpoint, owned together: the endpoint is the bus.
class LocalBus final : public RunningBus {
 public:
  LocalBus(const std::string& uid, BusListener* listener) : endpoint_(hub_.add_endpoint()) {
    endpoint_.connect(uid, listener);
  }
  Status publish(wire::Document document, Audience audience) override {
    return endpoint_.publish(std::move(document), audience);
  }
  BusState state() const override { return endpoint_.state(); }
  bool shared() const override { return endpoint_.shared(); }

 private:
  memory::MemoryHub hub_;
  memory::MemoryBus& endpoint_;
};

}  // namespace

Result<std::unique_ptr<RunningBus>> make_bus(BusSetup setup) {
  if (!setup.mongodb) {
    return std::unique_ptr<RunningBus>(std::make_unique<LocalBus>(setup.own_uid, setup.listener));
  }
  auto bus = mongodb::MongoBus::create(std::move(*setup.mongodb), std::move(setup.own_uid),
                                       *setup.listener, std::move(setup.post), setup.flow_gate);
  if (!bus.ok()) return bus.error();
  return std::unique_ptr<RunningBus>(std::move(*bus));
}

}  // namespace siobridge::bus
