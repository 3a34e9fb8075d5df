/* sdam: the topology as the Server Discovery and Monitoring specification describes it
 * (source/server-discovery-and-monitoring/server-discovery-and-monitoring.md), as pure logic.
 *
 * No socket, no timer, no clock of its own: the client feeds in hello outcomes (from monitors)
 * and application errors (from operations), with the time they happened, and gets back what
 * changed. Each update fills an mqc_sdam_changes_t, a list of events the caller acts on once the
 * topology is consistent again: create a pool and monitor for an ADDED server, destroy them for a
 * REMOVED one (its user pointer comes back in the event), clear a pool, request an immediate
 * check, and publish mqc_topology_event_t for SERVER_CHANGED / TOPOLOGY_CHANGED / PRIMARY_CHANGED.
 *
 * Addresses are "host:port", host in lower case ("[::1]:27017" for IPv6). */
#ifndef MQC_SDAM_H
#define MQC_SDAM_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqc.h"
#include "server_desc.h"

/* The wire versions mqc speaks: MongoDB 3.6 (6) up to 8.1 (25). */
#define MQC_WIRE_VERSION_MIN 6
#define MQC_WIRE_VERSION_MAX 25
/* Wire version of MongoDB 4.2: state-change errors from older servers clear the pool. */
#define MQC_WIRE_VERSION_42 8
/* Wire version of MongoDB 6.0: electionId is compared before setVersion. */
#define MQC_WIRE_VERSION_60 17

typedef enum {
    MQC_TOPOLOGY_UNKNOWN = 0,
    MQC_TOPOLOGY_SINGLE,
    MQC_TOPOLOGY_RS_NO_PRIMARY,
    MQC_TOPOLOGY_RS_WITH_PRIMARY,
    MQC_TOPOLOGY_SHARDED,
    MQC_TOPOLOGY_LOAD_BALANCED,
} mqc_sdam_topo_type_t;

/* The spec's names ("ReplicaSetNoPrimary", ...). Static storage. */
const char *mqc_sdam_topo_type_name(mqc_sdam_topo_type_t type);
/* From the spec's names; false when name is not one. */
bool mqc_sdam_topo_type_from_name(const char *name, mqc_sdam_topo_type_t *type);

/* A server in the topology: its description and what outlives descriptions. */
typedef struct mqc_sdam_server {
    mqc_sd_t sd;
    uint32_t generation;               /* pool generation: bumped when the spec clears the pool */
    uint32_t operation_count;          /* operations in progress (server selection's) */
    void *ud;                          /* the caller's (pool, monitor); given back on removal */
} mqc_sdam_server_t;

typedef enum {
    MQC_SDAM_SERVER_ADDED = 1,     /* start monitoring address; set its ud */
    MQC_SDAM_SERVER_REMOVED,       /* stop monitoring, close its pool; ud is the server's */
    MQC_SDAM_SERVER_CHANGED,       /* description changed (per equality); types before/after */
    MQC_SDAM_TOPOLOGY_CHANGED,     /* topology type changed */
    MQC_SDAM_PRIMARY_CHANGED,      /* primary is the new one ("" for none), previous the old */
    MQC_SDAM_CLEAR_POOL,           /* generation was bumped: close the pool's connections */
    MQC_SDAM_REQUEST_CHECK,        /* ask the server's monitor for an immediate check */
    MQC_SDAM_CANCEL_CHECK,         /* abandon the monitor's check in progress */
    MQC_SDAM_POOL_READY,           /* a check succeeded on a server whose pool may be used */
} mqc_sdam_event_kind_t;

typedef struct {
    mqc_sdam_event_kind_t kind;
    char address[MQC_SDAM_ADDR_MAX];
    char previous[MQC_SDAM_ADDR_MAX];  /* PRIMARY_CHANGED: the former primary ("" for none) */
    mqc_server_type_t old_type, new_type;            /* SERVER_CHANGED */
    mqc_sdam_topo_type_t old_topology, new_topology;  /* TOPOLOGY_CHANGED */
    uint32_t generation;               /* CLEAR_POOL: the new generation */
    void *ud;                          /* REMOVED (and others): the server's user pointer */
} mqc_sdam_event_t;

/* What one update did, in order. Reset by every update; owned by the caller. */
typedef struct {
    mqc_sdam_event_t *ev;
    size_t n, cap;
} mqc_sdam_changes_t;

void mqc_sdam_changes_init(mqc_sdam_changes_t *ch);
void mqc_sdam_changes_cleanup(mqc_sdam_changes_t *ch);
/* The first event of kind for address (NULL: any address), or NULL. */
const mqc_sdam_event_t *mqc_sdam_changes_find(const mqc_sdam_changes_t *ch, mqc_sdam_event_kind_t kind,
                                              const char *address);

typedef struct mqc_sdam_desc {
    mqc_sdam_topo_type_t type;
    char *set_name;                    /* NULL until given or discovered */
    bool has_max_set_version;
    int64_t max_set_version;
    bool has_max_election_id;
    bson_oid_t max_election_id;
    mqc_sdam_server_t **servers;       /* in insertion order */
    size_t n_servers, cap_servers;
    size_t n_seeds;                    /* for updateUnknownWithStandalone */
    bool compatible;
    char compatibility_error[MQC_SDAM_ADDR_MAX + 160];
    int64_t session_timeout_minutes;   /* min over data-bearing servers; -1: null */
    int64_t heartbeat_frequency_ms;    /* for max staleness; default 10000 */
} mqc_sdam_desc_t;

