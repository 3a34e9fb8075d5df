/* op: one operation's life, from submit to its one callback: server selection (topology),
 * checkout (the server's pool), the request on a connection, retry (its rules: retry.h),
 * deadline, session, and the completion queue. Operation kinds (the plain command in cmd.c, bulk writes, cursors, gather)
 * plug in through mqc_op_vt_t. */
#ifndef MQC_OP_H
#define MQC_OP_H

#include <ev.h>
#include <string.h>

#include "common.h"
#include "conn.h"
#include "mqc.h"
#include "pool.h"
#include "request.h"
#include "guard.h"
#include "retry.h"
#include "session.h"
#include "topology.h"
#include "uri.h"
#include "wire.h"

typedef struct mqc_conn mqc_conn_t;
typedef struct mqc_server mqc_server_t;


/* Steps an operation goes through. */
typedef enum {
    MQC_OP_NEW = 0,
    MQC_OP_WAITING,              /* in a pool's wait queue */
    MQC_OP_ACTIVE,               /* on a connection: sending or awaiting a reply */
    MQC_OP_QUEUED,               /* result decided, callback queued */
    MQC_OP_DONE,                 /* callback delivered (or being delivered) */
} mqc_op_state_t;

/* Operation kinds implement these. encode writes the next request for the op into buf (a
 * whole OP_MSG) for a server with caps (its limits and wire version, from the handshake);
 * on_reply consumes the reply and hands its outcome back to op: MQC_STEP_DONE with the op's
 * result in the outcome (op then finishes the op itself: a kind never finishes it from below,
 * on the way up), or MQC_STEP_AGAIN to have encode called again on the same connection. */
typedef enum { MQC_STEP_DONE = 0, MQC_STEP_AGAIN = 1 } mqc_step_t;

/* The outcome on_reply / on_sent hand back. op fills ok/err before on_reply (from the reply's
 * one-pass scan, else mqc_reply_ok), and finishes with reply/error on DONE. The documents live
 * here, in op's frame, until the op has finished: reply may point at the server's reply, at
 * view (a document inside it, bson_init_static) or at tmp (built anew: set tmp_used, op
 * destroys it after the callback). */
typedef struct mqc_op_outcome {
    bool ok;                     /* in: the reply said ok:1 (else err says why) */
    bool tmp_used;               /* out: tmp was initialised */
    const bson_t *reply;         /* out: the op's result document, or NULL */
    const mqc_error_t *error;    /* out: NULL, or the op's error (often &err) */
    mqc_error_t err;
    bson_t view;
    bson_t tmp;
} mqc_op_outcome_t;

/* A subscriber to an op's end (mqc_op_t.on_done). */
typedef void (*mqc_op_done_fn)(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error);

typedef struct mqc_op_vt {
    const char *kind;
    /* NULL: op encodes the command document itself (op_encode, with lib/request.c). */
    bool (*encode)(mqc_op_t *op, const mqc_server_caps_t *caps, mqc_buf_t *buf, int32_t request_id,
                   bool *more_to_come, mqc_error_t *error);
    mqc_step_t (*on_reply)(mqc_op_t *op, const bson_t *reply, mqc_op_outcome_t *out);
    /* After an unacknowledged (moreToCome) request was written: MQC_STEP_DONE or AGAIN. */
    mqc_step_t (*on_sent)(mqc_op_t *op, mqc_op_outcome_t *out);
    /* Called once when the op is freed, to release impl. */
    void (*destroy)(mqc_op_t *op);
    /* Group ops: cancel the members. */
    void (*cancel)(mqc_op_t *op);
    /* Where the command document is, for kinds that have one (events, selection by its
     * $readPreference, and the request itself when encode is NULL): a bson_t at this offset in
     * impl; -1, none. Data, not a hook: op reads it on its way down without calling back up
     * into the kind. */
    int command_offset;
} mqc_op_vt_t;

struct mqc_op {
    /* The fields are ordered so that no padding hole is left (state is a byte for that): an op
     * in flight costs its size, and at most 440 bytes keep it in a smaller malloc size class
     * than 464 did (op.c asserts it; docs/internals/performance.md, memory per operation). */
    mqc_client_t *client;
    const mqc_op_vt_t *vt;
    void *impl;                  /* per-kind state, freed by vt->destroy; in the free-list, the next op */
    mqc_reply_cb cb;
    void *ud;
    uint64_t id;
    uint8_t state;               /* mqc_op_state_t */
    bool timer_on;
    bool cancelled;
    bool is_write;
    int32_t request_id;
    const char *name;            /* command name for events/errors; static or in impl */
    char db[64];

    mqc_server_t *server;        /* pinned server (cursors), or the one selected */
    mqc_server_t *pin;           /* when set, only this server */
    mqc_conn_t *conn;
    mqc_pool_waiter_t waiter;
    int64_t sent_us;

