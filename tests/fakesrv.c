/* fakesrv: see fakesrv.h. Uses libbson only, not mqc's codec, so that it checks mqc. */
#include "fakesrv.h"

#include <arpa/inet.h>
#include <bson/bson.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../bench/session_rules.h"

#define MAX_CONNS 256

struct fakesrv {
    int lfd;
    uint16_t port;
    pthread_t acceptor;
    pthread_mutex_t mu;
    fake_mode_t mode;
    int arg, times;
    fake_mode_t then_mode;    /* the mode once `times` ran out */
    int then_arg;
    int hello_hangups;        /* handshakes still to be answered by a hang-up */
    bool resetting;           /* fakesrv_reset_connections: close with RST on the way out */
    int conns[MAX_CONNS];
    pthread_t threads[MAX_CONNS];
    int nconns;
    int commands;
    bool stopping;
    bson_t *last[2];          /* copies of the latest command: [0] other, [1] hello */
    bool accept_speculative;  /* answer a MONGODB-X509 speculativeAuthenticate in the hello */
    bson_t *hello_extra;      /* fields appended to the hello reply */
    srules_t sessions;        /* MongoDB's session rules (bench/session_rules.h), under mu */
};

typedef struct {
    fakesrv_t *s;
    int fd;
} conn_arg_t;

bool fake_read_full(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t r = recv(fd, p, n, 0);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) continue;
            return false;
        }
        p += r;
        n -= (size_t) r;
    }
    return true;
}

bool fake_write_full(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) continue;
            return false;
        }
        p += w;
        n -= (size_t) w;
    }
    return true;
}

void fake_put32(uint8_t *p, int32_t v)
{
    uint32_t u = BSON_UINT32_TO_LE((uint32_t) v);
    memcpy(p, &u, 4);
}

int32_t fake_get32(const uint8_t *p)
{
    uint32_t u;
    memcpy(&u, p, 4);
    return (int32_t) BSON_UINT32_FROM_LE(u);
}

static bson_t *hello_doc(fakesrv_t *s)
{
    bson_t *h = BCON_NEW("ismaster", BCON_BOOL(true), "isWritablePrimary", BCON_BOOL(true), "helloOk", BCON_BOOL(true),
                    "maxBsonObjectSize", BCON_INT32(16777216), "maxMessageSizeBytes", BCON_INT32(48000000),
                    "maxWriteBatchSize", BCON_INT32(100000), "minWireVersion", BCON_INT32(0), "maxWireVersion",
                    BCON_INT32(17), "connectionId", BCON_INT32(1), "ok", BCON_DOUBLE(1));
    pthread_mutex_lock(&s->mu);
    if (s->hello_extra) {
        /* The extra fields replace the defaults of the same name (maxWriteBatchSize: 10 makes
         * bulks split), then join the rest. */
        bson_t *merged = bson_new();
        bson_iter_t it, probe;
        if (bson_iter_init(&it, h))
            while (bson_iter_next(&it))
                if (!bson_iter_init_find(&probe, s->hello_extra, bson_iter_key(&it)))
                    bson_append_iter(merged, NULL, 0, &it);
        bson_concat(merged, s->hello_extra);
        bson_destroy(h);
        h = merged;
    }
    pthread_mutex_unlock(&s->mu);
    return h;
}

/* A whole OP_MSG (or OP_REPLY when legacy) carrying doc, into a malloc'd buffer. */
static uint8_t *encode(const bson_t *doc, int32_t response_to, bool legacy, size_t *len)
{
    size_t n = legacy ? 16 + 20 + doc->len : 16 + 4 + 1 + doc->len;
    uint8_t *b = calloc(1, n);
    fake_put32(b, (int32_t) n);
    fake_put32(b + 4, 7777);
    fake_put32(b + 8, response_to);
    fake_put32(b + 12, legacy ? 1 : 2013);
    if (legacy) {
        fake_put32(b + 16 + 16, 1); /* numberReturned; flags, cursorId, startingFrom are 0 */
        memcpy(b + 36, bson_get_data(doc), doc->len);
    } else {
        memcpy(b + 21, bson_get_data(doc), doc->len);
    }
    *len = n;
    return b;
}

