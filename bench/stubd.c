/* stubd: a fast, single-threaded MongoDB wire-protocol stub server.
 *
 * What it is for: the benchmark (scripts/bench) must measure the client, so the server side has to
 * be as cheap as possible and identical for every contender; and the reliability tests need a
 * server that misbehaves on purpose. stubd answers from canned documents, keeps no data, and can
 * inject faults (hang-ups, garbage, oversize frames, wrong responseTo, slow and error replies).
 *
 * Protocol: legacy OP_QUERY hello/isMaster on admin.$cmd (answered with OP_REPLY) and OP_MSG
 * (answered with OP_MSG; moreToCome requests get no reply). See source/message/OP_MSG.md in the
 * MongoDB specifications. It is parsed with libbson only: no mqc code runs here, on purpose.
 *
 * Design: one epoll loop (level-triggered), non-blocking sockets, one read per wake-up into a
 * shared buffer; a connection keeps its own input or output buffer only while a message or a
 * reply is partial, so an idle connection costs a small struct. Delayed replies (--delay-us,
 * --fault-slow) sit in a min-heap of timers that bounds epoll_wait's timeout.
 *
 * Sessions are held to MongoDB's rules (bench/session_rules.h): overlapping requests on one lsid
 * are counted, an older txnNumber is refused with TransactionTooOld, distinct lsids are
 * counted. --mongos and --replset NAME make the hello say what a mongos or a replica-set primary
 * says, so that a client treats it as one (retryable writes with txnNumber).
 *
 * The first line of stdout is the listening port (then stdout is flushed), so that scripts and
 * tests can start it with --port 0. Counters are printed as one JSON line on SIGUSR1 and on exit
 * (SIGTERM, SIGINT), to stderr or to --stats FILE (replaced atomically). */
#include <arpa/inet.h>
#include <bson/bson.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "session_rules.h"

#define OP_REPLY 1
#define OP_QUERY 2004
#define OP_MSG 2013
#define MSG_CHECKSUM_PRESENT (1u << 0)
#define MSG_MORE_TO_COME (1u << 1)
#define MSG_EXHAUST_ALLOWED (1u << 16)

#define MAX_BSON_SIZE 16777216
#define MAX_MESSAGE_SIZE 48000000
#define MAX_WRITE_BATCH 100000
#define MAX_WIRE_VERSION 21
/* A batch stops growing here, well below MAX_BSON_SIZE, as a real server's batches do. */
#define MAX_BATCH_BYTES (4 * 1024 * 1024)
#define DEFAULT_FIRST_BATCH 101
#define READ_CHUNK (256 * 1024)
#define OVERSIZE_LENGTH (100 * 1024 * 1024)
#define MAX_SEQS 4

/* --- small helpers -------------------------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t len;
    size_t cap;
} buf_t;

static void buf_reserve(buf_t *b, size_t extra)
{
    if (b->len + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 512;
    while (cap < b->len + extra) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        fprintf(stderr, "stubd: out of memory\n");
        abort();
    }
    b->p = p;
    b->cap = cap;
}

static void buf_append(buf_t *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void buf_free(buf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 24);
}

static void put_le64(uint8_t *p, uint64_t v)
{
    put_le32(p, (uint32_t) v);
    put_le32(p + 4, (uint32_t) (v >> 32));
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* xorshift64*: the fault dice must be reproducible from --seed, and cheap. */
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 0x2545f4914f6cdd1dull;
}

static double rng_unit(void) { return (double) (rng_next() >> 11) * (1.0 / 9007199254740992.0); }

/* --- options and counters ------------------------------------------------------------------- */

enum {
    F_HANGUP_BEFORE,
    F_HANGUP_MID,
    F_GARBAGE,
    F_OVERSIZE,
    F_WRONG_RESPONSE_TO,
    F_SLOW,
    F_ERROR,
    F_COUNT
};

static const char *const g_fault_names[F_COUNT] = {
    "hangup_before", "hangup_mid", "garbage", "oversize", "wrong_response_to", "slow", "error",
};

typedef struct {
    bool enabled;
    double prob;    /* < 0: a share of --fault-rate */
    uint64_t every; /* > 0: every Nth eligible command instead of a probability */
    uint64_t seen;
    uint64_t injected;
} fault_t;

static struct {
    int port;
    const char *bind;
    int64_t docs;
    uint64_t delay_ns;
    uint64_t seed;
    const char *stats_path;
    double fault_rate;
    uint64_t slow_ns;
    int32_t error_code;
    fault_t faults[F_COUNT];
    bool any_fault;
    bool fault_hello; /* hello is spared unless asked, so that connections come up */
    bool mongos;      /* hello says msg: isdbgrid */
    const char *set_name; /* hello says it is this replica set's primary */
} g_opt = { .port = 27017, .bind = "127.0.0.1", .docs = 100, .fault_rate = 0.05 };

static struct {
    uint64_t accepted, open, max_open, messages, commands, replies, no_reply, bad_messages;
    uint64_t cursors_opened, cursors_open;
    uint64_t start_ns;
} g_count;

/* --- connections and timers ----------------------------------------------------------------- */

typedef struct {
    int fd;
    uint32_t serial;  /* tells a reused fd apart in pending timers */
    int32_t id;       /* the hello's connectionId */
    bool want_write;  /* EPOLLOUT is registered */
    bool close_after; /* close once `out` is flushed (a hang-up in the middle of a reply) */
    buf_t in;         /* only while a message is partial */
    buf_t out;        /* only while a reply could not be written whole */
    size_t out_off;
} conn_t;

static conn_t **g_conns; /* indexed by fd */
static size_t g_conns_cap;
static int g_epfd = -1;
static uint32_t g_serial;
static int32_t g_next_conn_id;
static int32_t g_next_request_id;
static uint8_t *g_rbuf;
static buf_t g_stage; /* replies to the messages of one read, sent with one write */
static srules_t g_sessions;
static bson_t g_reply;

typedef struct {
    uint64_t due_ns;
    uint64_t seq; /* keeps replies of equal due time in order */
    int fd;
    uint32_t serial;
    bool close_after;
    bool has_lsid;    /* the request's session is busy until this reply goes out */
    uint8_t lsid[16];
    uint8_t *bytes;
    size_t len;
} pending_t;

static pending_t *g_heap;
static size_t g_heap_len, g_heap_cap;
static uint64_t g_timer_seq;

static bool timer_less(const pending_t *a, const pending_t *b)
{
    return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->seq < b->seq);
}

static void heap_push(pending_t t)
{
    if (g_heap_len == g_heap_cap) {
        g_heap_cap = g_heap_cap ? g_heap_cap * 2 : 256;
        g_heap = realloc(g_heap, g_heap_cap * sizeof *g_heap);
        if (!g_heap) abort();
    }
    size_t i = g_heap_len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_less(&t, &g_heap[parent])) break;
        g_heap[i] = g_heap[parent];
        i = parent;
    }
    g_heap[i] = t;
}

