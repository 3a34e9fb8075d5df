/* The client: the handle of the public API, embedding each floor's per-client state. */
#ifndef MQC_CLIENT_H
#define MQC_CLIENT_H

#include <ev.h>
#include <netdb.h>

#include "common.h"
#include "conn.h"
#include "guard.h"
#include "mqc.h"
#include "op.h"
#include "pool.h"
#include "resolve.h"
#include "server.h"
#include "session.h"
#include "uri.h"
#include "wire.h"

struct mqc_client {
    mqc_ops_t ops;               /* the operations (lib/op.c); first: mqc_ops_of */
    struct ev_loop *loop;
    bool own_loop;
    mqc_uri_t uri;
    mqc_server_t **servers;
    size_t n_servers;
    mqc_resolver_t *resolver;

    mqc_monitor_t monitor;
    void *monitor_ud;

    mqc_guard_t guard;           /* entered inside a callback into the application: destroy waits */

    int32_t next_request_id;
    uint32_t next_conn_serial;
    uint64_t stats[MQC_STAT__COUNT];

    bson_t metadata;             /* client metadata for the handshake */
    struct mqc_scram_cache *scram_cache; /* salted passwords, per credential */
    struct mqc_tls_ctx *tls_ctx;         /* when the URI asks for TLS */
    mqc_conn_ctx_t conns;        /* what every connection shares (lib/conn.h), filled here */
    mqc_server_env_t server_env; /* what every server shares (lib/server.h), filled here */
    struct mqc_topology *topo;   /* discovery, monitoring, selection (lib/topology.c) */
    struct mqc_seedlist_state *seedlist;   /* mongodb+srv: the seed list lookup (lib/seedlist.c), else NULL */
    mqc_session_pool_t sessions; /* implicit server sessions (lib/session.c) */
};

/* ---- client internals (client.c) ------------------------------------------------------- */
/* Entering and leaving application code: a destroy requested inside is done on the way out. */
void mqc_client_enter(mqc_client_t *client);
void mqc_client_leave(mqc_client_t *client);
/* Sends endSessions for the pooled sessions (client destroy): best effort, bounded in time. */
void mqc_client_end_sessions(mqc_client_t *client);
#endif
