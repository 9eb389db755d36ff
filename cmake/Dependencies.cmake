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
