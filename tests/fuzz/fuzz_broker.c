/* libFuzzer target: bytes through a real connection into the handlers.
 *
 * One server (store durability "none", no listening socket) lives for the
 * whole run, so state builds up across inputs as it would in a broker:
 * sessions, subscriptions, retained messages, QoS 2 ids. Each input is
 * split at "@@@@" into up to three client byte streams. Each stream gets
 * its own connection through conn_adopt() on one end of a socketpair
 * (in-process, no network); the target writes the stream into the other
 * end and runs the loop until the broker has read it all, reading and
 * discarding whatever the broker answers. Then the streams are closed
 * (EOF: abnormal disconnect, wills fire) and the loop runs until every
 * connection is gone. See docs/reliability.md for why a socketpair and
 * not an in-memory transport.
 *
 * Crashes, ASan/UBSan reports and leaks fail; a connection that is still
 * alive after the bounded loop runs is reported too (a hang). */
#include "config.h"
#include "conn.h"
#include "errors.h"
#include "fuzz.h"
#include "im.h"
#include "log.h"
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_STREAMS 3
#define MAX_ROUNDS  200

static const char CONFIG[] = "{\"store\": {\"durability\": \"none\"},"
                             " \"log\": {\"level\": \"error\"},"
                             " \"sys_interval\": 0,"
                             " \"max_packet_size\": 65536,"
                             " \"max_inflight_messages\": 8,"
                             " \"max_queued_messages\": 64,"
                             " \"topic_alias_maximum\": 4,"
                             " \"retain_available\": true}";

static uv_loop_t g_loop;
static server g_srv;
static listener g_lst;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN); /* as main.c: a closed peer is an error code */
    imqtt_config cfg;
    char err[256];
    if (config_parse(CONFIG, sizeof(CONFIG) - 1, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "config: %s\n", err);
        abort();
    }
    /* The listener config stays in the server's cfg; with a count of 0
     * server_init binds nothing, and our own listener struct uses it. */
    uint32_t nl = cfg.listener_count;
    cfg.listener_count = 0;
    FUZZ_CHECK(uv_loop_init(&g_loop) == 0);
    if (server_init(&g_srv, &g_loop, &cfg, im_policy()) != 0) {
        fprintf(stderr, "server_init failed\n");
        abort();
    }
    FUZZ_CHECK(nl >= 1 && g_srv.cfg.listeners != NULL);
    g_lst.srv = &g_srv;
    g_lst.w = &g_srv.workers[0];
    g_lst.cfg = &g_srv.cfg.listeners[0];
    log_set_level(LOG_ERROR);
    return 0;
}

struct stream {
    int fd; /* our end */
    const uint8_t *data;
    size_t len, off;
    bool eof_sent;
};

static void drain(struct stream *s)
{
    uint8_t buf[16384];
    while (read(s->fd, buf, sizeof(buf)) > 0) {
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    struct stream st[MAX_STREAMS];
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= size && n < MAX_STREAMS; i++) {
        bool sep = i + 4 <= size && memcmp(data + i, "@@@@", 4) == 0 &&
                   n < MAX_STREAMS - 1;
        if (i == size || sep) {
            st[n] = (struct stream){-1, data + start, i - start, 0, false};
            n++;
            start = i + 4;
            if (!sep)
                break;
            i += 3;
        }
    }
    for (int k = 0; k < n; k++) {
        int sv[2];
        FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        FUZZ_CHECK(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
        st[k].fd = sv[1];
        if (conn_adopt(&g_lst, sv[0]) != 0) {
            close(sv[1]);
            st[k].fd = -1;
        }
    }

    /* Feed every stream, letting the broker read and answer. */
    for (int round = 0; round < MAX_ROUNDS; round++) {
        bool pending = false;
        for (int k = 0; k < n; k++) {
            struct stream *s = &st[k];
            if (s->fd < 0)
                continue;
            if (s->off < s->len) {
                ssize_t w = write(s->fd, s->data + s->off, s->len - s->off);
                if (w > 0)
                    s->off += (size_t)w;
                else if (w < 0 && errno != EAGAIN)
                    s->off = s->len; /* the broker closed it */
            }
            drain(s);
            if (s->off < s->len)
                pending = true;
        }
        uv_run(&g_loop, UV_RUN_NOWAIT);
        if (!pending && round > 2)
            break;
    }
    uv_run(&g_loop, UV_RUN_NOWAIT);
    for (int k = 0; k < n; k++) {
        if (st[k].fd >= 0) {
            drain(&st[k]);
            close(st[k].fd);
        }
    }
    for (int round = 0; round < MAX_ROUNDS && g_srv.workers[0].conns_alive > 0;
         round++)
        uv_run(&g_loop, UV_RUN_NOWAIT);
    FUZZ_CHECK(g_srv.workers[0].conns_alive == 0);
    return 0;
}
