#include "daemon/app/metrics.h"

#include <fmt/format.h>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "daemon/bus/mongodb/diagnosis.h"
#include "daemon/bus/mongodb/mongo_bus.h"
#include "daemon/common/memory.h"
#include "daemon/wire/messages.h"

namespace siobridge::app {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

const char* request_type_name(std::size_t code) {
  return wire::to_string(static_cast<wire::RequestType>(code));
}

const char* response_type_name(std::size_t code) {
  static const char* names[] = {"BroadcastAck", "BroadcastAckCount", "AllRooms", "FetchSockets"};
  return code < 4 ? names[code] : "Unknown";
}

class FamilyBuilder {
 public:
  FamilyBuilder(std::vector<MetricFamily>& out, std::string name, std::string help, MetricType type)
      : family_(&out.emplace_back()) {
    family_->name = std::move(name);
    family_->help = std::move(help);
    family_->type = type;
  }
  FamilyBuilder& add(double value, std::vector<std::pair<std::string, std::string>> labels = {}) {
    ClientMetric metric;
    for (auto& [name, label] : labels) metric.label.push_back({name, label});
    if (family_->type == MetricType::Counter) {
      metric.counter.value = value;
    } else {
      metric.gauge.value = value;
    }
    family_->metric.push_back(std::move(metric));
    return *this;
  }

 private:
  MetricFamily* family_;
};

// Everything the core and the bus count, read on the core thread per scrape.
class EngineCollector final : public prometheus::Collectable {
 public:
  explicit EngineCollector(runtime::Engine& engine) : engine_(engine) {}

