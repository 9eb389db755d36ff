#include "daemon/wire/payload_codec.h"

#include <catch2/catch.hpp>

#include "daemon/wire/testing/hex.h"

using namespace siobridge::wire;
using siobridge::wire::testing::from_hex;
using siobridge::wire::testing::to_hex;

namespace {

const std::string A(16, 'A'), B(16, 'B'), C(16, 'C');

Request heartbeat(std::optional<BroadcastOptions> opts = std::nullopt) {
  Request r;
  r.node_id = A;
  r.id = B;
  r.type = RequestType::kHeartbeat;
  r.opts = std::move(opts);
  return r;
}

Value str_value(std::string text) {
  return Value{ValueKind::kStr, std::move(text), std::nullopt};
}

Response response(decltype(Response::body) body) {
  return Response{A, std::move(body)};
}

void check_vector(const std::string& hex, const Bytes& encoded) {
  INFO("expected " << hex);
  INFO("encoded  " << to_hex(encoded));
  REQUIRE(encoded == from_hex(hex));
}

}  // namespace

// ---- PROTOCOL.md section 8, byte for byte both ways ----

TEST_CASE("vector 1: heartbeat recorded from socketioxide") {
  const auto bytes = from_hex(
      "96 b0 50 48 48 71 30 31 4f 62 57 79 37 47 6f 64 71 78 b0 5a 47 39 4b 31 72 37 78 53 4c 42 "
      "69 4a 59 57 44 14 c0 c0 95 00 90 90 c0 c0");
  REQUIRE(bytes.size() == 44);
  auto decoded = decode_request(bytes);
  REQUIRE(decoded.ok());
  CHECK(decoded->node_id == "PHHq01ObWy7Godqx");
  CHECK(decoded->id == "ZG9K1r7xSLBiJYWD");
  CHECK(decoded->type == RequestType::kHeartbeat);
  CHECK_FALSE(decoded->packet);
  CHECK_FALSE(decoded->rooms);
  REQUIRE(decoded->opts);
  CHECK(*decoded->opts == BroadcastOptions{});
  CHECK(encode_request(*decoded) == bytes);
}

TEST_CASE("vector 2: heartbeat as normally sent") {
  const std::string hex = "96 b0 A… b0 B… 14 c0 c0 c0";
  check_vector(hex, encode_request(heartbeat()));
  auto decoded = decode_request(from_hex(hex));
  REQUIRE(decoded.ok());
  CHECK(*decoded == heartbeat());
}

TEST_CASE("vector 3: broadcast of [\"test\",2] from socket C") {
  const std::string hex =
      "96 b0 A… b0 B… 00 95 a1 2f 02 93 00 9a 5b 22 74 65 73 74 22 2c 32 5d c0 c0 c0 c0 95 02 90 "
      "90 "
      "b0 C… c0";
  Request r;
  r.node_id = A;
  r.id = B;
  r.type = RequestType::kBroadcast;
  r.packet = Packet{"/", PacketType::kEvent, str_value("[\"test\",2]"), std::nullopt, std::nullopt};
  r.opts = BroadcastOptions{broadcast_flags::kBroadcast, {}, {}, C, std::nullopt};
  check_vector(hex, encode_request(r));
  auto decoded = decode_request(from_hex(hex));
  REQUIRE(decoded.ok());
  CHECK(*decoded == r);
}

TEST_CASE("vectors 4-8: responses") {
  struct Case {
    const char* name;
    std::string hex;
    Response value;
  };
  const Case cases[] = {
      {"4 BroadcastAckCount(3)", "92 b0 A… 92 01 03", response(BroadcastAckCount{3})},
      {"5 BroadcastAck Ok", "92 b0 A… 92 00 92 b0 C… 81 a2 4f 6b 93 00 97 5b 22 66 6f 6f 22 5d c0",
       response(BroadcastAck{C, str_value("[\"foo\"]")})},
      {"6 BroadcastAck Err(Timeout)",
       "92 b0 A… 92 00 92 b0 C… 81 a3 45 72 72 a7 54 69 6d 65 6f 75 74",
       response(BroadcastAck{C, AckError{AckError::Kind::kTimeout, {}}})},
      {"7 AllRooms", "92 b0 A… 92 02 92 a5 72 6f 6f 6d 31 a5 72 6f 6f 6d 32",
       response(RoomList{{"room1", "room2"}})},
      {"8 FetchSockets", "92 b0 A… 92 03 91 93 b0 C… b0 A… a1 2f",
       response(SocketList{{SocketRef{C, A, "/"}}})},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      check_vector(c.hex, encode_response(c.value));
      auto decoded = decode_response(from_hex(c.hex));
      REQUIRE(decoded.ok());
      CHECK(*decoded == c.value);
    }
  }
}

// ---- round trips of every type ----

