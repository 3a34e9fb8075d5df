/* ceiling: the least a client can do for `find {_id: k}` round trips, to bound what mqc can reach
 * against the same server.
 *
 * N connections, one request in flight on each (the MongoDB protocol answers in order, so this is
 * what any driver does); one epoll loop; the OP_MSG is built once and only its requestID and _id
 * are patched per request; a reply is checked for its length, opcode, responseTo and ok: 1, and
 * nothing else is decoded. No hello, no sessions, no pool: everything a real driver adds is cost
 * the ceiling does not pay, which is the point.
 *
 * --lsid adds what a driver must send and the ceiling otherwise leaves out: an implicit session,
 * `lsid: {id: <UUID>}`, one per connection (a session carries one operation at a time, and a
 * connection does here). The server's session bookkeeping for it (a real MongoDB's, and stubd's
 * session rules) is then paid for both clients, so the comparison is of the clients alone.
 *
 * Output: one JSON object with the same keys as mqload's --json (throughput_ops_s,
 * latency_us.{p50,p99}), plus the CPU it used over the measured window (getrusage). */
#include <arpa/inet.h>
#include <bson/bson.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define OP_MSG 2013

/* --- latency histogram: log-linear buckets, 64 per power of two (error < 1.6 %) ----------- */

#define SUB_BITS 6
#define SUB (1u << SUB_BITS)
#define NBUCKETS ((64 - SUB_BITS + 1) * SUB)

static uint64_t g_hist[NBUCKETS];
static uint64_t g_hist_n, g_hist_max, g_hist_sum;

static size_t hist_index(uint64_t v)
{
    if (v < SUB) return (size_t) v;
    int e = 63 - __builtin_clzll(v);
    return (size_t) (e - SUB_BITS + 1) * SUB + (size_t) ((v >> (e - SUB_BITS)) & (SUB - 1));
}

/* The middle of bucket i. */
static double hist_value(size_t i)
{
    if (i < SUB) return (double) i;
    int e = (int) (i / SUB) + SUB_BITS - 1;
    uint64_t lo = (uint64_t) (SUB | (i % SUB)) << (e - SUB_BITS);
    return (double) lo + (double) (1ull << (e - SUB_BITS)) / 2.0;
}

static void hist_add(uint64_t ns)
{
    g_hist[hist_index(ns)]++;
    g_hist_n++;
    g_hist_sum += ns;
    if (ns > g_hist_max) g_hist_max = ns;
}

static double hist_percentile_us(double q)
{
    if (!g_hist_n) return 0;
    uint64_t want = (uint64_t) (q * (double) g_hist_n + 0.5), seen = 0;
    if (want < 1) want = 1;
    for (size_t i = 0; i < NBUCKETS; i++) {
        seen += g_hist[i];
        if (seen >= want) return hist_value(i) / 1000.0;
    }
    return (double) g_hist_max / 1000.0;
}

/* --- connections --------------------------------------------------------------------------- */

typedef struct {
    int fd;
    int32_t request_id;
    uint64_t sent_ns;
    uint8_t lsid[16];
    uint8_t *in;
    size_t in_len, in_cap;
} conn_t;

static uint8_t *g_msg;      /* the request template */
static size_t g_msg_len;
static size_t g_id_off;     /* where the int32 _id sits in it */
static bool g_lsid;         /* --lsid: the template carries lsid.id, patched per connection */
static size_t g_lsid_off;   /* where lsid.id's 16 bytes sit */
static int32_t g_next_id;
static int32_t g_next_key;
static int32_t g_keys = 1000;
static bool g_measuring;
static uint64_t g_ops, g_errors;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* OP_MSG {find: "bench", filter: {_id: K}, limit: 1, singleBatch: true, $db: "bench"}, with K
 * found by a sentinel so that it can be patched in place. */
static void build_template(void)
{
    const int32_t sentinel = 0x5eadbeef & 0x7fffffff;
    static const uint8_t lsid_sentinel[16] = "lsid-sentinel-16";
    bson_t *cmd = BCON_NEW("find", BCON_UTF8("bench"), "filter", "{", "_id", BCON_INT32(sentinel), "}",
                           "limit", BCON_INT32(1), "singleBatch", BCON_BOOL(true));
    if (g_lsid) BCON_APPEND(cmd, "lsid", "{", "id", BCON_BIN(BSON_SUBTYPE_UUID, lsid_sentinel, 16), "}");
    BCON_APPEND(cmd, "$db", BCON_UTF8("bench"));
    g_msg_len = 16 + 4 + 1 + cmd->len;
    g_msg = malloc(g_msg_len);
    if (!g_msg) abort();
    put_le32(g_msg, (uint32_t) g_msg_len);
    put_le32(g_msg + 4, 0);
    put_le32(g_msg + 8, 0);
    put_le32(g_msg + 12, OP_MSG);
    put_le32(g_msg + 16, 0);
    g_msg[20] = 0;
    memcpy(g_msg + 21, bson_get_data(cmd), cmd->len);
    bson_destroy(cmd);
    uint8_t pat[4];
    put_le32(pat, (uint32_t) sentinel);
    uint8_t *hit = memmem(g_msg, g_msg_len, pat, 4);
    if (!hit) abort();
    g_id_off = (size_t) (hit - g_msg);
    if (g_lsid) {
        hit = memmem(g_msg, g_msg_len, lsid_sentinel, 16);
        if (!hit) abort();
        g_lsid_off = (size_t) (hit - g_msg);
    }
}

