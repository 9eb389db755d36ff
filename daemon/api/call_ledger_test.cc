// Unit tests of the numbered calls' bookkeeping: repeats are recognised per
// server instance, and a call is confirmed only once everything it and the
// calls before it published is settled.
#include "daemon/api/call_ledger.h"

#include <catch2/catch.hpp>

namespace siobridge::api {

TEST_CASE("call registry: each number of an instance is applied once") {
  CallRegistry registry;
  CHECK(registry.first_time("a", 1));
  CHECK(registry.first_time("a", 2));
  CHECK_FALSE(registry.first_time("a", 2));  // sent again
  CHECK_FALSE(registry.first_time("a", 1));
  CHECK(registry.first_time("b", 1));  // instances count apart
  CHECK(registry.highest("a") == 2);
  CHECK(registry.highest("unknown") == 0);
  registry.raise("a", 10);  // the cluster already holds up to 10
  CHECK_FALSE(registry.first_time("a", 7));
  CHECK(registry.first_time("a", 11));
  registry.raise("a", 3);  // never lowers
  CHECK(registry.highest("a") == 11);
  registry.forget("a");
  CHECK(registry.highest("a") == 0);
}

TEST_CASE("call registry: past its capacity the least recently used instance goes") {
  CallRegistry registry(2);
  registry.first_time("a", 5);
  registry.first_time("b", 5);
  registry.first_time("a", 6);  // a is used again: b is now the oldest
  registry.first_time("c", 1);
  CHECK(registry.size() == 2);
  CHECK(registry.highest("a") == 6);
  CHECK(registry.highest("b") == 0);
  CHECK(registry.highest("c") == 1);
}

TEST_CASE("confirm ledger: a call is confirmed once what it published is settled") {
  ConfirmLedger ledger;
  ledger.applied(1, 1);  // published document 1
  ledger.applied(2, 1);  // published nothing more: settles with call 1
  ledger.applied(3, 3);  // documents 2 and 3
  CHECK_FALSE(ledger.settle(0));
  CHECK(ledger.settle(1) == std::optional<std::uint64_t>(2));
  CHECK_FALSE(ledger.settle(1));  // nothing new
  CHECK_FALSE(ledger.settle(2));  // call 3 needs document 3 too
  CHECK(ledger.settle(3) == std::optional<std::uint64_t>(3));
  CHECK(ledger.waiting() == 0);
  // A call applied after everything it published settled: confirmed at once.
  ledger.applied(4, 3);
  CHECK(ledger.settle(3) == std::optional<std::uint64_t>(4));
}

TEST_CASE("confirm ledger: what the cluster already has is assumed, not reported") {
  ConfirmLedger ledger;
  ledger.applied(5, 10);
  ledger.assume(7);
  CHECK(ledger.confirmed() == 7);
  CHECK(ledger.waiting() == 0);
  CHECK_FALSE(ledger.settle(10));
  ledger.applied(6, 11);  // at or below what is confirmed: nothing to wait for
  CHECK(ledger.waiting() == 0);
  ledger.applied(8, 12);
  CHECK(ledger.settle(12) == std::optional<std::uint64_t>(8));
}

}  // namespace siobridge::api