static pending_t heap_pop(void)
{
    pending_t top = g_heap[0], last = g_heap[--g_heap_len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= g_heap_len) break;
        if (c + 1 < g_heap_len && timer_less(&g_heap[c + 1], &g_heap[c])) c++;
        if (!timer_less(&g_heap[c], &last)) break;
        g_heap[i] = g_heap[c];
        i = c;
    }
    if (g_heap_len) g_heap[i] = last;
    return top;
}

static void conn_close(conn_t *c)
{
    close(c->fd); /* also leaves the epoll set */
    g_conns[c->fd] = NULL;
    buf_free(&c->in);
    buf_free(&c->out);
    free(c);
    g_count.open--;
}

static void conn_want_write(conn_t *c, bool on)
{
    if (c->want_write == on) return;
    struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.fd = c->fd };
    epoll_ctl(g_epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_write = on;
}

/* Writes what is queued; returns false when the connection was closed. */
static bool conn_flush(conn_t *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t) n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_want_write(c, true);
            return true;
        }
        conn_close(c);
        return false;
    }
    buf_free(&c->out); /* an idle connection holds no output buffer */
    c->out_off = 0;
    conn_want_write(c, false);
    if (c->close_after) {
        conn_close(c);
        return false;
    }
    return true;
}

/* Sends bytes after whatever is already queued; the common case writes straight from `p`. */
static bool conn_send(conn_t *c, const uint8_t *p, size_t len)
{
    if (c->out_off == c->out.len) {
        while (len > 0) {
            ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
            if (n > 0) {
                p += n;
                len -= (size_t) n;
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            conn_close(c);
            return false;
        }
        if (len == 0) {
            if (c->close_after) {
                conn_close(c);
                return false;
            }
            return true;
        }
    }
    buf_append(&c->out, p, len);
    return conn_flush(c);
}

/* --- cursors -------------------------------------------------------------------------------- */

typedef struct {
    int64_t id; /* 0: free slot */
    int64_t next, end;
    char ns[128];
} cursor_t;

static cursor_t *g_cursors;
static size_t g_cursors_len, g_cursors_cap;
static size_t *g_cursor_free;
static size_t g_cursor_free_len;
static uint32_t g_cursor_gen;

/* The id carries the slot in its low 32 bits and a generation above, so a lookup is O(1) and an
 * old id never finds a reused slot. */
static cursor_t *cursor_new(const char *ns, int64_t next, int64_t end)
{
    size_t slot;
    if (g_cursor_free_len) {
        slot = g_cursor_free[--g_cursor_free_len];
    } else {
        if (g_cursors_len == g_cursors_cap) {
            g_cursors_cap = g_cursors_cap ? g_cursors_cap * 2 : 64;
            g_cursors = realloc(g_cursors, g_cursors_cap * sizeof *g_cursors);
            g_cursor_free = realloc(g_cursor_free, g_cursors_cap * sizeof *g_cursor_free);
            if (!g_cursors || !g_cursor_free) abort();
        }
        slot = g_cursors_len++;
    }
    g_cursor_gen = (g_cursor_gen % 0x7ffffffeu) + 1;
    cursor_t *cur = &g_cursors[slot];
    cur->id = (int64_t) ((uint64_t) g_cursor_gen << 32 | (uint64_t) slot);
    cur->next = next;
    cur->end = end;
    bson_strncpy(cur->ns, ns, sizeof cur->ns);
    g_count.cursors_opened++;
    g_count.cursors_open++;
    return cur;
}

static cursor_t *cursor_find(int64_t id)
{
    uint64_t slot = (uint64_t) id & 0xffffffffu;
    if (id <= 0 || slot >= g_cursors_len || g_cursors[slot].id != id) return NULL;
    return &g_cursors[slot];
}

static void cursor_free(cursor_t *cur)
{
    g_cursor_free[g_cursor_free_len++] = (size_t) (cur - g_cursors);
    cur->id = 0;
    g_count.cursors_open--;
}

/* --- requests and commands ------------------------------------------------------------------ */

typedef struct {
    const char *id;
    const uint8_t *docs;
    size_t len;
} seq_t;

typedef struct {
    conn_t *conn;
    int32_t request_id;
    bool legacy;      /* OP_QUERY: answer with OP_REPLY */
    bool no_reply;    /* OP_MSG moreToCome */
    bson_t body;      /* static view into the message */
    char db[64];
    seq_t seqs[MAX_SEQS];
    int nseqs;
} request_t;

static int64_t iter_as_int64(const bson_iter_t *it, int64_t dflt)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_BOOL: return bson_iter_as_int64(it);
    default: return dflt;
    }
}

static void reply_error(bson_t *r, int32_t code, const char *code_name, const char *msg)
{
    bson_reinit(r);
    BSON_APPEND_DOUBLE(r, "ok", 0.0);
    BSON_APPEND_UTF8(r, "errmsg", msg);
    BSON_APPEND_INT32(r, "code", code);
    BSON_APPEND_UTF8(r, "codeName", code_name);
}