    int64_t start_us, end_us;
    int64_t deadline_us;         /* 0: none */
    ev_timer timer;
    int64_t select_deadline_us;  /* when the wait for a server gives up */
    int64_t txn_number;          /* retryable write: the current batch's txnNumber (0: none) */
    /* The implicit server session (lib/session.c), taken when the op is first sent to a server
     * with sessions, kept across its retry, given back when the op ends. */
    mqc_session_t *session;
    mqc_server_t *tried;         /* a retry avoids this server (deprioritized) */

    mqc_link_t link;             /* mqc_ops_t.live: every live op, for shutdown */
    mqc_link_t qlink;            /* mqc_ops_t.completions, or .selecting while selecting */
    bson_t *q_reply;             /* queued completion */
    mqc_error_t *q_error;        /* queued or early error; allocated only then (ops stay small) */
    /* The reply being dispatched, scanned once (lib/hotcmd.c): set by op.c for the length of
     * vt->on_reply only. */
    const struct mqc_hotcmd_reply *reply_scan;

    /* A subscriber to the op's end (gather: each of its members), told after the op's own
     * callback with the same reply and error. At most one. */
    mqc_op_done_fn on_done;
    void *done_ctx;
    uint32_t done_slot;

    /* Flags in bits from here: a byte each would take the op past 440 bytes. */
    uint8_t retry;               /* MQC_RETRY_*: may be retried once */
    bool retried : 1;            /* the one retry was used */
    bool selecting : 1;          /* waiting (in mqc_ops_t.selecting via qlink) for a suitable server */
    bool deferred : 1;           /* submitted while a connection was held (mqc_ops_t.deferred via qlink) */
    bool txn_ok : 1;             /* retryable write: lsid + txnNumber go with the command */
    bool session_borrowed : 1;   /* a cursor's (getMore): the cursor gives it back, not the op */
    bool session_keep : 1;       /* a cursor's first batch: the cursor may take the session */
    bool no_session : 1;         /* unacknowledged write, or a command with the user's own lsid */
    bool internal : 1;           /* endSessions at destroy: may be submitted while closing */
    bool unacked : 1;            /* a command without encoder: sent with moreToCome ({w: 0}) */
    bool group : 1;              /* a group's own op (gather): it ends when its members do, and
                                  * cancelling or timing it out goes to vt->cancel */
};

/* The op layer's state per client. The client embeds it as its first member (client.c
 * asserts it), fills the part handed in, and op.c owns the rest. */
typedef struct mqc_ops {
    /* handed in by the client */
    struct ev_loop *loop;
    const mqc_uri_t *uri;
    uint64_t *stats;             /* the client's counters, MQC_STAT_* */
    mqc_session_pool_t *sessions;
    mqc_guard_t *guard;          /* entered around callbacks into the application */
    struct mqc_topology *const *topo; /* the client's topology, NULL until it starts */
    const mqc_monitor_t *monitor; /* the application's hooks (command events), and their ud */
    void *const *monitor_ud;
    bool closing;                /* the client is being destroyed: only internal ops start */
    /* A mongodb+srv seed list's lookup failed: while there is no topology, selections fail
     * with seed_error instead of waiting for one. */
    bool seed_failed;
    mqc_error_t seed_error;
    /* op.c's */
    mqc_link_t live;             /* every live operation (mqc_op_t.link) */
    mqc_link_t completions;      /* ops whose callback waits for the loop (mqc_op_t.qlink) */
    ev_timer flush_timer;        /* zero-delay timer that delivers completions */
    int submitting;              /* > 0 inside a submit call: completions are queued */
    int holding;                 /* > 0 while a callback runs whose op's connection is not yet back */
    mqc_link_t deferred;         /* ops submitted meanwhile (mqc_op_t.qlink), dispatched after it */
    mqc_link_t selecting;        /* ops waiting for a suitable server (mqc_op_t.qlink) */
    ev_timer wake;               /* zero-delay: after a change, waiting ops select again */
    mqc_topology_sub_t topology; /* the subscription that arms wake */

    uint64_t next_op_id;
    size_t max_pending;          /* maxPendingOperations: 0, no limit */
    /* Kept here for lib/cursor.c, which reaches the client no other way: its live cursors
     * (mqc_cursor_t.link), made inert at destroy. */
    mqc_link_t cursors;
    /* Free-lists of the hot path, so that a steady stream of operations allocates nothing:
     * freed ops (op.c, linked through impl) and, kept here for lib/cmd.c like cursors above,
     * freed command impls. At most MQC_FREE_LIST_MAX each; emptied at client destroy. */
    mqc_op_t *free_ops;
    size_t n_free_ops;
    void *free_impls;
    size_t n_free_impls;
    void *free_bulks;            /* lib/write.c's, likewise: a single write is a bulk of one */
    size_t n_free_bulks;
} mqc_ops_t;