static void session_end(fakesrv_t *s, const uint8_t *lsid)
{
    pthread_mutex_lock(&s->mu);
    srules_end(&s->sessions, lsid);
    pthread_mutex_unlock(&s->mu);
}

static void *conn_main(void *argp)
{
    conn_arg_t *a = argp;
    fakesrv_t *s = a->s;
    int fd = a->fd;
    free(a);
    for (;;) {
        uint8_t hdr[16];
        if (!fake_read_full(fd, hdr, 16)) break;
        int32_t len = fake_get32(hdr), rid = fake_get32(hdr + 4), opcode = fake_get32(hdr + 12);
        if (len < 16 || len > 64 * 1024 * 1024) break;
        uint8_t *body = malloc((size_t) len - 16);
        if (!fake_read_full(fd, body, (size_t) len - 16)) {
            free(body);
            break;
        }
        bool legacy = opcode == 2004;
        bool more_to_come = !legacy && (fake_get32(body) & 2);
        const uint8_t *docp = NULL;
        if (legacy) {
            const uint8_t *p = body + 4;
            p += strlen((const char *) p) + 1 + 8;
            docp = p;
        } else {
            docp = body + 5;
        }
        bson_t cmd;
        const char *name = "";
        bson_iter_t it;
        if (bson_init_static(&cmd, docp, (size_t) fake_get32(docp)) && bson_iter_init(&it, &cmd) && bson_iter_next(&it))
            name = bson_iter_key(&it);
        bool is_hello = !strcasecmp(name, "hello") || !strcasecmp(name, "ismaster");
        bool speculative_ok = false;
        bool hello_hangup = false;
        pthread_mutex_lock(&s->mu);
        if (s->last[is_hello]) bson_destroy(s->last[is_hello]);
        s->last[is_hello] = bson_copy(&cmd);
        if (is_hello && s->accept_speculative && bson_iter_init_find(&it, &cmd, "speculativeAuthenticate"))
            speculative_ok = true;
        if (is_hello && s->hello_hangups > 0) {
            s->hello_hangups--;
            hello_hangup = true;
        }
        pthread_mutex_unlock(&s->mu);
        if (hello_hangup) {
            free(body);
            break;
        }
        /* Session rules: the lsid is busy from here until the reply is written (or dropped). A
         * copy, since body is freed before the reply goes out. */
        uint8_t lsid_copy[16];
        const uint8_t *lsid = is_hello ? NULL : srules_lsid(&cmd);
        if (lsid) lsid = memcpy(lsid_copy, lsid, 16);
        bool too_old = false;
        if (!is_hello) {
            pthread_mutex_lock(&s->mu);
            too_old = !srules_begin(&s->sessions, &cmd, lsid);
            pthread_mutex_unlock(&s->mu);
        }
        fake_mode_t mode = FAKE_OK;
        int arg = 0;
        if (!is_hello) {
            pthread_mutex_lock(&s->mu);
            s->commands++;
            mode = s->mode;
            arg = s->arg;
            if (s->times > 0 && --s->times == 0) {
                s->mode = s->then_mode;
                s->arg = s->then_arg;
            }
            pthread_mutex_unlock(&s->mu);
        }
        bson_t *reply;
        if (too_old) {
            reply = bson_new();
            srules_too_old(reply, &cmd);
        } else if (is_hello) {
            reply = hello_doc(s);
            if (speculative_ok) { /* as MongoDB answers an accepted MONGODB-X509 speculation */
                bson_t sub;
                BSON_APPEND_DOCUMENT_BEGIN(reply, "speculativeAuthenticate", &sub);
                BSON_APPEND_UTF8(&sub, "dbname", "$external");
                bson_append_document_end(reply, &sub);
            }
        }
        else if (mode == FAKE_ERROR)
            reply = BCON_NEW("ok", BCON_DOUBLE(0), "code", BCON_INT32(arg), "codeName", BCON_UTF8("FakeError"), "errmsg",
                             BCON_UTF8("injected by fakesrv"));
        else if (mode == FAKE_WC_ERROR)
            reply = BCON_NEW("ok", BCON_DOUBLE(1), "n", BCON_INT32(1), "writeConcernError", "{", "code", BCON_INT32(arg),
                             "codeName", BCON_UTF8("FakeWriteConcernError"), "errmsg", BCON_UTF8("injected by fakesrv"),
                             "}", "errorLabels", "[", BCON_UTF8("RetryableWriteError"), "]");
        else
            reply = BCON_NEW("ok", BCON_DOUBLE(1), "n", BCON_INT32(1), "cursor", "{", "id", BCON_INT64(0), "ns",
                             BCON_UTF8("db.c"), "firstBatch", "[", "{", "_id", BCON_INT32(1), "}", "]", "}");
        free(body);
        if (more_to_come) {
            bson_destroy(reply);
            if (!is_hello) session_end(s, lsid);
            continue;
        }
        size_t n;
        uint8_t *out = encode(reply, mode == FAKE_WRONG_RESPONSE_TO ? rid + 1000 : rid, legacy, &n);
        bson_destroy(reply);
        bool ok = true;
        if (mode == FAKE_DELAY) usleep((useconds_t) arg * 1000);
        /* As MongoDB: the session is free once the command is done, before its reply is sent
         * (else a client that reuses it at once would be counted as overlapping). */
        if (!is_hello) session_end(s, lsid);
        switch (mode) {
        case FAKE_DELAY: ok = fake_write_full(fd, out, n); break;
        case FAKE_HANGUP_BEFORE: ok = false; break;
        case FAKE_HANGUP_MID: fake_write_full(fd, out, n / 2); ok = false; break;
        case FAKE_GARBAGE: memset(out + 4, 0xAB, n - 4); fake_put32(out, (int32_t) n); ok = fake_write_full(fd, out, n); break;
        case FAKE_OVERSIZE: fake_put32(out, 100 * 1024 * 1024); ok = fake_write_full(fd, out, n); break;
        default: ok = fake_write_full(fd, out, n); break;
        }
        free(out);
        if (!ok) break;
    }
    pthread_mutex_lock(&s->mu);
    bool reset = s->resetting;
    if (reset)
        for (int i = 0; i < s->nconns; i++)
            if (s->conns[i] == fd) s->conns[i] = -1; /* closed here: fakesrv_stop must not close it again */
    pthread_mutex_unlock(&s->mu);
    if (reset) {
        /* linger 0: close() aborts the connection with RST */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fd);
    } else {
        shutdown(fd, SHUT_RDWR);
    }
    return NULL;
}

