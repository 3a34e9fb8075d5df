/* heartbeat: one server's SDAM monitor, on its own non-blocking connection (never the pool's).
 *
 *   IDLE --(timer: heartbeatFrequencyMS, or a requested check)--> CONNECTING -> TLS -> HELLO
 *   HELLO --reply--> IDLE (the connection stays open for the next check)
 *   any failure --> connection closed, Unknown reported; a server known before is retried once
 *                   at once, as the SDAM spec asks.
 *
 * The first hello on a connection is a legacy OP_QUERY isMaster (any server answers it); later
 * ones are OP_MSG hello (isMaster when the server did not say helloOk). Results go to
 * mqc_topology_on_check. A monitor's watchers never keep ev_run alive (ev_unref). */
#ifndef MQC_HEARTBEAT_H
#define MQC_HEARTBEAT_H

#include "client.h"

typedef struct mqc_heartbeat mqc_heartbeat_t;

/* A monitor for server s (whose address is s->address); its first check starts at once. */
mqc_heartbeat_t *mqc_heartbeat_new(mqc_client_t *client, mqc_server_t *s);
/* Checks again as soon as minHeartbeatFrequencyMS since the last check allows. */
void mqc_heartbeat_request_check(mqc_heartbeat_t *m);
/* Abandons a check in progress (its connection is closed); the next follows at the usual time. */
void mqc_heartbeat_cancel_check(mqc_heartbeat_t *m);
/* Stops and frees. Accepts NULL. */
void mqc_heartbeat_destroy(mqc_heartbeat_t *m);

#endif
