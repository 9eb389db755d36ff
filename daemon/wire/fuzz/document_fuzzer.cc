// libFuzzer target: decode_document on arbitrary bytes (as if read from the
// collection). Whatever decodes must survive an encode/decode round trip in
// both data formats.
#include <cstdlib>

#include "daemon/wire/document.h"
#include "daemon/wire/owned_bson.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace siobridge::wire;
  auto decoded = decode_document(data, size);
  if (!decoded.ok()) return 0;
  for (auto format : {DataFormat::kInt32Array, DataFormat::kBinary}) {
    OwnedBson bson;
    encode_document(*decoded, EncodeOptions{format, 1}, bson.get());
    auto again = decode_document(bson.get());
    if (!again.ok() || !(*again == *decoded)) std::abort();
  }
  return 0;
}
