// libFuzzer target: decode_request on arbitrary bytes. Whatever decodes must
// re-encode to bytes that decode to the same request.
#include <cstdlib>

#include "daemon/wire/payload_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace siobridge::wire;
  auto decoded = decode_request({reinterpret_cast<const char*>(data), size});
  if (!decoded.ok()) return 0;
  auto again = decode_request(encode_request(*decoded));
  if (!again.ok() || !(*again == *decoded)) std::abort();
  return 0;
}
