# nats-server 2.9 from Debian 12, the version docs/cluster.md is tested
# with (no image needs to be pulled but debian:bookworm-slim).
FROM debian:bookworm-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        nats-server \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system nats-js && useradd --system --gid nats-js --home-dir /var/lib/nats \
        --shell /usr/sbin/nologin nats-js \
    && install -d -o nats-js -g nats-js -m 0700 /var/lib/nats
USER nats-js
VOLUME ["/var/lib/nats"]
EXPOSE 4222 6222 8222
# /healthz answers 200 once the server (and its JetStream) is ready; no
# curl in the slim image, bash's /dev/tcp is enough
HEALTHCHECK --interval=2s --timeout=2s --start-period=5s --retries=30 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8222 && printf 'GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/sbin/nats-server", "-c", "/etc/nats/nats.conf"]
