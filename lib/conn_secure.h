/* The TLS and AUTH steps of a connection. Split from conn.c so that conn.c reads as the state
 * machine and this file as the security glue over lib/stream.c's TLS and lib/scram.c. */
#ifndef MQC_CONN_SECURE_H
#define MQC_CONN_SECURE_H

#include "conn.h"

/* TLS state: start the handshake after connect; step it on readiness. On success the
 * connection moves on to HELLO (mqc_conn_after_tls). */
void mqc_conn_tls_start(mqc_conn_t *c);
void mqc_conn_tls_step(mqc_conn_t *c);

/* AUTH state: SCRAM-SHA-256 / SCRAM-SHA-1 (lib/scram.c) or MONGODB-X509. */
#define MQC_AUTH_X509 "MONGODB-X509"
/* Initialises *cmd (the caller destroys it) with the MONGODB-X509 command: {authenticate: 1,
 * mechanism: "MONGODB-X509", user (when not NULL)}, plus db: "$external" for the hello's
 * speculativeAuthenticate (speculative); sent as a command, it goes to $external. */
void mqc_auth_x509_command(bson_t *cmd, const char *user, bool speculative);
bool mqc_conn_auth_needed(const mqc_conn_t *c);
void mqc_conn_auth_add_to_hello(mqc_conn_t *c, bson_t *hello);
void mqc_conn_auth_start(mqc_conn_t *c, const bson_t *hello_reply);
void mqc_conn_auth_reply(mqc_conn_t *c, const bson_t *reply);
void mqc_conn_secure_free(mqc_conn_t *c);

/* From conn.c, for the steps above. */
void mqc_conn_established(mqc_conn_t *c);
void mqc_conn_send_internal(mqc_conn_t *c, const bson_t *cmd);
bool mqc_conn_send_buffered(mqc_conn_t *c);
void mqc_conn_fail_now(mqc_conn_t *c, const mqc_error_t *error);
void mqc_conn_after_tls(mqc_conn_t *c);

#endif