static void reply_hello(bson_t *r, const request_t *rq)
{
    bson_iter_t it;
    BSON_APPEND_BOOL(r, "ismaster", true);
    BSON_APPEND_BOOL(r, "isWritablePrimary", true);
    if (g_opt.mongos) BSON_APPEND_UTF8(r, "msg", "isdbgrid");
    if (g_opt.set_name) {
        char me[80];
        bson_t hosts;
        snprintf(me, sizeof me, "%s:%d", g_opt.bind, g_opt.port);
        BSON_APPEND_UTF8(r, "setName", g_opt.set_name);
        BSON_APPEND_INT32(r, "setVersion", 1);
        BSON_APPEND_BOOL(r, "secondary", false);
        BSON_APPEND_ARRAY_BEGIN(r, "hosts", &hosts);
        BSON_APPEND_UTF8(&hosts, "0", me);
        bson_append_array_end(r, &hosts);
        BSON_APPEND_UTF8(r, "primary", me);
        BSON_APPEND_UTF8(r, "me", me);
    }
    if (bson_iter_init_find(&it, &rq->body, "helloOk")) BSON_APPEND_BOOL(r, "helloOk", true);
    BSON_APPEND_INT32(r, "maxBsonObjectSize", MAX_BSON_SIZE);
    BSON_APPEND_INT32(r, "maxMessageSizeBytes", MAX_MESSAGE_SIZE);
    BSON_APPEND_INT32(r, "maxWriteBatchSize", MAX_WRITE_BATCH);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    BSON_APPEND_DATE_TIME(r, "localTime", (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    BSON_APPEND_INT32(r, "logicalSessionTimeoutMinutes", 30);
    BSON_APPEND_INT32(r, "connectionId", rq->conn->id);
    BSON_APPEND_INT32(r, "minWireVersion", 0);
    BSON_APPEND_INT32(r, "maxWireVersion", MAX_WIRE_VERSION);
    BSON_APPEND_BOOL(r, "readOnly", false);
    BSON_APPEND_DOUBLE(r, "ok", 1.0);
}

/* The canned document number i of every collection. */
static void append_doc(bson_t *arr, uint32_t index, int64_t i)
{
    const char *key;
    char kbuf[16];
    bson_uint32_to_string(index, &key, kbuf, sizeof kbuf);
    bson_t d;
    bson_append_document_begin(arr, key, -1, &d);
    BSON_APPEND_INT64(&d, "_id", i);
    BSON_APPEND_INT64(&d, "n", i * 7);
    BSON_APPEND_UTF8(&d, "s", "stubd canned document");
    BSON_APPEND_DOUBLE(&d, "x", (double) i * 0.5);
    bson_append_document_end(arr, &d);
}

/* The document answering {_id: v}: the same fields, with the client's own _id value. */
static void append_doc_for_id(bson_t *arr, const bson_iter_t *id)
{
    bson_t d;
    int64_t i = iter_as_int64(id, 0);
    bson_append_document_begin(arr, "0", 1, &d);
    bson_append_iter(&d, "_id", 3, id);
    BSON_APPEND_INT64(&d, "n", i * 7);
    BSON_APPEND_UTF8(&d, "s", "stubd canned document");
    BSON_APPEND_DOUBLE(&d, "x", (double) i * 0.5);
    bson_append_document_end(arr, &d);
}

/* Appends the batch [*next, end) up to `batch` documents (< 0: no count limit) and the byte cap. */
static void append_batch(bson_t *cursor, const char *field, int64_t *next, int64_t end, int64_t batch)
{
    bson_t arr;
    uint32_t k = 0;
    bson_append_array_begin(cursor, field, -1, &arr);
    while (*next < end && (batch < 0 || (int64_t) k < batch) && arr.len < MAX_BATCH_BYTES) {
        append_doc(&arr, k++, *next);
        (*next)++;
    }
    bson_append_array_end(cursor, &arr);
}

/* A filter that names one _id by value ({_id: 5}, not {_id: {$gt: 5}}) finds one document. */
static bool filter_id(const bson_iter_t *filter, bson_iter_t *id)
{
    bson_iter_t f;
    if (!BSON_ITER_HOLDS_DOCUMENT(filter) || !bson_iter_recurse(filter, &f)) return false;
    if (!bson_iter_find(&f, "_id")) return false;
    if (BSON_ITER_HOLDS_DOCUMENT(&f)) {
        bson_iter_t sub;
        if (bson_iter_recurse(&f, &sub) && bson_iter_next(&sub) && bson_iter_key(&sub)[0] == '$') return false;
    }
    *id = f;
    return true;
}

/* Builds {cursor: {firstBatch, id, ns}, ok: 1} for find and aggregate. */
static void reply_cursor(bson_t *r, const request_t *rq, const char *coll, const bson_iter_t *id,
                         int64_t skip, int64_t limit, int64_t batch, bool single_batch)
{
    char ns[128];
    bson_t cur, arr;
    int64_t cursor_id = 0;
    snprintf(ns, sizeof ns, "%s.%s", rq->db, coll);
    bson_append_document_begin(r, "cursor", 6, &cur);
    if (id) {
        bson_append_array_begin(&cur, "firstBatch", 10, &arr);
        append_doc_for_id(&arr, id);
        bson_append_array_end(&cur, &arr);
    } else {
        int64_t next = skip < 0 ? 0 : skip, end = g_opt.docs;
        if (limit < 0) {
            limit = -limit;
            single_batch = true;
        }
        if (limit > 0 && next + limit < end) end = next + limit;
        if (next > end) next = end;
        /* No batchSize: 101 documents, or everything for a single batch; batchSize 0 asks for an
         * empty first batch and a cursor (a single batch of nothing would be useless: all). */
        if (batch < 0 || (batch == 0 && single_batch)) batch = single_batch ? -1 : DEFAULT_FIRST_BATCH;
        append_batch(&cur, "firstBatch", &next, end, batch);
        if (next < end && !single_batch) cursor_id = cursor_new(ns, next, end)->id;
    }
    BSON_APPEND_INT64(&cur, "id", cursor_id);
    BSON_APPEND_UTF8(&cur, "ns", ns);
    bson_append_document_end(r, &cur);
    BSON_APPEND_DOUBLE(r, "ok", 1.0);
}

static void cmd_find(bson_t *r, const request_t *rq, bson_iter_t *it)
{
    const char *coll = BSON_ITER_HOLDS_UTF8(it) ? bson_iter_utf8(it, NULL) : "stub";
    int64_t skip = 0, limit = 0, batch = -1;
    bool single = false, by_id = false;
    bson_iter_t f, id;
    bson_iter_init(&f, &rq->body);
    while (bson_iter_next(&f)) {
        const char *k = bson_iter_key(&f);
        if (!strcmp(k, "filter")) by_id = filter_id(&f, &id);
        else if (!strcmp(k, "skip")) skip = iter_as_int64(&f, 0);
        else if (!strcmp(k, "limit")) limit = iter_as_int64(&f, 0);
        else if (!strcmp(k, "batchSize")) batch = iter_as_int64(&f, -1);
        else if (!strcmp(k, "singleBatch")) single = bson_iter_as_bool(&f);
    }
    reply_cursor(r, rq, coll, by_id ? &id : NULL, skip, limit, batch, single);
}

static void cmd_aggregate(bson_t *r, const request_t *rq, bson_iter_t *it)
{
    const char *coll = BSON_ITER_HOLDS_UTF8(it) ? bson_iter_utf8(it, NULL) : "stub";
    int64_t limit = 0, skip = 0, batch = -1;
    bool by_id = false;
    bson_iter_t f, stages, stage, id;
    if (bson_iter_init_find(&f, &rq->body, "cursor") && BSON_ITER_HOLDS_DOCUMENT(&f) &&
        bson_iter_recurse(&f, &stage) && bson_iter_find(&stage, "batchSize"))
        batch = iter_as_int64(&stage, -1);
    /* Honour the stages a benchmark uses: $match {_id: v}, $skip, $limit. */
    if (bson_iter_init_find(&f, &rq->body, "pipeline") && BSON_ITER_HOLDS_ARRAY(&f) &&
        bson_iter_recurse(&f, &stages)) {
        while (bson_iter_next(&stages)) {
            if (!BSON_ITER_HOLDS_DOCUMENT(&stages) || !bson_iter_recurse(&stages, &stage) ||
                !bson_iter_next(&stage))
                continue;
            const char *op = bson_iter_key(&stage);
            if (!strcmp(op, "$match")) by_id = by_id || filter_id(&stage, &id);
            else if (!strcmp(op, "$limit")) limit = iter_as_int64(&stage, 0);
            else if (!strcmp(op, "$skip")) skip = iter_as_int64(&stage, 0);
        }
    }
    reply_cursor(r, rq, coll, by_id ? &id : NULL, skip, limit, batch, false);
}

static void cmd_get_more(bson_t *r, const request_t *rq, bson_iter_t *it)
{
    int64_t id = iter_as_int64(it, 0), batch = -1;
    bson_iter_t f;
    if (bson_iter_init_find(&f, &rq->body, "batchSize")) batch = iter_as_int64(&f, -1);
    if (batch == 0) batch = -1; /* getMore's batchSize 0 means "the server's choice" */
    cursor_t *cur = cursor_find(id);
    if (!cur) {
        char msg[96];
        snprintf(msg, sizeof msg, "cursor id %" PRId64 " not found", id);
        reply_error(r, 43, "CursorNotFound", msg);
        return;
    }
    bson_t c;
    bson_append_document_begin(r, "cursor", 6, &c);
    append_batch(&c, "nextBatch", &cur->next, cur->end, batch);
    BSON_APPEND_INT64(&c, "id", cur->next < cur->end ? cur->id : 0);
    BSON_APPEND_UTF8(&c, "ns", cur->ns);
    bson_append_document_end(r, &c);
    BSON_APPEND_DOUBLE(r, "ok", 1.0);
    if (cur->next >= cur->end) cursor_free(cur);
}

static void cmd_kill_cursors(bson_t *r, const request_t *rq, bson_iter_t *it)
{
    bson_t killed, missing, empty;
    bson_iter_t f, ids;
    uint32_t nk = 0, nm = 0;
    char kbuf[16];
    const char *key;
    bson_append_array_begin(r, "cursorsKilled", -1, &killed);
    bson_t missing_tmp = BSON_INITIALIZER; /* filled in the same pass, appended after */
    if (bson_iter_init_find(&f, &rq->body, "cursors") && BSON_ITER_HOLDS_ARRAY(&f) && bson_iter_recurse(&f, &ids)) {
        while (bson_iter_next(&ids)) {
            int64_t id = iter_as_int64(&ids, 0);
            cursor_t *cur = cursor_find(id);
            if (cur) {
                cursor_free(cur);
                bson_uint32_to_string(nk++, &key, kbuf, sizeof kbuf);
                bson_append_int64(&killed, key, -1, id);
            } else {
                bson_uint32_to_string(nm++, &key, kbuf, sizeof kbuf);
                bson_append_int64(&missing_tmp, key, -1, id);
            }
        }
    }
    bson_append_array_end(r, &killed);
    bson_append_array_begin(r, "cursorsNotFound", -1, &missing);
    bson_concat(&missing, &missing_tmp);
    bson_append_array_end(r, &missing);
    bson_destroy(&missing_tmp);
    bson_append_array_begin(r, "cursorsAlive", -1, &empty);
    bson_append_array_end(r, &empty);
    bson_append_array_begin(r, "cursorsUnknown", -1, &empty);
    bson_append_array_end(r, &empty);
    BSON_APPEND_DOUBLE(r, "ok", 1.0);
}

/* Documents of a write: the body's array plus a kind-1 sequence of the same name. */
static int64_t count_items(const request_t *rq, const char *field)
{
    int64_t n = 0;
    bson_iter_t f, arr;
    if (bson_iter_init_find(&f, &rq->body, field) && BSON_ITER_HOLDS_ARRAY(&f) && bson_iter_recurse(&f, &arr))
        while (bson_iter_next(&arr)) n++;
    for (int i = 0; i < rq->nseqs; i++) {
        if (strcmp(rq->seqs[i].id, field) != 0) continue;
        size_t off = 0;
        while (off + 4 <= rq->seqs[i].len) {
            off += get_le32(rq->seqs[i].docs + off); /* validated when the message was parsed */
            n++;
        }
    }
    return n;
}

static void cmd_write(bson_t *r, const request_t *rq, const char *field, bool modified)
{
    int64_t n = count_items(rq, field);
    BSON_APPEND_INT32(r, "n", (int32_t) n);
    if (modified) BSON_APPEND_INT32(r, "nModified", (int32_t) n);
    BSON_APPEND_DOUBLE(r, "ok", 1.0);
}

static void cmd_count(bson_t *r, const request_t *rq)
{
    int64_t n = g_opt.docs, skip = 0, limit = 0;
    bson_iter_t f, id;
    if (bson_iter_init_find(&f, &rq->body, "query") && filter_id(&f, &id)) n = 1;
    if (bson_iter_init_find(&f, &rq->body, "skip")) skip = iter_as_int64(&f, 0);
    if (bson_iter_init_find(&f, &rq->body, "limit")) limit = iter_as_int64(&f, 0);
    n = skip < n ? n - (skip > 0 ? skip : 0) : 0;
    if (limit < 0) limit = -limit;
    if (limit > 0 && limit < n) n = limit;
    BSON_APPEND_INT32(r, "n", (int32_t) n);
    BSON_APPEND_DOUBLE(r, "ok", 1.0);
}

static bool is_hello(const char *name)
{
    return !strcmp(name, "hello") || !strcmp(name, "isMaster") || !strcmp(name, "ismaster");
}

/* Runs the command of `rq` into r (reset by the caller). */
static void run_command(bson_t *r, const request_t *rq, const char *name, bson_iter_t *it)
{
    if (is_hello(name)) {
        reply_hello(r, rq);
    } else if (rq->legacy) {
        /* As MongoDB 6+: OP_QUERY is for the first hello only. */
        reply_error(r, 352, "UnsupportedOpQueryCommand", "OP_QUERY is only supported for hello");
    } else if (!strcmp(name, "find")) {
        cmd_find(r, rq, it);
    } else if (!strcmp(name, "getMore")) {
        cmd_get_more(r, rq, it);
    } else if (!strcmp(name, "killCursors")) {
        cmd_kill_cursors(r, rq, it);
    } else if (!strcmp(name, "insert")) {
        cmd_write(r, rq, "documents", false);
    } else if (!strcmp(name, "update")) {
        cmd_write(r, rq, "updates", true);
    } else if (!strcmp(name, "delete")) {
        cmd_write(r, rq, "deletes", false);
    } else if (!strcmp(name, "aggregate")) {
        cmd_aggregate(r, rq, it);
    } else if (!strcmp(name, "count")) {
        cmd_count(r, rq);
    } else if (!strcmp(name, "buildInfo") || !strcmp(name, "buildinfo")) {
        bson_t arr;
        BSON_APPEND_UTF8(r, "version", "7.0.0");
        bson_append_array_begin(r, "versionArray", -1, &arr);
        BSON_APPEND_INT32(&arr, "0", 7);
        BSON_APPEND_INT32(&arr, "1", 0);
        BSON_APPEND_INT32(&arr, "2", 0);
        BSON_APPEND_INT32(&arr, "3", 0);
        bson_append_array_end(r, &arr);
        BSON_APPEND_INT32(r, "maxBsonObjectSize", MAX_BSON_SIZE);
        BSON_APPEND_UTF8(r, "gitVersion", "stubd");
        BSON_APPEND_DOUBLE(r, "ok", 1.0);
    } else if (!strcmp(name, "getParameter")) {
        bson_t fcv;
        bson_append_document_begin(r, "featureCompatibilityVersion", -1, &fcv);
        BSON_APPEND_UTF8(&fcv, "version", "7.0");
        bson_append_document_end(r, &fcv);
        BSON_APPEND_DOUBLE(r, "ok", 1.0);
    } else if (!strcmp(name, "ping") || !strcmp(name, "endSessions") || !strcmp(name, "drop") ||
               !strcmp(name, "dropDatabase") || !strcmp(name, "create") ||
               !strcmp(name, "createIndexes") || !strcmp(name, "killAllSessions")) {
        BSON_APPEND_DOUBLE(r, "ok", 1.0);
    } else {
        char msg[160];
        snprintf(msg, sizeof msg, "no such command: '%.100s'", name);
        reply_error(r, 59, "CommandNotFound", msg);
    }
}

/* --- faults --------------------------------------------------------------------------------- */

/* Which fault (or -1) hits the next eligible command. Every-Nth faults tick on every command;
 * then one die roll picks among the probability faults, each owning its slice of [0, 1). */
static int fault_pick(void)
{
    int picked = -1, shared = 0;
    if (!g_opt.any_fault) return -1;
    for (int i = 0; i < F_COUNT; i++) {
        fault_t *f = &g_opt.faults[i];
        if (!f->enabled) continue;
        if (f->every) {
            if (++f->seen % f->every == 0 && picked < 0) picked = i;
        } else if (f->prob < 0) {
            shared++;
        }
    }
    if (picked >= 0) return picked;
    double u = rng_unit(), acc = 0;
    for (int i = 0; i < F_COUNT; i++) {
        fault_t *f = &g_opt.faults[i];
        if (!f->enabled || f->every) continue;
        acc += f->prob >= 0 ? f->prob : g_opt.fault_rate / shared;
        if (u < acc) return i;
    }
    return -1;
}

static const char *error_code_name(int32_t code)
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

/* The retryable-write codes of the retryable writes specification: a server labels them. */
static bool retryable_write_code(int32_t code)
{
    static const int32_t codes[] = { 6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436 };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (codes[i] == code) return true;
    return false;
}

/* --- messages ------------------------------------------------------------------------------- */

/* Frames the reply document for rq into `dst`. */
static void frame_reply(buf_t *dst, const request_t *rq, const bson_t *doc, int32_t response_to)
{
    const uint8_t *d = bson_get_data(doc);
    size_t hdr = rq->legacy ? 16 + 20 : 16 + 5;
    uint8_t h[36];
    put_le32(h, (uint32_t) (hdr + doc->len));
    put_le32(h + 4, (uint32_t) ++g_next_request_id);
    put_le32(h + 8, (uint32_t) response_to);
    if (rq->legacy) {
        put_le32(h + 12, OP_REPLY);
        put_le32(h + 16, 8); /* AwaitCapable, as servers set */
        put_le64(h + 20, 0); /* cursorID */
        put_le32(h + 28, 0); /* startingFrom */
        put_le32(h + 32, 1); /* numberReturned */
    } else {
        put_le32(h + 12, OP_MSG);
        put_le32(h + 16, 0);
        h[20] = 0; /* section kind 0: the body */
    }
    buf_reserve(dst, hdr + doc->len);
    memcpy(dst->p + dst->len, h, hdr);
    memcpy(dst->p + dst->len + hdr, d, doc->len);
    dst->len += hdr + doc->len;
}

/* Answers one parsed request: runs it, applies a fault, queues or schedules the bytes.
 * Returns false when the connection is done for (closed, or closing after a partial reply). */
/* What a message did to its connection. */
typedef enum { STEP_NEXT, STEP_CLOSING, STEP_CLOSED } step_t;

static step_t answer_reply(request_t *rq, bool hello, bool end_sessions, const uint8_t *lsid, bool *delayed);

static step_t answer(request_t *rq)
{
    conn_t *c = rq->conn;
    bson_iter_t it;
    if (!bson_iter_init(&it, &rq->body) || !bson_iter_next(&it)) {
        g_count.bad_messages++;
        conn_close(c);
        return STEP_CLOSED;
    }
    const char *name = bson_iter_key(&it);
    bool hello = is_hello(name);
    g_count.commands++;
    bson_reinit(&g_reply);
    /* A copy: the body may live in the connection's buffer, which a hang-up frees. */
    uint8_t lsid_copy[16];
    const uint8_t *lsid = srules_lsid(&rq->body);
    if (lsid) lsid = memcpy(lsid_copy, lsid, 16);
    if (srules_begin(&g_sessions, &rq->body, lsid)) run_command(&g_reply, rq, name, &it);
    else srules_too_old(&g_reply, &rq->body);
    bool delayed = false;
    step_t step = answer_reply(rq, hello, !strcmp(name, "endSessions"), lsid, &delayed);
    /* The session is busy until the reply goes out: now, or when its timer fires (run_timers). */
    if (!delayed) srules_end(&g_sessions, lsid);
    return step;
}

/* Sends (or schedules) the reply in g_reply, with the fault the dice pick. *delayed: the reply
 * waits in a timer, which ends the request's session use when it fires. */
static step_t answer_reply(request_t *rq, bool hello, bool end_sessions, const uint8_t *lsid, bool *delayed)
{
    conn_t *c = rq->conn;
    if (rq->no_reply) {
        g_count.no_reply++;
        return STEP_NEXT;
    }

    /* endSessions is spared too: a client sends it when it closes, best effort, and ignores its
     * result; a fault there would test nothing, and would shift every-Nth schedules and the
     * counts that tests compare with what their own operations met. */
    bool spared = (hello && !g_opt.fault_hello) || end_sessions;
    int fault = spared ? -1 : fault_pick();
    uint64_t delay = hello ? 0 : g_opt.delay_ns;
    int32_t response_to = rq->request_id;
    if (fault >= 0) g_opt.faults[fault].injected++;
    switch (fault) {
    case F_HANGUP_BEFORE:
        /* What was already answered still goes out (as a dying server's kernel would). */
        if (c->out_off < c->out.len || g_stage.len) {
            c->close_after = true;
            return STEP_CLOSING;
        }
        conn_close(c);
        return STEP_CLOSED;
    case F_SLOW: delay += g_opt.slow_ns; break;
    case F_WRONG_RESPONSE_TO:
        /* Negative: no client's requestID counter gets there. */
        response_to = (int32_t) (((uint32_t) rq->request_id ^ 0x5a5a5a5au) | 0x80000000u);
        break;
    case F_ERROR: {
        reply_error(&g_reply, g_opt.error_code, error_code_name(g_opt.error_code), "stubd: injected fault");
        bson_iter_t f;
        if (retryable_write_code(g_opt.error_code) && bson_iter_init_find(&f, &rq->body, "txnNumber")) {
            bson_t labels;
            bson_append_array_begin(&g_reply, "errorLabels", -1, &labels);
            BSON_APPEND_UTF8(&labels, "0", "RetryableWriteError");
            bson_append_array_end(&g_reply, &labels);
        }
        break;
    }
    default: break;
    }

    /* The bytes go to the stage (sent after this read) or, delayed, to a timer of their own. */
    buf_t own = { 0 };
    buf_t *dst = delay ? &own : &g_stage;
    size_t start = dst->len;
    bool close_after = false;
    if (fault == F_GARBAGE) {
        /* Half of the time all random (the length check catches it), half of the time behind a
         * true header of this reply (the body's parser must catch it). */
        size_t n = 16 + (size_t) (rng_next() % 497);
        buf_reserve(dst, n);
        for (size_t i = 0; i < n; i++) dst->p[dst->len + i] = (uint8_t) rng_next();
        if (rng_next() & 1) {
            put_le32(dst->p + dst->len, (uint32_t) n);
            put_le32(dst->p + dst->len + 4, (uint32_t) ++g_next_request_id);
            put_le32(dst->p + dst->len + 8, (uint32_t) response_to);
            put_le32(dst->p + dst->len + 12, rq->legacy ? OP_REPLY : OP_MSG);
        }
        dst->len += n;
    } else {
        frame_reply(dst, rq, &g_reply, response_to);
        if (fault == F_OVERSIZE) {
            put_le32(dst->p + start, OVERSIZE_LENGTH); /* the rest of the 100 MB never comes */
        } else if (fault == F_HANGUP_MID) {
            dst->len = start + (dst->len - start) / 2;
            close_after = true;
        }
    }
    g_count.replies++;
    if (delay) {
        pending_t t = { .due_ns = now_ns() + delay, .seq = ++g_timer_seq, .fd = c->fd, .serial = c->serial,
                        .close_after = close_after, .has_lsid = lsid != NULL, .bytes = own.p, .len = own.len };
        if (lsid) memcpy(t.lsid, lsid, 16);
        heap_push(t);
        *delayed = true;
        return STEP_NEXT;
    }
    if (close_after) {
        c->close_after = true;
        return STEP_CLOSING;
    }
    return STEP_NEXT;
}

/* Parses and answers one whole message of `len` bytes. */
static step_t handle_message(conn_t *c, const uint8_t *p, size_t len)
{
    request_t rq = { .conn = c, .request_id = (int32_t) get_le32(p + 4) };
    uint32_t opcode = get_le32(p + 12);
    g_count.messages++;
    if (opcode == OP_MSG && len >= 21) {
        uint32_t flags = get_le32(p + 16);
        size_t end = len, off = 20;
        bool have_body = false;
        if (flags & MSG_CHECKSUM_PRESENT) end -= 4;
        if ((flags & 0xffffu & ~(MSG_CHECKSUM_PRESENT | MSG_MORE_TO_COME)) != 0) goto bad; /* required bits */
        rq.no_reply = (flags & MSG_MORE_TO_COME) != 0;
        while (off < end) {
            uint8_t kind = p[off++];
            if (off + 4 > end) goto bad;
            uint32_t n = get_le32(p + off);
            if (n < 5 || n > end - off) goto bad;
            if (kind == 0 && !have_body) {
                if (!bson_init_static(&rq.body, p + off, n)) goto bad;
                have_body = true;
            } else if (kind == 1 && rq.nseqs < MAX_SEQS) {
                const uint8_t *id = p + off + 4, *stop = p + off + n;
                const uint8_t *nul = memchr(id, 0, (size_t) (stop - id));
                if (!nul) goto bad;
                seq_t *s = &rq.seqs[rq.nseqs++];
                s->id = (const char *) id;
                s->docs = nul + 1;
                s->len = (size_t) (stop - s->docs);
                for (size_t d = 0; d < s->len;) { /* each document's length, so counting is safe */
                    if (s->len - d < 5) goto bad;
                    uint32_t dl = get_le32(s->docs + d);
                    if (dl < 5 || dl > s->len - d) goto bad;
                    d += dl;
                }
            } else {
                goto bad;
            }
            off += n;
        }
        if (!have_body) goto bad;
        bson_iter_t db;
        if (bson_iter_init_find(&db, &rq.body, "$db") && BSON_ITER_HOLDS_UTF8(&db))
            bson_strncpy(rq.db, bson_iter_utf8(&db, NULL), sizeof rq.db);
        else
            bson_strncpy(rq.db, "admin", sizeof rq.db);
        return answer(&rq);
    }
    if (opcode == OP_QUERY && len > 20) {
        const uint8_t *ns = p + 20, *stop = p + len;
        const uint8_t *nul = memchr(ns, 0, (size_t) (stop - ns));
        if (!nul || stop - (nul + 1) < 8 + 5) goto bad;
        const uint8_t *doc = nul + 1 + 8;
        uint32_t n = get_le32(doc);
        if (n < 5 || n > (size_t) (stop - doc) || !bson_init_static(&rq.body, doc, n)) goto bad;
        bson_iter_t q;
        /* A wrapped query ({$query: {...}, $readPreference: ...}) carries the command inside. */
        if (bson_iter_init_find(&q, &rq.body, "$query") && BSON_ITER_HOLDS_DOCUMENT(&q)) {
            const uint8_t *qd;
            uint32_t ql;
            bson_iter_document(&q, &ql, &qd);
            if (!bson_init_static(&rq.body, qd, ql)) goto bad;
        }
        size_t dblen = (size_t) (nul - ns);
        const char *dot = memchr(ns, '.', dblen);
        if (dot) dblen = (size_t) ((const uint8_t *) dot - ns);
        if (dblen >= sizeof rq.db) dblen = sizeof rq.db - 1;
        memcpy(rq.db, ns, dblen);
        rq.db[dblen] = '\0';
        rq.legacy = true;
        return answer(&rq);
    }
bad:
    /* OP_COMPRESSED (never offered), the removed legacy opcodes and malformed frames. */
    g_count.bad_messages++;
    conn_close(c);
    return STEP_CLOSED;
}

/* Consumes bytes read from c; returns false when the connection was closed. */
static bool conn_consume(conn_t *c, const uint8_t *data, size_t n)
{
    if (c->close_after) return true; /* hanging up: what the client still says is ignored */
    bool from_in = c->in.len > 0;
    if (from_in) {
        buf_append(&c->in, data, n);
        data = c->in.p;
        n = c->in.len;
    }
    g_stage.len = 0;
    size_t off = 0;
    while (n - off >= 4) {
        uint32_t len = get_le32(data + off);
        if (len < 16 || len > MAX_MESSAGE_SIZE) {
            g_count.bad_messages++;
            conn_close(c);
            return false;
        }
        if (n - off < len) break;
        step_t st = handle_message(c, data + off, len);
        if (st == STEP_CLOSED) return false;
        if (st == STEP_CLOSING) {
            /* Send what was answered before the fault, then close; the rest is dropped. */
            buf_free(&c->in);
            if (g_stage.len) return conn_send(c, g_stage.p, g_stage.len);
            return conn_flush(c);
        }
        off += len;
    }
    if (from_in) {
        memmove(c->in.p, c->in.p + off, n - off);
        c->in.len = n - off;
        if (c->in.len == 0) buf_free(&c->in);
    } else if (off < n) {
        buf_append(&c->in, data + off, n - off);
    }
    if (g_stage.len) return conn_send(c, g_stage.p, g_stage.len);
    return true;
}

static void conn_readable(conn_t *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, g_rbuf, READ_CHUNK, 0);
        if (n > 0) {
            if (!conn_consume(c, g_rbuf, (size_t) n)) return;
            if ((size_t) n < READ_CHUNK) return; /* level-triggered: the rest wakes us again */
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        conn_close(c);
        return;
    }
}

static void accept_all(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE)
                fprintf(stderr, "stubd: accept: %s (open %" PRIu64 ")\n", strerror(errno), g_count.open);
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if ((size_t) fd >= g_conns_cap) {
            size_t cap = g_conns_cap ? g_conns_cap : 1024;
            while (cap <= (size_t) fd) cap *= 2;
            g_conns = realloc(g_conns, cap * sizeof *g_conns);
            if (!g_conns) abort();
            memset(g_conns + g_conns_cap, 0, (cap - g_conns_cap) * sizeof *g_conns);
            g_conns_cap = cap;
        }
        conn_t *c = calloc(1, sizeof *c);
        if (!c) abort();
        c->fd = fd;
        c->serial = ++g_serial;
        c->id = ++g_next_conn_id;
        g_conns[fd] = c;
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
        if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            conn_close(c);
            continue;
        }
        g_count.accepted++;
        if (++g_count.open > g_count.max_open) g_count.max_open = g_count.open;
    }
}

