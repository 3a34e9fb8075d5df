/* fakesrv: the scripted-fault mode of the scripted server (fakesrv.h). The state below is the
 * server's (srv.h): the loop's thread reads it in fakesrv_command with the server's lock held, the
 * test's thread changes it under the same lock. */
#include "fakesrv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "srv.h"

struct fakesrv {
    srv_t *srv;
    fake_mode_t mode;
    int arg, times;
    fake_mode_t then_mode;   /* the mode once `times` ran out */
    int then_arg;
    int hello_hangups;       /* handshakes still to be answered by a hang-up */
    int commands;
    bson_t *last[2];         /* copies of the latest command: [0] other, [1] hello */
    bool accept_speculative; /* answer a MONGODB-X509 speculativeAuthenticate in the hello */
    bson_t *hello_extra;     /* fields appended to the hello reply */
    int32_t max_bson, max_batch; /* the limits the hello announces, held */
};

static void hello_reply(fakesrv_t *s, const srv_req_t *rq, bson_t *reply)
{
    bson_t *h = BCON_NEW("ismaster", BCON_BOOL(true), "isWritablePrimary", BCON_BOOL(true), "helloOk", BCON_BOOL(true),
                         "maxBsonObjectSize", BCON_INT32(SRV_MAX_BSON_SIZE), "maxMessageSizeBytes",
                         BCON_INT32(SRV_MAX_MESSAGE_SIZE), "maxWriteBatchSize", BCON_INT32(SRV_MAX_WRITE_BATCH),
                         "minWireVersion", BCON_INT32(0), "maxWireVersion", BCON_INT32(17), "connectionId",
                         BCON_INT32(rq->conn_id), "ok", BCON_DOUBLE(1));
    bson_iter_t it, probe;
    if (s->hello_extra && bson_iter_init(&it, h)) {
        /* The extra fields replace the defaults of the same name (maxWriteBatchSize: 10 makes
         * bulks split), then join the rest. */
        while (bson_iter_next(&it))
            if (!bson_iter_init_find(&probe, s->hello_extra, bson_iter_key(&it))) bson_append_iter(reply, NULL, 0, &it);
        bson_concat(reply, s->hello_extra);
    } else {
        bson_concat(reply, h);
    }
    bson_destroy(h);
    if (s->accept_speculative && bson_iter_init_find(&it, &rq->body, "speculativeAuthenticate")) {
        /* as MongoDB answers an accepted MONGODB-X509 speculation */
        bson_t sub;
        BSON_APPEND_DOCUMENT_BEGIN(reply, "speculativeAuthenticate", &sub);
        BSON_APPEND_UTF8(&sub, "dbname", "$external");
        bson_append_document_end(reply, &sub);
    }
}

static void fakesrv_command(void *ud, srv_t *srv, srv_req_t *rq, bson_t *reply)
{
    fakesrv_t *s = ud;
    bson_t **last = &s->last[rq->hello];
    if (*last) bson_destroy(*last);
    *last = bson_copy(&rq->body);
    if (rq->hello) {
        if (s->hello_hangups > 0) {
            s->hello_hangups--;
            rq->fault = SRV_F_HANGUP_BEFORE;
            return;
        }
        hello_reply(s, rq, reply);
        return;
    }
    s->commands++;
    fake_mode_t mode = s->mode;
    int arg = s->arg;
    if (s->times > 0 && --s->times == 0) {
        s->mode = s->then_mode;
        s->arg = s->then_arg;
    }
    switch (mode) {
    case FAKE_DELAY: rq->delay_ns = (uint64_t) arg * 1000000u; break;
    case FAKE_HANGUP_BEFORE: rq->fault = SRV_F_HANGUP_BEFORE; break;
    case FAKE_HANGUP_MID: rq->fault = SRV_F_HANGUP_MID; break;
    case FAKE_GARBAGE: rq->fault = SRV_F_GARBAGE; break;
    case FAKE_OVERSIZE: rq->fault = SRV_F_OVERSIZE; break;
    case FAKE_WRONG_RESPONSE_TO: rq->fault = SRV_F_WRONG_RESPONSE_TO; break;
    default: break;
    }
    if (rq->refused || !srv_check_limits(rq, reply, s->max_bson, s->max_batch)) return;
    if (mode == FAKE_ERROR) {
        srv_reply_error(reply, arg, "FakeError", "injected by fakesrv");
    } else if (mode == FAKE_WC_ERROR) {
        bson_t *r = BCON_NEW("ok", BCON_DOUBLE(1), "n", BCON_INT32(1), "writeConcernError", "{", "code", BCON_INT32(arg),
                             "codeName", BCON_UTF8("FakeWriteConcernError"), "errmsg", BCON_UTF8("injected by fakesrv"),
                             "}", "errorLabels", "[", BCON_UTF8("RetryableWriteError"), "]");
        bson_concat(reply, r);
        bson_destroy(r);
    } else {
        bson_t *r = BCON_NEW("ok", BCON_DOUBLE(1), "n", BCON_INT32(1), "cursor", "{", "id", BCON_INT64(0), "ns",
                             BCON_UTF8("db.c"), "firstBatch", "[", "{", "_id", BCON_INT32(1), "}", "]", "}");
        bson_concat(reply, r);
        bson_destroy(r);
    }
}

