#!/bin/sh
# imqtt container entrypoint (also run outside Docker by
# tests/integration/test_docker.py).
#
#   entrypoint.sh [imqtt options]   start the broker as this process (exec:
#                                   it is PID 1 in the container and gets
#                                   SIGTERM directly)
#   entrypoint.sh healthcheck       exit 0 when GET /healthz answers 200
#   entrypoint.sh <command> ...     run another command (imqtt token, sh)
#
# Environment (defaults are the image's paths):
#   IMQTT_BIN      /usr/local/bin/imqtt
#   IMQTT_CONFIG   /etc/imqtt/imqtt.json   (copied from the example when absent)
#   IMQTT_CERT_DIR /etc/imqtt/certs        (a self-signed pair is made when
#                                           the config's cert_file is missing)
#   IMQTT_HEALTH   127.0.0.1:9883          (host:port of the metrics listener)
set -eu

BIN=${IMQTT_BIN:-/usr/local/bin/imqtt}
CONFIG=${IMQTT_CONFIG:-/etc/imqtt/imqtt.json}
CERT_DIR=${IMQTT_CERT_DIR:-/etc/imqtt/certs}
DEFAULT_CONFIG=${IMQTT_DEFAULT_CONFIG:-/usr/share/imqtt/imqtt.json}

if [ "${1:-}" = "healthcheck" ]; then
    hp=${IMQTT_HEALTH:-127.0.0.1:9883}
    host=${hp%:*}
    port=${hp##*:}
    # No curl in the slim image: bash's /dev/tcp speaks enough HTTP.
    exec bash -c 'exec 3<>/dev/tcp/'"$host"'/'"$port"' &&
        printf "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" >&3 &&
        head -n 1 <&3 | grep -q " 200 "'
fi

if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    exec "$@"
fi

# Every failure below says what is wrong and how to fix it, then exits 78
# (EX_CONFIG): `docker logs` shows why, instead of a silent restart loop.
fail() {
    echo "entrypoint: $*" >&2
    exit 78
}

if [ ! -f "$CONFIG" ]; then
    echo "entrypoint: $CONFIG missing, using the example config" >&2
    cp "$DEFAULT_CONFIG" "$CONFIG" ||
        fail "cannot create $CONFIG (uid $(id -u)); mount a config file there"
fi

# A TLS listener needs a certificate before the broker starts; a fresh
# container gets a self-signed one (mount real ones over $CERT_DIR).
if [ ! -f "$CERT_DIR/server.crt" ] && grep -q "$CERT_DIR/server.crt" "$CONFIG"; then
    if [ -f "$CERT_DIR/server.key" ]; then
        fail "$CERT_DIR/server.key exists but $CERT_DIR/server.crt does not; add the certificate or remove the key"
    fi
    echo "entrypoint: no certificate in $CERT_DIR, making a self-signed one" >&2
    mkdir -p "$CERT_DIR" 2>/dev/null || true
    if [ ! -d "$CERT_DIR" ] || [ ! -w "$CERT_DIR" ]; then
        owner=$(stat -c '%u:%g %A' "$CERT_DIR" 2>/dev/null || echo "missing")
        fail "cannot write the self-signed pair: $CERT_DIR is not writable by uid $(id -u) (it is $owner). A bind mount that Docker created is owned by root: put server.crt and server.key in it, or chown $(id -u) it on the host, or use a named volume (docker-compose.yml does)"
    fi
    if ! out=$(openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=localhost" \
            -keyout "$CERT_DIR/server.key" -out "$CERT_DIR/server.crt" 2>&1); then
        echo "$out" >&2
        rm -f "$CERT_DIR/server.key" "$CERT_DIR/server.crt" 2>/dev/null || true
        fail "openssl could not make the self-signed pair in $CERT_DIR (its error is above)"
    fi
    chmod 600 "$CERT_DIR/server.key"
fi

exec "$BIN" --config "$CONFIG" "$@"
