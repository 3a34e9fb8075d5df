/* retry: the retryable reads and writes rules (see retry.h).
 *
 * One retry, for an op marked retryable, on a network error or a retryable server error (a
 * write: the RetryableWriteError label; a pool cleared while the op waited carries both
 * labels).
 *
 * Every topology retries, a Single one without a monitor too: the retryable reads specification
 * retries on a standalone as well, and a retryable write needs lsid + txnNumber only when its
 * request may have run. A write that never (wholly) reached the server cannot have run, so it
 * is retried whatever the server: the at-most-once promise is kept trivially, and it is still
 * executed "exactly once" as the specification asks of servers without retryable writes. One
 * that was sent is retried only with txnNumber (txn_ok: a replica set primary or mongos),
 * never on a standalone, where the server could not tell a duplicate.
 *
 * The retry goes through selection again (op.c). Unmonitored, that is the same server and a
 * pool that is ready at once (it readies itself after a clear), so the retry waits for a fresh
 * connection; the broken one was closed before we get here. `used` makes it once (no
 * CSOT-style retry loop), and the op's deadline timer keeps running across it, so timeoutMS
 * bounds the total. */
#include "retry.h"

/* How many times a waiter failed by a pool clear it had no part in goes back through selection
 * without using its retry. The client-backpressure specification's default retry budget for
 * overload errors; only a server whose pool keeps being cleared reaches it. */
#define MAX_REQUEUES 5

bool mqc_retry_allowed(const mqc_retry_case_t *c, const mqc_uri_t *uri, const mqc_error_t *error, bool sent)
{
    if (c->used || c->stopped) return false;
    /* A reply that cannot be parsed (garbage, a length beyond maxMessageSizeBytes, a responseTo
     * matching nothing) leaves the connection's byte stream unusable, as a hang-up mid-reply
     * does: for the retry rules it is a network error on that connection. */
    bool net = error->domain == MQC_ERROR_NETWORK || error->domain == MQC_ERROR_PROTOCOL;
    if (c->kind == MQC_RETRY_READ) {
        if (!uri->retry_reads) return false;
        return net || (error->labels & MQC_LABEL_RETRYABLE_READ);
    }
    if (c->kind == MQC_RETRY_WRITE) {
        if (!uri->retry_writes || (sent && !c->txn_ok)) return false;
        return net || (error->labels & MQC_LABEL_RETRYABLE_WRITE);
    }
    return false;
}

/* Nothing was sent: a pool cleared under the op (CMAP's PoolClearedError: another connection
 * of this server broke, or a connection could not be made) is retryable, for writes too. A
 * clear for a reason outside this wait (another connection's error, the server marked Unknown)
 * says nothing about the op, which never reached the server: it goes back through selection
 * without using its one retry, whatever the op (a ping too), up to MAX_REQUEUES times and
 * within its deadline and serverSelectionTimeoutMS, so that a burst of clears costs a wait,
 * not the op. A clear because a connection could not be made uses the retry
 * (docs/library/reliability.md, fault containment). */
mqc_retry_step_t mqc_retry_after_checkout(const mqc_retry_case_t *c, const mqc_uri_t *uri, const mqc_error_t *error,
                                          bool cleared_elsewhere, uint8_t *requeues)
{
    if (cleared_elsewhere && *requeues < MAX_REQUEUES && !c->stopped) {
        (*requeues)++;
        return MQC_RETRY_REQUEUE;
    }
    return mqc_retry_allowed(c, uri, error, false) ? MQC_RETRY_AGAIN : MQC_RETRY_FAIL;
}

/* The error a reply means for the retry rules: ok: 0's own, or (ok: 1) its writeConcernError's
 * code with the reply's labels. Servers before 4.4 (wire version 9) label nothing: the
 * retryable writes specification has the driver add RetryableWriteError for a retryable code. */
static void reply_error(mqc_error_t *err, int32_t max_wire_version, const bson_t *reply, bool ok)
{
    bson_iter_t it;
    mqc_error_from_reply(err, ok ? MQC_ERROR_WRITE_CONCERN : MQC_ERROR_SERVER, reply);
    if (ok && bson_iter_init_find(&it, reply, "writeConcernError") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        uint32_t len;
        const uint8_t *data;
        bson_t wce;
        bson_iter_document(&it, &len, &data);
        uint32_t labels = err->labels;
        if (bson_init_static(&wce, data, len)) mqc_error_from_reply(err, MQC_ERROR_WRITE_CONCERN, &wce);
        err->labels |= labels;
    }
    if (max_wire_version < 9 && mqc_error_code_is_retryable(err->code)) err->labels |= MQC_LABEL_RETRYABLE_WRITE;
}

/* An error reply, or a write's writeConcernError (retryable writes: RetryableWriteError, or a
 * retryable code before 4.4): an ok reply is retried only for a retryable write. */
bool mqc_retry_after_reply(const mqc_retry_case_t *c, const mqc_uri_t *uri, int32_t max_wire_version,
                           const bson_t *reply, bool ok)
{
    if (ok && c->kind != MQC_RETRY_WRITE) return false;
    mqc_error_t err;
    reply_error(&err, max_wire_version, reply, ok);
    return mqc_retry_allowed(c, uri, &err, true);
}
