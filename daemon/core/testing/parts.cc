#include "daemon/core/testing/parts.h"

#include "daemon/wire/ids.h"
#include "daemon/wire/payload_codec.h"

namespace siobridge::core::testing {

Status RecordingBus::publish(wire::Document document, bus::Audience audience) {
  if (refuse) return make_error(ErrorCode::kUnavailable, "refused by the test");
  published.push_back(Published{std::move(document), audience});
  return {};
}

std::vector<std::pair<wire::Request, RecordingBus::Published>> RecordingBus::requests() const {
  std::vector<std::pair<wire::Request, Published>> out;
  for (const auto& p : published) {
    if (p.document.header.kind != wire::MessageKind::kRequest) continue;
    if (auto request = wire::decode_request(p.document.data); request.ok()) {
      out.emplace_back(std::move(*request), p);
    }
  }
  return out;
}

std::vector<std::pair<wire::Response, RecordingBus::Published>> RecordingBus::responses() const {
  std::vector<std::pair<wire::Response, Published>> out;
  for (const auto& p : published) {
    if (p.document.header.kind != wire::MessageKind::kResponse) continue;
    if (auto response = wire::decode_response(p.document.data); response.ok()) {
      out.emplace_back(std::move(*response), p);
    }
  }
  return out;
}

std::vector<wire::Extension> RecordingBus::extensions() const {
  std::vector<wire::Extension> out;
  for (const auto& p : published) {
    const bool to_siobridge =
        p.document.header.target && *p.document.header.target == wire::kSiobridgeTarget;
    const bool extension_response =
        p.document.header.kind == wire::MessageKind::kResponse && p.document.data.empty();
    if (!p.document.extension || !(to_siobridge || extension_response)) continue;
    if (auto ext = wire::decode_extension(*p.document.extension); ext.ok()) {
      out.push_back(std::move(*ext));
    }
  }
  return out;
}

Parts::Parts(NodeConfig node_config) : config(std::move(node_config)) {}

NodeConfig Parts::default_config() {
  NodeConfig config = TestCluster::default_config();
  config.restart_grace = Millis{1000};
  return config;
}

void Parts::advance(Millis by) {
  clock.advance(by);
  timers.run_due(clock.now());
}

AttachmentId Parts::attach(RecordingServer& server, const std::string& name,
                           const std::vector<std::string>& namespaces) {
  const AttachmentId id = membership.attach(server, name);
  for (const auto& ns : namespaces) (void)membership.join(id, ns);
  return id;
}

void Parts::heartbeat_from(const std::string& peer, std::optional<std::uint32_t> servers,
                           const std::string& ns, wire::RequestType type) {
  wire::Request request{peer, wire::generate_id(), type, {}, {}, {}};
  wire::Document document{{wire::MessageKind::kRequest, ns, peer, std::nullopt, std::nullopt},
                          wire::encode_request(request),
                          std::nullopt};
  if (servers) document.extension = wire::encode_extension(wire::NodeInfo{*servers});
  membership.on_heartbeat(document, request);
}

}  // namespace siobridge::core::testing
