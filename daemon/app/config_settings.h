// The settings of siobridged as config.cc reads them: for every key, how a
// value is parsed into a DaemonConfig and how a DaemonConfig's value is
// written back as text. A setting's default is what it writes for
// default_config(): the value types' initializers are the one source of every
// default, and the text (--help, --check-config) follows them.
//
// Internal to daemon/app. Thread-safe (the table is built once, then only read).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "daemon/app/config.h"

namespace siobridge::app {

struct SettingDef {
  SettingInfo info;
  // Parses and stores a value (kInvalidArgument saying what was expected).
  std::function<Status(DaemonConfig&, const std::string&)> apply;
  // The value in `config`, as a file would set it.
  std::function<std::string(const DaemonConfig&)> show;
};

const std::vector<SettingDef>& setting_definitions();

// "10s", "250ms", "0": what parse_duration reads back.
std::string format_duration(Millis duration);
// "16MiB", "512KiB", "1000": what parse_size reads back.
std::string format_size(std::uint64_t bytes);

// The mongodb.* settings as they apply before any is set: the value type's
// defaults and this host's state directory.
bus::mongodb::MongoBusConfig default_mongodb_config();

}  // namespace siobridge::app