/* The initial topology type from the URI's options, per the spec's table and its "allowed
 * combinations". direct_set: directConnection was given (direct: its value). Returns false
 * with error (MQC_ERROR_URI) for combinations the spec forbids. */
bool mqc_sdam_initial_type(size_t n_seeds, bool direct_set, bool direct, bool has_set_name,
                               bool load_balanced, mqc_sdam_topo_type_t *type, mqc_error_t *error);

/* Starts a topology of the given type with the seeds (addresses, normalised here) and an
 * optional set name. Each seed is reported as ADDED in ch (may be NULL). Returns false with
 * error for a seed that is not an address or type Single with several seeds. */
bool mqc_sdam_desc_init(mqc_sdam_desc_t *td, mqc_sdam_topo_type_t type, const char *set_name,
                            const char *const *seeds, size_t n_seeds, mqc_sdam_changes_t *ch,
                            mqc_error_t *error);
/* Frees everything; the servers' ud are not touched (remove them first if they own things). */
void mqc_sdam_desc_cleanup(mqc_sdam_desc_t *td);

/* Recomputes compatible, compatibility_error and session_timeout_minutes from the servers (done
 * by every update; for descriptions assembled by hand, as the selection spec runner does). */
void mqc_sdam_recompute(mqc_sdam_desc_t *td);

mqc_sdam_server_t *mqc_sdam_find(const mqc_sdam_desc_t *td, const char *address);
/* The RSPrimary, or NULL. */
mqc_sdam_server_t *mqc_sdam_primary(const mqc_sdam_desc_t *td);

/* Applies a check's outcome: sd replaces the server's description (or is ignored when the server
 * is no longer in the topology, or its topologyVersion is older than the current one), then the
 * spec's table runs. sd is copied. ch is reset and filled (may be NULL). Returns true when sd was
 * applied. A failed check is an Unknown description with its error (mqc_sd_init_unknown).
 * sd's RTT is one sample: it is averaged (mqc_rtt_update) into the server's while the server
 * stays of a known type, and dropped when it turns Unknown. */
bool mqc_sdam_apply_sd(mqc_sdam_desc_t *td, const mqc_sd_t *sd, mqc_sdam_changes_t *ch);

/* Where an application error happened (the spec's phases of a connection's life). */
typedef enum {
    MQC_SDAM_WHEN_HANDSHAKE = 1,   /* connecting or the connection's hello */
    MQC_SDAM_WHEN_AUTH,            /* authenticating a new connection */
    MQC_SDAM_WHEN_ESTABLISHED,     /* on a ready connection (after checkout) */
} mqc_sdam_when_t;

typedef enum {
    MQC_SDAM_ERR_NETWORK = 1,      /* connection reset, refused, closed, ... */
    MQC_SDAM_ERR_TIMEOUT,          /* a network timeout */
    MQC_SDAM_ERR_COMMAND,          /* the server answered: reply holds it */
} mqc_sdam_err_kind_t;

typedef struct {
    const char *address;
    mqc_sdam_when_t when;
    mqc_sdam_err_kind_t kind;
    uint32_t generation;           /* the connection's (or, before the handshake, the pool's at
                                      the start of the attempt) */
    int32_t max_wire_version;      /* of the connection; 0: take the server description's */
    const bson_t *reply;           /* COMMAND: the server's reply (ok: 0, or writeConcernError) */
    bool overloaded;               /* labelled SystemOverloadedError: never changes SDAM state */
    const char *message;           /* NETWORK/TIMEOUT: for the description's error (may be NULL) */
} mqc_sdam_app_error_t;

typedef struct {
    bool stale;                    /* ignored: old generation or topologyVersion */
    bool marked_unknown;
    bool clear_pool;               /* the generation was bumped */
    bool request_check;
    bool cancel_check;
} mqc_sdam_error_result_t;

/* The spec's handleError: decides from an operation's error whether the server becomes Unknown,
 * its pool is cleared and an immediate check requested, and does it (events in ch, as for
 * apply_sd). The result says the same. */
void mqc_sdam_handle_error(mqc_sdam_desc_t *td, const mqc_sdam_app_error_t *err,
                               mqc_sdam_error_result_t *result, mqc_sdam_changes_t *ch);

/* The reply's state-change classification (codes first; errmsg only without a code; a
 * writeConcernError is looked at like the reply; writeErrors never). */
typedef enum {
    MQC_SDAM_STATE_NONE = 0,
    MQC_SDAM_STATE_NOT_PRIMARY,
    MQC_SDAM_STATE_RECOVERING,
    MQC_SDAM_STATE_SHUTDOWN,       /* a "node is recovering" error that is a shutdown */
} mqc_sdam_state_error_t;
mqc_sdam_state_error_t mqc_sdam_classify_reply(const bson_t *reply, int32_t *code_out);

/* Removes every server (REMOVED events) and makes the topology Unknown, as a closing client
 * should. */
void mqc_sdam_close(mqc_sdam_desc_t *td, mqc_sdam_changes_t *ch);

#endif
