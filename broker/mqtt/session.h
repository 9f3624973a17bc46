/* A session: the state of one client id that outlives its connections
 * (subscriptions, messages on their way to it, QoS 2 ids it sent us, its
 * will). Owned by the server's session map; a connection borrows it while
 * connected.
 */
#ifndef IMQTT_SESSION_H
#define IMQTT_SESSION_H

#include "acl.h"
#include "msg.h"
#include "pid_map.h"
#include "server.h"

enum entry_state {
    ENTRY_QUEUED = 0, /* not sent yet */
    ENTRY_SENT = 1,   /* PUBLISH sent, waiting for PUBACK / PUBREC */
    ENTRY_PUBREL = 2, /* PUBREC received, PUBREL sent, waiting PUBCOMP */
};

/* A message on its way to this session. */
typedef struct out_entry {
    struct out_entry *next, *prev;
    msg *m;       /* reference held; NULL once PUBREC is received */
    uint64_t seq; /* key of its store record (persistent sessions) */
    uint16_t pid;
    uint8_t qos; /* delivery QoS */
    uint8_t state;
    bool retain;      /* retain flag as delivered */
    bool dup;         /* sent at least once */
    sub_group *group; /* shared subscription it came through, or NULL */
    uint32_t nsub_ids;
    uint32_t sub_ids[]; /* v5 subscription identifiers */
} out_entry;

typedef struct entry_list {
    out_entry *head, *tail;
    uint32_t count;
} entry_list;

typedef struct sess_sub {
    struct sess_sub *next, *prev;
    mqtt_sub_opts opts;
    uint32_t sub_id;
    uint16_t len;
    char filter[]; /* as subscribed, $share prefix included; len bytes,
                      not NUL-terminated */
} sess_sub;

/* Fields are grouped by size: every hole is bytes of every session. */
struct session {
    server *srv;
    conn *conn;      /* NULL while offline */
    char *client_id; /* client_id_buf; also the key in srv->sessions */
    char *username;  /* from the latest CONNECT, username_len bytes (not
                        NUL-terminated when username_in_id); NULL: none */

    sess_sub *subs; /* owned list */
    /* filter -> sess_sub (keys inside the entries), owned; built once the
     * session holds SESS_SUBS_LINEAR subscriptions, so a re-subscription or
     * an UNSUBSCRIBE costs O(1) however many it holds (BAD_INPUTS row 29);
     * fewer are looked up in the list (IM sessions hold one or two). */
    hmap *sub_map;

    entry_list inflight;     /* sent, not yet acknowledged, in send order */
    pid_map pids;            /* packet id -> its entry in inflight */
    uint64_t inflight_bytes; /* payload bytes of the inflight entries that
                                still hold their message */
    entry_list queue;        /* waiting for room in the window */
    uint64_t queued_bytes;   /* payload bytes waiting beyond the window, in
                                queue and in the store only (max_queued_bytes);
                                entries queued before a restart not counted */

    pid_map qos2_in; /* incoming QoS 2 ids awaiting PUBREL */

    msg *will;          /* owned reference, or NULL */
    uv_timer_t *timer;  /* will delay and session expiry while offline;
                           allocated when first armed (most sessions never
                           are). Its close callback frees the session. */
    uint64_t will_at;   /* uv_now deadline, 0 = none */
    uint64_t expire_at; /* uv_now deadline, 0 = none */
    /* The timer is the main loop's: another loop that sets or ends it
     * queues the session on srv->timers_queued (session_timers_apply). */
    struct session *timer_next;

    /* Persistence (persist.c). sid != 0: the session has a store record;
     * its queue entries are keyed (sid, seq). Entries with seq >= disk_next
     * are only in the store (disk_count of them): they are read back as
     * the window drains, so an offline session costs no heap per message.
     */
    uint64_t sid;             /* its bytes: the key in the load-time map */
    uint64_t next_seq;        /* seq of the next entry */
    uint64_t disk_next;       /* first seq not in memory */
    uint64_t disk_count;      /* entries in the store only */
    uint64_t put_gen;         /* store batch of the newest entry recorded */
    uint64_t disconnect_wall; /* wall-clock ms of the disconnect */
    struct session *wait_prev, *wait_next; /* see `waiting` */

    struct im_info *im; /* owned: the IM identity, NULL for others */

    /* Messages dropped for a full queue since the device was last told
     * (IM listeners get a $im/missed marker, im_msg.c). In RAM only. */
    uint64_t missed;
    uint64_t missed_since; /* wall-clock ms of the first of them */

    uint32_t expiry; /* Session Expiry Interval, seconds */
    uint32_t nsubs;
    uint32_t will_delay;
    uint32_t will_expiry; /* Message Expiry Interval of the will; 0: none.
                             Counted from when the will is published. */
    uint32_t route_gen;   /* router: last publish that matched us */
    uint32_t route_slot;  /* router: our slot in that publish's scratch */

