// What w: majority costs against w: 1 for the writes siobridged makes: ordered
// insertMany of siobridge-sized documents (about 100 bytes of payload), both
// journaled as the daemon sends them (mongodb.write_concern), one call at a
// time as the daemon's writer does. Rounds alternate the two concerns so that
// drift of the server affects both alike; medians of the rounds are printed.
//
//   write_concern_bench MONGODB_URI [seconds per phase, default 3] [rounds, default 3]
//
// For each batch size (1 document, as at low load; 100, as under load): round
// trips per second, documents per second, p50 and p99 of the round trip.
// Meaningful on a replica set of several members (on one node, majority is
// that node). Single-threaded.
#include <mongoc/mongoc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "daemon/wire/owned_bson.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Phase {
  double calls_per_s = 0, docs_per_s = 0, p50_ms = 0, p99_ms = 0;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

Phase run(mongoc_collection_t* coll, bool majority, int batch, double seconds) {
  const siobridge::wire::OwnedBson opts(
      majority ? BCON_NEW("ordered", BCON_BOOL(true), "writeConcern", "{", "w",
                          BCON_UTF8("majority"), "j", BCON_BOOL(true), "}")
               : BCON_NEW("ordered", BCON_BOOL(true), "writeConcern", "{", "w", BCON_INT32(1), "j",
                          BCON_BOOL(true), "}"));
  const std::string payload(100, 'x');
  std::vector<double> ms;
  long docs = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    std::vector<siobridge::wire::OwnedBson> owned;
    std::vector<const bson_t*> pointers;
    for (int i = 0; i < batch; ++i) {
      owned.emplace_back(BCON_NEW("ns", BCON_UTF8("/"), "origin", BCON_UTF8("bench-writer0000"),
                                  "data", BCON_UTF8(payload.c_str())));
      pointers.push_back(owned.back().get());
    }
    bson_error_t error;
    const auto sent = Clock::now();
    const bool ok = mongoc_collection_insert_many(coll, pointers.data(), pointers.size(),
                                                  opts.get(), nullptr, &error);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - sent).count());
    if (!ok) {
      std::fprintf(stderr, "insertMany failed: %s\n", error.message);
      std::exit(1);
    }
    docs += batch;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  return {static_cast<double>(ms.size()) / elapsed, static_cast<double>(docs) / elapsed,
          percentile(ms, 0.5), percentile(ms, 0.99)};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: write_concern_bench MONGODB_URI [seconds] [rounds]\n");
    return 2;
  }
  const double seconds = argc > 2 ? std::atof(argv[2]) : 3.0;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 3;
  mongoc_init();
  mongoc_client_t* client = mongoc_client_new(argv[1]);
  if (!client) {
    std::fprintf(stderr, "bad MongoDB URI\n");
    return 2;
  }
  mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
  const std::string db = "siobridge_bench_wc_" + std::to_string(std::time(nullptr));
  mongoc_collection_t* coll = mongoc_client_get_collection(client, db.c_str(), "writes");
  {
    // Created before the first timed write (an implicit creation is slower).
    mongoc_database_t* d = mongoc_client_get_database(client, db.c_str());
    bson_error_t error;
    mongoc_collection_t* created = mongoc_database_create_collection(d, "writes", nullptr, &error);
    if (created) mongoc_collection_destroy(created);
    mongoc_database_destroy(d);
  }
  std::printf("insertMany round trips, journaled, %s, %.0f s per phase, %d rounds (medians)\n\n",
              argv[1], seconds, rounds);
  std::printf("%-10s %6s %14s %12s %10s %10s\n", "w", "batch", "round trips/s", "docs/s", "p50 ms",
              "p99 ms");
  for (const int batch : {1, 100}) {
    std::vector<double> calls[2], docs[2], p50[2], p99[2];
    for (int round = 0; round < rounds; ++round) {
      for (int majority = 1; majority >= 0; --majority) {
        const Phase phase = run(coll, majority == 1, batch, seconds);
        calls[majority].push_back(phase.calls_per_s);
        docs[majority].push_back(phase.docs_per_s);
        p50[majority].push_back(phase.p50_ms);
        p99[majority].push_back(phase.p99_ms);
      }
    }
    for (int majority = 1; majority >= 0; --majority) {
      std::printf("%-10s %6d %14.0f %12.0f %10.2f %10.2f\n", majority ? "majority" : "1", batch,
                  median(calls[majority]), median(docs[majority]), median(p50[majority]),
                  median(p99[majority]));
    }
    std::printf("majority/1 with batches of %d: %.2fx the p50 round trip, %.2fx the docs/s\n\n",
                batch, median(p50[1]) / std::max(0.001, median(p50[0])),
                median(docs[1]) / std::max(1.0, median(docs[0])));
  }
  mongoc_database_t* d = mongoc_client_get_database(client, db.c_str());
  bson_error_t error;
  mongoc_database_drop(d, &error);
  mongoc_database_destroy(d);
  mongoc_collection_destroy(coll);
  mongoc_client_destroy(client);
  mongoc_cleanup();
  return 0;
}
