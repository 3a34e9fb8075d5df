/* conn: one non-blocking connection to a server, as an explicit state machine.
 *
 *   RESOLVING -> CONNECTING -> TLS -> HELLO -> AUTH -> READY <-> BUSY -> CLOSED
 *
 * Its owner (lib/server.c, which ties it to the server's pool) opens it, hands it addresses
 * and hears back through the events it handed at creation. A request carries its sink down:
 * what to send (encode) and where its outcome goes (on_reply, on_sent, on_error), so that the
 * connection never calls a layer above it. What a connection shares with every other of its
 * client (loop, URI, TLS and SCRAM state, counters) is the client's mqc_conn_ctx_t. One request
 * is in flight per connection: concurrency comes from many connections. */
#ifndef MQC_CONN_H
#define MQC_CONN_H

#include <ev.h>
#include <netdb.h>

#include "common.h"
#include "guard.h"
#include "stream.h"
#include "uri.h"
#include "wire.h"

typedef struct mqc_conn mqc_conn_t;

/* The TLS and AUTH states' steps (lib/conn_secure.c, which sits above this file: it drives the
 * connection through those states with the calls at the end of this header). */
typedef struct mqc_conn_secure_ops {
    void (*tls_start)(mqc_conn_t *c);    /* after connect: on success, mqc_conn_after_tls */
    void (*tls_step)(mqc_conn_t *c);     /* on readiness while TLS */
    bool (*auth_needed)(const mqc_conn_t *c);
    void (*auth_add_to_hello)(mqc_conn_t *c, bson_t *hello); /* speculative authentication */
    void (*auth_start)(mqc_conn_t *c, const bson_t *hello_reply); /* on success, mqc_conn_established */
    void (*auth_reply)(mqc_conn_t *c, const bson_t *reply);
    void (*free)(mqc_conn_t *c);         /* c->auth */
} mqc_conn_secure_ops_t;

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

/* Client-wide: what every connection of a client shares. The client fills and owns it
 * (mqc_conn_ctx_init / cleanup for the parts of ours). */
typedef struct mqc_conn_ctx {
    struct ev_loop *loop;
    const mqc_uri_t *uri;
    const bson_t *metadata;      /* the handshake's client document */
    struct mqc_tls_ctx *tls_ctx; /* when the URI asks for TLS */
    struct mqc_scram_cache *scram_cache; /* salted passwords, per credential */
    struct mqc_worker *kdf_worker; /* PBKDF2 off the loop (lib/conn_secure.c), made on first need */
    mqc_link_t auth_waiters;     /* connections waiting for their keys (struct mqc_auth.wait_link) */
    ev_timer auth_resume;        /* resumes auth_waiters left over by the budget (lib/conn_secure.c) */
    unsigned est_iteration;      /* connection establishment budget per loop iteration */
    int64_t est_spent_us;
    int32_t *request_ids;        /* the client's request-id counter (mqc_wire_next_request_id) */
    uint64_t *stats;             /* the client's counters (MQC_STAT_*) */
    mqc_guard_t *guard;          /* the client's: a destroy from inside waits for us */
    const mqc_conn_secure_ops_t *secure; /* lib/conn_secure.c's steps (mqc_conn_secure_init) */
    mqc_wire_shared_t rshared;   /* the connections' read buffer (lib/conn.c, on_rio) */
} mqc_conn_ctx_t;

/* Frees what lib/conn.c keeps in ctx (with no connection reading: not from a reply's callback). */
void mqc_conn_ctx_cleanup(mqc_conn_ctx_t *ctx);

/* What a connection tells its owner, with the up pointer handed at creation. */
typedef struct mqc_conn_events {
    /* The hello was answered: the server's capabilities (authentication may follow). */
    void (*hello)(void *up, const mqc_server_caps_t *caps);
    /* Establishment ended, from the loop (never inside mqc_conn_new): error NULL, READY; else
     * the connection is closed. */
    void (*established)(void *up, mqc_conn_t *conn, const mqc_error_t *error);
    /* A connection carrying no request (idle, or busy for an owner who let go) broke: closed. */
    void (*lost)(void *up, mqc_conn_t *conn);
    /* No address of the list could be connected to: they may have changed. */
    void (*addrs_failed)(void *up);
} mqc_conn_events_t;

/* Where a request's outcome goes; owner is handed back in every call. The request comes
 * encoded from above (mqc_conn_request_buf, mqc_conn_request_send) and carries its sink into
 * the connection. After mqc_conn_request_send exactly one of these follows, from the loop or
 * within it: on_reply with the connection READY again (the owner gives it back), on_sent for
 * a request with moreToCome once it is written (READY too), or on_error with the connection
 * closed (the owner gives it back as broken). */
typedef struct mqc_conn_sink {
    void (*on_reply)(void *owner, mqc_conn_t *conn, const bson_t *reply);
    void (*on_sent)(void *owner, mqc_conn_t *conn);
    void (*on_error)(void *owner, mqc_conn_t *conn, const mqc_error_t *error);
} mqc_conn_sink_t;

typedef enum {
    MQC_CS_RESOLVING = 1,
    MQC_CS_CONNECTING,
    MQC_CS_TLS,
    MQC_CS_HELLO,
    MQC_CS_AUTH,
    MQC_CS_READY,
    MQC_CS_BUSY,
    MQC_CS_CLOSED,
} mqc_conn_state_t;

