/* topology: the client's view of the deployment, wiring lib/sdam.c (descriptions) and
 * lib/select.c (selection) to real servers: the mqc_server_t registry keyed by address, a pool
 * and a monitor (lib/heartbeat.c) per server, the events of every update acted upon (servers made
 * and retired, pools cleared and made ready, checks requested) and published through
 * mqc_monitor_t.topology, and ops waiting for a server woken after each change.
 *
 * Two modes. A Single topology (directConnection=true, or one host without replicaSet) and a
 * load balancer keep the one server usable at once without a monitor, as a direct connection
 * needs nothing to discover. Every other URI (replicaSet, several hosts) is monitored: servers
 * are usable once their monitor has seen them, and operations wait for a suitable one. */
#ifndef MQC_TOPOLOGY_H
#define MQC_TOPOLOGY_H

#include <ev.h>

#include "common.h"
#include "mqc.h"
#include "sdam.h"
#include "select.h"

#include "guard.h"
#include "server.h"
#include "uri.h"

/* A subscriber to "the topology changed": told at the end of every update that changed
 * something, from inside it (so it must not call back into the topology: op.c arms a timer). */
typedef struct mqc_topology_sub {
    void (*changed)(void *ctx);
    void *ctx;
    mqc_link_t link;             /* in mqc_topology_t.subs */
} mqc_topology_sub_t;

/* What the topology needs of the client, handed in at its start (the client fills it; the
 * pointers are the client's and outlive the topology). */
typedef struct mqc_topology_env {
    const mqc_uri_t *uri;
    const mqc_server_env_t *server_env; /* for the servers it makes */
    mqc_server_t ***servers;     /* the client's server registry: the topology adds to it, */
    size_t *n_servers;           /* the client frees them */
    const mqc_monitor_t *monitor; /* the application's hooks (.topology events), and their ud */
    void *const *monitor_ud;
    mqc_guard_t *guard;          /* entered while an update is acted upon */
    uint64_t seed;               /* for the selection's random choices */
} mqc_topology_env_t;

typedef struct mqc_topology {
    mqc_topology_env_t env;
    bool monitored;
    mqc_sdam_desc_t td;
    mqc_sdam_changes_t ch;
    mqc_rand_t rng;
    size_t rr;                   /* unmonitored: round robin among equally loaded servers */
    mqc_link_t subs;             /* mqc_topology_sub_t.link */
    char primary[MQC_SDAM_ADDR_MAX];
} mqc_topology_t;

/* A topology for env->uri with its seed servers (added to the registry); starts the monitors.
 * NULL with error (MQC_ERROR_URI) for option combinations the spec forbids. */
mqc_topology_t *mqc_topology_new(const mqc_topology_env_t *env, mqc_error_t *error);
/* Stops every monitor and frees the topology; the servers stay for the client to free.
 * Accepts NULL. */
void mqc_topology_destroy(mqc_topology_t *t);
/* sub hears of every later change (the subscriber owns sub). */
void mqc_topology_subscribe(mqc_topology_t *t, mqc_topology_sub_t *sub);

/* Every function below accepts t NULL (no topology yet: a seed list still being looked up). */

/* Server selection for an operation: a write, or a read by the read preference of command
 * (its "$readPreference", else the URI's; command may be NULL), avoid (the server a retry
 * tried, or NULL) deprioritized. Returns the server, or NULL with error set (invalid request,
 * incompatible topology, no servers), or NULL with *wait set: nothing suitable now (checks
 * were requested), or no topology yet (t NULL). Unmonitored (Single, load balanced): any
 * listed server, the least loaded. */
mqc_server_t *mqc_topology_select(mqc_topology_t *t, bool write, const bson_t *command, const mqc_server_t *avoid,
                                  bool *wait, mqc_error_t *error);
/* "ReplicaSetNoPrimary: a:1 (RSSecondary), b:2 (Unknown: connection refused)" into buf. */
const char *mqc_topology_describe(const mqc_topology_t *t, char *buf, size_t size);

/* An operation's error on server s (SDAM handleError): a network error (reply NULL) or the
 * server's reply. No-op for a Single topology, where the pool is cleared as before. */
void mqc_topology_op_error(mqc_topology_t *t, mqc_server_t *s, uint32_t generation, mqc_sdam_err_kind_t kind,
                           const bson_t *reply, const char *message);

/* The topology's type and the server's, for $readPreference and retryable writes. Inline: every
 * request asks for the type. */
static inline mqc_sdam_topo_type_t mqc_topology_type(const mqc_topology_t *t) { return t ? t->td.type : MQC_TOPOLOGY_UNKNOWN; }
mqc_server_type_t mqc_topology_server_type(const mqc_topology_t *t, const mqc_server_t *s);
/* Retryable writes: s is a replica-set primary or a mongos, and the topology has sessions. */
bool mqc_topology_supports_sessions(const mqc_topology_t *t, const mqc_server_t *s);
/* logicalSessionTimeoutMinutes of the topology (monitored: the least of the data-bearing
 * servers'; otherwise s's handshake), -1 when sessions are not supported (or not known yet). */
static inline int64_t mqc_topology_session_timeout(const mqc_topology_t *t, const mqc_server_t *s)
{
    if (!t) return -1;
    if (t->monitored) return t->td.session_timeout_minutes;
    return s && s->caps_known ? s->caps.session_timeout_minutes : -1;
}
/* The server every selection returns without looking at the operation (an unmonitored
 * topology of one host), or NULL. Inline: asked after every operation that ends well. */
static inline mqc_server_t *mqc_topology_lone(const mqc_topology_t *t)
{
    return t && !t->monitored && *t->env.n_servers == 1 ? (*t->env.servers)[0] : NULL;
}

#endif
