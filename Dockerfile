# imqtt: multi-stage build on Debian 12 (bookworm) with Debian's -dev
# packages; the runtime stage has only the shared libraries.
#   docker build -t imqtt .
#   docker run -p 1883:1883 -p 8883:8883 -p 8083:8083 -p 8084:8084 \
#              -p 9883:9883 -v imqtt-data:/var/lib/imqtt imqtt
FROM debian:bookworm-slim AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        libuv1-dev libmbedtls-dev liblmdb-dev libcjson-dev libjwt-dev libnats-dev libhttp-parser-dev \
        libcurl4-openssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
# cmake/install.cmake (included by CMakeLists.txt) and what its rules name
COPY cmake cmake
COPY packaging packaging
COPY docs/man docs/man
COPY proto proto
COPY auth auth
COPY store store
COPY broker broker
COPY bench bench
RUN cmake -B /build -DCMAKE_BUILD_TYPE=Release -DIMQTT_TESTS=OFF -DIMQTT_WERROR=ON \
    && cmake --build /build -j"$(nproc)" --target imqtt \
    && strip /build/imqtt

FROM debian:bookworm-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libuv1 libmbedtls14 libmbedx509-1 libmbedcrypto7 liblmdb0 libcjson1 libjwt0 libnats3.4 libhttp-parser2.9 libcurl4 \
        openssl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 1883 imqtt \
    && useradd --system --uid 1883 --gid imqtt --home-dir /var/lib/imqtt --shell /usr/sbin/nologin imqtt \
    && install -d -o imqtt -g imqtt -m 0700 /var/lib/imqtt \
    && install -d -o imqtt -g imqtt -m 0750 /etc/imqtt /etc/imqtt/certs
COPY --from=build /build/imqtt /usr/local/bin/imqtt
COPY examples/imqtt.json /usr/share/imqtt/imqtt.json
COPY --chown=imqtt:imqtt examples/imqtt.json /etc/imqtt/imqtt.json
COPY docker/entrypoint.sh /usr/local/bin/imqtt-entrypoint
USER imqtt
VOLUME ["/var/lib/imqtt", "/etc/imqtt"]
# MQTT, MQTT over TLS, WebSocket, WebSocket over TLS, metrics/health
EXPOSE 1883 8883 8083 8084 9883
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/imqtt-entrypoint", "healthcheck"]
# SIGTERM: the broker (PID 1 through exec) sends DISCONNECT 0x8B to v5
# clients, writes what is pending, commits the store, exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/imqtt-entrypoint"]
