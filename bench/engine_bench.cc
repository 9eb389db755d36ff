// Two engines on a real MongoDB, 100-byte broadcasts from one received by the
// other, next to the raw floor measured by the same program in the same run:
// plain insertMany batches and a change stream, no engine.
//
//   engine_bench MONGODB_URI [seconds per phase, default 5]
//
// SIOBRIDGE_BENCH_WRITE_CONCERN (majority, the default, or 1) is the write
// concern of the engines (mongodb.write_concern) and of the floor's inserts,
// both journaled.
//
// Prints saturation throughput, p50/p99 latency at a steady 1,000 msgs/s, the
// ratios to the floor, and memory with 10,000 requests in flight. Targets:
// saturation >= 70 % of the floor and >= 10,000 msgs/s; p50 at 1,000 msgs/s at
// most twice the floor's.
#include <mongoc/mongoc.h>
#include <spdlog/spdlog.h>

#include <malloc.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/bus/mongodb/change_stream_filter.h"
#include "daemon/bus/mongodb/collection_setup.h"
#include "daemon/runtime/engine.h"
#include "daemon/wire/ids.h"
#include "daemon/wire/owned_bson.h"
#include "daemon/wire/payload_codec.h"

using namespace siobridge;
using BenchClock = std::chrono::steady_clock;

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(BenchClock::now().time_since_epoch())
      .count();
}

// 100 bytes of event data carrying its send time: ["m","<ns>","xxx…"].
std::string payload_at(std::int64_t sent_ns) {
  std::string text = "[\"m\",\"" + std::to_string(sent_ns) + "\",\"";
  text.append(100 - text.size() - 2, 'x');
  text += "\"]";
  return text;
}

std::int64_t sent_time_of(std::string_view text) {
  auto start = text.find("\",\"");
  if (start == std::string_view::npos) return 0;
  return std::stoll(std::string(text.substr(start + 3, 19)));
}

struct Latencies {
  std::mutex mutex;
  std::vector<double> ms;
  void add(double v) {
    std::lock_guard lock(mutex);
    ms.push_back(v);
  }
  double percentile(double p) {
    std::lock_guard lock(mutex);
    if (ms.empty()) return 0;
    std::sort(ms.begin(), ms.end());
    return ms[static_cast<std::size_t>(p * static_cast<double>(ms.size() - 1))];
  }
  void clear() {
    std::lock_guard lock(mutex);
    ms.clear();
  }
};

// Heap bytes in use (allocated and not freed), as glibc counts them.
long heap_in_use() {
  return static_cast<long>(mallinfo2().uordblks);
}

mongoc_client_t* client_for(const std::string& uri) {
  mongoc_client_t* client = mongoc_client_new(uri.c_str());
  mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
  return client;
}

// ---- the floor: insertMany + change stream, nothing else ----

struct FloorResult {
  double throughput = 0, p50 = 0, p99 = 0;
};

// The write concern of the engines, for the floor's inserts too.
bool g_majority = true;

