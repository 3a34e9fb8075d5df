/* fakers: see fakers.h. Independent of mqc's codec, so that it checks mqc. */
#include "fakers.h"
#include "fakesrv.h"

#include <arpa/inet.h>
#include <bson/bson.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_MEMBERS 8
#define MAX_CONNS 512

typedef struct member {
    struct fakers *rs;
    int index;
    int lfd;
    uint16_t port;
    pthread_t acceptor;
    bson_oid_t process_id;
    int writes, reads, refused, txn_writes;
} member_t;

struct fakers {
    pthread_mutex_t mu;
    int n;
    member_t m[MAX_MEMBERS];
    int primary;
    int election;               /* electionId counter, raised by every election */
    int64_t tv_counter;         /* topologyVersion.counter of every member */
    int conns[MAX_CONNS];
    pthread_t threads[MAX_CONNS];
    int nconns;
    bool stopping;
};

typedef struct {
    member_t *m;
    int fd;
} conn_arg_t;

static void addr_of(const fakers_t *rs, int i, char *out, size_t size)
{
    snprintf(out, size, "127.0.0.1:%u", (unsigned) rs->m[i].port);
}

/* Called with rs->mu held. */
static bson_t *hello_doc(member_t *m)
{
    fakers_t *rs = m->rs;
    char me[64], addr[64], key[16];
    bson_t *d = bson_new(), hosts, tv;
    bool primary = rs->primary == m->index;
    BSON_APPEND_BOOL(d, "ismaster", primary);
    BSON_APPEND_BOOL(d, "isWritablePrimary", primary);
    BSON_APPEND_BOOL(d, "secondary", !primary);
    BSON_APPEND_BOOL(d, "helloOk", true);
    BSON_APPEND_UTF8(d, "setName", "rs0");
    BSON_APPEND_INT32(d, "setVersion", 1);
    BSON_APPEND_ARRAY_BEGIN(d, "hosts", &hosts);
    for (int i = 0; i < rs->n; i++) {
        snprintf(key, sizeof key, "%d", i);
        addr_of(rs, i, addr, sizeof addr);
        BSON_APPEND_UTF8(&hosts, key, addr);
    }
    bson_append_array_end(d, &hosts);
    addr_of(rs, m->index, me, sizeof me);
    BSON_APPEND_UTF8(d, "me", me);
    if (rs->primary >= 0) {
        addr_of(rs, rs->primary, addr, sizeof addr);
        BSON_APPEND_UTF8(d, "primary", addr);
    }
    if (primary) {
        /* 7fffffff + counter, as servers make them: greater with every election. */
        uint8_t b[12] = {0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0};
        b[11] = (uint8_t) rs->election;
        b[10] = (uint8_t) (rs->election >> 8);
        bson_oid_t oid;
        bson_oid_init_from_data(&oid, b);
        BSON_APPEND_OID(d, "electionId", &oid);
    }
    BSON_APPEND_DOCUMENT_BEGIN(d, "topologyVersion", &tv);
    BSON_APPEND_OID(&tv, "processId", &m->process_id);
    BSON_APPEND_INT64(&tv, "counter", rs->tv_counter);
    bson_append_document_end(d, &tv);
    BSON_APPEND_INT32(d, "maxBsonObjectSize", 16777216);
    BSON_APPEND_INT32(d, "maxMessageSizeBytes", 48000000);
    BSON_APPEND_INT32(d, "maxWriteBatchSize", 100000);
    BSON_APPEND_INT32(d, "logicalSessionTimeoutMinutes", 30);
    BSON_APPEND_INT32(d, "minWireVersion", 0);
    BSON_APPEND_INT32(d, "maxWireVersion", 17);
    BSON_APPEND_INT32(d, "connectionId", 1);
    BSON_APPEND_DOUBLE(d, "ok", 1);
    return d;
}

static uint8_t *encode(const bson_t *doc, int32_t response_to, bool legacy, size_t *len)
{
    size_t n = legacy ? 16 + 20 + doc->len : 16 + 4 + 1 + doc->len;
    uint8_t *b = calloc(1, n);
    fake_put32(b, (int32_t) n);
    fake_put32(b + 4, 4242);
    fake_put32(b + 8, response_to);
    fake_put32(b + 12, legacy ? 1 : 2013);
    if (legacy) {
        fake_put32(b + 16 + 16, 1);
        memcpy(b + 36, bson_get_data(doc), doc->len);
    } else {
        memcpy(b + 21, bson_get_data(doc), doc->len);
    }
    *len = n;
    return b;
}

