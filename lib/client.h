/* The client's private structures: servers, operations, the completion queue. */
#ifndef MQC_CLIENT_H
#define MQC_CLIENT_H

#include <ev.h>
#include <netdb.h>

#include "common.h"
#include "mqc.h"
#include "pool.h"
#include "resolve.h"
#include "session.h"
#include "uri.h"
#include "wire.h"

typedef struct mqc_conn mqc_conn_t;
typedef struct mqc_server mqc_server_t;

/* What a server told us in the handshake; used to encode requests for it. */
typedef struct {
    mqc_wire_limits_t limits;
    int32_t max_wire_version;
    int32_t min_wire_version;
    bool is_writable_primary;
    bool is_mongos;
    bool is_rs_member;           /* setName: a replica-set member */
    int32_t session_timeout_minutes; /* logicalSessionTimeoutMinutes, -1 when absent */
} mqc_server_caps_t;

/* One server: its address, the addresses it resolved to, its pool. */
struct mqc_server {
    mqc_client_t *client;
    mqc_uri_host_t host;
    mqc_pool_t *pool;
    mqc_server_caps_t caps;      /* from the latest handshake */
    bool caps_known;
    /* resolution: addresses cached for a while so that a pool does not resolve per connection */
    struct addrinfo *addrs;
    int64_t addrs_expire_us;
    bool resolving;
    mqc_link_t resolve_waiters;  /* conns waiting for addrs (mqc_conn_t.rlink) */
    ev_timer connect_later;      /* starts resolve_waiters left over by the budget (lib/conn.c) */
    uint64_t in_use;             /* ops dispatched, for choosing among mongos */
    struct mqc_heartbeat *heartbeat; /* SDAM server monitor (lib/heartbeat.c), NULL for a Single topology */
    char address[272];           /* normalised "host:port": the key in the topology */
    bool retired;                /* removed from the topology: kept until destroy for live ops */
};

/* What an operation is, for the retry rules (set by the builders in read.c / bulk.c). */
enum { MQC_RETRY_NONE = 0, MQC_RETRY_READ, MQC_RETRY_WRITE };

/* Steps an operation goes through. */
typedef enum {
    MQC_OP_NEW = 0,
    MQC_OP_WAITING,              /* in a pool's wait queue */
    MQC_OP_ACTIVE,               /* on a connection: sending or awaiting a reply */
    MQC_OP_QUEUED,               /* result decided, callback queued */
    MQC_OP_DONE,                 /* callback delivered (or being delivered) */
} mqc_op_state_t;

/* Operation kinds implement these. encode writes the next request for the op into buf (a
 * whole OP_MSG); on_reply consumes the reply and returns MQC_STEP_DONE after finishing the op
 * (mqc_op_finish), or MQC_STEP_AGAIN to have encode called again on the same connection. */
typedef enum { MQC_STEP_DONE = 0, MQC_STEP_AGAIN = 1 } mqc_step_t;

typedef struct mqc_op_vt {
    const char *kind;
    bool (*encode)(mqc_op_t *op, mqc_conn_t *conn, mqc_buf_t *buf, int32_t request_id,
                   bool *more_to_come, mqc_error_t *error);
    mqc_step_t (*on_reply)(mqc_op_t *op, mqc_conn_t *conn, const bson_t *reply);
    /* After an unacknowledged (moreToCome) request was written: MQC_STEP_DONE or AGAIN. */
    mqc_step_t (*on_sent)(mqc_op_t *op, mqc_conn_t *conn);
    /* Called once when the op is freed, to release impl. */
    void (*destroy)(mqc_op_t *op);
    /* Gather ops: cancel the members. */
    void (*cancel)(mqc_op_t *op);
} mqc_op_vt_t;

struct mqc_op {
    mqc_client_t *client;
    const mqc_op_vt_t *vt;
    void *impl;                  /* per-kind state, freed by vt->destroy */
    mqc_reply_cb cb;
    void *ud;
    uint64_t id;
    mqc_op_state_t state;
    const char *name;            /* command name for events/errors; static or in impl */
    char db[64];

    mqc_server_t *server;        /* pinned server (cursors), or the one selected */
    mqc_server_t *pin;           /* when set, only this server */
    mqc_conn_t *conn;
    mqc_pool_waiter_t waiter;
    int32_t request_id;
    int64_t sent_us;

