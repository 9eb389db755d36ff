#include "daemon/api/api_context.h"

#include <fmt/format.h>

#include <charconv>

#include "daemon/api/attach_stream.h"
#include "daemon/wire/ids.h"

namespace siobridge::api {

ApiContext::ApiContext(runtime::Engine& engine_in, ApiLimits limits_in, ApiObserver* observer_in)
    : engine(engine_in),
      limits(limits_in),
      observer(observer_in),
      instance_(wire::generate_id().substr(0, 8)) {}

std::string ApiContext::attachment_id(core::AttachmentId id) const {
  return fmt::format("{}.{}", instance_, id);
}

Result<core::AttachmentId> ApiContext::parse_attachment(const std::string& id) const {
  if (id.empty()) return core::kNoAttachment;
  const auto dot = id.find('.');
  core::AttachmentId value = 0;
  if (dot == std::string::npos ||
      std::from_chars(id.data() + dot + 1, id.data() + id.size(), value).ec != std::errc() ||
      value == core::kNoAttachment) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("\"{}\" is not an attachment id (use the one from Welcome)", id.substr(0, 40)));
  }
  if (id.compare(0, dot, instance_) != 0) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "unknown attachment: the daemon restarted since it was given; attach again");
  }
  return value;
}

void ApiContext::add(const std::shared_ptr<Attachment>& attachment) {
  std::lock_guard lock(mutex_);
  attachments_[attachment->id()] = attachment;
}

void ApiContext::remove(core::AttachmentId id) {
  std::lock_guard lock(mutex_);
  attachments_.erase(id);
}

std::vector<std::shared_ptr<Attachment>> ApiContext::attachments() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<Attachment>> out;
  for (const auto& [id, a] : attachments_) out.push_back(a);
  return out;
}

bool ApiContext::begin_operation() {
  std::lock_guard lock(mutex_);
  if (draining_) return false;
  ++in_flight_;
  return true;
}

void ApiContext::end_operation() {
  {
    std::lock_guard lock(mutex_);
    --in_flight_;
  }
  idle_.notify_all();
}

bool ApiContext::wait_idle(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  return idle_.wait_until(lock, deadline, [&] { return in_flight_ == 0; });
}

}  // namespace siobridge::api
