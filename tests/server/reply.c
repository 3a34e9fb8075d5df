/* reply: what the modes of the scripted server share to read commands and build replies (srv.h):
 * MongoDB's errors, codes and labels, the hello's common fields, MongoDB's limits, URIs. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "srv.h"

#define MAX_WIRE_VERSION 21

void srv_reply_error(bson_t *r, int32_t code, const char *code_name, const char *msg)
{
    bson_reinit(r);
    BSON_APPEND_DOUBLE(r, "ok", 0.0);
    BSON_APPEND_UTF8(r, "errmsg", msg);
    BSON_APPEND_INT32(r, "code", code);
    BSON_APPEND_UTF8(r, "codeName", code_name);
}

const char *srv_code_name(int32_t code)
{
    switch (code) {
    case 6: return "HostUnreachable";
    case 7: return "HostNotFound";
    case 50: return "MaxTimeMSExpired";
    case 89: return "NetworkTimeout";
    case 91: return "ShutdownInProgress";
    case 189: return "PrimarySteppedDown";
    case 262: return "ExceededTimeLimit";
    case 9001: return "SocketException";
    case 10107: return "NotWritablePrimary";
    case 11600: return "InterruptedAtShutdown";
    case 11602: return "InterruptedDueToReplStateChange";
    case 13435: return "NotPrimaryNoSecondaryOk";
    case 13436: return "NotPrimaryOrSecondary";
    default: return "InjectedFault";
    }
}

bool srv_retryable_write_code(int32_t code)
{
    static const int32_t codes[] = {6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (codes[i] == code) return true;
    return false;
}

int64_t srv_iter_int64(const bson_iter_t *it, int64_t dflt)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_BOOL: return bson_iter_as_int64(it);
    default: return dflt;
    }
}

void srv_append_hello_tail(bson_t *r, const srv_req_t *rq, int32_t max_bson, int32_t max_message, int32_t max_batch,
                           bool sessions)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, &rq->body, "helloOk")) BSON_APPEND_BOOL(r, "helloOk", true);
    BSON_APPEND_INT32(r, "maxBsonObjectSize", max_bson);
    BSON_APPEND_INT32(r, "maxMessageSizeBytes", max_message);
    BSON_APPEND_INT32(r, "maxWriteBatchSize", max_batch);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    BSON_APPEND_DATE_TIME(r, "localTime", (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    if (sessions) BSON_APPEND_INT32(r, "logicalSessionTimeoutMinutes", 30);
    BSON_APPEND_INT32(r, "connectionId", rq->conn_id);
    BSON_APPEND_INT32(r, "minWireVersion", 0);
    BSON_APPEND_INT32(r, "maxWireVersion", MAX_WIRE_VERSION);
    BSON_APPEND_BOOL(r, "readOnly", false);
    BSON_APPEND_DOUBLE(r, "ok", 1.0);
}

size_t srv_count_items(const srv_req_t *rq, const char *field)
{
    size_t n = 0;
    bson_iter_t f, arr;
    if (bson_iter_init_find(&f, &rq->body, field) && BSON_ITER_HOLDS_ARRAY(&f) && bson_iter_recurse(&f, &arr))
        while (bson_iter_next(&arr)) n++;
    for (int i = 0; i < rq->nseqs; i++) {
        if (strcmp(rq->seqs[i].id, field) != 0) continue;
        size_t off = 0;
        while (off + 4 <= rq->seqs[i].len) {
            off += srv_get_le32(rq->seqs[i].docs + off); /* validated when the message was parsed */
            n++;
        }
    }
    return n;
}

bool srv_check_limits(const srv_req_t *rq, bson_t *reply, int32_t max_bson, int32_t max_batch)
{
    char msg[160];
    if (rq->body.len > (uint32_t) max_bson + 16 * 1024) {
        srv_reply_error(reply, 10334, "BSONObjectTooLarge", "command document too large");
        return false;
    }
    const char *field = !strcmp(rq->name, "insert")   ? "documents"
                        : !strcmp(rq->name, "update") ? "updates"
                        : !strcmp(rq->name, "delete") ? "deletes"
                                                      : NULL;
    if (!field) return true;
    size_t n = srv_count_items(rq, field);
    if (n > 0 && n <= (size_t) max_batch) return true;
    snprintf(msg, sizeof msg, "Write batch sizes must be between 1 and %d. Got %zu operations.", max_batch, n);
    srv_reply_error(reply, 16, "InvalidLength", msg);
    return false;
}

const char *srv_uri(uint16_t port, const char *prefix_opts, const char *extra)
{
    static __thread char buf[8][512];
    static __thread unsigned slot;
    char *b = buf[slot++ % 8];
    snprintf(b, sizeof buf[0], "mongodb://127.0.0.1:%u/?%s%s", (unsigned) port, prefix_opts ? prefix_opts : "",
             extra ? extra : "");
    return b;
}
