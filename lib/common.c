/* The small shared pieces common.h declares: errors (setting them, reading them out of server
 * replies, the specification's code classes), the library's version, monotonic time. */
#include <bson/bson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"

const char *mqc_version(void) { return MQC_VERSION; }

void mqc_error_set(mqc_error_t *error, uint32_t domain, int32_t code, const char *fmt, ...)
{
    if (!error) return;
    va_list ap;
    error->domain = domain;
    error->code = code;
    error->labels = 0;
    error->code_name[0] = 0;
    va_start(ap, fmt);
    vsnprintf(error->message, sizeof error->message, fmt, ap);
    va_end(ap);
    /* One line: callers log messages and mqload groups by them. */
    for (char *p = error->message; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

bool mqc_error_is_set(const mqc_error_t *error) { return error && error->domain != MQC_ERROR_NONE; }

const char *mqc_error_domain_name(uint32_t domain)
{
    static const char *const names[] = {
        [MQC_ERROR_NONE] = "none",           [MQC_ERROR_CLIENT] = "client",
        [MQC_ERROR_URI] = "uri",             [MQC_ERROR_RESOLVE] = "resolve",
        [MQC_ERROR_NETWORK] = "network",     [MQC_ERROR_PROTOCOL] = "protocol",
        [MQC_ERROR_TIMEOUT] = "timeout",     [MQC_ERROR_CANCELLED] = "cancelled",
        [MQC_ERROR_SHUTDOWN] = "shutdown",   [MQC_ERROR_OVERLOADED] = "overloaded",
        [MQC_ERROR_SELECTION] = "selection", [MQC_ERROR_SERVER] = "server",
        [MQC_ERROR_WRITE] = "write",         [MQC_ERROR_WRITE_CONCERN] = "write_concern",
        [MQC_ERROR_TLS] = "tls",             [MQC_ERROR_AUTH] = "auth",
    };
    if (domain < sizeof names / sizeof names[0] && names[domain]) return names[domain];
    return "unknown";
}

/* Codes from the retryable reads/writes specifications. */
bool mqc_error_code_is_retryable(int32_t code)
{
    switch (code) {
    case 6: case 7: case 89: case 91: case 134: case 189: case 262: case 9001: case 10107:
    case 11600: case 11602: case 13435: case 13436:
        return true;
    default:
        return false;
    }
}

bool mqc_error_code_is_not_primary(int32_t code)
{
    return code == 10107 || code == 13435 || code == 10058;
}

bool mqc_error_code_is_recovering(int32_t code)
{
    return code == 11600 || code == 11602 || code == 13436 || code == 189 || code == 91;
}

void mqc_error_from_reply(mqc_error_t *error, uint32_t domain, const bson_t *reply)
{
    bson_iter_t it;
    int32_t code = 0;
    const char *msg = "command failed", *name = "";
    if (!error) return;
    if (bson_iter_init_find(&it, reply, "code") && BSON_ITER_HOLDS_NUMBER(&it))
        code = (int32_t) bson_iter_as_int64(&it);
    if (bson_iter_init_find(&it, reply, "errmsg") && BSON_ITER_HOLDS_UTF8(&it))
        msg = bson_iter_utf8(&it, NULL);
    if (bson_iter_init_find(&it, reply, "codeName") && BSON_ITER_HOLDS_UTF8(&it))
        name = bson_iter_utf8(&it, NULL);
    mqc_error_set(error, domain, code, "%s", msg);
    snprintf(error->code_name, sizeof error->code_name, "%s", name);
    if (bson_iter_init_find(&it, reply, "errorLabels") && BSON_ITER_HOLDS_ARRAY(&it)) {
        bson_iter_t ch;
        if (bson_iter_recurse(&it, &ch))
            while (bson_iter_next(&ch)) {
                if (!BSON_ITER_HOLDS_UTF8(&ch)) continue;
                const char *l = bson_iter_utf8(&ch, NULL);
                if (!strcmp(l, "RetryableWriteError")) error->labels |= MQC_LABEL_RETRYABLE_WRITE;
                else if (!strcmp(l, "TransientTransactionError")) error->labels |= MQC_LABEL_TRANSIENT_TXN;
                else if (!strcmp(l, "NoWritesPerformed")) error->labels |= MQC_LABEL_NO_WRITES_PERFORMED;
            }
    }
    if (mqc_error_code_is_retryable(code)) error->labels |= MQC_LABEL_RETRYABLE_READ;
}

int64_t mqc_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t mqc_loop_us(struct ev_loop *loop)
{
    /* One cache per thread (a loop runs on one thread): the loop and iteration it was read in. */
    static _Thread_local struct ev_loop *cached_loop;
    static _Thread_local unsigned int cached_iteration;
    static _Thread_local int64_t cached_us;
    if (ev_depth(loop)) {
        unsigned int it = ev_iteration(loop);
        if (loop == cached_loop && it == cached_iteration) return cached_us;
        cached_loop = loop;
        cached_iteration = it;
    } else {
        cached_loop = NULL;
    }
    return cached_us = mqc_now_us();
}