static void *accept_main(void *arg)
{
    fakesrv_t *s = arg;
    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR) continue;
            break;
        }
        pthread_mutex_lock(&s->mu);
        if (s->stopping || s->nconns == MAX_CONNS) {
            pthread_mutex_unlock(&s->mu);
            close(fd);
            if (s->stopping) break;
            continue;
        }
        conn_arg_t *a = malloc(sizeof *a);
        a->s = s;
        a->fd = fd;
        s->conns[s->nconns] = fd;
        pthread_create(&s->threads[s->nconns], NULL, conn_main, a);
        s->nconns++;
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

fakesrv_t *fakesrv_start(fake_mode_t mode, int arg)
{
    fakesrv_t *s = calloc(1, sizeof *s);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    pthread_mutex_init(&s->mu, NULL);
    s->mode = mode;
    s->arg = arg;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s->lfd, (struct sockaddr *) &sa, sizeof sa) != 0 || listen(s->lfd, 512) != 0) abort();
    getsockname(s->lfd, (struct sockaddr *) &sa, &sl);
    s->port = ntohs(sa.sin_port);
    pthread_create(&s->acceptor, NULL, accept_main, s);
    return s;
}

void fakesrv_set_mode_then(fakesrv_t *s, fake_mode_t mode, int arg, int times, fake_mode_t then_mode, int then_arg)
{
    pthread_mutex_lock(&s->mu);
    s->mode = mode;
    s->arg = arg;
    s->times = times;
    s->then_mode = then_mode;
    s->then_arg = then_arg;
    pthread_mutex_unlock(&s->mu);
}

