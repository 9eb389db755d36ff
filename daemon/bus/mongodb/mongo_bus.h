// MongoBus: the bus over a MongoDB collection (PROTOCOL.md section 1). One
// writer thread group-commits published documents with ordered insertMany; one
// watcher thread runs the daemon's single change stream and delivers what other
// nodes publish. While MongoDB is down it keeps retrying by itself and queues
// what is published (bounded: DocumentWriter); the driver's server monitoring
// reports the outage within about a second (TopologyMonitor), and what is
// found about its cause becomes the state's detail (BusContext::diagnose).
//
// publish(), state(), set_rank() and stats() are thread-safe. The listener is
// called through `post`, which must run the function on the core thread. Call
// stop() before destroying, and let the core thread run what was posted.
#pragma once

#include <future>
#include <memory>
#include <optional>
#include <thread>

#include "daemon/bus/bus.h"
#include "daemon/bus/mongodb/bus_context.h"
#include "daemon/bus/mongodb/call_lookup.h"
#include "daemon/bus/mongodb/change_watcher.h"
#include "daemon/bus/mongodb/document_writer.h"
#include "daemon/bus/mongodb/mongo_bus_config.h"
#include "daemon/bus/mongodb/mongo_handles.h"
#include "daemon/bus/mongodb/topology_monitor.h"

namespace siobridge::bus::mongodb {

class MongoBus final : public RunningBus {
 public:
  // kInvalidArgument for a malformed URI. The state directory (for the resume
  // token) must exist and be held by this process (runtime::StateDir).
  // `flow_gate` (may be null) pauses the change stream while attached servers
  // have too much waiting.
  static Result<std::unique_ptr<MongoBus>> create(MongoBusConfig config, std::string own_uid,
                                                  BusListener& listener, Post post,
                                                  FlowGate* flow_gate);
  ~MongoBus() override;

  void start() override;
  // Writes what is queued for up to `drain`, then stops both threads.
  void stop(Millis drain) override;
  // Connects anew with `uri` and `password` (see MongoBusConfig), e.g. new
  // credentials read on SIGHUP: the writer and the watcher stop, the client
  // pool is replaced, and they go on where they were (the write queue and
  // the resume token are kept; the privileges are checked again). The old
  // connection stays when the new URI is not valid (kInvalidArgument). Call
  // from the thread that calls start() and stop().
  Status reconnect(std::string uri, std::string password);

  Status publish(wire::Document document, Audience audience) override;
  BusState state() const override { return context_->state(); }
  bool shared() const override { return true; }
  bool settles_later() const override { return true; }
  void find_last_call(const std::string& instance,
                      std::function<void(Result<std::uint64_t>)> done) override;
  void set_rank(unsigned rank) override { watcher_->set_rank(rank); }
  void find_socketioxide(const std::string& ns, Millis lookback,
                         std::function<void(Result<bool>)> done) override;
  const MongoBusStats& stats() const { return context_->stats; }
  const MongoBusStats* mongodb_stats() const override { return &context_->stats; }
  MongoBus* mongodb() override { return this; }
  std::string location() const override { return config().database + "." + config().collection; }
  // Bytes read from the change stream that the core thread has not taken yet.
  std::size_t core_backlog() const { return context_->core_backlog(); }
  // Closed while the write queue is past mongodb.write_backpressure_bytes.
  FlowGate* write_gate() override { return &context_->write_gate; }
  const MongoBusConfig& config() const { return context_->config; }

 private:
  MongoBus() = default;
  void start_threads();

  std::unique_ptr<BusContext> context_;
  std::unique_ptr<TopologyMonitor> monitor_;
  std::unique_ptr<DocumentWriter> writer_;
  std::unique_ptr<ChangeWatcher> watcher_;
  std::unique_ptr<CallLookup> lookup_;
  // Destroyed before the parts above (members go in reverse order): closing
  // the pool may still call the monitor's callbacks, which use the context.
  ClientPool pool_;
  std::thread writer_thread_, watcher_thread_;
  std::future<void> writer_done_;
  bool started_ = false, stopped_ = false;
};

}  // namespace siobridge::bus::mongodb
