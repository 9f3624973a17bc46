/* Back-pressure on input (conn.h: conn_pressure_check).
 *
 * A client that sends faster than it reads (pipelined QoS 1 PUBLISHes whose
 * PUBACKs it never reads, BAD_INPUTS row 28) would grow its output without
 * bound: once what it has not taken passes limits.output_buffer, or its
 * acks waiting for commits pass limits.max_pending_acks, its socket is not
 * read until the output is below half the bound (or the acks below half
 * theirs). Checked once per read, so a bound is passed by at most what one
 * read (READBUF_SIZE bytes) asks for. A client that stays above half its
 * output bound for limits.stall_timeout is disconnected (0x97, conn.c's
 * deadline). */
#include "conn.h"

#include "cluster_hooks.h"
#include "log.h"
#include "session.h"

void conn_pressure_check(conn *c)
{
    const imqtt_config *cfg = &c->srv->cfg;
    if (c->state != CONN_ACTIVE)
        return;
    uint8_t was = c->paused;
    if (!(c->paused & CONN_PAUSED_OUTPUT) &&
        conn_unwritten(c) > cfg->output_buffer) {
        c->paused |= CONN_PAUSED_OUTPUT;
        c->paused_at = server_now(c->srv);
        metrics_count(c->srv, METRIC_PAUSED_OUTPUT);
    }
    if (!(c->paused & CONN_PAUSED_ACKS) &&
        conn_nacks(c) >= cfg->max_pending_acks) {
        c->paused |= CONN_PAUSED_ACKS;
        metrics_count(c->srv, METRIC_PAUSED_ACKS);
    }
    const cluster_hooks *ch = c->srv->cluster_hooks;
    if (ch && !(c->paused & CONN_PAUSED_CLUSTER) && conn_nacks(c) &&
        ch->durable_busy(ch->arg) && worker_cluster_pause(c->w, c)) {
        c->paused |= CONN_PAUSED_CLUSTER;
        metrics_count(c->srv, METRIC_PAUSED_CLUSTER);
    }
    if (c->paused == was)
        return;
    if (!was) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        log_debug("%s: input paused (%zu bytes unwritten, %u acks pending)",
                  c->sess ? c->sess->client_id : conn_peer(c),
                  conn_unwritten(c), conn_nacks(c));
    }
    conn_start_keepalive(c); /* the stall deadline */
}

void conn_pressure_drain(conn *c)
{
    const imqtt_config *cfg = &c->srv->cfg;
    if (!c->paused || c->state != CONN_ACTIVE)
        return;
    if (c->w != worker_current()) {
        /* Its handle is its loop's: conn_owner_work drains it there. */
        worker_want_flush(c->w, c);
        return;
    }
    if ((c->paused & CONN_PAUSED_OUTPUT) &&
        conn_unwritten(c) <= cfg->output_buffer / 2)
        c->paused &= (uint8_t)~CONN_PAUSED_OUTPUT;
    if ((c->paused & CONN_PAUSED_ACKS) &&
        conn_nacks(c) <= cfg->max_pending_acks / 2)
        c->paused &= (uint8_t)~CONN_PAUSED_ACKS;
    const cluster_hooks *ch = c->srv->cluster_hooks;
    if ((c->paused & CONN_PAUSED_CLUSTER) && !(ch && ch->durable_busy(ch->arg)))
        c->paused &= (uint8_t)~CONN_PAUSED_CLUSTER;
    if (c->paused)
        return;
    /* Its packets waited in the socket because of us: the keepalive
     * starts again from now. */
    c->last_rx = server_now(c->srv);
    conn_start_keepalive(c);
    conn_read_start(c);
}