    int64_t start_us, end_us;
    int64_t deadline_us;         /* 0: none */
    ev_timer timer;
    bool timer_on;
    bool cancelled;
    bool is_write;
    uint8_t retry;               /* MQC_RETRY_*: may be retried once */
    bool retried;                /* the one retry was used */
    bool selecting;              /* waiting (in client->selecting via qlink) for a suitable server */
    bool deferred;               /* submitted while a connection was held (client->deferred via qlink) */
    int64_t select_deadline_us;  /* when the wait for a server gives up */
    int64_t txn_number;          /* retryable write: the current batch's txnNumber (0: none) */
    bool txn_ok;                 /* retryable write: lsid + txnNumber go with the command */
    /* The implicit server session (lib/session.c), taken when the op is first sent to a server
     * with sessions, kept across its retry, given back when the op ends. */
    mqc_session_t *session;
    bool session_borrowed;       /* a cursor's (getMore): the cursor gives it back, not the op */
    bool session_keep;           /* a cursor's first batch: the cursor may take the session */
    bool no_session;             /* unacknowledged write, or a command with the user's own lsid */
    bool internal;               /* endSessions at destroy: may be submitted while closing */
    mqc_server_t *tried;         /* a retry avoids this server (deprioritized) */

    mqc_link_t link;             /* client->ops: every live op, for shutdown */
    mqc_link_t qlink;            /* client->completions */
    bson_t *q_reply;             /* queued completion */
    mqc_error_t *q_error;        /* queued or early error; allocated only then (ops stay small) */

    struct mqc_gather *gather;   /* the group this op belongs to, if any */
    size_t gather_slot;
    bool gather_own;             /* op is a gather's own op (impl is the gather) */
};

struct mqc_client {
    struct ev_loop *loop;
    bool own_loop;
    mqc_uri_t uri;
    mqc_server_t **servers;
    size_t n_servers;
    size_t rr;                   /* round robin among mongos */
    mqc_resolver_t *resolver;

    mqc_monitor_t monitor;
    void *monitor_ud;

    mqc_link_t ops;              /* every live operation */
    mqc_link_t completions;      /* ops whose callback waits for the loop */
    ev_timer flush_timer;        /* zero-delay timer that delivers completions */
    int submitting;              /* > 0 inside a submit call: completions are queued */
    int holding;                 /* > 0 while a callback runs whose op's connection is not yet back */
    mqc_link_t deferred;         /* ops submitted meanwhile (mqc_op_t.qlink), dispatched after it */
    int depth;                   /* > 0 inside a callback into the application */
    bool destroy_requested;
    bool closing;

    size_t max_pending;
    uint64_t next_op_id;
    int32_t next_request_id;
    uint32_t next_conn_serial;
    uint64_t stats[MQC_STAT__COUNT];

    bson_t metadata;             /* client metadata for the handshake */
    struct mqc_scram_cache *scram_cache; /* salted passwords, per credential */
    struct mqc_worker *kdf_worker; /* PBKDF2 off the loop (lib/conn_secure.c), made on first need */
    mqc_link_t auth_waiters;     /* connections waiting for their keys (struct mqc_auth.wait_link) */
    ev_timer auth_resume;        /* resumes auth_waiters left over by the budget (lib/conn_secure.c) */
    unsigned est_iteration;      /* connection establishment budget per loop iteration (lib/conn.c) */
    int64_t est_spent_us;
    struct mqc_tls_ctx *tls_ctx;         /* when the URI asks for TLS */
    mqc_link_t cursors;          /* live cursors, made inert on destroy */
    struct mqc_topology *topo;   /* discovery, monitoring, selection (lib/topology.c) */
    mqc_link_t selecting;        /* ops waiting for a suitable server (mqc_op_t.qlink) */
    struct mqc_seedlist_state *seedlist;   /* mongodb+srv: the seed list lookup (lib/seedlist.c), else NULL */
    mqc_session_pool_t sessions; /* implicit server sessions (lib/session.c) */
};

/* ---- client internals (client.c) ------------------------------------------------------- */
int32_t mqc_client_next_request_id(mqc_client_t *client);
/* Entering and leaving application code: a destroy requested inside is done on the way out. */
void mqc_client_enter(mqc_client_t *client);
void mqc_client_leave(mqc_client_t *client);
void mqc_client_emit_pool(mqc_client_t *client, const mqc_pool_event_t *ev);
void mqc_client_emit_command(mqc_client_t *client, const mqc_command_event_t *ev);
/* Picks a server for op (pin, or by topology) or NULL with error; NULL with error unset (domain
 * NONE): nothing suitable yet, the op waits for the topology to change. */