FloorResult run_floor(const std::string& uri, const std::string& db, const std::string& coll_name,
                      double seconds, bool steady) {
  const std::string writer_uid = wire::generate_id(), reader_uid = wire::generate_id();
  std::atomic<long> received{0};
  std::atomic<bool> stop{false};
  Latencies latencies;
  std::atomic<bool> reading{false};
  std::thread reader([&] {
    mongoc_client_t* client = client_for(uri);
    mongoc_collection_t* coll = mongoc_client_get_collection(client, db.c_str(), coll_name.c_str());
    auto pipeline = bus::mongodb::change_stream_pipeline(reader_uid);
    wire::OwnedBson opts(BCON_NEW("maxAwaitTimeMS", BCON_INT32(100)));
    mongoc_change_stream_t* stream = mongoc_collection_watch(coll, pipeline.get(), opts.get());
    reading = true;
    const bson_t* event;
    while (!stop) {
      if (!mongoc_change_stream_next(stream, &event)) continue;
      bson_iter_t it;
      if (!bson_iter_init_find(&it, event, "fullDocument")) continue;
      std::uint32_t len;
      const std::uint8_t* data;
      bson_iter_document(&it, &len, &data);
      auto doc = wire::decode_document(data, len);  // what a node must do too
      if (!doc.ok()) continue;
      auto request = wire::decode_request(doc->data);
      if (request.ok() && request->packet && request->packet->data) {
        latencies.add(static_cast<double>(now_ns() - sent_time_of(request->packet->data->bytes)) /
                      1e6);
      }
      ++received;
    }
    mongoc_change_stream_destroy(stream);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(client);
  });
  while (!reading) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  mongoc_client_t* client = client_for(uri);
  mongoc_collection_t* coll = mongoc_client_get_collection(client, db.c_str(), coll_name.c_str());
  const auto start = BenchClock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  long sent = 0;
  auto make_doc = [&](bson_t* out, std::int64_t created_ns) {
    wire::Request request{
        writer_uid,
        wire::generate_id(),
        wire::RequestType::kBroadcast,
        wire::Packet{"/", wire::PacketType::kEvent,
                     wire::Value{wire::ValueKind::kStr, payload_at(created_ns), std::nullopt},
                     std::nullopt, std::nullopt},
        std::nullopt,
        wire::BroadcastOptions{2, {}, {}, std::nullopt, std::nullopt}};
    wire::Document doc{{wire::MessageKind::kRequest, "/", writer_uid, std::nullopt, std::nullopt},
                       wire::encode_request(request),
                       std::nullopt};
    bson_oid_t oid;
    bson_oid_init(&oid, nullptr);
    BSON_APPEND_OID(out, "_id", &oid);
    wire::encode_document(doc, wire::EncodeOptions{wire::DataFormat::kInt32Array, 0}, out);
  };
  // Saturated: batches of 100 back to back. Steady: messages fall due at
  // 1,000/s and each insertMany takes every message that fell due meanwhile.
  while (BenchClock::now() < end) {
    std::vector<std::int64_t> due;
    if (steady) {
      const long due_now = static_cast<long>(
          std::chrono::duration<double>(BenchClock::now() - start).count() * 1000);
      if (due_now <= sent) {
        std::this_thread::sleep_until(start + std::chrono::microseconds(1000 * (sent + 1)));
        continue;
      }
      for (long i = sent; i < due_now; ++i) {
        due.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(
                          (start + std::chrono::microseconds(1000 * (i + 1))).time_since_epoch())
                          .count());
      }
    } else {
      due.assign(100, now_ns());
    }
    std::vector<wire::OwnedBson> docs;
    std::vector<const bson_t*> pointers;
    for (std::size_t i = 0; i < due.size(); ++i) {
      docs.emplace_back(bson_sized_new(1600));
      make_doc(docs.back().get(), due[i]);
      pointers.push_back(docs.back().get());
    }
    bson_error_t error;
    wire::OwnedBson insert_opts(
        g_majority
            ? BCON_NEW("writeConcern", "{", "w", BCON_UTF8("majority"), "j", BCON_BOOL(true), "}")
            : BCON_NEW("writeConcern", "{", "w", BCON_INT32(1), "j", BCON_BOOL(true), "}"));
    if (mongoc_collection_insert_many(coll, pointers.data(), pointers.size(), insert_opts.get(),
                                      nullptr, &error)) {
      sent += static_cast<long>(due.size());
    }
  }
  const double elapsed = std::chrono::duration<double>(BenchClock::now() - start).count();
  // Let the stream catch up with what was inserted.
  const auto drain_deadline = BenchClock::now() + std::chrono::seconds(30);
  while (received < sent && BenchClock::now() < drain_deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const double total = std::chrono::duration<double>(BenchClock::now() - start).count();
  stop = true;
  reader.join();
  mongoc_collection_destroy(coll);
  mongoc_client_destroy(client);
  (void)elapsed;
  return {static_cast<double>(received) / total, latencies.percentile(0.5),
          latencies.percentile(0.99)};
}

// ---- two engines ----

class CountingServer final : public core::LocalServer {
 public:
  void deliver(const core::Command& command) override {
    if (command.kind != core::CommandKind::kBroadcast || !command.packet || !command.packet->data)
      return;
    latencies.add(static_cast<double>(now_ns() - sent_time_of(command.packet->data->bytes)) / 1e6);
    ++received;
  }
  std::atomic<long> received{0};
  Latencies latencies;
};

