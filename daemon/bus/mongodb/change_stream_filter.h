// The aggregation pipeline of a daemon's one change stream (PROTOCOL.md
// section 11): inserts from other nodes that are untargeted, targeted at this
// node, or addressed to every siobridge node; its own inserts marked `echo`
// (wire::Document::echo); plus the events that end a stream
// (drop, rename, dropDatabase, invalidate), which the watcher must act on.
#pragma once

#include <string>

#include "daemon/wire/owned_bson.h"

namespace siobridge::bus::mongodb {

wire::OwnedBson change_stream_pipeline(const std::string& own_uid);

}  // namespace siobridge::bus::mongodb