TEST_CASE("every request type round-trips") {
  Value binary{ValueKind::kStr, "[\"file\",{\"_placeholder\":true,\"num\":0}]",
               std::vector<Bytes>{std::string("\x00\x01\xff\x80", 4), std::string(70000, '\xab')}};
  Value msgpack_value{ValueKind::kBytes, std::string("\x92\xa4test\xcc\xff\x00", 8), std::nullopt};
  BroadcastOptions opts{broadcast_flags::kVolatile | broadcast_flags::kBroadcast,
                        {"room1", "r\xc3\xa9union"},
                        {"except"},
                        C,
                        A};
  std::vector<Request> requests;
  for (auto type : {RequestType::kBroadcast, RequestType::kBroadcastWithAck}) {
    for (const auto& value : {binary, msgpack_value}) {
      Request r{A,  B,   type, Packet{"/admin", PacketType::kBinaryEvent, value, -7, "oops"},
                {}, opts};
      requests.push_back(r);
    }
  }
  for (auto type :
       {RequestType::kDisconnectSockets, RequestType::kAllRooms, RequestType::kFetchSockets}) {
    requests.push_back(Request{A, B, type, std::nullopt, std::nullopt, opts});
  }
  for (auto type : {RequestType::kAddSockets, RequestType::kDelSockets}) {
    requests.push_back(
        Request{A, B, type, std::nullopt, std::vector<std::string>{"a", "b"}, BroadcastOptions{}});
  }
  requests.push_back(heartbeat());
  Request init = heartbeat();
  init.type = RequestType::kInitHeartbeat;
  requests.push_back(init);
  Request large_ack = requests[0];
  large_ack.packet->ack = INT64_MAX;
  requests.push_back(large_ack);

  for (const auto& request : requests) {
    INFO(to_string(request.type));
    auto decoded = decode_request(encode_request(request));
    REQUIRE(decoded.ok());
    CHECK(*decoded == request);
  }
}

TEST_CASE("every response type round-trips") {
  std::vector<Response> responses = {
      response(BroadcastAck{"Xn3-qR_0aB9cDeFgHiJk", Value{ValueKind::kBytes, "\x01\xff", {}}}),
      response(BroadcastAck{C, AckError{AckError::Kind::kDecode, "bad json"}}),
      response(BroadcastAck{C, AckError{AckError::Kind::kSocketClosed, {}}}),
      response(BroadcastAck{C, AckError{AckError::Kind::kSocketChannelFull, {}}}),
      response(BroadcastAckCount{0}),
      response(BroadcastAckCount{UINT32_MAX}),
      response(RoomList{}),
      response(RoomList{{std::string(300, 'r')}}),
      response(SocketList{}),
      response(SocketList{{SocketRef{C, A, "/"}, SocketRef{"Xn3-qR_0aB9cDeFgHiJk", B, "/chat"}}}),
  };
  for (const auto& r : responses) {
    auto decoded = decode_response(encode_response(r));
    REQUIRE(decoded.ok());
    CHECK(*decoded == r);
  }
}

TEST_CASE("values keep every byte value") {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  Value v{ValueKind::kBytes, all + all, std::nullopt};
  Bytes encoded;
  encode_value(v, encoded);
  auto decoded = decode_value(encoded);
  REQUIRE(decoded.ok());
  CHECK(*decoded == v);
}

// ---- equivalent non-minimal msgpack is accepted ----

TEST_CASE("non-minimal msgpack forms decode like the minimal ones") {
  // Vector 2 with: array16 outer, str8 node id, str16 request id, uint16 type,
  // and the three nils unchanged.
  const auto heavy = from_hex("dc 00 06 d9 10 A… da 00 10 B… cd 00 14 c0 c0 c0");
  auto decoded = decode_request(heavy);
  REQUIRE(decoded.ok());
  CHECK(*decoded == heartbeat());

  // Vector 3 with uint8 flags, int8 positive packet type, uint32 byte elements,
  // array32 rooms and str32 sid.
  const auto bytes3 = from_hex(
      "96 b0 A… b0 B… cc 00 95 d9 01 2f d0 02 93 00 dc 00 0a ce 00 00 00 5b 22 74 65 73 74 22 2c "
      "32 5d c0 c0 c0 c0 95 cc 02 dd 00 00 00 00 90 db 00 00 00 10 C… c0");
  auto decoded3 = decode_request(bytes3);
  REQUIRE(decoded3.ok());
  CHECK(decoded3->packet->data->bytes == "[\"test\",2]");
  CHECK(decoded3->opts->sid == C);
  CHECK(decoded3->opts->flags == broadcast_flags::kBroadcast);

  // Vector 4 with a map16-free count as uint64.
  auto count = decode_response(from_hex("92 b0 A… 92 01 cf 00 00 00 00 00 00 00 03"));
  REQUIRE(count.ok());
  CHECK(std::get<BroadcastAckCount>(count->body).count == 3);

  // Vector 5 with map16 and bin attachments given as byte arrays.
  auto ack = decode_response(from_hex(
      "92 b0 A… 92 00 92 b0 C… de 00 01 a2 4f 6b 93 00 97 5b 22 66 6f 6f 22 5d 91 92 01 02"));
  REQUIRE(ack.ok());
  const auto& value = std::get<Value>(std::get<BroadcastAck>(ack->body).result);
  CHECK(value.attachments == std::vector<Bytes>{"\x01\x02"});
}