  std::vector<MetricFamily> Collect() const override {
    struct Snapshot {
      core::NodeStats stats;
      core::NodeStatus status;
      core::RecoveryTotals recovery;
    };
    // Urgent: a scrape is answered within a turn, not behind a backlog.
    auto snapshot = engine_.call(
        [](core::Node& node) {
          return Snapshot{node.stats(), node.status(), node.recovery_totals()};
        },
        /*urgent=*/true);
    std::vector<MetricFamily> out;
    const auto& s = snapshot.stats;
    {
      FamilyBuilder f(out, "siobridge_requests_total", "Requests by direction and type.",
                      MetricType::Counter);
      for (std::size_t t = 0; t < s.requests_in.size(); ++t) {
        if (!wire::is_known_request_type(t)) continue;
        f.add(static_cast<double>(s.requests_in[t]),
              {{"direction", "in"}, {"type", request_type_name(t)}});
        f.add(static_cast<double>(s.requests_out[t]),
              {{"direction", "out"}, {"type", request_type_name(t)}});
      }
    }
    {
      FamilyBuilder f(out, "siobridge_responses_total", "Responses by direction and type.",
                      MetricType::Counter);
      for (std::size_t t = 0; t < 4; ++t) {
        f.add(static_cast<double>(s.responses_in[t]),
              {{"direction", "in"}, {"type", response_type_name(t)}});
        f.add(static_cast<double>(s.responses_out[t]),
              {{"direction", "out"}, {"type", response_type_name(t)}});
      }
    }
    FamilyBuilder(out, "siobridge_extension_messages_total",
                  "siobridge-only messages (server-side emit).", MetricType::Counter)
        .add(static_cast<double>(s.extensions_in), {{"direction", "in"}})
        .add(static_cast<double>(s.extensions_out), {{"direction", "out"}});
    const auto* mongo = engine_.mongo_stats();
    if (const auto* bus = engine_.mongo_bus()) {
      FamilyBuilder(out, "siobridge_change_stream_core_backlog_bytes",
                    "Bytes read from the change stream that the core thread has not taken yet.",
                    MetricType::Gauge)
          .add(static_cast<double>(bus->core_backlog()));
    }
    FamilyBuilder(
        out, "siobridge_decode_errors_total",
        "Documents skipped because they did not decode (document: BSON layout, payload: msgpack).",
        MetricType::Counter)
        .add(mongo ? static_cast<double>(mongo->malformed.load()) : 0, {{"stage", "document"}})
        .add(static_cast<double>(s.decode_errors), {{"stage", "payload"}});
    FamilyBuilder(out, "siobridge_ignored_documents_total",
                  "Documents for namespaces no local server uses.", MetricType::Counter)
        .add(static_cast<double>(s.inactive_namespace));
    FamilyBuilder(out, "siobridge_late_responses_total",
                  "Answers that came after their request finished.", MetricType::Counter)
        .add(static_cast<double>(s.late_responses));
    FamilyBuilder(out, "siobridge_publish_failures_total",
                  "Documents the bus refused (MongoDB unavailable).", MetricType::Counter)
        .add(static_cast<double>(s.publish_failures));
    FamilyBuilder(out, "siobridge_peers_expired_total",
                  "Peers dropped after the heartbeat timeout.", MetricType::Counter)
        .add(static_cast<double>(s.peers_expired));
    FamilyBuilder(out, "siobridge_local_timeouts_total",
                  "Attached servers that did not answer in time.", MetricType::Counter)
        .add(static_cast<double>(s.local_timeouts));
    FamilyBuilder(out, "siobridge_commands_total", "Commands pushed to attached servers.",
                  MetricType::Counter)
        .add(static_cast<double>(s.commands_out));
    FamilyBuilder(out, "siobridge_peers_left_total", "Peers that said goodbye (a graceful stop).",
                  MetricType::Counter)
        .add(static_cast<double>(s.peers_left));
    FamilyBuilder(out, "siobridge_restart_held_documents_total",
                  "After a restart: documents held until the servers attached again, by outcome.",
                  MetricType::Counter)
        .add(static_cast<double>(s.handover_held), {{"outcome", "held"}})
        .add(static_cast<double>(s.handover_delivered), {{"outcome", "delivered"}})
        .add(static_cast<double>(s.handover_dropped), {{"outcome", "dropped_hold_full"}})
        .add(static_cast<double>(s.handover_unclaimed), {{"outcome", "no_server_came_back"}});
    const auto& r = snapshot.recovery;
    FamilyBuilder(out, "siobridge_recovery_packets_total",
                  "Connection state recovery: packets logged, and dropped for space before their "
                  "time.",
                  MetricType::Counter)
        .add(static_cast<double>(r.stats.packets_logged), {{"outcome", "logged"}})
        .add(static_cast<double>(r.stats.trimmed_early), {{"outcome", "dropped_for_space"}});
    FamilyBuilder(out, "siobridge_recovery_sessions_total",
                  "Connection state recovery: sessions saved, dropped for space, restored, and "
                  "restores refused (unknown, used or expired pid, offset not kept).",
                  MetricType::Counter)
        .add(static_cast<double>(r.stats.sessions_saved), {{"outcome", "saved"}})
        .add(static_cast<double>(r.stats.sessions_dropped), {{"outcome", "dropped_for_space"}})
        .add(static_cast<double>(r.stats.restored), {{"outcome", "restored"}})
        .add(static_cast<double>(r.stats.not_restored), {{"outcome", "not_restored"}});
    FamilyBuilder(out, "siobridge_recovery_kept",
                  "Connection state recovery: what the daemon keeps now.", MetricType::Gauge)
        .add(static_cast<double>(r.packets), {{"what", "packets"}})
        .add(static_cast<double>(r.bytes), {{"what", "packet_bytes"}})
        .add(static_cast<double>(r.sessions), {{"what", "sessions"}});
    FamilyBuilder(out, "siobridge_resident_memory_bytes", "Resident set size of the daemon.",
                  MetricType::Gauge)
        .add(static_cast<double>(resident_memory_bytes()));
    FamilyBuilder(out, "siobridge_memory_releases_total",
                  "Times freed heap memory was given back to the system (malloc_trim) after a "
                  "document or backlog of MiB.",
                  MetricType::Counter)
        .add(static_cast<double>(memory_releases()));

    const auto& status = snapshot.status;
    {
      FamilyBuilder peers(out, "siobridge_peers", "Live peers per namespace.", MetricType::Gauge);
      for (const auto& ns : status.namespaces)
        peers.add(static_cast<double>(ns.peers.size()), {{"namespace", ns.ns}});
    }
    {
      FamilyBuilder servers(out, "siobridge_cluster_servers",
                            "Servers in the cluster per namespace.", MetricType::Gauge);
      for (const auto& ns : status.namespaces) servers.add(ns.server_count, {{"namespace", ns.ns}});
    }
    FamilyBuilder(out, "siobridge_attached_servers", "Servers attached to this daemon.",
                  MetricType::Gauge)
        .add(static_cast<double>(status.attachments.size()));
    FamilyBuilder(out, "siobridge_servers_queued_bytes",
                  "Bytes waiting to be written to the attached servers, all together "
                  "(limits.total_backpressure_bytes bounds it).",
                  MetricType::Gauge)
        .add(static_cast<double>(engine_.flow_gate().total_bytes()));
    FamilyBuilder(out, "siobridge_operations_in_flight", "Operations waiting for answers.",
                  MetricType::Gauge)
        .add(static_cast<double>(status.operations_in_flight));
    {
      FamilyBuilder state(out, "siobridge_bus_state", "The bus state (1 for the current one).",
                          MetricType::Gauge);
      for (auto candidate : {bus::BusState::kStarting, bus::BusState::kReady,
                             bus::BusState::kUnavailable, bus::BusState::kFailed}) {
        state.add(candidate == status.bus_state ? 1 : 0, {{"state", bus::to_string(candidate)}});
      }
    }
    if (mongo) {
      // What the daemon found wrong with MongoDB while the bus is not ready
      // (docs/running.md, "When things go wrong"): 1 for that cause.
      FamilyBuilder problem(out, "siobridge_mongodb_problem",
                            "The cause found for the bus not being ready (1 for the current one).",
                            MetricType::Gauge);
      const auto cause = static_cast<bus::mongodb::Cause>(mongo->cause.load());
      for (auto candidate : bus::mongodb::kAllCauses) {
        problem.add(candidate == cause ? 1 : 0, {{"cause", bus::mongodb::cause_label(candidate)}});
      }
      collect_mongo(*mongo, out);
    }
    return out;
  }

