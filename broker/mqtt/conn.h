/* One client connection: bytes in, packets dispatched to the handlers,
 * packets out through the connection's outbuf.
 *
 * Life cycle: accepted (CONN_NEW) -> CONNECT accepted (CONN_ACTIVE) ->
 * closing (CONN_CLOSING: no more input is read, pending output is still
 * written) -> closed (handles closed, memory freed when the last handle's
 * close callback and the last reference are gone).
 */
#ifndef IMQTT_CONN_H
#define IMQTT_CONN_H

#include "outbuf.h"
#include "packet.h"
#include "ratelimit.h"
#include "server.h"

/* Why a connection's input is not being read (back-pressure, conn.c). */
enum {
    CONN_PAUSED_OUTPUT = 1,  /* unwritten output above limits.output_buffer */
    CONN_PAUSED_ACKS = 2,    /* limits.max_pending_acks acks wait for commits */
    CONN_PAUSED_CLUSTER = 4, /* the cluster's stream has too many in flight
                                (cluster_hooks.h: durable_busy) */
};

enum conn_state {
    CONN_NEW,
    CONN_AUTH, /* CONNECT read, its password being checked off the loop:
                  input paused */
    CONN_ACTIVE,
    CONN_CLOSING,
};

/* An acknowledgement waiting for the store commit that makes it true. */
typedef struct pending_ack {
    uint8_t type; /* MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP */
    uint8_t reason;
    uint16_t packet_id;
    uint64_t gen; /* store batch holding its data (store_batch_gen) */
    /* cluster mode: the durable publications (dlo, dhi] of its message
     * must be in the stream first (cluster_hooks.h); dhi 0: none */
    uint64_t dlo, dhi;
    uint8_t *codes; /* MQTT_SUBACK: owned copy of the reason codes */
    uint32_t ncodes;
} pending_ack;

/* A connection's acks waiting for the store, allocated with the first
 * (an idle connection has none: its count and capacity are not in conn). */
typedef struct pending_acks {
    uint32_t n, cap;
    pending_ack a[];
} pending_acks;

/* Topic aliases of a connection that uses them (most never do). */
typedef struct conn_aliases {
    char **in; /* client -> server, [1..topic_alias_maximum] */
    uint32_t *in_len;
    hmap out;          /* topic -> alias number (value (void*)(uintptr_t)n) */
    char **out_topics; /* owned keys, index = alias */
    uint16_t out_next;
} conn_aliases;

/* What a connection allocates on first use (most never do): its topic
 * aliases, its rate buckets, the retained messages of a SUBSCRIBE still to
 * send. One pointer in conn instead of three. */
typedef struct conn_extra {
    conn_aliases aliases;
    rate_bucket buckets[2]; /* msg, bytes (per-connection rate limits) */
    struct retained_backlog *retained; /* owned by the pacer
                                          (retained_send.c) */
} conn_extra;

/* Where a connection comes from, as bytes: formatted only for logs. */
typedef struct conn_addr {
    uint8_t ip[16]; /* IPv4 in the first 4 bytes */
    uint16_t port;  /* the descriptor for an adopted socket */
    uint8_t family; /* 4, 6; 1: adopted socket (conn_adopt); 0: unknown */
} conn_addr;

/* Fields are grouped by size: every hole is bytes of every connection. */
struct conn {
    uv_tcp_t tcp;
    struct transport *tp; /* owned; NULL on plain TCP (transport.h) */
    server *srv;
    worker *w; /* the worker (loop) that owns this connection, for good */
    listener *lst;
    session *sess; /* set once CONNECT is accepted; the session points back */
    wheel_node deadline; /* keepalive, token expiry, CONNECT, linger:
                            on srv->wheel, disarmed by close_handles */

    /* input: only a packet that spans reads is kept here */
    uint8_t *in;
    uint32_t in_len, in_cap;

    /* output */
    outbuf out;
    size_t bytes_in_flight; /* handed to uv_write, not yet written */
    conn *flush_next;

    /* acks waiting for the store */
    pending_acks *acks; /* owned; NULL while there are none */
    conn *ack_next;

