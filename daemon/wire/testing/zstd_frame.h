// Test helper: zstd frames made the way no siobridge writer makes them (without
// a declared content size) as well as the way it does, for tests of what a
// reader of CompressedPacks refuses. Header-only; link libzstd.
#pragma once

#include <zstd.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace siobridge::wire::testing {

inline std::string zstd_frame(std::string_view content, bool declare_size) {
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_contentSizeFlag, declare_size ? 1 : 0);
  std::string frame(ZSTD_compressBound(content.size()), '\0');
  const auto size =
      ZSTD_compress2(cctx.get(), frame.data(), frame.size(), content.data(), content.size());
  if (ZSTD_isError(size)) throw std::runtime_error(ZSTD_getErrorName(size));
  frame.resize(size);
  return frame;
}

}  // namespace siobridge::wire::testing
