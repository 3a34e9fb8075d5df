/* conn: one non-blocking connection to a server, as an explicit state machine.
 *
 *   RESOLVING -> CONNECTING -> TLS -> HELLO -> AUTH -> READY <-> BUSY -> CLOSED
 *
 * The pool decides when connections open and close (lib/pool.c calls the connector below). A
 * request carries its sink down: what to send (encode) and where its outcome goes (on_reply,
 * on_sent, on_error), so that the connection never calls the layer above it. One request is in
 * flight per connection: concurrency comes from many connections. */
#ifndef MQC_CONN_H
#define MQC_CONN_H

#include "client.h"

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
struct mqc_tls;

/* Where a request comes from and where its outcome goes; owner is handed back in every call.
 * encode writes the request (a whole message) into buf; false (error set) leaves the connection
 * untouched. After a successful encode exactly one of the others follows, from the loop or
 * within mqc_conn_start_request: on_reply with the connection READY again (the owner gives it
 * back), on_sent for a request with moreToCome once it is written (READY too), or on_error with
 * the connection closed (the owner checks it in as broken). */
typedef struct mqc_conn_sink {
    bool (*encode)(void *owner, mqc_conn_t *conn, mqc_buf_t *buf, int32_t request_id, bool *more_to_come,
                   mqc_error_t *error);
    void (*on_reply)(void *owner, mqc_conn_t *conn, const bson_t *reply);
    void (*on_sent)(void *owner, mqc_conn_t *conn);
    void (*on_error)(void *owner, mqc_conn_t *conn, const mqc_error_t *error);
} mqc_conn_sink_t;

struct mqc_conn {
    mqc_pconn_t pc;              /* the pool's part; first, so the pool's pointer is ours */
    mqc_client_t *client;
    mqc_server_t *server;
    mqc_conn_state_t state;
    int fd;
    ev_io rio, wio;
    ev_timer timer;              /* establishment deadline, reply deadline, deferred failure */
    mqc_wire_reader_t *reader;
    mqc_buf_t out;
    size_t out_off;
    int32_t request_id;          /* the request in flight (HELLO, AUTH, BUSY) */
    bool request_unacked;        /* it carries moreToCome: no reply expected */
    const mqc_conn_sink_t *sink; /* BUSY: where the request's outcome goes */
    void *owner;                 /* BUSY: the sink's owner; NULL once told */
    int32_t unacked_lo, unacked_hi; /* moreToCome ids sent here: stray replies to them are dropped */
    struct addrinfo *addrs;      /* owned copy of the server's addresses for this attempt */
    struct addrinfo *ai;         /* the address being tried */
    mqc_error_t fail;            /* a failure to report from the loop */
    bool fail_pending;
    int handling;                /* > 0 while a handler of ours is on the stack */
    bool weak;                   /* idle: its watcher does not keep ev_run alive (ev_unref) */
    bool free_pending;           /* closed while handling: free on the way out */
    uint32_t server_connection_id;
    mqc_link_t rlink;            /* in server->resolve_waiters while RESOLVING */
    int64_t state_since_us;
    struct mqc_tls *tls;
    bool tls_read_wants_write;   /* a TLS read needs the socket writable (key update) */
    struct mqc_auth *auth;
};

/* The connector the client gives each server's pool. ctx is the mqc_server_t. */
extern const mqc_pool_connector_t mqc_conn_connector;

/* Sends the owner's next request (sink->encode) on a READY connection checked out for it; the
 * outcome comes back through the sink. false (error set): encode failed, nothing was sent and
 * the connection is still READY. */
bool mqc_conn_start_request(mqc_conn_t *conn, const mqc_conn_sink_t *sink, void *owner, mqc_error_t *error);
/* The op no longer wants the reply of its request (timeout, cancel): the connection is closed
 * (never reused) and returned to the pool as broken. */
void mqc_conn_abandon(mqc_conn_t *conn);
/* True when the request in flight was not completely written to the socket (or TLS): the server
 * cannot have received it whole, so it cannot have run it. A failed write that never reached the
 * server may then be retried like one that was never sent. */
bool mqc_conn_request_unsent(const mqc_conn_t *conn);
/* A server's part of connection opening (its connect_later timer), from mqc_server_new and
 * mqc_server_destroy. */
void mqc_conn_server_init(mqc_server_t *s);
void mqc_conn_server_cleanup(mqc_server_t *s);
/* Returns a connection whose request is done to its pool. */
void mqc_conn_release(mqc_conn_t *conn, bool healthy);
const char *mqc_conn_state_name(mqc_conn_state_t s);

#endif
