/* heartbeat: one server's SDAM monitor, on its own non-blocking connection (never the pool's).
 *
 *   IDLE --(timer: heartbeatFrequencyMS, or a requested check)--> CONNECTING -> TLS -> HELLO
 *   HELLO --reply--> IDLE (the connection stays open for the next check)
 *   any failure --> connection closed, Unknown reported; a server known before is retried once
 *                   at once, as the SDAM spec asks.
 *
 * The first hello on a connection is a legacy OP_QUERY isMaster (any server answers it); later
 * ones are OP_MSG hello (isMaster when the server did not say helloOk). Results go to the
 * report callback it was handed. A monitor's watchers never keep ev_run alive (ev_unref). */
#ifndef MQC_HEARTBEAT_H
#define MQC_HEARTBEAT_H

#include <ev.h>

#include "common.h"
#include "guard.h"
#include "resolve.h"
#include "sdam.h"
#include "stream.h"
#include "uri.h"
#include "wire.h"

/* minHeartbeatFrequencyMS of the SDAM spec: checks are never closer together than this. */
#define MQC_MIN_HEARTBEAT_MS 500

typedef struct mqc_heartbeat mqc_heartbeat_t;

/* What a monitor is handed at creation (copied; the pointers must outlive it). */
typedef struct mqc_heartbeat_config {
    struct ev_loop *loop;
    mqc_resolver_t *resolver;
    const mqc_uri_host_t *host;  /* the server's */
    const char *address;         /* its normalised "host:port": the key in reports */
    int64_t frequency_ms;        /* heartbeatFrequencyMS */
    int64_t connect_timeout_ms;  /* bounds each check */
    const bson_t *metadata;      /* the handshake's client document */
    mqc_tls_ctx_t *tls_ctx;      /* NULL: plain */
    int32_t *request_ids;        /* the client's request-id counter */
    mqc_guard_t *guard;          /* the client's: a destroy from inside a report waits */
    /* Each check's outcome (Unknown with its error when it failed). */
    void (*report)(void *ud, const mqc_sd_t *sd);
    /* Whether the server is known (not Unknown) now: a failure then earns an immediate retry. */
    bool (*known)(void *ud, const char *address);
    void *ud;
} mqc_heartbeat_config_t;

/* A monitor as configured; its first check starts from the loop at once. */
mqc_heartbeat_t *mqc_heartbeat_new(const mqc_heartbeat_config_t *cfg);
/* Checks again as soon as minHeartbeatFrequencyMS since the last check allows. */
void mqc_heartbeat_request_check(mqc_heartbeat_t *m);
/* Abandons a check in progress (its connection is closed); the next follows at the usual time. */
void mqc_heartbeat_cancel_check(mqc_heartbeat_t *m);
/* Stops and frees. Accepts NULL. */
void mqc_heartbeat_destroy(mqc_heartbeat_t *m);

#endif
