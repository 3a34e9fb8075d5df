/* server: one server of the client: its address and the addresses it resolves to (cached, so
 * that a pool does not resolve per connection), its capabilities from the latest handshake, its
 * pool, and its monitor. server.c ties the pool (lib/pool.c) to connections (lib/conn.c): it is
 * the pool's connector, and the connections' owner. */
#ifndef MQC_SERVER_H
#define MQC_SERVER_H

#include <ev.h>
#include <netdb.h>

#include "common.h"
#include "conn.h"
#include "heartbeat.h"
#include "pool.h"
#include "resolve.h"
#include "uri.h"

typedef struct mqc_server mqc_server_t;

/* What every server of a client shares; the client fills and owns it. */
typedef struct mqc_server_env {
    mqc_conn_ctx_t *conns;       /* for the connections of the pools */
    mqc_resolver_t *resolver;
    const mqc_monitor_t *pool_monitor; /* the application's hooks (its .pool hook gets the */
    void *const *pool_monitor_ud;      /* pools' events), as the client keeps them */
} mqc_server_env_t;

struct mqc_server {
    const mqc_server_env_t *env;
    mqc_uri_host_t host;
    mqc_pool_t *pool;
    mqc_server_caps_t caps;      /* from the latest handshake */
    bool caps_known;
    /* resolution: addresses cached for a while so that a pool does not resolve per connection */
    struct addrinfo *addrs;
    int64_t addrs_expire_us;
    bool resolving;
    mqc_link_t resolve_waiters;  /* conns waiting for addrs, or for the budget (mqc_conn_t.rlink) */
    ev_timer connect_later;      /* starts resolve_waiters left over by the budget */
    struct mqc_heartbeat *heartbeat; /* SDAM server monitor (lib/heartbeat.c), NULL for a Single topology */
    char address[272];           /* normalised "host:port": the key in the topology */
    bool retired;                /* removed from the topology: kept until destroy for live ops */
};

/* A connection of a server's pool: the pool's part and the connection. */
typedef struct mqc_server_conn {
    mqc_pconn_t pc;              /* first, so the pool's pointer is ours */
    mqc_server_t *server;
    mqc_conn_t *conn;
} mqc_server_conn_t;

/* A server and its pool (monitored: the pool waits for the monitor's first success). */
mqc_server_t *mqc_server_new(const mqc_server_env_t *env, const mqc_uri_host_t *host, bool monitored);
void mqc_server_destroy(mqc_server_t *s);
/* Starts the server's SDAM monitor (s->heartbeat, lib/heartbeat.c), which reports each check
 * to report and asks known whether the server is known, both with ud. */
void mqc_server_monitor(mqc_server_t *s, void (*report)(void *ud, const mqc_sd_t *sd),
                        bool (*known)(void *ud, const char *address), void *ud);

/* The connection of a pool's connection (from a checkout), and the reverse. */
static inline mqc_conn_t *mqc_server_conn(mqc_pconn_t *pc) { return ((mqc_server_conn_t *) pc)->conn; }
static inline mqc_pconn_t *mqc_server_pconn(const mqc_conn_t *c) { return &((mqc_server_conn_t *) c->up)->pc; }
/* Gives a checked-out connection back to its pool, reusable when healthy and READY. */
void mqc_server_release(mqc_conn_t *c, bool healthy);
/* The same for a healthy connection, unless its pool would hand it straight back to the next
 * checkout (mqc_pool_can_pass): then it stays checked out, READY, and is returned for that
 * checkout. NULL: released. */
mqc_pconn_t *mqc_server_pass(mqc_conn_t *c);

#endif
