/* The client's private structures: the client and its servers. */
#ifndef MQC_CLIENT_H
#define MQC_CLIENT_H

#include <ev.h>
#include <netdb.h>

#include "common.h"
#include "mqc.h"
#include "op.h"
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

    mqc_ops_t ops;               /* the operations (lib/op.c) */
    int depth;                   /* > 0 inside a callback into the application */
    bool destroy_requested;
    bool closing;

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
#endif
