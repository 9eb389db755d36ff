// CallLookup: the MongoDB bus's answer to "up to which call of this server
// instance does the collection hold?" (Bus::find_last_call), asked when a
// server reattaches with calls it may have to send again. One query each: the
// newest document naming the instance (wire::Document::calls), read backwards
// in insertion order, which a daemon's ordered writer makes the one with its
// highest call. A thread of its own, started with the first question; a
// question MongoDB cannot answer now is asked again with backoff until it can
// or the bus stops. Answers reach the core thread through the bus context.
// The same thread answers "has a socketioxide node written to this namespace
// lately?" (Bus::find_socketioxide), once, without retries: a namespace that
// gets no answer waits for heartbeats instead.
//
// ask() is thread-safe; stop() belongs to the owner.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>

#include "daemon/bus/mongodb/bus_context.h"
#include "daemon/common/mutex.h"
#include "daemon/common/result.h"

namespace siobridge::bus::mongodb {

class CallLookup {
 public:
  using Done = std::function<void(Result<std::uint64_t>)>;

  explicit CallLookup(BusContext& context) : context_(context) {}
  ~CallLookup() { stop(); }
  CallLookup(const CallLookup&) = delete;
  CallLookup& operator=(const CallLookup&) = delete;

  void ask(std::string instance, Done done) SIOBRIDGE_EXCLUDES(mutex_);
  void ask_socketioxide(std::string ns, Millis lookback, std::function<void(Result<bool>)> done)
      SIOBRIDGE_EXCLUDES(mutex_);
  // Returns once the thread ended; questions left are not answered (the bus
  // stops with the daemon).
  void stop() SIOBRIDGE_EXCLUDES(mutex_);

 private:
  struct Question {
    // One attempt: posts the answer, or returns the error that kept MongoDB
    // from giving it (asked again with backoff when `retry`).
    std::function<Status()> attempt;
    std::string what;  // for the log
    bool retry = true;
  };
  void add(Question question) SIOBRIDGE_EXCLUDES(mutex_);
  void run() SIOBRIDGE_EXCLUDES(mutex_);
  Result<std::uint64_t> query(const std::string& instance);
  Result<bool> query_socketioxide(const std::string& ns, Millis lookback);

  BusContext& context_;
  Mutex mutex_;
  CondVar asked_{mutex_};
  std::deque<Question> questions_ SIOBRIDGE_GUARDED_BY(mutex_);
  bool stopping_ SIOBRIDGE_GUARDED_BY(mutex_) = false;
  std::thread thread_;  // started by the first ask()
};

}  // namespace siobridge::bus::mongodb