void fakesrv_set_mode(fakesrv_t *s, fake_mode_t mode, int arg, int times)
{
    fakesrv_set_mode_then(s, mode, arg, times, FAKE_OK, 0);
}

void fakesrv_hangup_hellos(fakesrv_t *s, int times)
{
    pthread_mutex_lock(&s->mu);
    s->hello_hangups = times;
    pthread_mutex_unlock(&s->mu);
}

void fakesrv_reset_connections(fakesrv_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->resetting = true;
    /* SHUT_RD wakes each connection's thread (its recv returns 0) without sending anything; the
     * thread then closes with RST (conn_main) */
    for (int i = 0; i < s->nconns; i++)
        if (s->conns[i] >= 0) shutdown(s->conns[i], SHUT_RD);
    pthread_mutex_unlock(&s->mu);
    for (int tries = 0; tries < 2000; tries++) {
        bool open = false;
        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < s->nconns; i++) open |= s->conns[i] >= 0;
        pthread_mutex_unlock(&s->mu);
        if (!open) break;
        usleep(1000);
    }
    pthread_mutex_lock(&s->mu);
    s->resetting = false;
    pthread_mutex_unlock(&s->mu);
    usleep(20 * 1000); /* the RSTs cross loopback at once; this is margin, not a wait for them */
}

uint16_t fakesrv_port(const fakesrv_t *s) { return s->port; }

const char *fakesrv_uri(const fakesrv_t *s, const char *extra)
{
    static char buf[8][512];
    static unsigned slot;
    char *b = buf[slot++ % 8];
    snprintf(b, sizeof buf[0], "mongodb://127.0.0.1:%u/?%s", (unsigned) s->port, extra ? extra : "");
    return b;
}

int fakesrv_connections(const fakesrv_t *s) { return s->nconns; }

bool fakesrv_last_command(fakesrv_t *s, bool hello, bson_t *out)
{
    pthread_mutex_lock(&s->mu);
    bool have = s->last[hello] != NULL;
    if (have) bson_copy_to(s->last[hello], out);
    pthread_mutex_unlock(&s->mu);
    return have;
}

void fakesrv_set_hello_extra(fakesrv_t *s, const bson_t *extra)
{
    pthread_mutex_lock(&s->mu);
    if (s->hello_extra) bson_destroy(s->hello_extra);
    s->hello_extra = extra ? bson_copy(extra) : NULL;
    pthread_mutex_unlock(&s->mu);
}

void fakesrv_set_accept_speculative(fakesrv_t *s, bool on)
{
    pthread_mutex_lock(&s->mu);
    s->accept_speculative = on;
    pthread_mutex_unlock(&s->mu);
}

int fakesrv_commands(const fakesrv_t *s) { return s->commands; }

void fakesrv_sessions(fakesrv_t *s, fakesrv_sessions_t *out)
{
    pthread_mutex_lock(&s->mu);
    *out = (fakesrv_sessions_t){.distinct = s->sessions.distinct, .overlaps = s->sessions.overlaps,
                                .too_old = s->sessions.too_old, .with_lsid = s->sessions.with_lsid,
                                .without_lsid = s->sessions.without_lsid, .in_progress_max = s->sessions.busy_peak};
    pthread_mutex_unlock(&s->mu);
}

void fakesrv_play(fakesrv_t *s, fake_role_t role, const bson_t *more)
{
    char me[64];
    snprintf(me, sizeof me, "127.0.0.1:%u", (unsigned) s->port);
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

void fakesrv_stop(fakesrv_t *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_mutex_unlock(&s->mu);
    shutdown(s->lfd, SHUT_RDWR);
    close(s->lfd);
    pthread_join(s->acceptor, NULL);
    for (int i = 0; i < s->nconns; i++)
        if (s->conns[i] >= 0) shutdown(s->conns[i], SHUT_RDWR);
    for (int i = 0; i < s->nconns; i++) {
        pthread_join(s->threads[i], NULL);
        if (s->conns[i] >= 0) close(s->conns[i]);
    }
    for (int i = 0; i < 2; i++)
        if (s->last[i]) bson_destroy(s->last[i]);
    if (s->hello_extra) bson_destroy(s->hello_extra);
    srules_free(&s->sessions);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