 private:
  static void collect_mongo(const bus::mongodb::MongoBusStats& m, std::vector<MetricFamily>& out) {
    auto counter = [&](const char* name, const char* help, std::uint64_t value) {
      FamilyBuilder(out, name, help, MetricType::Counter).add(static_cast<double>(value));
    };
    counter("siobridge_mongodb_inserted_documents_total", "Documents inserted.", m.inserted);
    counter("siobridge_mongodb_insert_failures_total", "insertMany calls that failed (retried).",
            m.insert_failures);
    counter("siobridge_mongodb_dropped_documents_total", "Documents MongoDB refused for good.",
            m.dropped);
    counter("siobridge_mongodb_refused_publishes_total",
            "Publishes refused: the write queue was full (mongodb.queue_bytes).", m.refused);
    counter("siobridge_mongodb_oversized_publishes_total",
            "Publishes refused: larger than MongoDB or the capped collection can store.",
            m.oversized);
    counter("siobridge_mongodb_expired_documents_total",
            "Queued documents dropped: older than mongodb.queue_age.", m.expired);
    counter("siobridge_mongodb_unwritten_at_stop_total",
            "Queued documents not written by the shutdown deadline.", m.unwritten_at_stop);
    counter("siobridge_mongodb_outages_total",
            "Periods MongoDB was unavailable (outages, elections), counted when they end.",
            m.outages);
    FamilyBuilder(out, "siobridge_mongodb_outage_seconds_total",
                  "Time MongoDB was unavailable, over the ended outages.", MetricType::Counter)
        .add(static_cast<double>(m.outage_ms_total.load()) / 1000);
    FamilyBuilder(out, "siobridge_mongodb_last_outage_seconds",
                  "How long the last ended outage (or election) lasted.", MetricType::Gauge)
        .add(static_cast<double>(m.last_outage_ms.load()) / 1000);
    counter("siobridge_mongodb_received_documents_total",
            "Documents delivered from the change stream (each message of a pack counts).",
            m.received);
    counter("siobridge_mongodb_packed_messages_total",
            "Messages written packed, several per document, for siobridge nodes only.", m.packed);
    counter("siobridge_mongodb_packs_written_total", "Packed documents written.", m.packs);
    counter("siobridge_mongodb_packs_compressed_total",
            "Packed documents written compressed (mongodb.compress_packs).", m.packs_compressed);
    counter("siobridge_mongodb_packs_compress_skipped_total",
            "Packs written plain without trying compression (mongodb.compress_skip).",
            m.packs_compress_skipped);
    counter("siobridge_mongodb_write_window_waits_total",
            "Write batches that waited for the group-commit window (mongodb.write_window_us).",
            m.window_waits);
    counter("siobridge_mongodb_pack_message_bytes_total",
            "Bytes of the messages that went in packs, encoded.", m.pack_message_bytes);
    counter("siobridge_mongodb_pack_stored_bytes_total",
            "Bytes the packs stored those messages as (after compression).", m.pack_stored_bytes);
    counter("siobridge_mongodb_packs_read_total", "Packed documents read and taken apart.",
            m.packs_read);
    counter("siobridge_mongodb_duplicates_total",
            "Documents seen twice (resume, re-read) and skipped.", m.duplicates);
    counter("siobridge_change_stream_opens_total", "Change stream (re)opens.", m.stream_opens);
    counter("siobridge_change_stream_errors_total", "Change stream errors.", m.stream_errors);
    counter("siobridge_change_stream_resume_failures_total",
            "Resume tokens that could not be used.", m.resume_failures);
    counter("siobridge_change_stream_refilled_documents_total",
            "Messages re-read from the collection.", m.gap_refills);
    counter("siobridge_change_stream_gaps_total", "Periods whose documents may have been lost.",
            m.gaps);
    counter("siobridge_collection_setups_total", "Collection set-ups (start and after drops).",
            m.collection_setups);
    FamilyBuilder(out, "siobridge_change_stream_pauses_total",
                  "Times the change stream stopped reading: attached servers had too much "
                  "waiting (servers), or the core thread had not taken what was read (core).",
                  MetricType::Counter)
        .add(static_cast<double>(m.flow_pauses.load()), {{"reason", "servers"}})
        .add(static_cast<double>(m.core_waits.load()), {{"reason", "core"}});
    FamilyBuilder(out, "siobridge_change_stream_core_backlog_peak_bytes",
                  "The most bytes read from the change stream that the core thread had not "
                  "taken yet (bounded: the stream pauses past 4 MiB).",
                  MetricType::Gauge)
        .add(static_cast<double>(m.core_backlog_peak.load()));
    counter("siobridge_mongodb_write_pauses_total",
            "Times the daemon stopped reading from its servers: the write queue was past "
            "mongodb.write_backpressure_bytes.",
            m.write_pauses);
    FamilyBuilder(out, "siobridge_mongodb_write_queue_peak_bytes",
                  "The most bytes (as stored) that waited for the writer since the start.",
                  MetricType::Gauge)
        .add(static_cast<double>(m.queued_bytes_peak.load()));
    FamilyBuilder(out, "siobridge_mongodb_write_queue_documents",
                  "Documents waiting for the writer.", MetricType::Gauge)
        .add(static_cast<double>(m.queued.load()));
    FamilyBuilder(out, "siobridge_mongodb_write_queue_bytes",
                  "Bytes (as stored) waiting for the writer.", MetricType::Gauge)
        .add(static_cast<double>(m.queued_bytes.load()));

    MetricFamily& batches = out.emplace_back();
    batches.name = "siobridge_mongodb_insert_batch_size";
    batches.help = "Documents per insertMany round trip.";
    batches.type = MetricType::Histogram;
    ClientMetric metric;
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < m.batch_sizes.size(); ++i) {
      cumulative += m.batch_sizes[i];
      prometheus::ClientMetric::Bucket bucket;
      bucket.cumulative_count = cumulative;
      bucket.upper_bound = i < bus::mongodb::MongoBusStats::kBatchBounds.size()
                               ? static_cast<double>(bus::mongodb::MongoBusStats::kBatchBounds[i])
                               : std::numeric_limits<double>::infinity();
      metric.histogram.bucket.push_back(bucket);
    }
    metric.histogram.sample_count = cumulative;
    metric.histogram.sample_sum = static_cast<double>(m.batch_size_sum.load());
    batches.metric.push_back(std::move(metric));
  }

