/* pool: the connections of one server, after the CMAP specification
 * (source/connection-monitoring-and-pooling/connection-monitoring-and-pooling.md).
 *
 * The pool never touches a socket. It decides when connections are opened, handed out, taken
 * back and closed, through a connector (lib/conn.c in the client; a scripted one in the CMAP spec
 * runner). States: PAUSED (new pools, and after a clear) -> READY -> CLOSED. A generation number
 * is bumped by clear; connections of an older generation are closed on check-in ("stale").
 *
 * Everything runs on the loop thread. A checkout either returns a connection at once or queues
 * the waiter (FIFO) and calls it back later from the loop, exactly once: with a connection, or
 * an error (timeout, pool cleared, pool closed, connection error). */
#ifndef MQC_POOL_H
#define MQC_POOL_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "common.h"
#include "mqc.h"

typedef struct mqc_pool mqc_pool_t;

typedef enum {
    MQC_PCONN_PENDING = 1, /* being established (connect, handshake, auth) */
    MQC_PCONN_AVAILABLE,   /* idle in the pool */
    MQC_PCONN_IN_USE,      /* checked out */
} mqc_pconn_state_t;

/* The pool's part of a connection, embedded in the connector's connection object. */
typedef struct mqc_pconn {
    mqc_link_t link;            /* in the pool's available stack or pending/in-use lists */
    mqc_pool_t *pool;
    uint32_t id;                /* 1, 2, ... per pool, in creation order */
    uint32_t generation;
    mqc_pconn_state_t state;
    int64_t created_us;         /* on the pool's clock, the loop's (mqc_loop_us) */
    int64_t last_used_us;       /* when checked in (for maxIdleTimeMS; kept only with one) */
} mqc_pconn_t;

typedef struct {
    /* Creates a connection and starts establishing it; returns its mqc_pconn_t (the pool fills
     * the fields). Later, from the loop and never inside open(), the connector calls
     * mqc_pool_conn_established() once with the outcome. */
    mqc_pconn_t *(*open)(mqc_pool_t *pool, void *ctx);
    /* Closes and frees the connection now (any state). Must not call back into the pool. */
    void (*close)(mqc_pconn_t *conn, const char *reason, void *ctx);
} mqc_pool_connector_t;

typedef struct {
    int32_t max_pool_size;      /* 0: no limit; default 100 */
    int32_t min_pool_size;      /* default 0 */
    int32_t max_connecting;     /* default 2 */
    int64_t max_idle_time_ms;   /* 0: never idle out */
    int64_t wait_queue_timeout_ms; /* 0: waiters rely on their own deadline */
    size_t max_waiters;         /* 0: no limit; beyond it checkouts fail with OVERLOADED */
    int64_t maintenance_interval_ms; /* minPoolSize/idle upkeep period; default 1000; -1 off */
} mqc_pool_options_t;

void mqc_pool_options_default(mqc_pool_options_t *opts);

/* A checkout request. Embedded in the operation; the pool links it into its wait queue. */
typedef struct mqc_pool_waiter {
    mqc_link_t link;
    int64_t started_us;         /* 0: the pool notes it when it needs it */
    int64_t deadline_us;        /* absolute, on the loop's clock (mqc_loop_us), or 0 for none; the
                                   pool fails the waiter with MQC_ERROR_TIMEOUT/MQC_TIMEOUT_WAIT_QUEUE
                                   when it passes */
    ev_timer timer;             /* pool-internal */
    uint8_t where;              /* pool-internal: which pool list holds it (0: none) */
    uint8_t fail_kind;          /* pool-internal: why a deferred failure fails */
    /* Set by the pool with a failure: the waiter failed because the pool was cleared for a
     * reason other than a connection this pool was establishing (another connection's error,
     * SDAM marking the server Unknown): a PoolClearedError that says nothing about this
     * waiter's chances. Cleared again at each checkout. */
    bool cleared_elsewhere;
    uint8_t requeues;           /* the caller's: never touched by the pool */
    /* Called once, from the loop, when the waiter was queued: conn on success, else error. */
    void (*cb)(struct mqc_pool_waiter *w, mqc_pconn_t *conn, const mqc_error_t *error);
} mqc_pool_waiter_t;

/* server: "host:port" (copied), used in events. monitor/monitor_ud: hooks for pool events
 * (may be NULL). The pool starts PAUSED (CMAP); call mqc_pool_ready. Owned by the caller.
 * POOL_CREATED goes to the first monitor installed with mqc_pool_set_monitor, when it is
 * installed before any other pool event. */
mqc_pool_t *mqc_pool_new(struct ev_loop *loop, const char *server, const mqc_pool_options_t *opts,
                         const mqc_pool_connector_t *connector, void *connector_ctx);
/* Closes every connection (checked-out ones are closed on check-in or when the pool is freed),
 * fails every waiter with MQC_ERROR_SHUTDOWN (from the loop... here synchronously, since the
 * pool is going away), emits POOL_CLOSED, frees. Accepts NULL. */