/* The most a free-list keeps: the ops in flight of a busy client. More would hold memory that
 * a burst once needed (and make memory per op in flight look smaller than it is). */
#if defined(__SANITIZE_ADDRESS__)
/* Under AddressSanitizer nothing is kept: an op or command taken again from a free-list would
 * hide a use after free, which is what the sanitizer build is there to find. */
#define MQC_FREE_LIST_MAX 0
#else
#define MQC_FREE_LIST_MAX 256
#endif

/* The client's mqc_ops_t (its first member). */
static inline mqc_ops_t *mqc_ops_of(mqc_client_t *client) { return (mqc_ops_t *) (void *) client; }
/* Sets up the client's mqc_ops_t, whose handed-in part the client filled. */
void mqc_ops_init(mqc_client_t *client);
/* Stops its timers (after mqc_op_fail_all and the last flush). */
void mqc_ops_cleanup(mqc_client_t *client);
/* Subscribes the waiting selections to the client's topology (once it has started). */
void mqc_ops_watch_topology(mqc_client_t *client);

/* A new op for db (dblen: its strlen, db not NULL; a collection handle keeps it). */
mqc_op_t *mqc_op_new_n(mqc_client_t *client, const mqc_op_vt_t *vt, const char *name, const char *db, size_t dblen,
                       mqc_reply_cb cb, void *ud);
static inline mqc_op_t *mqc_op_new(mqc_client_t *client, const mqc_op_vt_t *vt, const char *name, const char *db,
                                   mqc_reply_cb cb, void *ud)
{
    return mqc_op_new_n(client, vt, name, db ? db : "", db ? strlen(db) : 0, cb, ud);
}
/* Reads "timeoutMS" from opts (else the client's default) and sets the deadline. */
void mqc_op_set_timeout_from(mqc_op_t *op, const bson_t *opts);
/* Starts the op: select, check out, send. Errors set before (op_fail_early) are delivered. */
mqc_op_t *mqc_op_submit(mqc_op_t *op);
/* Marks a submit-time error; mqc_op_submit then queues it instead of starting the op. */
void mqc_op_fail_early(mqc_op_t *op, uint32_t domain, int32_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The end: delivers the callback now, or queues it when inside a submit call. Exactly once;
 * later calls are ignored. reply may be NULL. */
void mqc_op_finish(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error);
/* The same, but the callback always comes from the loop (for an end decided inside one of the
 * application's calls). */
void mqc_op_finish_later(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error);
/* Delivers every queued completion (the flush timer's job; also used by destroy). */
void mqc_op_flush_completions(mqc_client_t *client);
/* Selects a server for op again, or for the first time, and goes on from there (checkout, send). */
void mqc_op_dispatch(mqc_op_t *op);
/* lib/reselect.c. Ops waiting for a server try selection again, now (the seed list arrived). */
void mqc_op_wake_selecting(mqc_client_t *client);
/* lib/opctl.c. Fails every live op with MQC_ERROR_SHUTDOWN (client destroy). */
void mqc_op_fail_all(mqc_client_t *client);
/* Finishes op with an error decided by the client (timeout, cancel): a request on the wire is
 * abandoned with its connection. */
void mqc_op_abort(mqc_op_t *op, const mqc_error_t *error);
/* Writes the op's command body into buf, with the op's session (lsid, and txnNumber for a
 * retryable write) appended when it has one. Every encoder sends its body through this. */
static inline void mqc_op_msg_body(mqc_op_t *op, mqc_buf_t *buf, const bson_t *body)
{
    mqc_request_body(buf, body, op->session, op->txn_ok ? op->txn_number : 0);
}
/* The same for a request of the body alone: the whole message (op_encode's plain command). */
static inline void mqc_op_msg(mqc_op_t *op, mqc_buf_t *buf, int32_t request_id, uint32_t flags, const bson_t *body)
{
    mqc_request_msg(buf, request_id, flags, body, op->session, op->txn_ok ? op->txn_number : 0);
}
/* The retryable write's txnNumber for a new statement (a bulk's next batch): the next number
 * of the op's session. Only when op->txn_ok. */
static inline void mqc_op_next_txn(mqc_op_t *op)
{
    if (op->txn_ok && op->session) op->txn_number = mqc_session_next_txn(op->session);
}
/* Empties the free-list of ops (client destroy, after the last op ended). */
void mqc_op_free_list_drain(mqc_client_t *client);
/* Gives a session back to the client's pool (a cursor's, when it is exhausted or dead). */
void mqc_op_session_checkin(mqc_client_t *client, mqc_session_t *s);

#endif
