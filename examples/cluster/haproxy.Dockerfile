# HAProxy 2.6 from Debian 12, the version examples/cluster/haproxy.cfg is
# tested with (no image needs to be pulled but debian:bookworm-slim).
FROM debian:bookworm-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        haproxy \
    && rm -rf /var/lib/apt/lists/*
EXPOSE 1883
# -db: in the foreground, logs to stderr (docker logs); -W not needed, one
# process. SIGUSR1 stops it gracefully, SIGTERM at once.
STOPSIGNAL SIGUSR1
ENTRYPOINT ["/usr/sbin/haproxy", "-db", "-f", "/etc/haproxy/haproxy.cfg"]