fakesrv_t *fakesrv_start(fake_mode_t mode, int arg)
{
    fakesrv_t *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->mode = mode;
    s->arg = arg;
    s->max_bson = SRV_MAX_BSON_SIZE;
    s->max_batch = SRV_MAX_WRITE_BATCH;
    s->srv = srv_new(NULL, fakesrv_command, s);
    if (srv_listen(s->srv, "127.0.0.1", 0) < 0) abort();
    srv_start_thread(s->srv);
    return s;
}

void fakesrv_set_mode_then(fakesrv_t *s, fake_mode_t mode, int arg, int times, fake_mode_t then_mode, int then_arg)
{
    srv_lock(s->srv);
    s->mode = mode;
    s->arg = arg;
    s->times = times;
    s->then_mode = then_mode;
    s->then_arg = then_arg;
    srv_unlock(s->srv);
}

void fakesrv_set_mode(fakesrv_t *s, fake_mode_t mode, int arg, int times)
{
    fakesrv_set_mode_then(s, mode, arg, times, FAKE_OK, 0);
}

void fakesrv_hangup_hellos(fakesrv_t *s, int times)
{
    srv_lock(s->srv);
    s->hello_hangups = times;
    srv_unlock(s->srv);
}

void fakesrv_reset_connections(fakesrv_t *s)
{
    srv_lock(s->srv);
    srv_reset_connections(s->srv);
    srv_unlock(s->srv);
    usleep(20 * 1000); /* the RSTs cross loopback at once; this is margin, not a wait for them */
}

uint16_t fakesrv_port(const fakesrv_t *s) { return srv_port(s->srv, 0); }

const char *fakesrv_uri(const fakesrv_t *s, const char *extra) { return srv_uri(fakesrv_port(s), NULL, extra); }

int fakesrv_connections(const fakesrv_t *s)
{
    srv_lock(s->srv);
    int n = (int) srv_counts(s->srv)->accepted;
    srv_unlock(s->srv);
    return n;
}

int fakesrv_commands(const fakesrv_t *s)
{
    srv_lock(s->srv);
    int n = s->commands;
    srv_unlock(s->srv);
    return n;
}

bool fakesrv_last_command(fakesrv_t *s, bool hello, bson_t *out)
{
    srv_lock(s->srv);
    bool have = s->last[hello] != NULL;
    if (have) bson_copy_to(s->last[hello], out);
    srv_unlock(s->srv);
    return have;
}

static int32_t extra_int(const bson_t *extra, const char *key, int32_t dflt)
{
    bson_iter_t it;
    return extra && bson_iter_init_find(&it, extra, key) && BSON_ITER_HOLDS_NUMBER(&it) ? (int32_t) bson_iter_as_int64(&it)
                                                                                       : dflt;
}

void fakesrv_set_hello_extra(fakesrv_t *s, const bson_t *extra)
{
    srv_lock(s->srv);
    if (s->hello_extra) bson_destroy(s->hello_extra);
    s->hello_extra = extra ? bson_copy(extra) : NULL;
    /* what the hello announces is what is held */
    s->max_bson = extra_int(extra, "maxBsonObjectSize", SRV_MAX_BSON_SIZE);
    s->max_batch = extra_int(extra, "maxWriteBatchSize", SRV_MAX_WRITE_BATCH);
    srv_config(s->srv)->max_message = extra_int(extra, "maxMessageSizeBytes", SRV_MAX_MESSAGE_SIZE);
    srv_unlock(s->srv);
}

void fakesrv_set_accept_speculative(fakesrv_t *s, bool on)
{
    srv_lock(s->srv);
    s->accept_speculative = on;
    srv_unlock(s->srv);
}

void fakesrv_sessions(fakesrv_t *s, fakesrv_sessions_t *out)
{
    srv_lock(s->srv);
    const srules_t *r = srv_sessions(s->srv);
    *out = (fakesrv_sessions_t){.distinct = r->distinct, .overlaps = r->overlaps, .too_old = r->too_old,
                                .with_lsid = r->with_lsid, .without_lsid = r->without_lsid,
                                .in_progress_max = r->busy_peak};
    srv_unlock(s->srv);
}

void fakesrv_play(fakesrv_t *s, fake_role_t role, const bson_t *more)
{
    char me[64];
    snprintf(me, sizeof me, "127.0.0.1:%u", (unsigned) fakesrv_port(s));
    bson_t *extra = NULL;
    if (role == FAKE_ROLE_MONGOS)
        extra = BCON_NEW("msg", "isdbgrid", "logicalSessionTimeoutMinutes", BCON_INT32(30));
    else if (role == FAKE_ROLE_PRIMARY)
        extra = BCON_NEW("setName", "rs0", "setVersion", BCON_INT32(1), "secondary", BCON_BOOL(false), "hosts", "[",
                         BCON_UTF8(me), "]", "primary", BCON_UTF8(me), "me", BCON_UTF8(me),
                         "logicalSessionTimeoutMinutes", BCON_INT32(30));
    if (more) {
        if (!extra) extra = bson_new();
        bson_concat(extra, more);
    }
    fakesrv_set_hello_extra(s, extra);
    if (extra) bson_destroy(extra);
}

srv_t *fakesrv_server(fakesrv_t *s) { return s->srv; }

void fakesrv_stop(fakesrv_t *s)
{
    if (!s) return;
    srv_free(s->srv);
    for (int i = 0; i < 2; i++)
        if (s->last[i]) bson_destroy(s->last[i]);
    if (s->hello_extra) bson_destroy(s->hello_extra);
    free(s);
}
