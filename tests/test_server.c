/* The scripted server itself (tests/server/): what its core gives every mode (MongoDB's session
 * rules and limits, faults, replies kept in order behind a delayed one), checked over a raw
 * socket so that no client's behaviour is in the way. */
#include <arpa/inet.h>
#include <bson/bson.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/docsrv.h"
#include "server/fakers.h"
#include "server/fakesrv.h"
#include "server/srv.h"
#include "tf.h"

static int raw_connect(uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(connect(fd, (struct sockaddr *) &sa, sizeof sa), 0);
    return fd;
}

static void put32(uint8_t *p, uint32_t v)
{
    uint32_t le = BSON_UINT32_TO_LE(v);
    memcpy(p, &le, 4);
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t le;
    memcpy(&le, p, 4);
    return BSON_UINT32_FROM_LE(le);
}

/* An OP_MSG carrying body. */
static void raw_send(int fd, int32_t request_id, const bson_t *body)
{
    size_t n = 21 + body->len;
    uint8_t *m = malloc(n);
    put32(m, (uint32_t) n);
    put32(m + 4, (uint32_t) request_id);
    put32(m + 8, 0);
    put32(m + 12, 2013);
    put32(m + 16, 0);
    m[20] = 0;
    memcpy(m + 21, bson_get_data(body), body->len);
    ASSERT_EQ(send(fd, m, n, MSG_NOSIGNAL), (ssize_t) n);
    free(m);
}

static bool read_full(int fd, uint8_t *p, size_t n)
{
    while (n) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        ASSERT_MSG(poll(&pf, 1, 5000) == 1, "no reply within 5 s");
        ssize_t r = recv(fd, p, n, 0);
        if (r <= 0) return false;
        p += r;
        n -= (size_t) r;
    }
    return true;
}

/* The next reply into *out (initialised); false when the server closed the connection. */
static bool raw_recv(int fd, int32_t *response_to, bson_t *out)
{
    uint8_t h[21];
    if (!read_full(fd, h, 21)) return false;
    uint32_t len = get32(h);
    ASSERT_GE(len, 26);
    ASSERT_EQ(get32(h + 12), 2013);
    *response_to = (int32_t) get32(h + 8);
    uint8_t *b = malloc(len - 21);
    ASSERT(read_full(fd, b, len - 21));
    bson_init(out);
    bson_t view;
    ASSERT(bson_init_static(&view, b, len - 21));
    bson_concat(out, &view);
    free(b);
    return true;
}

static int32_t reply_code(const bson_t *r)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, r, "code") ? bson_iter_int32(&it) : 0;
}

/* {ping: 1, lsid: {id: UUID(id)}, txnNumber: txn, $db: "admin"} */
static bson_t *ping_in_session(uint8_t id, int64_t txn)
{
    uint8_t uuid[16] = {0};
    uuid[0] = id;
    bson_t *b = bson_new(), lsid;
    BSON_APPEND_INT32(b, "ping", 1);
    BSON_APPEND_DOCUMENT_BEGIN(b, "lsid", &lsid);
    BSON_APPEND_BINARY(&lsid, "id", BSON_SUBTYPE_UUID, uuid, 16);
    bson_append_document_end(b, &lsid);
    BSON_APPEND_INT64(b, "txnNumber", txn);
    BSON_APPEND_UTF8(b, "$db", "admin");
    return b;
}

/* A request id's reply code, -1 when the connection closed. */
static int32_t roundtrip(int fd, int32_t rid, bson_t *cmd)
{
    raw_send(fd, rid, cmd);
    bson_destroy(cmd);
    bson_t r;
    int32_t to;
    if (!raw_recv(fd, &to, &r)) return -1;
    ASSERT_EQ(to, rid);
    int32_t code = reply_code(&r);
    bson_destroy(&r);
    return code;
}

/* Every mode's server, with its port. */
typedef struct {
    fakesrv_t *fake;
    fakers_t *rs;
    docsrv_t *doc;
    srv_t *srv;
    uint16_t port;
} any_t;

static any_t any_start(int mode)
{
    any_t a = {0};
    if (mode == 0) {
        a.fake = fakesrv_start(FAKE_OK, 0);
        a.srv = fakesrv_server(a.fake);
        a.port = fakesrv_port(a.fake);
    } else if (mode == 1) {
        a.rs = fakers_start(2, 0);
        a.srv = fakers_server(a.rs);
        a.port = fakers_port(a.rs, 0);
    } else {
        a.doc = docsrv_start(NULL);
        a.srv = docsrv_server(a.doc);
        a.port = srv_port(a.srv, 0);
    }
    return a;
}

static void any_stop(any_t *a)
{
    fakesrv_stop(a->fake);
    fakers_stop(a->rs);
    docsrv_stop(a->doc);
}