static void run_timers(void)
{
    uint64_t now = now_ns();
    while (g_heap_len && g_heap[0].due_ns <= now) {
        pending_t t = heap_pop();
        conn_t *c = (size_t) t.fd < g_conns_cap ? g_conns[t.fd] : NULL;
        srules_end(&g_sessions, t.has_lsid ? t.lsid : NULL); /* done before the reply goes out */
        if (c && c->serial == t.serial) {
            if (t.close_after) c->close_after = true;
            conn_send(c, t.bytes, t.len);
        }
        free(t.bytes);
    }
}

/* --- stats, options, main ------------------------------------------------------------------- */

static void print_stats(const char *event)
{
    char line[2048];
    int n = snprintf(line, sizeof line,
                     "{\"event\":\"%s\",\"port\":%d,\"uptime_s\":%.3f,\"seed\":%" PRIu64
                     ",\"connections_accepted\":%" PRIu64 ",\"connections_open\":%" PRIu64
                     ",\"connections_max\":%" PRIu64 ",\"messages\":%" PRIu64 ",\"commands\":%" PRIu64
                     ",\"replies\":%" PRIu64 ",\"no_reply\":%" PRIu64 ",\"bad_messages\":%" PRIu64
                     ",\"cursors_opened\":%" PRIu64 ",\"cursors_open\":%" PRIu64
                     ",\"sessions\":{\"distinct\":%" PRIu64 ",\"overlaps\":%" PRIu64
                     ",\"transaction_too_old\":%" PRIu64 ",\"with_lsid\":%" PRIu64 ",\"without_lsid\":%" PRIu64
                     ",\"in_progress_max\":%" PRIu64 "},\"faults\":{",
                     event, g_opt.port, (double) (now_ns() - g_count.start_ns) / 1e9, g_opt.seed,
                     g_count.accepted, g_count.open, g_count.max_open, g_count.messages, g_count.commands,
                     g_count.replies, g_count.no_reply, g_count.bad_messages, g_count.cursors_opened,
                     g_count.cursors_open, g_sessions.distinct, g_sessions.overlaps, g_sessions.too_old,
                     g_sessions.with_lsid, g_sessions.without_lsid, g_sessions.busy_peak);
    uint64_t total = 0;
    for (int i = 0; i < F_COUNT; i++) {
        total += g_opt.faults[i].injected;
        n += snprintf(line + n, sizeof line - (size_t) n, "\"%s\":%" PRIu64 ",", g_fault_names[i],
                      g_opt.faults[i].injected);
    }
    n += snprintf(line + n, sizeof line - (size_t) n, "\"total\":%" PRIu64 "}}\n", total);
    if (!g_opt.stats_path) {
        fputs(line, stderr);
        fflush(stderr);
        return;
    }
    /* Replaced whole (write, then rename) so a reader never sees half a line. */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", g_opt.stats_path);
    FILE *f = fopen(tmp, "w");
    if (!f || fputs(line, f) < 0 || fclose(f) != 0 || rename(tmp, g_opt.stats_path) != 0)
        fprintf(stderr, "stubd: writing %s: %s\n", g_opt.stats_path, strerror(errno));
}

