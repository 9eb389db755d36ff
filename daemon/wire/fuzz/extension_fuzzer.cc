// libFuzzer target: decode_extension on arbitrary bytes, with the round-trip
// property of request_fuzzer.cc.
#include <cstdlib>

#include "daemon/wire/extension.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace siobridge::wire;
  auto decoded = decode_extension({reinterpret_cast<const char*>(data), size});
  if (!decoded.ok()) return 0;
  auto again = decode_extension(encode_extension(*decoded));
  if (!again.ok() || !(*again == *decoded)) std::abort();
  return 0;
}
