#include "daemon/common/result.h"

namespace siobridge {

const char* to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kDecode:
      return "decode error";
    case ErrorCode::kFailedPrecondition:
      return "failed precondition";
    case ErrorCode::kMismatch:
      return "configuration mismatch";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kResourceExhausted:
      return "resource exhausted";
    case ErrorCode::kNotFound:
      return "not found";
    case ErrorCode::kCancelled:
      return "cancelled";
    case ErrorCode::kInternal:
      return "internal error";
  }
  return "unknown error";
}

std::string Error::describe() const {
  return std::string(to_string(code)) + ": " + message;
}

}  // namespace siobridge
