/* srv: the scripted server's loop, framing, connections, timers, sessions and faults (srv.h).
 *
 * One epoll loop (level-triggered), non-blocking sockets, one read per wake-up into a shared
 * buffer; a connection keeps its own input or output buffer only while a message or a reply is
 * partial, so an idle connection costs a small struct and a request allocates nothing (the
 * benchmark runs this loop: it must stay cheap). Replies to the messages of one read go out in
 * one write. Delayed replies sit in a min-heap of timers that bounds epoll_wait's timeout; a
 * connection's replies keep their order (a reply never overtakes a delayed one before it). */
#include "srv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define OP_REPLY 1
#define OP_QUERY 2004
#define OP_MSG 2013
#define MSG_CHECKSUM_PRESENT (1u << 0)
#define MSG_MORE_TO_COME (1u << 1)
#define READ_CHUNK (256 * 1024)
#define OVERSIZE_LENGTH (100 * 1024 * 1024)
/* epoll data of the fds that are no connection (connections use their fd, which is >= 0) */
#define TAG_WAKE (-1)
#define TAG_EXTRA (-2)
#define TAG_LISTENER0 (-100)

const char *const srv_fault_names[SRV_F_COUNT] = {
    "hangup_before", "hangup_mid", "garbage", "oversize", "wrong_response_to", "slow", "error",
};

/* --- buffers and little helpers ------------------------------------------------------------- */

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
        fprintf(stderr, "srv: out of memory\n");
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

uint32_t srv_get_le32(const uint8_t *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

uint64_t srv_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* --- the server ------------------------------------------------------------------------------ */

typedef struct {
    int fd;
    uint32_t serial;      /* tells a reused fd apart in pending timers */
    int32_t id;           /* the hello's connectionId */
    int listener;
    bool want_write;      /* EPOLLOUT is registered */
    bool close_after;     /* close once `out` is flushed (a hang-up in the middle of a reply) */
    uint64_t last_due_ns; /* the latest delayed reply's due time: later replies wait for it */
    buf_t in;             /* only while a message is partial */
    buf_t out;            /* only while a reply could not be written whole */
    size_t out_off;
} conn_t;

typedef struct {
    uint64_t due_ns;
    uint64_t seq; /* keeps replies of equal due time in order */
    int fd;
    uint32_t serial;
    bool close_after;
    bool session;  /* the request is in the session rules' count until this reply goes out */
    bool has_lsid; /* and its session is busy */
    uint8_t lsid[16];
    uint8_t *bytes;
    size_t len;
} pending_t;

struct srv {
    srv_config_t cfg;
    srv_command_fn fn;
    void *ud;
    int epfd, wakefd;
    int lfds[SRV_MAX_LISTENERS];
    uint16_t ports[SRV_MAX_LISTENERS];
    int nlisteners;
    conn_t **conns; /* indexed by fd */
    size_t conns_cap;
    uint32_t serial;
    int32_t next_conn_id, next_request_id;
    uint8_t *rbuf;
    buf_t stage; /* replies to the messages of one read, sent with one write */
    srules_t sessions;
    bson_t reply;
    srv_counts_t count;
    uint64_t rng;
    pending_t *heap;
    size_t heap_len, heap_cap;
    uint64_t timer_seq;
    bool any_fault;
    volatile bool quit;
    bool threaded;
    pthread_t thread;
    pthread_mutex_t mu;
};

void srv_lock(srv_t *s)
{
    if (s->threaded) pthread_mutex_lock(&s->mu);
}

void srv_unlock(srv_t *s)
{
    if (s->threaded) pthread_mutex_unlock(&s->mu);
}

const srv_counts_t *srv_counts(const srv_t *s) { return &s->count; }
const srules_t *srv_sessions(const srv_t *s) { return &s->sessions; }
srv_config_t *srv_config(srv_t *s) { return &s->cfg; }
uint16_t srv_port(const srv_t *s, int listener) { return s->ports[listener]; }

/* xorshift64*: the fault dice must be reproducible from the seed, and cheap. */
static uint64_t rng_next(srv_t *s)
{
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * 0x2545f4914f6cdd1dull;
}

static double rng_unit(srv_t *s) { return (double) (rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

srv_t *srv_new(const srv_config_t *cfg, srv_command_fn fn, void *ud)
{
    srv_t *s = calloc(1, sizeof *s);
    if (!s) abort();
    if (cfg) s->cfg = *cfg;
    if (s->cfg.max_message <= 0) s->cfg.max_message = SRV_MAX_MESSAGE_SIZE;
    for (int i = 0; i < SRV_F_COUNT; i++) s->any_fault |= s->cfg.faults[i].enabled;
    s->rng = s->cfg.seed ? s->cfg.seed : 0x9e3779b97f4a7c15ull;
    s->fn = fn;
    s->ud = ud;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    s->rbuf = malloc(READ_CHUNK);
    if (s->epfd < 0 || s->wakefd < 0 || !s->rbuf) abort();
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = TAG_WAKE};
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wakefd, &ev);
    pthread_mutex_init(&s->mu, NULL);
    bson_init(&s->reply);
    s->count.start_ns = srv_now_ns();
    return s;
}

int srv_listen(srv_t *s, const char *addr, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
    if (s->nlisteners == SRV_MAX_LISTENERS || inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        errno = EINVAL;
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* restart on the same port at once */
    if (bind(fd, (struct sockaddr *) &sa, sizeof sa) != 0 || listen(fd, 4096) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *) &sa, &sl);
    int i = s->nlisteners++;
    s->lfds[i] = fd;
    s->ports[i] = ntohs(sa.sin_port);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = TAG_LISTENER0 - i};
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
    return i;
}

