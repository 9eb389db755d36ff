# siobridged and siobridgectl as a container image, to run beside an app server
# (a sidecar): the app reaches the daemon through the Unix socket in the volume
# /run/siobridge, or over TCP on the pod's loopback.
#
#   docker build -t siobridge .
#   docker run -v siobridge-socket:/run/siobridge \
#     -e SIOBRIDGE_MONGODB_URI='mongodb://db1,db2,db3/?replicaSet=rs0' siobridge
#   docker build --target deb --output type=local,dest=out .   # only the .deb
#
# Stages: `build` compiles the two binaries (Release, no tests, no benchmarks)
# and packs them as the Debian package; the runtime stage installs that
# package on a slim base, so the image holds exactly the libraries the
# package's Depends (derived by dpkg-shlibdeps) name. docs/running.md explains
# the configuration, volumes, health check and signals.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkg-config ccache dpkg-dev file \
      libmongoc-dev libbson-dev libuv1-dev libmsgpack-cxx-dev libzstd-dev \
      libgrpc++-dev libgrpc-dev protobuf-compiler protobuf-compiler-grpc libprotobuf-dev \
      libspdlog-dev libfmt-dev libyaml-cpp-dev libcli11-dev prometheus-cpp-dev libsystemd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the compilation uses, so that changes elsewhere (the Node client,
# tests, documentation, deployment examples) keep the compiled layer cached.
COPY CMakeLists.txt ./
COPY cmake cmake
COPY proto proto
COPY daemon daemon
COPY client/cpp client/cpp
COPY config config
COPY deploy/siobridged.service.in deploy/
COPY deploy/debian deploy/debian
# The compiler cache survives between builds of changed sources (a cache mount
# is not part of any layer).
RUN --mount=type=cache,target=/ccache \
    export CCACHE_DIR=/ccache \
 && cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
      -DBUILD_TESTING=OFF -DSIOBRIDGE_BENCH=OFF \
 && cmake --build /build --target siobridged siobridgectl
# The documents the package installs are read only now, by cpack.
COPY README.md ./
COPY docs docs
RUN cd /build && cpack -G DEB && mkdir /out && mv /build/siobridge_*.deb /out/

# `--target deb --output ...` writes the package alone.
FROM scratch AS deb
COPY --from=build /out/ /

FROM ${BASE_IMAGE}
# A fixed numeric user, so that runAsNonRoot can verify it and volumes can be
# shared by id; the package's postinst finds it and creates no other.
ARG SIOBRIDGE_UID=10001
RUN groupadd --gid ${SIOBRIDGE_UID} siobridge \
 && useradd --uid ${SIOBRIDGE_UID} --gid siobridge --no-create-home \
      --home-dir /var/lib/siobridge --shell /usr/sbin/nologin siobridge
# The package's runtime libraries (its Depends, which dpkg-shlibdeps derives)
# in a layer of their own, so that a new build of the package does not fetch
# them again; dpkg -i below refuses the package if this list falls behind.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      adduser libc6 libgcc-s1 libstdc++6 libabsl20220623 libbson-1.0-0 libmongoc-1.0-0 libfmt9 \
      libspdlog1.10-fmt9 libgrpc++1.51 libgrpc29 libprotobuf32 libprometheus-cpp-core1.0 \
      libprometheus-cpp-pull1.0 libsystemd0 libuv1 libyaml-cpp0.7 libzstd1 \
 && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log
# COPY, not a bind mount of the build stage: a layer cache keys a COPY by
# content, so a changed package always gets into the image.
COPY --from=build /out/ /tmp/deb/
RUN dpkg -i /tmp/deb/siobridge_*.deb \
 && rm -rf /tmp/deb /var/log/dpkg.log \
 && install -d -o siobridge -g siobridge -m 0750 /run/siobridge /var/lib/siobridge

# Every setting is a SIOBRIDGE_* variable (or a flag after the image name, or
# a YAML file named by SIOBRIDGE_CONFIG); these fix where the socket and the
# change stream's resume token live, and tell siobridgectl where to ask.
ENV SIOBRIDGE_LISTEN_UNIX=/run/siobridge/siobridged.sock \
    SIOBRIDGE_MONGODB_STATE_DIR=/var/lib/siobridge \
    SIOBRIDGE_ADDRESS=/run/siobridge/siobridged.sock
VOLUME ["/run/siobridge", "/var/lib/siobridge"]
USER ${SIOBRIDGE_UID}:${SIOBRIDGE_UID}
WORKDIR /var/lib/siobridge
# SIGTERM drains (refuse new work, finish running requests, write what is
# queued) within shutdown.drain_timeout (10s) and exits 0. siobridged waits for
# its signals itself, so it needs no init process as PID 1.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
  CMD ["siobridgectl", "health", "--timeout-ms", "4000"]
ENTRYPOINT ["/usr/bin/siobridged"]