static bool is_write(const char *name)
{
    return !strcmp(name, "insert") || !strcmp(name, "update") || !strcmp(name, "delete") ||
           !strcmp(name, "findAndModify");
}

static bool is_read(const char *name)
{
    return !strcmp(name, "find") || !strcmp(name, "aggregate") || !strcmp(name, "count") || !strcmp(name, "distinct");
}

/* A non-primary mode in $readPreference lets a secondary answer (as secondaryOk does). */
static bool secondary_ok(const bson_t *cmd)
{
    bson_iter_t it, f;
    if (!bson_iter_init_find(&it, cmd, "$readPreference") || !bson_iter_recurse(&it, &f)) return false;
    return bson_iter_find(&f, "mode") && BSON_ITER_HOLDS_UTF8(&f) && strcmp(bson_iter_utf8(&f, NULL), "primary") != 0;
}

static bson_t *answer(member_t *m, const char *name, const bson_t *cmd)
{
    fakers_t *rs = m->rs;
    bson_iter_t it;
    bool primary = rs->primary == m->index;
    bool txn = bson_iter_init_find(&it, cmd, "txnNumber") && bson_iter_init_find(&it, cmd, "lsid");
    if (is_write(name)) {
        if (!primary) {
            m->refused++;
            bson_t *r = BCON_NEW("ok", BCON_DOUBLE(0), "code", BCON_INT32(10107), "codeName",
                                 BCON_UTF8("NotWritablePrimary"), "errmsg", BCON_UTF8("not primary"));
            if (txn) {
                bson_t labels;
                BSON_APPEND_ARRAY_BEGIN(r, "errorLabels", &labels);
                BSON_APPEND_UTF8(&labels, "0", "RetryableWriteError");
                bson_append_array_end(r, &labels);
            }
            return r;
        }
        m->writes++;
        if (txn) m->txn_writes++;
        if (!strcmp(name, "findAndModify"))
            return BCON_NEW("ok", BCON_DOUBLE(1), "value", "{", "_id", BCON_INT32(1), "member", BCON_INT32(m->index), "}",
                            "lastErrorObject", "{", "n", BCON_INT32(1), "}");
        return BCON_NEW("ok", BCON_DOUBLE(1), "n", BCON_INT32(1), "nModified", BCON_INT32(1));
    }
    if (is_read(name)) {
        if (!primary && !secondary_ok(cmd)) {
            m->refused++;
            return BCON_NEW("ok", BCON_DOUBLE(0), "code", BCON_INT32(13435), "codeName",
                            BCON_UTF8("NotPrimaryNoSecondaryOk"), "errmsg", BCON_UTF8("not primary and secondaryOk=false"));
        }
        m->reads++;
        if (!strcmp(name, "distinct")) return BCON_NEW("ok", BCON_DOUBLE(1), "values", "[", BCON_INT32(m->index), "]");
        return BCON_NEW("ok", BCON_DOUBLE(1), "n", BCON_INT32(1), "cursor", "{", "id", BCON_INT64(0), "ns",
                        BCON_UTF8("db.c"), "firstBatch", "[", "{", "_id", BCON_INT32(1), "member",
                        BCON_INT32(m->index), "n", BCON_INT32(1), "}", "]", "}");
    }
    return BCON_NEW("ok", BCON_DOUBLE(1));
}

static void *conn_main(void *argp)
{
    conn_arg_t *a = argp;
    member_t *m = a->m;
    fakers_t *rs = m->rs;
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
        const uint8_t *docp = body + 5;
        if (legacy) {
            const uint8_t *p = body + 4;
            p += strlen((const char *) p) + 1 + 8;
            docp = p;
        }
        bson_t cmd;
        const char *name = "";
        bson_iter_t it;
        bson_t *reply;
        if (bson_init_static(&cmd, docp, (size_t) fake_get32(docp)) && bson_iter_init(&it, &cmd) && bson_iter_next(&it))
            name = bson_iter_key(&it);
        pthread_mutex_lock(&rs->mu);
        if (!strcasecmp(name, "hello") || !strcasecmp(name, "ismaster")) reply = hello_doc(m);
        else reply = answer(m, name, &cmd);
        pthread_mutex_unlock(&rs->mu);
        free(body);
        if (more_to_come) {
            bson_destroy(reply);
            continue;
        }
        size_t n;
        uint8_t *out = encode(reply, rid, legacy, &n);
        bson_destroy(reply);
        bool ok = fake_write_full(fd, out, n);
        free(out);
        if (!ok) break;
    }
    shutdown(fd, SHUT_RDWR);
    return NULL;
}