/* A version 4 UUID of the connection's own: its index in the first bytes, so no two collide. */
static void make_lsid(uint8_t id[16], int index)
{
    for (int i = 0; i < 16; i++) id[i] = (uint8_t) rand();
    put_le32(id, (uint32_t) index);
    id[6] = (uint8_t) ((id[6] & 0x0f) | 0x40);
    id[8] = (uint8_t) ((id[8] & 0x3f) | 0x80);
}

static bool conn_send_request(conn_t *c)
{
    c->request_id = ++g_next_id;
    put_le32(g_msg + 4, (uint32_t) c->request_id);
    put_le32(g_msg + g_id_off, (uint32_t) (g_next_key++ % g_keys));
    if (g_lsid) memcpy(g_msg + g_lsid_off, c->lsid, 16);
    c->sent_ns = now_ns();
    /* A 100-byte request into an empty socket buffer is never short; treat that as an error. */
    ssize_t n = send(c->fd, g_msg, g_msg_len, MSG_NOSIGNAL);
    if (n != (ssize_t) g_msg_len) {
        fprintf(stderr, "ceiling: send: %s\n", n < 0 ? strerror(errno) : "short write");
        return false;
    }
    return true;
}

/* Checks one reply: ours, OP_MSG, and {ok: 1}. */
static bool reply_ok(const conn_t *c, const uint8_t *p, size_t len)
{
    if (get_le32(p + 8) != (uint32_t) c->request_id || get_le32(p + 12) != OP_MSG || len < 21 + 5) return false;
    bson_t body;
    bson_iter_t it;
    uint32_t blen = get_le32(p + 21);
    if (p[20] != 0 || blen > len - 21 || !bson_init_static(&body, p + 21, blen)) return false;
    return bson_iter_init_find(&it, &body, "ok") && bson_iter_as_double(&it) == 1.0;
}

/* Reads what arrived; for a whole reply, records it and sends the next request. */
static bool conn_readable(conn_t *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < 4096) {
            c->in_cap = c->in_cap ? c->in_cap * 2 : 16384;
            c->in = realloc(c->in, c->in_cap);
            if (!c->in) abort();
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        if (n <= 0) {
            fprintf(stderr, "ceiling: connection lost: %s\n", n == 0 ? "closed by the server" : strerror(errno));
            return false;
        }
        c->in_len += (size_t) n;
        if (c->in_len < 16) continue;
        uint32_t len = get_le32(c->in);
        if (len < 16 || len > 48000000u) {
            fprintf(stderr, "ceiling: bad reply length %u\n", len);
            return false;
        }
        if (c->in_len < len) continue;
        if (c->in_len > len) {
            fprintf(stderr, "ceiling: the server sent more than one reply\n");
            return false;
        }
        uint64_t t = now_ns();
        if (!reply_ok(c, c->in, len)) {
            g_errors++;
            fprintf(stderr, "ceiling: unexpected reply\n");
            return false;
        }
        c->in_len = 0;
        if (g_measuring) {
            g_ops++;
            hist_add(t - c->sent_ns);
        }
        return conn_send_request(c);
    }
}