/* --- timers ---------------------------------------------------------------------------------- */

static bool timer_less(const pending_t *a, const pending_t *b)
{
    return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->seq < b->seq);
}

static void heap_push(srv_t *s, pending_t t)
{
    if (s->heap_len == s->heap_cap) {
        s->heap_cap = s->heap_cap ? s->heap_cap * 2 : 256;
        s->heap = realloc(s->heap, s->heap_cap * sizeof *s->heap);
        if (!s->heap) abort();
    }
    size_t i = s->heap_len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_less(&t, &s->heap[parent])) break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = t;
}

static pending_t heap_pop(srv_t *s)
{
    pending_t top = s->heap[0], last = s->heap[--s->heap_len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->heap_len) break;
        if (c + 1 < s->heap_len && timer_less(&s->heap[c + 1], &s->heap[c])) c++;
        if (!timer_less(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->heap_len) s->heap[i] = last;
    return top;
}

/* --- connections ----------------------------------------------------------------------------- */

static void conn_close(srv_t *s, conn_t *c)
{
    close(c->fd); /* also leaves the epoll set */
    s->conns[c->fd] = NULL;
    buf_free(&c->in);
    buf_free(&c->out);
    free(c);
    s->count.open--;
}

void srv_set_fault(srv_t *s, srv_fault_kind_t kind, double prob, uint64_t every)
{
    srv_fault_t *f = &s->cfg.faults[kind];
    f->enabled = every > 0 || prob >= 0;
    f->prob = prob;
    f->every = every;
    f->seen = 0;
    s->any_fault = false;
    for (int i = 0; i < SRV_F_COUNT; i++) s->any_fault |= s->cfg.faults[i].enabled;
}

void srv_reset_connections(srv_t *s)
{
    for (size_t fd = 0; fd < s->conns_cap; fd++) {
        conn_t *c = s->conns[fd];
        if (!c) continue;
        struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* close() then aborts with RST */
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        conn_close(s, c);
    }
}

static void conn_want_write(srv_t *s, conn_t *c, bool on)
{
    if (c->want_write == on) return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.fd = c->fd};
    epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_write = on;
}

/* Writes what is queued; returns false when the connection was closed. */
static bool conn_flush(srv_t *s, conn_t *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t) n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_want_write(s, c, true);
            return true;
        }
        conn_close(s, c);
        return false;
    }
    buf_free(&c->out); /* an idle connection holds no output buffer */
    c->out_off = 0;
    conn_want_write(s, c, false);
    if (c->close_after) {
        conn_close(s, c);
        return false;
    }
    return true;
}

/* Sends bytes after whatever is already queued; the common case writes straight from `p`. */
static bool conn_send(srv_t *s, conn_t *c, const uint8_t *p, size_t len)
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
            conn_close(s, c);
            return false;
        }
        if (len == 0) {
            if (c->close_after) {
                conn_close(s, c);
                return false;
            }
            return true;
        }
    }
    buf_append(&c->out, p, len);
    return conn_flush(s, c);
}

/* --- replies and faults ---------------------------------------------------------------------- */

/* Which fault (or -1) the dice give the next eligible command. Every-Nth faults tick on every
 * command; then one die roll picks among the probability faults, each owning its slice of [0, 1). */