struct NullServer final : public core::LocalServer {
  void deliver(const core::Command&) override {}
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: engine_bench MONGODB_URI [seconds]\n");
    return 2;
  }
  const std::string uri = argv[1];
  const double seconds = argc > 2 ? std::atof(argv[2]) : 5.0;
  // mongodb.write_concern of the engines: majority (the default) or 1.
  const char* concern = std::getenv("SIOBRIDGE_BENCH_WRITE_CONCERN");
  mongoc_init();
  spdlog::set_level(spdlog::level::warn);
  const std::string db = "siobridge_bench_" + wire::generate_id().substr(0, 8);
  const std::string coll = "socket.io-adapter";
  {
    mongoc_client_t* client = client_for(uri);
    auto status =
        bus::mongodb::ensure_collection(client, db, coll, bus::mongodb::Expiration::ttl(60));
    if (!status.ok()) {
      std::fprintf(stderr, "set-up failed: %s\n", status.error().message.c_str());
      return 1;
    }
    mongoc_client_destroy(client);
  }

  const int rounds = 3;
  std::printf(
      "siobridge engine benchmark: 100 B broadcasts, %s, %.0f s per phase, %d rounds, engines "
      "writing with w: %s\n",
      uri.c_str(), seconds, rounds, concern ? concern : "majority");

  runtime::EngineOptions options;
  options.node.heartbeat_interval = Millis{2000};
  bus::mongodb::MongoBusConfig bus_config;
  bus_config.uri = uri;
  bus_config.database = db;
  bus_config.collection = coll;
  if (const char* batch = std::getenv("SIOBRIDGE_BENCH_MAX_BATCH"))
    bus_config.max_batch = std::stoul(batch);
  if (concern && std::string(concern) == "1") {
    bus_config.write_concern = bus::mongodb::MongoBusConfig::WriteConcern::kPrimary;
    g_majority = false;
  } else if (concern && std::string(concern) != "majority") {
    std::fprintf(stderr, "SIOBRIDGE_BENCH_WRITE_CONCERN must be majority or 1, not %s\n", concern);
    return 2;
  }
  options.mongodb = bus_config;
  auto sender = std::move(runtime::Engine::create(options).value());
  options.node.uid.clear();
  auto receiver = std::move(runtime::Engine::create(options).value());
  sender->start();
  receiver->start();
  NullServer source;
  CountingServer sink;
  auto source_id = sender->call([&](core::Node& n) {
    auto id = n.attach(source, "source");
    (void)n.join_namespace(id, "/");
    return id;
  });
  receiver->call([&](core::Node& n) {
    auto id = n.attach(sink, "sink");
    return n.join_namespace(id, "/").ok();
  });
  receiver->when([](core::Node& n) { return n.server_count("/") == 2; })
      .wait_for(std::chrono::seconds(30));

  const wire::BroadcastOptions all{
      wire::broadcast_flags::kBroadcast, {}, {}, std::nullopt, std::nullopt};
  auto broadcast_now = [&](core::Node& n) {
    wire::Packet packet{"/", wire::PacketType::kEvent,
                        wire::Value{wire::ValueKind::kStr, payload_at(now_ns()), std::nullopt},
                        std::nullopt, std::nullopt};
    return n.broadcast(source_id, packet, all).ok();
  };
  auto wait_for_sink = [&](long target) {
    const auto deadline = BenchClock::now() + std::chrono::seconds(60);
    while (sink.received < target && BenchClock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  };

  // Saturation: keep the writer's queue fed, count what the other engine gets.
  auto engine_saturated = [&] {
    const long before = sink.received;
    long accepted = 0;
    const auto start = BenchClock::now();
    const auto end = start + std::chrono::duration<double>(seconds);
    while (BenchClock::now() < end) {
      if (sender->mongo_stats()->queued.load() > 20000) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      accepted += sender->call([&](core::Node& n) {
        long ok = 0;
        for (int i = 0; i < 200; ++i) ok += broadcast_now(n);
        return ok;
      });
    }
    wait_for_sink(before + accepted);
    return static_cast<double>(sink.received - before) /
           std::chrono::duration<double>(BenchClock::now() - start).count();
  };
  // A steady 1,000 msgs/s.
  auto engine_steady = [&] {
    sink.latencies.clear();
    const long before = sink.received;
    long sent = 0;
    const auto start = BenchClock::now();
    const auto end = start + std::chrono::duration<double>(seconds);
    while (BenchClock::now() < end) {
      sent += sender->call([&](core::Node& n) { return broadcast_now(n) ? 1 : 0; });
      std::this_thread::sleep_until(start + std::chrono::microseconds(1000 * (sent + 1)));
    }
    wait_for_sink(before + sent);
    return FloorResult{static_cast<double>(sent) / seconds, sink.latencies.percentile(0.5),
                       sink.latencies.percentile(0.99)};
  };

  // Rounds alternate the floor and the engines so that drift of the server
  // (cache, oplog, other load) affects both alike; medians are compared.
  std::vector<double> floor_sat, engine_sat;
  std::vector<FloorResult> floor_steady, engines_steady;
  std::printf("\n%-8s %16s %16s %14s %14s\n", "round", "floor sat msg/s", "engine sat msg/s",
              "floor p50 ms", "engine p50 ms");
  for (int round = 0; round < rounds; ++round) {
    const std::string floor_coll = "floor-" + std::to_string(round);
    {
      mongoc_client_t* client = client_for(uri);
      (void)bus::mongodb::ensure_collection(client, db, floor_coll,
                                            bus::mongodb::Expiration::ttl(60));
      mongoc_client_destroy(client);
    }
    floor_sat.push_back(run_floor(uri, db, floor_coll, seconds, false).throughput);
    engine_sat.push_back(engine_saturated());
    floor_steady.push_back(run_floor(uri, db, floor_coll, seconds, true));
    engines_steady.push_back(engine_steady());
    std::printf("%-8d %16.0f %16.0f %14.2f %14.2f\n", round + 1, floor_sat.back(),
                engine_sat.back(), floor_steady.back().p50, engines_steady.back().p50);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  auto median_of = [&](const std::vector<FloorResult>& v, double FloorResult::*field) {
    std::vector<double> values;
    for (const auto& r : v) values.push_back(r.*field);
    return median(values);
  };
  const double floor_tp = median(floor_sat), engine_tp = median(engine_sat);
  const double floor_p50 = median_of(floor_steady, &FloorResult::p50);
  const double floor_p99 = median_of(floor_steady, &FloorResult::p99);
  const double engine_p50 = median_of(engines_steady, &FloorResult::p50);
  const double engine_p99 = median_of(engines_steady, &FloorResult::p99);

  // Memory with 10,000 requests in flight: allRooms waiting for a node that
  // never answers (a heartbeat inserted by hand makes it a live peer).
  {
    mongoc_client_t* client = client_for(uri);
    mongoc_collection_t* c = mongoc_client_get_collection(client, db.c_str(), coll.c_str());
    const std::string deaf = wire::generate_id();
    wire::Request hb{deaf, wire::generate_id(), wire::RequestType::kInitHeartbeat, {}, {}, {}};
    wire::Document doc{{wire::MessageKind::kRequest, "/", deaf, std::nullopt, std::nullopt},
                       wire::encode_request(hb),
                       std::nullopt};
    wire::OwnedBson b;
    wire::encode_document(doc, {}, b.get());
    bson_error_t error;
    mongoc_collection_insert_one(c, b.get(), nullptr, nullptr, &error);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
  }
  sender->when([](core::Node& n) { return n.server_count("/") >= 3; })
      .wait_for(std::chrono::seconds(30));
  const long heap_before = heap_in_use();
  std::atomic<long> answered{0};
  sender->call([&](core::Node& n) {
    for (int i = 0; i < 10000; ++i) {
      (void)n.all_rooms(source_id, "/", {}, [&](core::RoomsResult) { ++answered; });
    }
    return 0;
  });
  const auto in_flight =
      sender->call([](core::Node& n) { return n.status().operations_in_flight; });
  const long heap_after = heap_in_use();
  sender->stop(Millis{2000});
  receiver->stop(Millis{2000});

  const double ratio_sat = engine_tp / floor_tp;
  const double ratio_p50 = engine_p50 / std::max(0.001, floor_p50);
  std::printf("\nmedians                            %14s %10s %10s\n", "msgs/s", "p50 ms",
              "p99 ms");
  std::printf("%-34s %14.0f %10s %10s\n", "floor, insertMany(100) saturated", floor_tp, "-", "-");
  std::printf("%-34s %14.0f %10s %10s\n", "engines, saturated", engine_tp, "-", "-");
  std::printf("%-34s %14s %10.2f %10.2f\n", "floor, insertMany at 1,000/s", "1000", floor_p50,
              floor_p99);
  std::printf("%-34s %14s %10.2f %10.2f\n", "engines, at 1,000/s", "1000", engine_p50, engine_p99);
  std::printf(
      "\nsaturation: %.0f %% of the floor (target >= 70 %%), %.0f msgs/s (target >= 10,000): %s\n",
      ratio_sat * 100, engine_tp, ratio_sat >= 0.7 && engine_tp >= 10000 ? "met" : "MISSED");
  std::printf("p50 at 1,000 msgs/s: %.2fx the floor's (target <= 2x): %s\n", ratio_p50,
              ratio_p50 <= 2.0 ? "met" : "MISSED");
  std::printf(
      "memory with %zu requests in flight: %+.1f MiB of heap (%.0f bytes per request, "
      "documents waiting in the writer included)\n",
      in_flight, static_cast<double>(heap_after - heap_before) / (1 << 20),
      in_flight ? static_cast<double>(heap_after - heap_before) / static_cast<double>(in_flight)
                : 0.0);

  mongoc_client_t* client = client_for(uri);
  mongoc_database_t* d = mongoc_client_get_database(client, db.c_str());
  bson_error_t error;
  mongoc_database_drop(d, &error);
  mongoc_database_destroy(d);
  mongoc_client_destroy(client);
  mongoc_cleanup();
  return 0;
}