struct mqc_auth;

/* Fields ordered by size (no padding): 10,000 idle connections cost what this struct costs
 * (see docs/internals/performance.md, "Memory"). */
struct mqc_conn {
    mqc_conn_ctx_t *ctx;
    const mqc_uri_host_t *host;  /* the server's */
    const mqc_conn_events_t *events;
    void *up;                    /* the owner's handle, handed back in events */
    mqc_stream_t stream;
    ev_io rio, wio;
    ev_timer timer;              /* establishment deadline, reply deadline, deferred failure */
    mqc_wire_reader_t reader;    /* offered ctx->rshared while reading (see on_rio) */
    mqc_buf_t out;
    size_t out_off;
    const mqc_conn_sink_t *sink; /* BUSY: where the request's outcome goes */
    void *owner;                 /* BUSY: the sink's owner; NULL once told */
    struct addrinfo *addrs;      /* owned copy of the server's addresses, until connected */
    struct addrinfo *ai;         /* the address being tried */
    mqc_error_t *fail;           /* a failure to report from the loop (allocated), else NULL */
    mqc_link_t rlink;            /* the owner's: in its list of connections waiting to connect */
    struct mqc_auth *auth;
    mqc_conn_state_t state;
    int32_t request_id;          /* the request in flight (HELLO, AUTH, BUSY) */
    int32_t unacked_lo, unacked_hi; /* moreToCome ids sent here: stray replies to them are dropped */
    uint32_t server_connection_id;
    int handling;                /* > 0 while a handler of ours is on the stack */
    bool request_unacked;        /* it carries moreToCome: no reply expected */
    bool weak;                   /* idle: its watcher does not keep ev_run alive (ev_unref) */
    bool free_pending;           /* closed while handling: free on the way out */
};

/* A new connection, RESOLVING, its whole establishment bounded by connectTimeoutMS from now.
 * max_message_size: the server's, when known (else 0). */
mqc_conn_t *mqc_conn_new(mqc_conn_ctx_t *ctx, const mqc_uri_host_t *host, int32_t max_message_size,
                         const mqc_conn_events_t *events, void *up);
/* RESOLVING -> CONNECTING: to addrs (copied), or to the host's Unix socket path (addrs NULL). */
void mqc_conn_connect(mqc_conn_t *conn, const struct addrinfo *addrs);
/* Fails the connection: establishment failures reach events->established from the loop. */
void mqc_conn_fail(mqc_conn_t *conn, const mqc_error_t *error);
/* Closes now, in any state, telling no one; freed now or on the way out of its handler. */
void mqc_conn_close(mqc_conn_t *conn);
/* Brackets a call from the loop (not from inside the owner's open): failures within are
 * reported at once, and a close within frees on the way out. */
void mqc_conn_enter(mqc_conn_t *conn);
void mqc_conn_leave(mqc_conn_t *conn);

/* A request on a READY connection checked out for it, in two steps. mqc_conn_request_buf gives
 * the buffer to write the whole message into, at its end (an encoder that fails truncates it
 * back to the length it found), and the request's id from the client's counter;
 * mqc_conn_request_send sends what was written, and the outcome comes back through sink. */
static inline mqc_buf_t *mqc_conn_request_buf(mqc_conn_t *conn, int32_t *request_id)
{
    *request_id = mqc_wire_next_request_id(conn->ctx->request_ids); /* inline: once per request */
    return &conn->out;
}
void mqc_conn_request_send(mqc_conn_t *conn, const mqc_conn_sink_t *sink, void *owner, int32_t request_id,
                           bool more_to_come);
/* The request's owner is done with the connection: true when it is READY to be reused. */
bool mqc_conn_done(mqc_conn_t *conn);
/* The owner no longer wants the reply of its request (timeout, cancel): the connection is
 * closed (never reused); the owner gives it back as broken. */
void mqc_conn_abandon(mqc_conn_t *conn);
/* True when the request in flight was not completely written to the socket (or TLS): the server
 * cannot have received it whole, so it cannot have run it. A failed write that never reached the
 * server may then be retried like one that was never sent. */
bool mqc_conn_request_unsent(const mqc_conn_t *conn);

/* The establishment budget of the running loop iteration (see lib/conn.c): whether any is
 * left, and charging the work done since since_us to it. */
bool mqc_conn_budget_left(mqc_conn_ctx_t *ctx);
void mqc_conn_budget_spend(mqc_conn_ctx_t *ctx, int64_t since_us);
const char *mqc_conn_state_name(mqc_conn_state_t s);

/* For the TLS and AUTH steps (lib/conn_secure.c): TLS done, go on to HELLO; authenticated,
 * READY; an internal command (auth) sent as OP_MSG; what is buffered written (false: the
 * connection failed); a failure reported now. */
void mqc_conn_after_tls(mqc_conn_t *c);
void mqc_conn_established(mqc_conn_t *c);
void mqc_conn_send_internal(mqc_conn_t *c, const bson_t *cmd);
bool mqc_conn_send_buffered(mqc_conn_t *c);
void mqc_conn_fail_now(mqc_conn_t *c, const mqc_error_t *error);

#endif