TEST("/server/sessions/too_old_in_every_mode", server_sessions_too_old)
{
    for (int mode = 0; mode < 3; mode++) {
        any_t a = any_start(mode);
        int fd = raw_connect(a.port);
        ASSERT_EQ(roundtrip(fd, 1, ping_in_session(7, 5)), 0);
        ASSERT_EQ(roundtrip(fd, 2, ping_in_session(7, 5)), 0); /* the same number: a retry */
        ASSERT_EQ(roundtrip(fd, 3, ping_in_session(7, 4)), 225);
        ASSERT_EQ(roundtrip(fd, 4, ping_in_session(8, 1)), 0); /* another session */
        srv_lock(a.srv);
        const srules_t *r = srv_sessions(a.srv);
        ASSERT_EQ(r->too_old, 1);
        ASSERT_EQ(r->distinct, 2);
        ASSERT_EQ(r->overlaps, 0);
        srv_unlock(a.srv);
        close(fd);
        any_stop(&a);
    }
}

/* Two requests of one session pipelined, the first slow (a fault on every 2nd command): the
 * second overlaps the first (MongoDB would make it wait), and its reply, due at once, does not
 * overtake the slow one. */
TEST("/server/sessions/overlap_counted_and_order_kept", server_sessions_overlap)
{
    for (int mode = 0; mode < 3; mode++) {
        any_t a = any_start(mode);
        srv_lock(a.srv);
        srv_config(a.srv)->slow_ns = 100 * 1000000ull;
        srv_set_fault(a.srv, SRV_F_SLOW, -1, 2);
        srv_unlock(a.srv);
        int fd = raw_connect(a.port);
        ASSERT_EQ(roundtrip(fd, 10, BCON_NEW("ping", BCON_INT32(1), "$db", "admin")), 0); /* the 1st: on time */
        bson_t *p1 = ping_in_session(9, 1), *p2 = ping_in_session(9, 2), r;
        raw_send(fd, 11, p1);
        raw_send(fd, 12, p2);
        int32_t to;
        ASSERT(raw_recv(fd, &to, &r));
        ASSERT_EQ(to, 11);
        bson_destroy(&r);
        ASSERT(raw_recv(fd, &to, &r));
        ASSERT_EQ(to, 12);
        bson_destroy(&r);
        srv_lock(a.srv);
        ASSERT_EQ(srv_sessions(a.srv)->overlaps, 1);
        srv_unlock(a.srv);
        bson_destroy(p1);
        bson_destroy(p2);
        close(fd);
        any_stop(&a);
    }
}

/* A write with no statements is InvalidLength in every mode (MongoDB: between 1 and
 * maxWriteBatchSize), and a message longer than maxMessageSizeBytes closes the connection. */
TEST("/server/limits/in_every_mode", server_limits)
{
    for (int mode = 0; mode < 3; mode++) {
        any_t a = any_start(mode);
        int fd = raw_connect(a.port);
        bson_t *ins = BCON_NEW("insert", "c", "documents", "[", "]", "$db", "db");
        ASSERT_EQ(roundtrip(fd, 1, ins), 16);
        srv_lock(a.srv);
        srv_config(a.srv)->max_message = 1000;
        srv_unlock(a.srv);
        char filler[2000];
        memset(filler, 'x', sizeof filler - 1);
        filler[sizeof filler - 1] = '\0';
        ASSERT_EQ(roundtrip(fd, 2, BCON_NEW("ping", BCON_INT32(1), "filler", filler, "$db", "admin")), -1);
        srv_lock(a.srv);
        ASSERT_EQ(srv_counts(a.srv)->oversize_messages, 1);
        srv_unlock(a.srv);
        close(fd);
        any_stop(&a);
    }
}

/* fakesrv holds the batch size its hello announces. */
TEST("/server/limits/fakesrv_holds_announced_batch", server_limits_fakesrv)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    bson_t *extra = BCON_NEW("maxWriteBatchSize", BCON_INT32(2));
    fakesrv_set_hello_extra(s, extra);
    bson_destroy(extra);
    int fd = raw_connect(fakesrv_port(s));
    ASSERT_EQ(roundtrip(fd, 1, BCON_NEW("insert", "c", "documents", "[", "{", "}", "{", "}", "]", "$db", "db")), 0);
    ASSERT_EQ(roundtrip(fd, 2, BCON_NEW("insert", "c", "documents", "[", "{", "}", "{", "}", "{", "}", "]", "$db", "db")),
              16);
    close(fd);
    fakesrv_stop(s);
}

/* The dice faults of the core reach every mode: every 2nd command hangs up. */
TEST("/server/faults/in_every_mode", server_faults)
{
    for (int mode = 0; mode < 3; mode++) {
        any_t a = any_start(mode);
        srv_lock(a.srv);
        srv_set_fault(a.srv, SRV_F_HANGUP_BEFORE, -1, 2);
        srv_unlock(a.srv);
        int fd = raw_connect(a.port);
        ASSERT_EQ(roundtrip(fd, 1, BCON_NEW("ping", BCON_INT32(1), "$db", "admin")), 0);
        ASSERT_EQ(roundtrip(fd, 2, BCON_NEW("ping", BCON_INT32(1), "$db", "admin")), -1);
        close(fd);
        srv_lock(a.srv);
        ASSERT_EQ(srv_config(a.srv)->faults[SRV_F_HANGUP_BEFORE].injected, 1);
        srv_unlock(a.srv);
        any_stop(&a);
    }
}