static void usage(FILE *out)
{
    fputs("usage: stubd [options]\n"
          "  --port N            listen port (0: pick a free one); the first line of stdout is the port\n"
          "  --bind ADDR         listen address (default 127.0.0.1)\n"
          "  --docs N            documents in every collection's cursor (default 100)\n"
          "  --delay-us N        delay every reply but hello's by N microseconds\n"
          "  --stats FILE        write the JSON counters there instead of stderr\n"
          "  --seed N            seed of the fault dice (default: from the clock)\n"
          "faults, for commands other than hello; RATE is a probability (0.01) or @N (every Nth):\n"
          "  --fault-hangup-before[=RATE]   close instead of replying\n"
          "  --fault-hangup-mid[=RATE]      write half the reply, then close\n"
          "  --fault-garbage[=RATE]         send random bytes instead of the reply\n"
          "  --fault-oversize[=RATE]        a reply whose length prefix says 100 MB\n"
          "  --fault-wrong-response-to[=RATE]  a reply whose responseTo matches nothing\n"
          "  --fault-slow MS[:RATE]         reply MS milliseconds late\n"
          "  --fault-error CODE[:RATE]      reply {ok: 0, code: CODE, codeName}\n"
          "  --fault-rate P      total probability shared by the faults given no RATE (default 0.05)\n"
          "  --fault-hello       hello commands get faults too (not delays)\n"
          "role (default: a standalone with sessions):\n"
          "  --mongos            say msg: isdbgrid, as a mongos does\n"
          "  --replset NAME      say it is the primary of replica set NAME (hosts: itself)\n"
          "sessions are held to MongoDB's rules: overlaps on one lsid are counted, an older\n"
          "txnNumber is refused with TransactionTooOld (225); see \"sessions\" in the counters\n",
          out);
}