    uint64_t last_rx;       /* uv_now of the last packet read */
    uint64_t auth_deadline; /* uv_now when the token expires; 0: never */
    uint64_t paused_at;     /* uv_now when CONN_PAUSED_OUTPUT was set */

    conn_extra *extra; /* owned; NULL until first needed */
    conn *next, *prev; /* server's list of connections */

    int refs;
    uint32_t writes_in_flight;
    /* incoming QoS > 0 messages not yet fully acknowledged by us, for our
     * Receive Maximum */
    uint32_t inflight_in;
    /* what the client told us in CONNECT (v5) */
    uint32_t client_max_packet;  /* 0 = protocol maximum */
    uint16_t client_receive_max; /* our outgoing window to it */
    uint16_t client_alias_max;   /* server -> client topic aliases */
    uint16_t keepalive;          /* effective, seconds; 0 = none */
    conn_addr peer;              /* conn_peer() for text */
    uint8_t state;               /* enum conn_state */
    uint8_t handles_open;        /* freed when 0 and refs == 0 */
    uint8_t version;
    uint8_t paused; /* CONN_PAUSED_* bits: its input is not read */
    bool request_problem_info;
    bool shutdown_started; /* its request is allocated then (conn.c) */
    bool in_flush_list;
    bool in_ack_list;
    /* password_file listeners: the result of the check off the loop */
    bool password_checked;
    bool password_ok;
    bool im_envelope;       /* 3.1.1 IM device that asked for the envelope */
    bool disconnect_normal; /* DISCONNECT received: no will */
    bool will_on_close;     /* DISCONNECT 0x04 */
    /* Another loop closed it (takeover, a kick, a failed delivery): its
     * owner stops reading / closes the handle at its next flush. */
    bool read_stop_wanted;
    bool close_wanted;
    bool handles_closing; /* close_handles ran (or is left to the owner) */
};

/* c's peer as text ("127.0.0.1:5678", "[::1]:5678", "fd:7"): a buffer of the
 * loop thread, valid until the next call. */
const char *conn_peer(const conn *c);

/* c->extra, allocated on first use; NULL on ENOMEM. Freed with the
 * connection (conn_publish.c). */
conn_extra *conn_extra_get(conn *c);
void conn_extra_free(conn *c);

/* c's topic aliases (both directions), allocated on first use; NULL on
 * ENOMEM. */
static inline conn_aliases *conn_aliases_get(conn *c)
{
    conn_extra *x = conn_extra_get(c);
    return x ? &x->aliases : NULL;
}

/* c's retained backlog, or NULL. */
static inline struct retained_backlog *conn_retained(const conn *c)
{
    return c->extra ? c->extra->retained : NULL;
}

/* The wheel's callback for c->deadline (server_init installs it). */
void conn_on_deadline(wheel_node *n);

/* (Re)start the keepalive timer once c->keepalive is known. */
void conn_start_keepalive(conn *c);

/* Handle the input that arrived while the connection was paused (CONNECT
 * waiting for its password check), then read again. */
void conn_resume_input(conn *c);

/* MQTT bytes a transport (TLS, WebSocket) decoded: handle every whole
 * packet, keep a partial one in c->in. data is borrowed for the call. */
void conn_input(conn *c, const uint8_t *data, size_t len);

/* Start (or, after back-pressure, resume) reading c's socket with the MQTT
 * read path (also conn_proxy.c, once the PROXY header is read), and hand
 * it bytes already read from the socket (to the
 * transport if any, else as MQTT bytes; data is writable and borrowed for
 * the call). */
void conn_read_start(conn *c);
void conn_feed(conn *c, uint8_t *data, size_t len);

/* Arm c's CONNECT deadline (a connection that sends no CONNECT in time is
 * closed); conn_accept.c, at the start. */
void conn_arm_connect_timeout(conn *c);

/* Called by the listener for a new TCP connection. */
void conn_accept(listener *lst);

/* Serve an already connected stream socket as a connection of lst (the
 * fuzz target's entry point: one end of a socketpair, so bytes go through
 * the real read path and handlers without a network). fd is owned by the
 * connection from then on (closed with it, also on failure). Returns 0,
 * IMQTT_ENOMEM or IMQTT_EIO (refused by limits, or not a usable socket). */
