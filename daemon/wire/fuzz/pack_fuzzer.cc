// libFuzzer target: the frame of a CompressedPack (docs/PROTOCOL.md section
// 14.10) on arbitrary bytes, taken apart as a reader does. Whatever opens must
// carry the same messages when packed again, plain or compressed.
#include <cstdlib>

#include "daemon/wire/pack.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace siobridge::wire;
  const std::string origin(16, 'A');
  const Document document{
      {MessageKind::kRequest, "/", origin, std::string(kSiobridgeTarget), std::nullopt},
      {},
      encode_extension(CompressedPack{Bytes(reinterpret_cast<const char*>(data), size)})};
  auto opened = unpack_document(document);
  if (!opened.ok() || !opened->has_value()) return 0;
  std::vector<PackedMessage> messages;
  for (auto& m : **opened) messages.push_back(to_packed(m));
  static PackCompressor compressor;
  auto again = unpack_document(build_pack(origin, messages, compressor).document);
  if (!again.ok() || !again->has_value() || !(**again == **opened)) std::abort();
  return 0;
}