    uint16_t client_id_len;
    uint16_t username_len;
    uint16_t next_pid;
    uint8_t version;
    bool waiting;      /* in the server's list of sessions waiting for a commit
                          to read their queue */
    bool pids_partial; /* some inflight entries are not in pids (ENOMEM) */
    bool timer_queued; /* on srv->timers_queued */
    bool timer_end;    /* ended: close the timer, which frees the session */
    bool marker_now;   /* delivering the $im/missed marker: past the limits */
    bool username_in_id; /* username points into client_id_buf (not owned) */
    /* The client id's bytes (client_id points here): one allocation with
     * the session, not a second chunk of 32 bytes. */
    char client_id_buf[];
};

/* Whether s's window takes one more message now: online, under its
 * window (the client's Receive Maximum and ours) and under
 * max_inflight_bytes (a message always goes when nothing is in flight). */
bool session_window_open(const session *s);

/* The identity the ACL sees for s (views into s). */
acl_identity session_identity(const session *s);

/* Whether s may receive a message on topic: rights are checked again at
 * delivery, so a wildcard subscription never reaches a topic a rule
 * denies, and revoked rights do not leak queued or retained messages. */
bool session_may_receive(const session *s, mqtt_str topic);

/* Remember the user name of the latest CONNECT. Returns 0 or ENOMEM. */
int session_set_username(session *s, mqtt_str username, bool present);

/* Look up a session. */
session *session_find(server *srv, mqtt_str client_id);

/* Create an empty session and add it to the map. NULL on ENOMEM. */
session *session_new(server *srv, mqtt_str client_id);

/* End a session: publishes a pending will, hands shared-subscription
 * messages to other members, removes subscriptions, frees everything
 * (the memory itself when the timer handle has closed). */
void session_end(session *s);

/* The connection of s went away (not a takeover): will and expiry. */
void session_connection_lost(session *s, bool send_will);

/* Attach c to s (resume or fresh) and resend what was in flight. */
void session_attach(session *s, conn *c);

/* A session becoming persistent: record its subscriptions and incoming
 * QoS 2 ids in the store (session_subs.c). */
void session_subs_persist(session *s);

/* Subscriptions. */
int session_subscribe(session *s, mqtt_str filter, const mqtt_sub_opts *o,
                      uint32_t sub_id, bool *existed);
int session_unsubscribe(session *s, mqtt_str filter);
/* Whether s holds a subscription to exactly this filter. */
bool session_has_sub(const session *s, mqtt_str filter);
/* Remove every subscription of s (from the index too, not from the
 * store) and free them. */
void session_subs_clear(session *s);

/* Whether one more message may wait for s (the queue limits of its kind:
 * max_queued_* in RAM, max_stored_* for a persistent session). */
bool session_queue_has_room(const session *s);

/* A message s will never get (a queue bound passed): counted for the IM
 * overflow marker. */
void session_overflowed(session *s);

/* Deliver m to s at qos with the given subscription ids (may be none). */
void session_deliver(session *s, msg *m, uint8_t qos, bool retain,
                     const uint32_t *sub_ids, uint32_t nsub_ids,
                     sub_group *group);

/* The client acknowledged pid: PUBACK (qos 1), PUBREC, PUBCOMP. */
int session_on_puback(session *s, uint16_t pid);
int session_on_pubrec(session *s, uint16_t pid, uint8_t reason);
int session_on_pubcomp(session *s, uint16_t pid);

/* The message in flight to s under pid at delivery QoS qos, not yet
 * acknowledged (borrowed: the entry holds it until its ack is handled);
 * NULL for anything else. */
msg *session_inflight_msg(const session *s, uint16_t pid, uint8_t qos);

/* Send queued messages while the window has room. */
void session_pump(session *s);

/* Incoming QoS 2 ids. */
bool session_qos2_has(const session *s, uint16_t pid);
int session_qos2_add(session *s, uint16_t pid);
bool session_qos2_remove(session *s, uint16_t pid);

/* Publish s's will now (if any) and forget it. */
void session_publish_will(session *s);

/* Take an entry read from the store into the window (persist.c): m is
 * borrowed (NULL for an entry waiting for PUBCOMP). */
void session_admit_stored(session *s, uint64_t seq,
                          const struct store_entry *de, msg *m);

/* On the main loop: set the timers other loops left to it. */
void session_timers_apply(server *srv);

/* A session loaded from the store: start its will and expiry timers as if
 * it had disconnected `elapsed_ms` ago. */
void session_resume_offline(session *s, uint64_t elapsed_ms);

/* Add an incoming QoS 2 id without recording it (start-up). */
int session_qos2_load(session *s, uint16_t pid);

/* Replace the will (takes ownership of the reference). */
void session_set_will(session *s, msg *will, uint32_t delay);

#endif
