// OwnedBson: sole owner of a heap-allocated bson_t (bson_new / BCON_NEW /
// bson_copy), destroyed with it. Move-only; not synchronized.
#pragma once

#include <bson/bson.h>

#include <utility>

namespace siobridge::wire {

class OwnedBson {
 public:
  OwnedBson() : bson_(bson_new()) {}
  explicit OwnedBson(bson_t* adopted) : bson_(adopted) {}
  ~OwnedBson() {
    if (bson_) bson_destroy(bson_);
  }
  OwnedBson(OwnedBson&& other) noexcept : bson_(std::exchange(other.bson_, nullptr)) {}
  OwnedBson& operator=(OwnedBson&& other) noexcept {
    if (this != &other) {
      if (bson_) bson_destroy(bson_);
      bson_ = std::exchange(other.bson_, nullptr);
    }
    return *this;
  }
  OwnedBson(const OwnedBson&) = delete;
  OwnedBson& operator=(const OwnedBson&) = delete;

  bson_t* get() const { return bson_; }
  bson_t* operator->() const { return bson_; }
  explicit operator bool() const { return bson_ != nullptr; }

 private:
  bson_t* bson_;
};

}  // namespace siobridge::wire