static int connect_to(const char *host, int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "ceiling: --host %s: not an IPv4 address\n", host);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof sa) != 0) {
        fprintf(stderr, "ceiling: connect %s:%d: %s\n", host, port, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* --- main ---------------------------------------------------------------------------------- */

static double cpu_seconds(const struct rusage *r, bool user)
{
    const struct timeval *tv = user ? &r->ru_utime : &r->ru_stime;
    return (double) tv->tv_sec + (double) tv->tv_usec / 1e6;
}

static void usage(FILE *out)
{
    fputs("usage: ceiling [--host 127.0.0.1] --port N [-c CONNECTIONS] [-d SECONDS] [--warmup SECONDS]\n"
          "               [--keys N] [--lsid] [--json FILE|-]\n"
          "  find {_id: k} round trips, one in flight per connection; prints JSON results\n"
          "  --lsid: each connection sends an implicit session's lsid, as a driver must\n",
          out);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "host", required_argument, NULL, 'H' },     { "port", required_argument, NULL, 'p' },
        { "concurrency", required_argument, NULL, 'c' }, { "duration", required_argument, NULL, 'd' },
        { "warmup", required_argument, NULL, 'w' },   { "keys", required_argument, NULL, 'k' },
        { "json", required_argument, NULL, 'j' },     { "help", no_argument, NULL, 'h' },
        { "lsid", no_argument, NULL, 'l' },
        { NULL, 0, NULL, 0 },
    };
    const char *host = "127.0.0.1", *json = "-";
    int port = 27017, nconns = 1, o;
    double duration = 5, warmup = 1;
    while ((o = getopt_long(argc, argv, "c:d:p:h", opts, NULL)) != -1) {
        switch (o) {
        case 'H': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'c': nconns = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'k': g_keys = atoi(optarg); break;
        case 'j': json = optarg; break;
        case 'l': g_lsid = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (nconns < 1 || duration <= 0 || warmup < 0 || g_keys < 1 || port <= 0 || optind < argc) {
        usage(stderr);
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    build_template();
    int ep = epoll_create1(EPOLL_CLOEXEC);
    conn_t *conns = calloc((size_t) nconns, sizeof *conns);
    if (ep < 0 || !conns) abort();
    for (int i = 0; i < nconns; i++) {
        conns[i].fd = connect_to(host, port);
        make_lsid(conns[i].lsid, i);
        if (conns[i].fd < 0) return 1;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &conns[i] };
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    }
    for (int i = 0; i < nconns; i++)
        if (!conn_send_request(&conns[i])) return 1;

    uint64_t start = now_ns(), measure_at = start + (uint64_t) (warmup * 1e9);
    uint64_t end = measure_at + (uint64_t) (duration * 1e9), t0 = 0, t1 = 0;
    struct rusage ru0, ru1;
    if (warmup == 0) {
        g_measuring = true;
        t0 = start;
        getrusage(RUSAGE_SELF, &ru0);
    }
    struct epoll_event events[512];
    for (;;) {
        /* The clock is read once per wake-up: cheap, and wake-ups are frequent under load. */
        uint64_t now = now_ns();
        if (!g_measuring && now >= measure_at) {
            g_measuring = true;
            t0 = now;
            getrusage(RUSAGE_SELF, &ru0);
        }
        if (now >= end) {
            t1 = now;
            getrusage(RUSAGE_SELF, &ru1);
            break;
        }
        int n = epoll_wait(ep, events, 512, 10);
        if (n < 0 && errno != EINTR) {
            perror("ceiling: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++)
            if (!conn_readable(events[i].data.ptr)) return 1;
    }

    double secs = (double) (t1 - t0) / 1e9;
    double user = cpu_seconds(&ru1, true) - cpu_seconds(&ru0, true);
    double sys = cpu_seconds(&ru1, false) - cpu_seconds(&ru0, false);
    FILE *out = strcmp(json, "-") ? fopen(json, "w") : stdout;
    if (!out) {
        perror(json);
        return 1;
    }
    fprintf(out,
            "{\"tool\":\"ceiling\",\"engine\":\"%s\",\"op\":\"find\",\"concurrency\":%d,"
            "\"connections\":%d,\"duration_s\":%.3f,\"ops\":%" PRIu64 ",\"errors\":%" PRIu64 ","
            "\"throughput_ops_s\":%.1f,\"latency_us\":{\"mean\":%.2f,\"p50\":%.2f,\"p90\":%.2f,"
            "\"p99\":%.2f,\"p999\":%.2f,\"max\":%.2f},\"cpu\":{\"user_s\":%.4f,\"sys_s\":%.4f,"
            "\"us_per_op\":%.3f}}\n",
            g_lsid ? "ceiling-lsid" : "ceiling", nconns, nconns, secs, g_ops, g_errors, (double) g_ops / secs,
            g_hist_n ? (double) g_hist_sum / (double) g_hist_n / 1000.0 : 0.0, hist_percentile_us(0.50),
            hist_percentile_us(0.90), hist_percentile_us(0.99), hist_percentile_us(0.999),
            (double) g_hist_max / 1000.0, user, sys, g_ops ? (user + sys) * 1e6 / (double) g_ops : 0.0);
    if (out != stdout) fclose(out);
    for (int i = 0; i < nconns; i++) {
        close(conns[i].fd);
        free(conns[i].in);
    }
    free(conns);
    free(g_msg);
    close(ep);
    return 0;
}