static int fault_pick(srv_t *s)
{
    int picked = -1, shared = 0;
    for (int i = 0; i < SRV_F_COUNT; i++) {
        srv_fault_t *f = &s->cfg.faults[i];
        if (!f->enabled) continue;
        if (f->every) {
            if (++f->seen % f->every == 0 && picked < 0) picked = i;
        } else if (f->prob < 0) {
            shared++;
        }
    }
    if (picked >= 0) return picked;
    double u = rng_unit(s), acc = 0;
    for (int i = 0; i < SRV_F_COUNT; i++) {
        srv_fault_t *f = &s->cfg.faults[i];
        if (!f->enabled || f->every) continue;
        acc += f->prob >= 0 ? f->prob : s->cfg.fault_rate / shared;
        if (u < acc) return i;
    }
    return -1;
}

/* Frames the reply document for rq into `dst`. */
static void frame_reply(srv_t *s, buf_t *dst, const srv_req_t *rq, const bson_t *doc, int32_t response_to)
{
    const uint8_t *d = bson_get_data(doc);
    size_t hdr = rq->legacy ? 16 + 20 : 16 + 5;
    uint8_t h[36];
    put_le32(h, (uint32_t) (hdr + doc->len));
    put_le32(h + 4, (uint32_t) ++s->next_request_id);
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

/* What a message did to its connection. */
typedef enum { STEP_NEXT, STEP_CLOSING, STEP_CLOSED } step_t;

/* Sends (or schedules) the reply in s->reply, with the handler's or the dice's fault. Returns
 * with *delayed set when the reply waits in a timer, which ends the request's session use. */
static step_t answer_reply(srv_t *s, conn_t *c, srv_req_t *rq, bool session, const uint8_t *lsid, bool *delayed)
{
    if (rq->no_reply) {
        s->count.no_reply++;
        return STEP_NEXT;
    }
    /* endSessions is spared: a client sends it when it closes, best effort, and ignores its
     * result; a fault there would test nothing, and would shift every-Nth schedules and the
     * counts that tests compare with what their own operations met. */
    int fault = rq->fault;
    if (fault < 0 && s->any_fault && (!rq->hello || s->cfg.fault_hello) && strcmp(rq->name, "endSessions") != 0)
        fault = fault_pick(s);
    uint64_t delay = (rq->hello ? 0 : s->cfg.delay_ns) + rq->delay_ns;
    int32_t response_to = rq->request_id;
    if (fault >= 0) s->cfg.faults[fault].injected++;
    switch (fault) {
    case SRV_F_HANGUP_BEFORE:
        /* What was already answered still goes out (as a dying server's kernel would). */
        if (c->last_due_ns) { /* behind a delayed reply: the hang-up waits for it */
            pending_t t = {.due_ns = c->last_due_ns, .seq = ++s->timer_seq, .fd = c->fd, .serial = c->serial,
                           .close_after = true};
            heap_push(s, t);
            return STEP_NEXT;
        }
        if (c->out_off < c->out.len || s->stage.len) {
            c->close_after = true;
            return STEP_CLOSING;
        }
        conn_close(s, c);
        return STEP_CLOSED;
    case SRV_F_SLOW: delay += s->cfg.slow_ns; break;
    case SRV_F_WRONG_RESPONSE_TO:
        /* Negative: no client's requestID counter gets there. */
        response_to = (int32_t) (((uint32_t) rq->request_id ^ 0x5a5a5a5au) | 0x80000000u);
        break;
    case SRV_F_ERROR: {
        srv_reply_error(&s->reply, s->cfg.error_code, srv_code_name(s->cfg.error_code), "stubd: injected fault");
        bson_iter_t f;
        if (srv_retryable_write_code(s->cfg.error_code) && bson_iter_init_find(&f, &rq->body, "txnNumber")) {
            bson_t labels;
            bson_append_array_begin(&s->reply, "errorLabels", -1, &labels);
            BSON_APPEND_UTF8(&labels, "0", "RetryableWriteError");
            bson_append_array_end(&s->reply, &labels);
        }
        break;
    }
    default: break;
    }

    /* A reply never overtakes a delayed one on its connection. */
    uint64_t due = 0;
    if (delay || c->last_due_ns) {
        uint64_t now = srv_now_ns();
        due = now + delay;
        if (c->last_due_ns > due) due = c->last_due_ns;
        if (due <= now) due = 0, c->last_due_ns = 0;
    }
    /* The bytes go to the stage (sent after this read) or, delayed, to a timer of their own. */
    buf_t own = {0};
    buf_t *dst = due ? &own : &s->stage;
    size_t start = dst->len;
    bool close_after = false;
    if (fault == SRV_F_GARBAGE) {
        size_t n = 16 + (size_t) (rng_next(s) % 497);
        buf_reserve(dst, n);
        uint8_t *g = dst->p + dst->len;
        if (rq->fault >= 0) {
            /* scripted: a true header of this reply and a body that is no message */
            memset(g, 0xab, n);
            put_le32(g, (uint32_t) n);
            put_le32(g + 4, (uint32_t) ++s->next_request_id);
            put_le32(g + 8, (uint32_t) response_to);
            put_le32(g + 12, rq->legacy ? OP_REPLY : OP_MSG);
        } else {
            /* Half of the time all random (the length check catches it), half of the time
             * behind a true header of this reply (the body's parser must catch it). */
            for (size_t i = 0; i < n; i++) g[i] = (uint8_t) rng_next(s);
            if (rng_next(s) & 1) {
                put_le32(g, (uint32_t) n);
                put_le32(g + 4, (uint32_t) ++s->next_request_id);
                put_le32(g + 8, (uint32_t) response_to);
                put_le32(g + 12, rq->legacy ? OP_REPLY : OP_MSG);
            }
        }
        dst->len += n;
    } else {
        frame_reply(s, dst, rq, &s->reply, response_to);
        if (fault == SRV_F_OVERSIZE) {
            put_le32(dst->p + start, OVERSIZE_LENGTH); /* the rest of the 100 MB never comes */
        } else if (fault == SRV_F_HANGUP_MID) {
            dst->len = start + (dst->len - start) / 2;
            close_after = true;
        }
    }
    s->count.replies++;
    if (due) {
        pending_t t = {.due_ns = due, .seq = ++s->timer_seq, .fd = c->fd, .serial = c->serial,
                       .close_after = close_after, .session = session, .has_lsid = lsid != NULL,
                       .bytes = own.p, .len = own.len};
        if (lsid) memcpy(t.lsid, lsid, 16);
        heap_push(s, t);
        c->last_due_ns = due;
        *delayed = true;
        return STEP_NEXT;
    }
    if (close_after) {
        c->close_after = true;
        return STEP_CLOSING;
    }
    return STEP_NEXT;
}

static bool is_hello(const char *name)
{
    return !strcmp(name, "hello") || !strcasecmp(name, "isMaster");
}

/* Runs one parsed request and answers it. */
static step_t answer(srv_t *s, conn_t *c, srv_req_t *rq)
{
    if (!bson_iter_init(&rq->first, &rq->body) || !bson_iter_next(&rq->first)) {
        s->count.bad_messages++;
        conn_close(s, c);
        return STEP_CLOSED;
    }
    rq->name = bson_iter_key(&rq->first);
    rq->hello = is_hello(rq->name);
    rq->fault = -1;
    s->count.commands++;
    bson_reinit(&s->reply);
    /* Session rules for every command but hello. A copy of the lsid: the body may live in the
     * connection's buffer, which a hang-up frees. */
    uint8_t lsid_copy[16];
    const uint8_t *lsid = NULL;
    bool ok = true;
    if (!rq->hello) {
        lsid = srules_lsid(&rq->body);
        if (lsid) lsid = memcpy(lsid_copy, lsid, 16);
        ok = srules_begin(&s->sessions, &rq->body, lsid);
    }
    rq->refused = !ok;
    if (!ok) srules_too_old(&s->reply, &rq->body);
    s->fn(s->ud, s, rq, &s->reply);
    bool delayed = false;
    step_t step = answer_reply(s, c, rq, !rq->hello, lsid, &delayed);
    /* The session is busy until the reply goes out: now, or when its timer fires (run_timers). */
    if (!rq->hello && !delayed) srules_end(&s->sessions, lsid);
    return step;
}

/* Parses and answers one whole message of `len` bytes. */
static step_t handle_message(srv_t *s, conn_t *c, const uint8_t *p, size_t len)
{
    srv_req_t rq;
    rq.listener = c->listener;
    rq.conn_id = c->id;
    rq.request_id = (int32_t) srv_get_le32(p + 4);
    rq.legacy = rq.no_reply = false;
    rq.nseqs = 0;
    rq.delay_ns = 0;
    uint32_t opcode = srv_get_le32(p + 12);
    s->count.messages++;
    if (opcode == OP_MSG && len >= 21) {
        uint32_t flags = srv_get_le32(p + 16);
        size_t end = len, off = 20;
        bool have_body = false;
        if (flags & MSG_CHECKSUM_PRESENT) end -= 4;
        if ((flags & 0xffffu & ~(MSG_CHECKSUM_PRESENT | MSG_MORE_TO_COME)) != 0) goto bad; /* required bits */
        rq.no_reply = (flags & MSG_MORE_TO_COME) != 0;
        while (off < end) {
            uint8_t kind = p[off++];
            if (off + 4 > end) goto bad;
            uint32_t n = srv_get_le32(p + off);
            if (n < 5 || n > end - off) goto bad;
            if (kind == 0 && !have_body) {
                if (!bson_init_static(&rq.body, p + off, n)) goto bad;
                have_body = true;
            } else if (kind == 1 && rq.nseqs < SRV_MAX_SEQS) {
                const uint8_t *id = p + off + 4, *stop = p + off + n;
                const uint8_t *nul = memchr(id, 0, (size_t) (stop - id));
                if (!nul) goto bad;
                srv_seq_t *q = &rq.seqs[rq.nseqs++];
                q->id = (const char *) id;
                q->docs = nul + 1;
                q->len = (size_t) (stop - q->docs);
                for (size_t d = 0; d < q->len;) { /* each document's length, so counting is safe */
                    if (q->len - d < 5) goto bad;
                    uint32_t dl = srv_get_le32(q->docs + d);
                    if (dl < 5 || dl > q->len - d) goto bad;
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
        return answer(s, c, &rq);
    }
    if (opcode == OP_QUERY && len > 20) {
        const uint8_t *ns = p + 20, *stop = p + len;
        const uint8_t *nul = memchr(ns, 0, (size_t) (stop - ns));
        if (!nul || stop - (nul + 1) < 8 + 5) goto bad;
        const uint8_t *doc = nul + 1 + 8;
        uint32_t n = srv_get_le32(doc);
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
        return answer(s, c, &rq);
    }
bad:
    /* OP_COMPRESSED (never offered), the removed legacy opcodes and malformed frames. */
    s->count.bad_messages++;
    conn_close(s, c);
    return STEP_CLOSED;
}

/* Consumes bytes read from c; returns false when the connection was closed. */
static bool conn_consume(srv_t *s, conn_t *c, const uint8_t *data, size_t n)
{
    if (c->close_after) return true; /* hanging up: what the client still says is ignored */
    bool from_in = c->in.len > 0;
    if (from_in) {
        buf_append(&c->in, data, n);
        data = c->in.p;
        n = c->in.len;
    }
    s->stage.len = 0;
    size_t off = 0;
    while (n - off >= 4) {
        uint32_t len = srv_get_le32(data + off);
        if (len > s->count.longest_message) s->count.longest_message = len;
        if (len < 16 || len > (uint32_t) s->cfg.max_message) {
            /* MongoDB closes the connection */
            if (len >= 16) s->count.oversize_messages++;
            else s->count.bad_messages++;
            conn_close(s, c);
            return false;
        }
        if (n - off < len) break;
        step_t st = handle_message(s, c, data + off, len);
        if (st == STEP_CLOSED) return false;
        if (st == STEP_CLOSING) {
            /* Send what was answered before the fault, then close; the rest is dropped. */
            buf_free(&c->in);
            if (s->stage.len) return conn_send(s, c, s->stage.p, s->stage.len);
            return conn_flush(s, c);
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
    if (s->stage.len) return conn_send(s, c, s->stage.p, s->stage.len);
    return true;
}

static void conn_readable(srv_t *s, conn_t *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, s->rbuf, READ_CHUNK, 0);
        if (n > 0) {
            if (!conn_consume(s, c, s->rbuf, (size_t) n)) return;
            if ((size_t) n < READ_CHUNK) return; /* level-triggered: the rest wakes us again */
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        conn_close(s, c);
        return;
    }
}

static void accept_all(srv_t *s, int listener)
{
    for (;;) {
        int fd = accept4(s->lfds[listener], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE)
                fprintf(stderr, "srv: accept: %s (open %" PRIu64 ")\n", strerror(errno), s->count.open);
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if ((size_t) fd >= s->conns_cap) {
            size_t cap = s->conns_cap ? s->conns_cap : 1024;
            while (cap <= (size_t) fd) cap *= 2;
            s->conns = realloc(s->conns, cap * sizeof *s->conns);
            if (!s->conns) abort();
            memset(s->conns + s->conns_cap, 0, (cap - s->conns_cap) * sizeof *s->conns);
            s->conns_cap = cap;
        }
        conn_t *c = calloc(1, sizeof *c);
        if (!c) abort();
        c->fd = fd;
        c->serial = ++s->serial;
        c->id = ++s->next_conn_id;
        c->listener = listener;
        s->conns[fd] = c;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        s->count.accepted++;
        if (++s->count.open > s->count.max_open) s->count.max_open = s->count.open;
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) conn_close(s, c);
    }
}

static void run_timers(srv_t *s)
{
    uint64_t now = srv_now_ns();
    while (s->heap_len && s->heap[0].due_ns <= now) {
        pending_t t = heap_pop(s);
        conn_t *c = (size_t) t.fd < s->conns_cap ? s->conns[t.fd] : NULL;
        if (t.session) srules_end(&s->sessions, t.has_lsid ? t.lsid : NULL); /* before the reply goes out */
        if (c && c->serial == t.serial) {
            if (c->last_due_ns <= t.due_ns) c->last_due_ns = 0;
            if (t.close_after) c->close_after = true;
            if (t.len) conn_send(s, c, t.bytes, t.len);
            else if (t.close_after) conn_flush(s, c);
        }
        free(t.bytes);
    }
}

/* --- the loop ---------------------------------------------------------------------------------- */

int srv_run(srv_t *s, int extra_fd, void (*on_extra)(srv_t *s, void *ud), void *ud)
{
    if (extra_fd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = TAG_EXTRA};
        epoll_ctl(s->epfd, EPOLL_CTL_ADD, extra_fd, &ev);
    }
    struct epoll_event events[256];
    int timeout = -1;
    while (!s->quit) {
        int n = epoll_wait(s->epfd, events, 256, timeout);
        if (n < 0 && errno != EINTR) {
            perror("srv: epoll_wait");
            return 1;
        }
        srv_lock(s);
        for (int i = 0; i < n && !s->quit; i++) {
            int fd = events[i].data.fd;
            if (fd <= TAG_LISTENER0) {
                accept_all(s, TAG_LISTENER0 - fd);
            } else if (fd == TAG_EXTRA) {
                on_extra(s, ud);
            } else if (fd == TAG_WAKE) {
                uint64_t v;
                if (read(s->wakefd, &v, sizeof v) < 0) { /* nothing to do: quit is read below */
                }
            } else {
                conn_t *c = (size_t) fd < s->conns_cap ? s->conns[fd] : NULL;
                if (!c) continue; /* closed earlier in this batch */
                if (events[i].events & EPOLLOUT) {
                    if (!conn_flush(s, c)) continue;
                }
                if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) conn_readable(s, c);
            }
        }
        if (s->heap_len) run_timers(s);
        timeout = -1;
        if (s->heap_len) {
            uint64_t now = srv_now_ns(), due = s->heap[0].due_ns;
            timeout = due <= now ? 0 : (int) ((due - now + 999999) / 1000000);
        }
        srv_unlock(s);
    }
    return 0;
}

void srv_quit(srv_t *s)
{
    s->quit = true;
    uint64_t one = 1;
    if (write(s->wakefd, &one, sizeof one) < 0) { /* the eventfd cannot be full here */
    }
}

static void *thread_main(void *arg)
{
    srv_run(arg, -1, NULL, NULL);
    return NULL;
}

void srv_start_thread(srv_t *s)
{
    s->threaded = true;
    if (pthread_create(&s->thread, NULL, thread_main, s) != 0) abort();
}

void srv_free(srv_t *s)
{
    if (!s) return;
    if (s->threaded) {
        srv_quit(s);
        pthread_join(s->thread, NULL);
        s->threaded = false;
    }
    for (size_t fd = 0; fd < s->conns_cap; fd++)
        if (s->conns[fd]) conn_close(s, s->conns[fd]);
    for (int i = 0; i < s->nlisteners; i++) close(s->lfds[i]);
    for (size_t i = 0; i < s->heap_len; i++) free(s->heap[i].bytes);
    free(s->heap);
    free(s->conns);
    free(s->rbuf);
    buf_free(&s->stage);
    srules_free(&s->sessions);
    bson_destroy(&s->reply);
    close(s->epfd);
    close(s->wakefd);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
