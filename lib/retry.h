/* retry: the retryable reads and writes rules of an operation, as decisions on plain values
 * (op.c applies them): whether a failed attempt is retried, goes back through selection
 * without using its retry, or ends the op; and which error a reply means for these rules. */
#ifndef MQC_RETRY_H
#define MQC_RETRY_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common.h"
#include "uri.h"

/* What an operation is, for the retry rules (set by the builders in find.c / write.c / cmd.c). */
enum { MQC_RETRY_NONE = 0, MQC_RETRY_READ, MQC_RETRY_WRITE };

/* What the rules look at of one op's failed attempt. */
typedef struct {
    uint8_t kind;                /* MQC_RETRY_* */
    bool used;                   /* the one retry was used */
    bool txn_ok;                 /* the request carried lsid + txnNumber (retryable write) */
    bool stopped;                /* cancelled, the client closing, or no topology: never again */
} mqc_retry_case_t;

/* Whether the attempt is retried (once) after error. sent: the request may have reached the
 * server. uri: retryReads / retryWrites. */
bool mqc_retry_allowed(const mqc_retry_case_t *c, const mqc_uri_t *uri, const mqc_error_t *error, bool sent);

typedef enum {
    MQC_RETRY_FAIL = 0,          /* the op ends with the error */
    MQC_RETRY_AGAIN,             /* retried: uses the one retry */
    MQC_RETRY_REQUEUE,           /* back through selection, the retry kept; *requeues counted */
} mqc_retry_step_t;

/* A checkout that failed (the request was never sent). cleared_elsewhere: the pool was cleared
 * for a reason outside this wait (the waiter's flag); *requeues: the waiter's count so far. */
mqc_retry_step_t mqc_retry_after_checkout(const mqc_retry_case_t *c, const mqc_uri_t *uri, const mqc_error_t *error,
                                          bool cleared_elsewhere, uint8_t *requeues);

/* A reply that is an error (ok false) or a write's writeConcernError (ok true): whether the op
 * retries instead of seeing it. The retried reply is not seen by the op, so nothing is counted
 * twice; the retry keeps its txnNumber, so the server does not apply the write again.
 * max_wire_version: the server's (before 4.4 it labels nothing). */
bool mqc_retry_after_reply(const mqc_retry_case_t *c, const mqc_uri_t *uri, int32_t max_wire_version,
                           const bson_t *reply, bool ok);

#endif