int conn_adopt(listener *lst, uv_os_sock_t fd);

/* The same on worker w (the calling thread must run w's loop): a socket
 * accepted on the main loop and handed to w. */
int conn_adopt_on(listener *lst, worker *w, uv_os_sock_t fd);

/* Queue a packet for writing (encoded for c->version). Returns 0 or an
 * error; on ENOMEM the connection is closed. */
int conn_send(conn *c, const mqtt_packet *p);

/* Queue a PUBLISH of m for this connection: the header is encoded here
 * (topic alias, remaining expiry, subscription ids), the payload is
 * referenced. Returns 0, or IMQTT_ETOOLARGE when the packet exceeds the
 * client's Maximum Packet Size (the caller drops it for this client). */
int conn_send_publish(conn *c, msg *m, uint8_t qos, uint16_t pid, bool dup,
                      bool retain, const uint32_t *sub_ids, uint32_t nsub_ids);

/* Queue an acknowledgement that waits for the store commit. */
int conn_send_after_commit(conn *c, uint8_t type, uint16_t pid, uint8_t reason);
/* The same, and only once the cluster's durable log has acknowledged the
 * publications (dlo, dhi] (cluster_hooks.h: durable_mark). */
int conn_send_after_durable(conn *c, uint8_t type, uint16_t pid, uint8_t reason,
                            uint64_t dlo, uint64_t dhi);

/* A protocol violation (or ENOMEM): log it, and disconnect with the reason
 * mqtt_reason_for_error(err) chooses. */
void conn_fail(conn *c, int err);

/* The socket is unusable (write error, out of memory): drop the pending
 * output and close at once. */
void conn_abort(conn *c);

/* v5: send DISCONNECT with reason, then close. 3.x: close. */
void conn_disconnect(conn *c, uint8_t reason);

/* Close now: stop reading, write what is pending, then close the socket.
 * Runs the session's connection-lost logic (will, expiry). */
void conn_close(conn *c);

/* Acks of c waiting for the store. */
static inline uint32_t conn_nacks(const conn *c)
{
    return c->acks ? c->acks->n : 0;
}

/* Output bytes of c not yet written: queued, and handed to uv_write. */
static inline size_t conn_unwritten(const conn *c)
{
    return c->out.pending + c->bytes_in_flight;
}

/* Back-pressure (conn_pressure.c): after a read, stop reading c while its
 * unwritten output is above limits.output_buffer or its acks waiting for
 * commits reach limits.max_pending_acks; after output was written or acks
 * released, read again once both are below half. */
void conn_pressure_check(conn *c);
void conn_pressure_drain(conn *c);

/* Whether the output queued for c is above the slow-reader threshold, past
 * which QoS 0 messages are dropped rather than buffered. */
bool conn_output_full(const conn *c);

/* Write c's pending output (called once per loop iteration). */
void conn_flush(conn *c);

/* On c's own loop, before its flush: do what other loops left to it (stop
 * reading, close the handle, resume reading). Returns false when c is
 * being closed and has nothing to flush. */
bool conn_owner_work(conn *c);

/* Writing outside the loop lock, on c's own loop (conn.c): take c's
 * output into ob (false: write it with conn_flush instead), write it
 * without the lock (uv_try_write's result), settle under the lock.
 * conn_settle_taken returns true when more output came meanwhile. */
bool conn_take_output(conn *c, outbuf *ob);
int conn_write_taken(conn *c, const outbuf *ob);
bool conn_settle_taken(conn *c, outbuf *ob, int written);

/* Queue a SUBACK that waits for the commit recording the subscriptions
 * (persistent sessions). codes are copied. */
int conn_send_suback_after_commit(conn *c, uint16_t pid, const uint8_t *codes,
                                  uint32_t count);

/* Send the acks waiting for the commit that just completed. */
void conn_release_acks(conn *c, int status);

void conn_ref(conn *c);
void conn_unref(conn *c);

#endif
