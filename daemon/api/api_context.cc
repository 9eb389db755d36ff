#include "daemon/api/api_context.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "daemon/api/attach_stream.h"
#include "daemon/wire/ids.h"

namespace siobridge::api {

namespace {
constexpr std::size_t kInstanceLength = 8;
}  // namespace

ApiContext::ApiContext(runtime::Engine& engine_in, ApiLimits limits_in, ApiObserver* observer_in)
    : engine(engine_in), limits(limits_in), observer(observer_in), instance_(engine.instance()) {
  schedule_stall_check();
  // What the bus settled confirms the numbered calls waiting for it.
  engine.set_settled_observer([this](std::uint64_t settled) {
    for (const auto& attachment : attachments()) attachment->confirm_settled(settled);
  });
}

ApiContext::~ApiContext() {
  *stall_check_cancelled_ = true;
  engine.set_settled_observer(nullptr);
  // A check running on the core thread finishes before `this` goes.
  if (engine.running()) engine.call([](core::Node&) { return 0; });
}

void ApiContext::schedule_stall_check() {
  // While work waits for the servers, often: producers paused for a server
  // that then stopped reading resume once the gate sees it passed the stall
  // grace (the change stream sees it by itself: FlowGate::wait_open).
  auto& gate = engine.flow_gate();
  const Millis every = gate.is_open() && gate.total_bytes() == 0 ? Millis{1000} : Millis{25};
  engine.after(every, [this, cancelled = stall_check_cancelled_] {
    if (*cancelled) return;
    const auto now = std::chrono::steady_clock::now();
    engine.flow_gate().poll(now);
    for (const auto& attachment : attachments()) attachment->close_if_stalled(now);
    schedule_stall_check();
  });
}

std::string ApiContext::attachment_id(core::AttachmentId id) const {
  return fmt::format("{}.{}", instance_, id);
}

Result<core::AttachmentId> ApiContext::parse_attachment(const std::string& id) const {
  if (id.empty()) return core::kNoAttachment;
  // "<8 id characters>.<decimal number>", nothing else.
  const auto dot = id.find('.');
  core::AttachmentId value = 0;
  const char* end = id.data() + id.size();
  const auto parsed = dot == std::string::npos
                          ? std::from_chars_result{nullptr, std::errc::invalid_argument}
                          : std::from_chars(id.data() + dot + 1, end, value);
  const bool instance_ok =
      dot == kInstanceLength &&
      std::all_of(id.begin(), id.begin() + static_cast<std::ptrdiff_t>(dot), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
      });
  if (!instance_ok || parsed.ec != std::errc() || parsed.ptr != end || id[dot + 1] == '+' ||
      value == core::kNoAttachment) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("\"{}\" is not an attachment id (use the one from Welcome)", id.substr(0, 40)));
  }
  if (id.compare(0, dot, instance_) != 0) {
    // Well-formed but not this instance's: most likely given before a restart.
    return make_error(ErrorCode::kFailedPrecondition,
                      fmt::format("unknown attachment \"{}\": not given by this daemon since it "
                                  "started (it restarted since, or the id is not one from a "
                                  "Welcome); attach again",
                                  id.substr(0, 40)));
  }
  return value;
}

void ApiContext::add(const std::shared_ptr<Attachment>& attachment) {
  MutexLock lock(mutex_);
  attachments_[attachment->id()] = attachment;
}

void ApiContext::remove(core::AttachmentId id) {
  MutexLock lock(mutex_);
  attachments_.erase(id);
}

std::vector<std::shared_ptr<Attachment>> ApiContext::attachments() const {
  MutexLock lock(mutex_);
  std::vector<std::shared_ptr<Attachment>> out;
  for (const auto& [id, a] : attachments_) out.push_back(a);
  return out;
}

bool ApiContext::begin_operation() {
  MutexLock lock(mutex_);
  if (draining_) return false;
  ++in_flight_;
  return true;
}

void ApiContext::end_operation() {
  {
    MutexLock lock(mutex_);
    --in_flight_;
  }
  idle_.signal_all();
}

bool ApiContext::wait_idle(std::chrono::steady_clock::time_point deadline) {
  MutexLock lock(mutex_);
  while (in_flight_ > 0) {
    if (!idle_.wait_until(deadline)) break;
  }
  return in_flight_ == 0;
}

}  // namespace siobridge::api