static void *accept_main(void *arg)
{
    member_t *m = arg;
    fakers_t *rs = m->rs;
    for (;;) {
        int fd = accept(m->lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR) continue;
            break;
        }
        pthread_mutex_lock(&rs->mu);
        if (rs->stopping || rs->nconns == MAX_CONNS) {
            bool stop = rs->stopping;
            pthread_mutex_unlock(&rs->mu);
            close(fd);
            if (stop) break;
            continue;
        }
        conn_arg_t *a = malloc(sizeof *a);
        a->m = m;
        a->fd = fd;
        rs->conns[rs->nconns] = fd;
        pthread_create(&rs->threads[rs->nconns], NULL, conn_main, a);
        rs->nconns++;
        pthread_mutex_unlock(&rs->mu);
    }
    return NULL;
}

fakers_t *fakers_start(int n, int primary)
{
    fakers_t *rs = calloc(1, sizeof *rs);
    if (n > MAX_MEMBERS) n = MAX_MEMBERS;
    pthread_mutex_init(&rs->mu, NULL);
    rs->n = n;
    rs->primary = primary;
    rs->election = 1;
    rs->tv_counter = 1;
    /* Listen on every port before any member answers: hello lists them all. */
    for (int i = 0; i < n; i++) {
        member_t *m = &rs->m[i];
        struct sockaddr_in sa;
        socklen_t sl = sizeof sa;
        m->rs = rs;
        m->index = i;
        bson_oid_init(&m->process_id, NULL);
        m->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(m->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(m->lfd, (struct sockaddr *) &sa, sizeof sa) != 0 || listen(m->lfd, 512) != 0) abort();
        getsockname(m->lfd, (struct sockaddr *) &sa, &sl);
        m->port = ntohs(sa.sin_port);
    }
    for (int i = 0; i < n; i++) pthread_create(&rs->m[i].acceptor, NULL, accept_main, &rs->m[i]);
    return rs;
}

void fakers_set_primary(fakers_t *rs, int i)
{
    pthread_mutex_lock(&rs->mu);
    rs->primary = i;
    rs->election++;
    rs->tv_counter++;
    pthread_mutex_unlock(&rs->mu);
}

uint16_t fakers_port(const fakers_t *rs, int i) { return rs->m[i].port; }

const char *fakers_uri(const fakers_t *rs, int i, const char *extra)
{
    static char buf[4][512];
    static unsigned slot;
    char *b = buf[slot++ % 4];
    snprintf(b, sizeof buf[0], "mongodb://127.0.0.1:%u/?replicaSet=rs0&%s", (unsigned) rs->m[i].port,
             extra ? extra : "");
    return b;
}

static int counter(fakers_t *rs, const int *p)
{
    pthread_mutex_lock(&rs->mu);
    int v = *p;
    pthread_mutex_unlock(&rs->mu);
    return v;
}

int fakers_writes(fakers_t *rs, int i) { return counter(rs, &rs->m[i].writes); }
int fakers_reads(fakers_t *rs, int i) { return counter(rs, &rs->m[i].reads); }
int fakers_refused(fakers_t *rs, int i) { return counter(rs, &rs->m[i].refused); }
int fakers_txn_writes(fakers_t *rs, int i) { return counter(rs, &rs->m[i].txn_writes); }

int fakers_member_of(const fakers_t *rs, uint16_t port)
{
    for (int i = 0; i < rs->n; i++)
        if (rs->m[i].port == port) return i;
    return -1;
}

void fakers_stop(fakers_t *rs)
{
    if (!rs) return;
    pthread_mutex_lock(&rs->mu);
    rs->stopping = true;
    pthread_mutex_unlock(&rs->mu);
    for (int i = 0; i < rs->n; i++) {
        shutdown(rs->m[i].lfd, SHUT_RDWR);
        close(rs->m[i].lfd);
        pthread_join(rs->m[i].acceptor, NULL);
    }
    for (int i = 0; i < rs->nconns; i++) shutdown(rs->conns[i], SHUT_RDWR);
    for (int i = 0; i < rs->nconns; i++) {
        pthread_join(rs->threads[i], NULL);
        close(rs->conns[i]);
    }
    pthread_mutex_destroy(&rs->mu);
    free(rs);
}
