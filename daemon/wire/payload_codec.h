// msgpack encoding of requests and responses (PROTOCOL.md sections 3-4), the
// `data` of every document. Encoders produce the exact bytes of the reference
// (section 8 vectors); decoders accept any equivalent msgpack (non-minimal
// forms) and return an Error for anything else, never crash, never read out of
// bounds.
//
// Stateless and thread-safe.
#pragma once

#include <string_view>

#include "daemon/common/result.h"
#include "daemon/wire/messages.h"

namespace siobridge::wire {

// Appends the msgpack form to `out`.
void encode_request(const Request& request, Bytes& out);
void encode_response(const Response& response, Bytes& out);

Bytes encode_request(const Request& request);
Bytes encode_response(const Response& response);

Result<Request> decode_request(std::string_view payload);
Result<Response> decode_response(std::string_view payload);

// Pieces shared with the extension codec.
void encode_value(const Value& value, Bytes& out);
Result<Value> decode_value(std::string_view payload);

}  // namespace siobridge::wire