  runtime::Engine& engine_;
};

}  // namespace

Result<std::unique_ptr<Metrics>> Metrics::start(const std::string& listen,
                                                runtime::Engine& engine) {
  std::unique_ptr<Metrics> metrics(new Metrics());
  try {
    metrics->exposer_ = std::make_unique<prometheus::Exposer>(listen);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("metrics.listen {}: cannot serve there ({})", listen, e.what()));
  }
  metrics->registry_ = std::make_shared<prometheus::Registry>();
  metrics->request_duration_ =
      &prometheus::BuildHistogram()
           .Name("siobridge_request_duration_seconds")
           .Help("API calls from attached servers, by operation and status code.")
           .Register(*metrics->registry_);
  metrics->volatile_dropped_ =
      &prometheus::BuildCounter()
           .Name("siobridge_volatile_dropped_total")
           .Help("Volatile packets dropped for attached servers that read too slowly.")
           .Register(*metrics->registry_);
  metrics->repeated_calls_ =
      &prometheus::BuildCounter()
           .Name("siobridge_repeated_calls_total")
           .Help(
               "Numbered calls sent again by their server (after a daemon restart) that the "
               "cluster had already, and so were not applied again.")
           .Register(*metrics->registry_);
  metrics->attachments_closed_ = &prometheus::BuildCounter()
                                      .Name("siobridge_attachments_closed_total")
                                      .Help("Attach streams the daemon closed, by reason.")
                                      .Register(*metrics->registry_);
  metrics->engine_collector_ = std::make_shared<EngineCollector>(engine);
  metrics->exposer_->RegisterCollectable(metrics->registry_);
  metrics->exposer_->RegisterCollectable(metrics->engine_collector_);
  return metrics;
}

void Metrics::request_done(const char* operation, std::chrono::nanoseconds duration,
                           grpc::StatusCode code) {
  static const prometheus::Histogram::BucketBoundaries kBounds{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  request_duration_
      ->Add({{"operation", operation}, {"code", std::to_string(static_cast<int>(code))}}, kBounds)
      .Observe(std::chrono::duration<double>(duration).count());
}

void Metrics::volatile_dropped() {
  volatile_dropped_->Add({}).Increment();
}

void Metrics::repeated_call() {
  repeated_calls_->Add({}).Increment();
}

void Metrics::attachment_closed(const char* reason) {
  attachments_closed_->Add({{"reason", reason}}).Increment();
}

}  // namespace siobridge::app
