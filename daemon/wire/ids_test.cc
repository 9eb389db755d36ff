#include "daemon/wire/ids.h"

#include <catch2/catch.hpp>

#include <set>

using namespace siobridge::wire;

TEST_CASE("generated ids are 16 URL-safe characters and distinct") {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    auto id = generate_id();
    REQUIRE(id.size() == 16);
    REQUIRE(is_valid_id(id));
    seen.insert(id);
  }
  REQUIRE(seen.size() == 10000);
}

TEST_CASE("generated ids use the whole alphabet") {
  std::set<char> chars;
  for (int i = 0; i < 2000; ++i)
    for (char c : generate_id()) chars.insert(c);
  REQUIRE(chars.size() == 64);
}

TEST_CASE("id validation") {
  CHECK(is_valid_id("AAAAAAAAAAAAAAAA"));
  CHECK(is_valid_id("PHHq01ObWy7Godqx"));
  CHECK(is_valid_id("a-_zZ09a-_zZ09xx"));
  CHECK_FALSE(is_valid_id(""));
  CHECK_FALSE(is_valid_id("AAAAAAAAAAAAAAA"));
  CHECK_FALSE(is_valid_id("AAAAAAAAAAAAAAAAA"));
  CHECK_FALSE(is_valid_id("AAAAAAAAAAAAAAA+"));
  CHECK_FALSE(is_valid_id("AAAAAAAAAAAAAAA/"));
  CHECK_FALSE(is_valid_id("AAAAAAAAAAAAAAA="));
  CHECK_FALSE(is_valid_id(std::string("AAAAAAAAAAAAAAA\0", 16)));
  CHECK_FALSE(is_valid_id("~siobridge~~~~~~"));
}

TEST_CASE("socket id validation accepts socket.io's 20-character ids") {
  CHECK(is_valid_socket_id("CCCCCCCCCCCCCCCC"));
  CHECK(is_valid_socket_id("Xn3-qR_0aB9cDeFgHiJk"));
  CHECK_FALSE(is_valid_socket_id(""));
  CHECK_FALSE(is_valid_socket_id(std::string(65, 'a')));
  CHECK_FALSE(is_valid_socket_id("abc def"));
}

TEST_CASE("socket aliases are valid ids that every node computes alike") {
  CHECK(socket_alias("CCCCCCCCCCCCCCCC") == "CCCCCCCCCCCCCCCC");  // already valid
  const std::string alias = socket_alias("Xn3-qR_0aB9cDeFgHiJk");
  CHECK(is_valid_id(alias));
  CHECK(alias == socket_alias("Xn3-qR_0aB9cDeFgHiJk"));
  // A fixed function: this value is part of the protocol (docs/PROTOCOL.md).
  CHECK(alias == "MPNtUKatuh9NHXdI");
  CHECK(socket_alias("Xn3-qR_0aB9cDeFgHiJl") != alias);
  CHECK(is_valid_id(socket_alias("x")));
}