void mqc_pool_destroy(mqc_pool_t *pool);
void mqc_pool_set_monitor(mqc_pool_t *pool, const mqc_monitor_t *monitor, void *ud);
/* The same, with hooks the caller keeps and may change (the application's, as its client holds
 * them): read at each event, so a pool's events go straight to the application's hook, and
 * nowhere when it has none. Both must outlive the pool (or its destroy). */
void mqc_pool_share_monitor(mqc_pool_t *pool, const mqc_monitor_t *monitor, void *const *ud);
/* The options the pool runs with (defaults filled in). */
const mqc_pool_options_t *mqc_pool_get_options(const mqc_pool_t *pool);

/* Returns an available (or just-established) connection at once when there is one (and no
 * older waiter). Otherwise queues w and returns NULL: w->cb follows (if the pool is paused or
 * closed, or max_waiters is reached, w->cb follows with that error, still from the loop). */
mqc_pconn_t *mqc_pool_checkout(mqc_pool_t *pool, mqc_pool_waiter_t *w);
/* Withdraws a queued waiter (its own deadline or cancellation): its cb is not called. Emits
 * CHECKOUT_FAILED with reason "timeout" when timed_out, else nothing. No-op if not queued. */
void mqc_pool_cancel_waiter(mqc_pool_t *pool, mqc_pool_waiter_t *w, bool timed_out);
/* Returns a checked-out connection. healthy=false (it broke, or its reply never came) closes it
 * with reason "error". Stale ones (older generation) are closed; else it becomes available, or
 * goes straight to the oldest waiter. */
void mqc_pool_checkin(mqc_pool_t *pool, mqc_pconn_t *conn, bool healthy);
/* Whether a healthy conn, checked in now and the pool checked out again at once, would come back
 * out itself with nothing else done: the pool ready and without a monitor (no events to tell),
 * conn of its generation, nobody waiting, minPoolSize met. The caller then keeps conn for its
 * next checkout instead (lib/op.c, an op submitted from the callback of the op that had conn);
 * the pool is not touched. */
bool mqc_pool_can_pass(const mqc_pool_t *pool, const mqc_pconn_t *conn);

/* From the connector: the establishment of conn finished. error NULL: ready (CONN_READY); it goes
 * to the oldest waiter or the available stack. Else the connection is closed (reason "error") and
 * the pool is cleared with that error (waiters fail with it; see mqc_pool_clear), as SDAM
 * requires for a network error during a handshake. An MQC_ERROR_AUTH or MQC_ERROR_TLS error also
 * starts a back-off (100 ms, doubling per consecutive failure up to 10 s, forgotten on the first
 * success): no connection is opened meanwhile and checkouts that find no idle connection fail at
 * once with that error, so that a wrong password does not become a storm of handshakes. */
void mqc_pool_conn_established(mqc_pool_t *pool, mqc_pconn_t *conn, const mqc_error_t *error);
/* From the connector: an available (idle) connection was found dead (peer hung up). The pool
 * closes it (reason "error"). */
void mqc_pool_conn_lost(mqc_pool_t *pool, mqc_pconn_t *conn);

/* CMAP clear: generation++, PAUSED, every waiter fails with error (or a "pool cleared"
 * MQC_ERROR_NETWORK when NULL) plus MQC_LABEL_RETRYABLE_READ | MQC_LABEL_RETRYABLE_WRITE (a
 * PoolClearedError is retryable), idle connections closed ("stale"), POOL_CLEARED emitted. With
 * auto_ready set (mqc_pool_set_auto_ready), the pool becomes READY again at once, as a client
 * without a monitor must. */
void mqc_pool_clear(mqc_pool_t *pool, const mqc_error_t *error);
/* Closes the idle connections (reason "stale", CONN_CLOSED each) and nothing else: no new
 * generation, no pause, in-use connections and waiters untouched. What SDAM's "close all idle
 * sockets: if one socket is bad, it is likely that all are" comes to for a server that has no
 * description to mark Unknown (docs/library/reliability.md, fault containment). */
void mqc_pool_close_idle(mqc_pool_t *pool);
void mqc_pool_ready(mqc_pool_t *pool);
void mqc_pool_set_auto_ready(mqc_pool_t *pool, bool on);
/* Closes the pool (CLOSED): waiters fail with MQC_ERROR_SHUTDOWN, idle connections close. */
void mqc_pool_close(mqc_pool_t *pool);

bool mqc_pool_is_ready(const mqc_pool_t *pool);
uint32_t mqc_pool_generation(const mqc_pool_t *pool);
const char *mqc_pool_server(const mqc_pool_t *pool);
size_t mqc_pool_total(const mqc_pool_t *pool);      /* pending + available + in use */
size_t mqc_pool_available(const mqc_pool_t *pool);
size_t mqc_pool_pending(const mqc_pool_t *pool);
size_t mqc_pool_waiters(const mqc_pool_t *pool);

#endif