static bool parse_rate(fault_t *f, const char *s)
{
    char *end;
    f->enabled = true;
    f->prob = -1;
    f->every = 0;
    if (!s || !*s) return true;
    if (*s == '@') {
        unsigned long long n = strtoull(s + 1, &end, 10);
        if (*end || n == 0) return false;
        f->every = n;
        return true;
    }
    double p = strtod(s, &end);
    if (*end || p < 0 || p > 1) return false;
    f->prob = p;
    return true;
}

static bool parse_options(int argc, char **argv)
{
    enum { O_PORT = 256, O_BIND, O_DOCS, O_DELAY, O_STATS, O_SEED, O_RATE, O_SLOW, O_ERROR, O_HELLO, O_MONGOS, O_REPLSET,
           O_FAULT0 };
    static const struct option opts[] = {
        { "port", required_argument, NULL, O_PORT },
        { "bind", required_argument, NULL, O_BIND },
        { "docs", required_argument, NULL, O_DOCS },
        { "delay-us", required_argument, NULL, O_DELAY },
        { "stats", required_argument, NULL, O_STATS },
        { "seed", required_argument, NULL, O_SEED },
        { "fault-rate", required_argument, NULL, O_RATE },
        { "fault-slow", required_argument, NULL, O_SLOW },
        { "fault-error", required_argument, NULL, O_ERROR },
        { "fault-hello", no_argument, NULL, O_HELLO },
        { "mongos", no_argument, NULL, O_MONGOS },
        { "replset", required_argument, NULL, O_REPLSET },
        { "fault-hangup-before", optional_argument, NULL, O_FAULT0 + F_HANGUP_BEFORE },
        { "fault-hangup-mid", optional_argument, NULL, O_FAULT0 + F_HANGUP_MID },
        { "fault-garbage", optional_argument, NULL, O_FAULT0 + F_GARBAGE },
        { "fault-oversize", optional_argument, NULL, O_FAULT0 + F_OVERSIZE },
        { "fault-wrong-response-to", optional_argument, NULL, O_FAULT0 + F_WRONG_RESPONSE_TO },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bool seeded = false;
    int o;
    char *end;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case O_PORT:
            g_opt.port = (int) strtol(optarg, &end, 10);
            if (*end || g_opt.port < 0 || g_opt.port > 65535) goto bad;
            break;
        case O_BIND: g_opt.bind = optarg; break;
        case O_DOCS: g_opt.docs = strtoll(optarg, &end, 10); if (*end || g_opt.docs < 0) goto bad; break;
        case O_DELAY: g_opt.delay_ns = strtoull(optarg, &end, 10) * 1000u; if (*end) goto bad; break;
        case O_STATS: g_opt.stats_path = optarg; break;
        case O_HELLO: g_opt.fault_hello = true; break;
        case O_MONGOS: g_opt.mongos = true; break;
        case O_REPLSET: g_opt.set_name = optarg; break;
        case O_SEED: g_opt.seed = strtoull(optarg, &end, 0); seeded = true; if (*end) goto bad; break;
        case O_RATE:
            g_opt.fault_rate = strtod(optarg, &end);
            if (*end || g_opt.fault_rate < 0 || g_opt.fault_rate > 1) goto bad;
            break;
        case O_SLOW:
        case O_ERROR: {
            long long v = strtoll(optarg, &end, 10);
            if (end == optarg || (*end && *end != ':')) goto bad;
            fault_t *f = &g_opt.faults[o == O_SLOW ? F_SLOW : F_ERROR];
            if (!parse_rate(f, *end ? end + 1 : NULL)) goto bad;
            if (o == O_SLOW) g_opt.slow_ns = (uint64_t) (v < 0 ? 0 : v) * 1000000u;
            else g_opt.error_code = (int32_t) v;
            break;
        }
        case 'h': usage(stdout); exit(0);
        default:
            if (o >= O_FAULT0 && o < O_FAULT0 + F_COUNT) {
                if (!parse_rate(&g_opt.faults[o - O_FAULT0], optarg)) goto bad;
                break;
            }
            usage(stderr);
            return false;
        }
    }
    if (optind < argc) goto bad;
    if (g_opt.mongos && g_opt.set_name) {
        fprintf(stderr, "stubd: --mongos and --replset exclude each other\n");
        return false;
    }
    for (int i = 0; i < F_COUNT; i++) g_opt.any_fault |= g_opt.faults[i].enabled;
    if (!seeded) g_opt.seed = now_ns() ^ ((uint64_t) getpid() << 32);
    g_rng = g_opt.seed ? g_opt.seed : 0x9e3779b97f4a7c15ull;
    return true;