mqc_server_t *mqc_client_select(mqc_client_t *client, mqc_op_t *op, mqc_error_t *error);
/* A server and its pool (monitored: the pool waits for the monitor's first success). */
mqc_server_t *mqc_server_new(mqc_client_t *client, const mqc_uri_host_t *host, bool monitored);
void mqc_server_destroy(mqc_server_t *s);
/* Sends endSessions for the pooled sessions (client destroy): best effort, bounded in time. */
void mqc_client_end_sessions(mqc_client_t *client);

/* ---- op life (op.c) -------------------------------------------------------------------- */
mqc_op_t *mqc_op_new(mqc_client_t *client, const mqc_op_vt_t *vt, const char *name, const char *db,
                     mqc_reply_cb cb, void *ud);
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
/* Delivers every queued completion (the flush timer's job; also used by destroy). */
void mqc_op_flush_completions(mqc_client_t *client);
/* The topology changed: ops waiting for a server try selection again. */
void mqc_op_wake_selecting(mqc_client_t *client);
/* Fails every live op with MQC_ERROR_SHUTDOWN (client destroy). */
void mqc_op_fail_all(mqc_client_t *client);
/* Writes the op's command body into buf, with the op's session (lsid, and txnNumber for a
 * retryable write) appended when it has one. Every encoder sends its body through this. */
void mqc_op_msg_body(mqc_op_t *op, mqc_buf_t *buf, const bson_t *body);
/* The retryable write's txnNumber for a new statement (a bulk's next batch): the next number
 * of the op's session. Only when op->txn_ok. */
void mqc_op_next_txn(mqc_op_t *op);
/* Gives a session back to the client's pool (a cursor's, when it is exhausted or dead). */
void mqc_op_session_checkin(mqc_client_t *client, const mqc_server_t *server, mqc_session_t *s);
/* Used by gather: deliver to the gather after the op's own callback. */
void mqc_gather_on_member_done(mqc_op_t *member, const bson_t *reply, const mqc_error_t *error);

/* A plain command op (client.c/ops): encodes body `cmd` (which holds "$db"). */
typedef struct {
    bson_t cmd;
    bool unacknowledged;
    /* When set, called with an ok:1 reply instead of finishing with it; must finish the op. */
    void (*post)(mqc_op_t *op, const bson_t *reply);
} mqc_cmd_impl_t;
extern const mqc_op_vt_t mqc_cmd_vt;
/* New command op: copies cmd and appends "$db" (and readConcern/writeConcern as given). */
mqc_op_t *mqc_cmd_op_new(mqc_client_t *client, const char *db, const bson_t *cmd, mqc_reply_cb cb,
                         void *ud);
/* The same for a command built by the caller, already holding "$db": takes it over (cmd is
 * left destroyed), saving a copy on the hot path. */
mqc_op_t *mqc_cmd_op_take(mqc_client_t *client, const char *db, bson_t *cmd, mqc_reply_cb cb, void *ud);
/* Cheapest of all: the command is built straight into impl->cmd (from mqc_cmd_impl_new). */
mqc_cmd_impl_t *mqc_cmd_impl_new(void);
mqc_op_t *mqc_cmd_op_adopt(mqc_client_t *client, const char *db, mqc_cmd_impl_t *impl, mqc_reply_cb cb, void *ud);
/* Checks a command reply: ok:1 -> true; else error (SERVER) filled. */
bool mqc_reply_ok(const bson_t *reply, mqc_error_t *error);
/* Appends the client's (or opts') readConcern / $readPreference to a read command. */
void mqc_apply_read_opts(mqc_client_t *client, bson_t *cmd, const bson_t *opts);
/* The write concern for a write: opts' "writeConcern", else the URI's. *unacked for w:0. */
void mqc_apply_write_concern(mqc_client_t *client, bson_t *cmd, const bson_t *opts, bool *unacked);
/* Copies opts into cmd except the keys mqc handles itself (timeoutMS, readPreference,
 * readConcern, writeConcern, session, and the NULL-terminated extra list). */
void mqc_copy_passthrough_opts(bson_t *cmd, const bson_t *opts, const char *const *extra);

/* Cursors and handles (cursor.c, handles.c). */
struct mqc_collection {
    mqc_client_t *client;
    char *db;
    char *name;
};
void mqc_cursor_detach_all(mqc_client_t *client);

#endif
