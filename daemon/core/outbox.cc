#include "daemon/core/outbox.h"

#include <spdlog/spdlog.h>

#include "daemon/wire/ids.h"
#include "daemon/wire/payload_codec.h"

namespace siobridge::core {

Status Outbox::publish_request(const std::string& ns, const wire::Request& request,
                               std::optional<std::string> target, const wire::RequestInfo& info) {
  const auto audience = audience_(ns, target);
  wire::Document doc{
      {wire::MessageKind::kRequest, ns, context_.uid, std::move(target), std::nullopt},
      wire::encode_request(request),
      wire::encode_extension(info)};
  // Its position comes back for the recovery log.
  doc.echo = info.recovery.has_value();
  auto status = bus_.publish(std::move(doc), audience);
  if (status.ok()) {
    ++context_.stats.requests_out[static_cast<std::size_t>(request.type)];
  } else {
    ++context_.stats.publish_failures;
  }
  return status;
}

Status Outbox::publish_to_siobridge(const std::string& ns, const wire::Extension& extension,
                                    bool echo, wire::Bytes data) {
  wire::Document doc{{wire::MessageKind::kRequest, ns, context_.uid,
                      std::string(wire::kSiobridgeTarget), std::nullopt},
                     std::move(data),
                     wire::encode_extension(extension)};
  doc.echo = echo;
  auto status = bus_.publish(std::move(doc), bus::Audience::kSiobridgeOnly);
  if (status.ok()) {
    ++context_.stats.extensions_out;
  } else {
    ++context_.stats.publish_failures;
  }
  return status;
}

void Outbox::publish_response(const std::string& ns, const std::string& target,
                              const std::string& request_id, const wire::Response& response,
                              std::optional<wire::Extension> extension) {
  const auto type = response.type();
  wire::Document doc{{wire::MessageKind::kResponse, ns, context_.uid, target, request_id},
                     wire::encode_response(response),
                     std::nullopt};
  if (extension) doc.extension = wire::encode_extension(*extension);
  if (bus_.publish(std::move(doc), audience_(ns, target)).ok()) {
    ++context_.stats.responses_out[static_cast<std::size_t>(type)];
  } else {
    ++context_.stats.publish_failures;
    spdlog::warn("could not answer request {} of {}: the bus refused the response", request_id,
                 target);
  }
}

void Outbox::publish_emit_reply(const std::string& ns, const std::string& target,
                                const std::string& request_id, wire::ServerSideEmitReply reply) {
  wire::Document doc{{wire::MessageKind::kResponse, ns, context_.uid, target, request_id},
                     {},
                     wire::encode_extension(std::move(reply))};
  if (bus_.publish(std::move(doc), bus::Audience::kSiobridgeOnly).ok()) {
    ++context_.stats.extensions_out;
  } else {
    ++context_.stats.publish_failures;
  }
}

void Outbox::publish_heartbeat(const std::string& ns, wire::RequestType type,
                               std::optional<std::string> target, std::uint32_t servers) {
  wire::Request request{context_.uid, wire::generate_id(), type, {}, {}, {}};
  wire::Document doc{
      {wire::MessageKind::kRequest, ns, context_.uid, std::move(target), std::nullopt},
      wire::encode_request(request),
      wire::encode_extension(wire::NodeInfo{servers})};
  if (bus_.publish(std::move(doc), bus::Audience::kEveryNode).ok()) {
    ++context_.stats.requests_out[static_cast<std::size_t>(type)];
  } else {
    ++context_.stats.publish_failures;
  }
}

}  // namespace siobridge::core
