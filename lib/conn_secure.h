/* The TLS and AUTH steps of a connection: TLS over lib/stream.c, SCRAM-SHA-256 / SCRAM-SHA-1
 * (lib/scram.c) or MONGODB-X509. Split from conn.c so that conn.c reads as the state machine
 * and this file as the security glue; conn.c calls these steps through the table the client
 * installs in its mqc_conn_ctx_t (mqc_conn_secure_init), so the calls run one way, from here
 * down to conn.c. */
#ifndef MQC_CONN_SECURE_H
#define MQC_CONN_SECURE_H

#include "conn.h"

/* Installs the steps in ctx, with their client-wide part: connections resumed together after
 * their keys were derived wait, past the establishment budget, for the next loop iteration
 * (ctx->auth_resume); the key derivation's worker thread (ctx->kdf_worker). */
void mqc_conn_secure_init(mqc_conn_ctx_t *ctx);
void mqc_conn_secure_cleanup(mqc_conn_ctx_t *ctx);

#define MQC_AUTH_X509 "MONGODB-X509"
/* Initialises *cmd (the caller destroys it) with the MONGODB-X509 command: {authenticate: 1,
 * mechanism: "MONGODB-X509", user (when not NULL)}, plus db: "$external" for the hello's
 * speculativeAuthenticate (speculative); sent as a command, it goes to $external. */
void mqc_auth_x509_command(bson_t *cmd, const char *user, bool speculative);

#endif
