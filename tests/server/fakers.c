/* fakers: the replica-set mode of the scripted server (fakers.h): one server (srv.h) with a
 * listener per member; a connection's listener tells which member it talks to. The state below is
 * read by the loop's thread and changed by the test's, both under the server's lock. Every member
 * holds MongoDB's limits (srv_check_limits) and session rules (one table for the set: a retry on a
 * new primary with the same txnNumber is accepted, an older one is not). */
#include "fakers.h"

#include <bson/bson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv.h"

#define MAX_MEMBERS 8

typedef struct member {
    struct fakers *rs;
    int index;
    uint16_t port;
    bson_oid_t process_id;
    int writes, reads, refused, txn_writes;
} member_t;

struct fakers {
    srv_t *srv;
    int n;
    member_t m[MAX_MEMBERS];
    int primary;
    int election;               /* electionId counter, raised by every election */
    int64_t tv_counter;         /* topologyVersion.counter of every member */
};

static void addr_of(const fakers_t *rs, int i, char *out, size_t size)
{
    snprintf(out, size, "127.0.0.1:%u", (unsigned) rs->m[i].port);
}

/* Called with the server's lock held. */
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

/* The reply to a command other than hello (NULL: it is in reply already). */
static bson_t *answer(member_t *m, srv_req_t *rq, bson_t *reply)
{
    fakers_t *rs = m->rs;
    const char *name = rq->name;
    const bson_t *cmd = &rq->body;
    bson_iter_t it;
    if (!srv_check_limits(rq, reply, SRV_MAX_BSON_SIZE, SRV_MAX_WRITE_BATCH)) return NULL;
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

static void fakers_command(void *ud, srv_t *srv, srv_req_t *rq, bson_t *reply)
{
    member_t *m = &((fakers_t *) ud)->m[rq->listener];
    if (rq->refused) return;
    bson_t *r = rq->hello ? hello_doc(m) : answer(m, rq, reply);
    if (r) {
        bson_concat(reply, r);
        bson_destroy(r);
    }
}

fakers_t *fakers_start(int n, int primary)
{
    fakers_t *rs = calloc(1, sizeof *rs);
    if (!rs) abort();
    if (n > MAX_MEMBERS) n = MAX_MEMBERS;
    rs->n = n;
    rs->primary = primary;
    rs->election = 1;
    rs->tv_counter = 1;
    rs->srv = srv_new(NULL, fakers_command, rs);
    /* Listen on every port before any member answers: hello lists them all. */
    for (int i = 0; i < n; i++) {
        member_t *m = &rs->m[i];
        m->rs = rs;
        m->index = i;
        bson_oid_init(&m->process_id, NULL);
        if (srv_listen(rs->srv, "127.0.0.1", 0) != i) abort();
        m->port = srv_port(rs->srv, i);
    }
    srv_start_thread(rs->srv);
    return rs;
}

void fakers_set_primary(fakers_t *rs, int i)
{
    srv_lock(rs->srv);
    rs->primary = i;
    rs->election++;
    rs->tv_counter++;
    srv_unlock(rs->srv);
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
    srv_lock(rs->srv);
    int v = *p;
    srv_unlock(rs->srv);
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

srv_t *fakers_server(fakers_t *rs) { return rs->srv; }

void fakers_stop(fakers_t *rs)
{
    if (!rs) return;
    srv_free(rs->srv);
    free(rs);
}
