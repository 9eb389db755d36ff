// Result<T> carries either a value or an Error: how fallible operations report
// failure across module boundaries (codec, buses, API). Error messages are meant
// for a person: they name what was wrong and where.
//
// Plain value types; not synchronized.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace siobridge {

enum class ErrorCode {
  kInvalidArgument,     // the caller sent something malformed
  kDecode,              // bytes from the wire do not follow PROTOCOL.md
  kFailedPrecondition,  // the system is not in a state that allows the operation
  kMismatch,            // existing state (e.g. a collection) contradicts the configuration
  kUnavailable,         // a dependency (MongoDB) cannot be reached right now
  kTimeout,             // the deadline passed
  kResourceExhausted,   // a size or queue limit was hit
  kNotFound,
  kCancelled,
  kInternal,
};

const char* to_string(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  // "decode error: <message>"
  std::string describe() const;
};

inline Error make_error(ErrorCode code, std::string message) {
  return {code, std::move(message)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : state_(std::move(error)) {}  // NOLINT

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(state_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(state_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(state_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(state_);
  }

 private:
  std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  static Result success() { return {}; }
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace siobridge
