# Every third-party library comes from Debian 12 packages (scripts/setup).

find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(mongoc-1.0 1.23 CONFIG REQUIRED)
find_package(msgpack 4.1 CONFIG REQUIRED NAMES msgpack msgpackc-cxx)
find_package(fmt CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(Catch2 2 CONFIG REQUIRED)
find_package(benchmark CONFIG REQUIRED)
pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(yaml-cpp CONFIG REQUIRED)
find_package(prometheus-cpp CONFIG REQUIRED)
pkg_check_modules(SYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
# CLI11 is header-only (/usr/include/CLI).