bad:
    fprintf(stderr, "stubd: bad option or value: %s\n", argv[optind > 1 ? optind - 1 : 1]);
    usage(stderr);
    return false;
}

/* 10,000+ connections need more descriptors than the usual soft limit of 1024. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int listen_on(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) g_opt.port) };
    if (inet_pton(AF_INET, g_opt.bind, &sa.sin_addr) != 1) {
        fprintf(stderr, "stubd: --bind %s: not an IPv4 address\n", g_opt.bind);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* restart on the same port at once */
    if (bind(fd, (struct sockaddr *) &sa, sizeof sa) != 0 || listen(fd, 4096) != 0) {
        fprintf(stderr, "stubd: %s:%d: %s\n", g_opt.bind, g_opt.port, strerror(errno));
        close(fd);
        return -1;
    }
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *) &sa, &sl);
    g_opt.port = ntohs(sa.sin_port);
    return fd;
}

int main(int argc, char **argv)
{
    if (!parse_options(argc, argv)) return 2;
    raise_fd_limit();
    g_count.start_ns = now_ns();
    int lfd = listen_on();
    if (lfd < 0) return 1;

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGUSR1);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    g_epfd = epoll_create1(EPOLL_CLOEXEC);
    g_rbuf = malloc(READ_CHUNK);
    if (sfd < 0 || g_epfd < 0 || !g_rbuf) {
        perror("stubd");
        return 1;
    }
    bson_init(&g_reply);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
    epoll_ctl(g_epfd, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.fd = sfd;
    epoll_ctl(g_epfd, EPOLL_CTL_ADD, sfd, &ev);

    printf("%d\n", g_opt.port);
    fflush(stdout);

    struct epoll_event events[256];
    for (;;) {
        int timeout = -1;
        if (g_heap_len) {
            uint64_t now = now_ns(), due = g_heap[0].due_ns;
            timeout = due <= now ? 0 : (int) ((due - now + 999999) / 1000000);
        }
        int n = epoll_wait(g_epfd, events, 256, timeout);
        if (n < 0 && errno != EINTR) {
            perror("stubd: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                accept_all(lfd);
            } else if (fd == sfd) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) == (ssize_t) sizeof si) {
                    if (si.ssi_signo == SIGUSR1) {
                        print_stats("stats");
                    } else {
                        print_stats("exit");
                        return 0;
                    }
                }
            } else {
                conn_t *c = (size_t) fd < g_conns_cap ? g_conns[fd] : NULL;
                if (!c) continue; /* closed earlier in this batch */
                if (events[i].events & EPOLLOUT) {
                    if (!conn_flush(c)) continue;
                }
                if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) conn_readable(c);
            }
        }
        if (g_heap_len) run_timers();
    }
}
