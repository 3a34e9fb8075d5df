/* failproxy: a wire-level proxy that gives a server without fail points (FerretDB) the
 * failCommand fail point of mongod. It answers configureFailPoint itself and applies failCommand
 * as the server does (errorCode, errorLabels, closeConnection, blockConnection/blockTimeMS,
 * writeConcernError, times/skip/activationProbability, failCommands, appName), and
 * onPrimaryTransactionalWrite (a retryable write, one with txnNumber, runs and its connection
 * closes before the reply, or fails with failBeforeCommitExceptionCode); every other message goes
 * through byte for byte. One thread per connection, whole messages each way, so an
 * injected reply never lands inside a forwarded one. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bson/bson.h>

#include "failproxy.h"

#define OP_MSG 2013

typedef struct {
    char name[64];               /* "failCommand" once configured */
    int mode;                    /* 0 off, 1 alwaysOn, 2 times, 3 activationProbability */
    int64_t times, skip;
    double probability;
    bson_t *data;                /* the "data" document */
} failpoint_t;

/* One proxy per target server, each with its own fail point (as each mongod has). */
typedef struct {
    pthread_mutex_t mu;
    failpoint_t fp;              /* failCommand */
    failpoint_t ptw;             /* onPrimaryTransactionalWrite */
    char target[512];            /* the URI it was started for */
    char host[256];
    int port;
    int listen;
    char uri[128];
} proxy_t;

static proxy_t g_proxies[4];
static size_t g_nproxies;
static pthread_mutex_t g_start_mu = PTHREAD_MUTEX_INITIALIZER;

static bool read_full(int fd, uint8_t *buf, size_t n)
{
    while (n) {
        ssize_t r = read(fd, buf, n);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) continue;
            return false;
        }
        buf += r;
        n -= (size_t) r;
    }
    return true;
}

static bool write_full(int fd, const uint8_t *buf, size_t n)
{
    while (n) {
        ssize_t r = send(fd, buf, n, MSG_NOSIGNAL);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) continue;
            return false;
        }
        buf += r;
        n -= (size_t) r;
    }
    return true;
}

/* One whole message (malloc'd) or NULL when the peer is gone or sends garbage. */
static uint8_t *read_msg(int fd, uint32_t *len)
{
    uint8_t hdr[4];
    if (!read_full(fd, hdr, 4)) return NULL;
    uint32_t n = (uint32_t) hdr[0] | (uint32_t) hdr[1] << 8 | (uint32_t) hdr[2] << 16 | (uint32_t) hdr[3] << 24;
    if (n < 16 || n > 64u * 1024 * 1024) return NULL;
    uint8_t *m = malloc(n);
    if (!m) return NULL;
    memcpy(m, hdr, 4);
    if (!read_full(fd, m + 4, n - 4)) {
        free(m);
        return NULL;
    }
    *len = n;
    return m;
}

static int32_t rd32(const uint8_t *p) { return (int32_t) ((uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24); }
static void wr32(uint8_t *p, int32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t) ((uint32_t) v >> (8 * i));
}

/* The body (section kind 0) of an OP_MSG, as a static view. */
static bool msg_body(const uint8_t *m, uint32_t len, bson_t *body, uint32_t *flags)
{
    if (len < 21 || rd32(m + 12) != OP_MSG) return false;
    *flags = (uint32_t) rd32(m + 16);
    const uint8_t *p = m + 20, *end = m + len;
    while (p < end) {
        uint8_t kind = *p++;
        if (p + 4 > end) return false;
        int32_t n = rd32(p);
        if (n < 5 || p + n > end) return false;
        if (kind == 0) return bson_init_static(body, p, (size_t) n);
        p += n + (kind == 1 ? 0 : 0);
    }
    return false;
}

static uint8_t *make_reply(int32_t response_to, const bson_t *doc, uint32_t *len)
{
    *len = 16 + 4 + 1 + doc->len;
    uint8_t *m = malloc(*len);
    if (!m) abort();
    wr32(m, (int32_t) *len);
    wr32(m + 4, rand());
    wr32(m + 8, response_to);
    wr32(m + 12, OP_MSG);
    wr32(m + 16, 0);
    m[20] = 0;
    memcpy(m + 21, bson_get_data(doc), doc->len);
    return m;
}

static void configure(proxy_t *px, const bson_t *cmd, bson_t *reply)
{
    bson_iter_t it, mi;
    const char *name = NULL;
    if (bson_iter_init_find(&it, cmd, "configureFailPoint") && BSON_ITER_HOLDS_UTF8(&it)) name = bson_iter_utf8(&it, NULL);
    if (!name || (strcmp(name, "failCommand") && strcmp(name, "onPrimaryTransactionalWrite"))) {
        BSON_APPEND_DOUBLE(reply, "ok", 0);
        BSON_APPEND_UTF8(reply, "errmsg",
                         "failproxy: only the failCommand and onPrimaryTransactionalWrite fail points are supported");
        BSON_APPEND_INT32(reply, "code", 2);
        BSON_APPEND_UTF8(reply, "codeName", "BadValue");
        return;
    }
    failpoint_t *fp = !strcmp(name, "failCommand") ? &px->fp : &px->ptw;
    pthread_mutex_lock(&px->mu);
    if (fp->data) bson_destroy(fp->data);
    memset(fp, 0, sizeof px->fp);
    snprintf(fp->name, sizeof fp->name, "%s", name);
    if (bson_iter_init_find(&it, cmd, "mode")) {
        if (BSON_ITER_HOLDS_UTF8(&it)) fp->mode = !strcmp(bson_iter_utf8(&it, NULL), "alwaysOn") ? 1 : 0;
        else if (BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &mi)) {
            while (bson_iter_next(&mi)) {
                const char *k = bson_iter_key(&mi);
                if (!strcmp(k, "times")) fp->mode = 2, fp->times = bson_iter_as_int64(&mi);
                else if (!strcmp(k, "skip")) fp->skip = bson_iter_as_int64(&mi), fp->mode = fp->mode ? fp->mode : 1;
                else if (!strcmp(k, "activationProbability")) fp->mode = 3, fp->probability = bson_iter_as_double(&mi);
            }
        }
    }
    if (bson_iter_init_find(&it, cmd, "data") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        uint32_t n;
        const uint8_t *d;
        bson_iter_document(&it, &n, &d);
        fp->data = bson_new_from_data(d, n);
    }
    pthread_mutex_unlock(&px->mu);
    BSON_APPEND_INT32(reply, "count", 0);
    BSON_APPEND_DOUBLE(reply, "ok", 1);
}

/* Decides whether failCommand fires for command on a connection of app; copies its data. */
static bson_t *fires(proxy_t *px, const char *command, const char *app)
{
    bson_iter_t it, li;
    bson_t *data = NULL;
    pthread_mutex_lock(&px->mu);
    if (!px->fp.mode || !px->fp.data) goto out;
    bool listed = false;
    if (bson_iter_init_find(&it, px->fp.data, "failCommands") && bson_iter_recurse(&it, &li))
        while (bson_iter_next(&li))
            if (BSON_ITER_HOLDS_UTF8(&li) && !strcmp(bson_iter_utf8(&li, NULL), command)) listed = true;
    if (!listed) goto out;
    if (bson_iter_init_find(&it, px->fp.data, "appName") && BSON_ITER_HOLDS_UTF8(&it) &&
        strcmp(bson_iter_utf8(&it, NULL), app))
        goto out;
    if (px->fp.skip > 0) {
        px->fp.skip--;
        goto out;
    }
    if (px->fp.mode == 3 && (double) rand() / RAND_MAX >= px->fp.probability) goto out;
    if (px->fp.mode == 2 && px->fp.times-- <= 1) px->fp.mode = 0;
    data = bson_copy(px->fp.data);
out:
    pthread_mutex_unlock(&px->mu);
    return data;
}

/* onPrimaryTransactionalWrite fires for a retryable write (a command with txnNumber); the copy
 * of its data (possibly empty) when it does. */
static bson_t *fires_ptw(proxy_t *px, const bson_t *body)
{
    bson_t *data = NULL;
    if (!bson_has_field(body, "txnNumber")) return NULL;
    pthread_mutex_lock(&px->mu);
    failpoint_t *fp = &px->ptw;
    if (!fp->mode) goto out;
    if (fp->skip > 0) {
        fp->skip--;
        goto out;
    }
    if (fp->mode == 3 && (double) rand() / RAND_MAX >= fp->probability) goto out;
    if (fp->mode == 2 && fp->times-- <= 1) fp->mode = 0;
    data = fp->data ? bson_copy(fp->data) : bson_new();
out:
    pthread_mutex_unlock(&px->mu);
    return data;
}

static void append_labels(bson_t *reply, const bson_t *data)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, data, "errorLabels") && BSON_ITER_HOLDS_ARRAY(&it))
        bson_append_iter(reply, "errorLabels", -1, &it);
}

typedef struct {
    proxy_t *px;
    int client, server;
    char app[128];
    int32_t wce_request;         /* the request whose reply gains a writeConcernError (0: none) */
    int32_t close_request;       /* the request whose reply is replaced by a closed connection */
    bson_t *wce_data;
} conn_t;

static bool send_reply(int fd, int32_t response_to, const bson_t *doc)
{
    uint32_t rlen;
    uint8_t *out = make_reply(response_to, doc, &rlen);
    bool ok = write_full(fd, out, rlen);
    free(out);
    return ok;
}

/* A request that failCommand turns into something else. Returns false when the connection must
 * close. */
static bool apply(conn_t *c, const uint8_t *req, uint32_t len, int32_t req_id, bson_t *data)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, data, "blockConnection") && bson_iter_as_bool(&it)) {
        int64_t ms = bson_iter_init_find(&it, data, "blockTimeMS") ? bson_iter_as_int64(&it) : 0;
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    if (bson_iter_init_find(&it, data, "closeConnection") && bson_iter_as_bool(&it)) return false;
    if (bson_iter_init_find(&it, data, "errorCode")) {
        bson_t reply = BSON_INITIALIZER;
        BSON_APPEND_DOUBLE(&reply, "ok", 0);
        BSON_APPEND_UTF8(&reply, "errmsg", "Failing command via 'failCommand' failpoint");
        BSON_APPEND_INT32(&reply, "code", (int32_t) bson_iter_as_int64(&it));
        append_labels(&reply, data);
        bool ok = send_reply(c->client, req_id, &reply);
        bson_destroy(&reply);
        return ok;
    }
    /* The command runs; its reply gains what the fail point adds (writeConcernError). */
    if (bson_iter_init_find(&it, data, "writeConcernError")) {
        if (c->wce_data) bson_destroy(c->wce_data);
        c->wce_data = bson_copy(data);
        c->wce_request = req_id;
    }
    return write_full(c->server, req, len);
}

/* A message from the client: answered here, failed here, or forwarded. */
static bool from_client(conn_t *c, uint8_t *m, uint32_t len)
{
    uint32_t flags = 0;
    bson_t body;
    bson_iter_t it;
    int32_t req_id = rd32(m + 4);
    const char *cmd = NULL;
    if (msg_body(m, len, &body, &flags) && bson_iter_init(&it, &body) && bson_iter_next(&it)) cmd = bson_iter_key(&it);
    /* The handshake may come as OP_QUERY (2004): flags, collection name, skip, return, query. */
    if (!cmd && len > 20 && rd32(m + 12) == 2004) {
        const uint8_t *nul = memchr(m + 20, 0, len - 20);
        if (nul && nul + 9 + 5 <= m + len && rd32(nul + 9) > 0 && (size_t) rd32(nul + 9) <= (size_t) (m + len - (nul + 9)) &&
            bson_init_static(&body, nul + 9, (size_t) rd32(nul + 9)) &&
            bson_iter_init(&it, &body) && bson_iter_next(&it))
            cmd = bson_iter_key(&it);
    }
    if (cmd && (!strcasecmp(cmd, "hello") || !strcasecmp(cmd, "isMaster")) && bson_iter_init(&it, &body) &&
        bson_iter_find_descendant(&it, "client.application.name", &it) && BSON_ITER_HOLDS_UTF8(&it))
        snprintf(c->app, sizeof c->app, "%s", bson_iter_utf8(&it, NULL));
    if (rd32(m + 12) != OP_MSG) return write_full(c->server, m, len);
    if (cmd && !strcmp(cmd, "configureFailPoint")) {
        bson_t reply = BSON_INITIALIZER;
        configure(c->px, &body, &reply);
        bool ok = send_reply(c->client, req_id, &reply);
        bson_destroy(&reply);
        return ok;
    }
    bson_t *ptw = cmd ? fires_ptw(c->px, &body) : NULL;
    if (ptw) {
        bson_iter_t f;
        bool ok = true;
        bool close_conn = !bson_iter_init_find(&f, ptw, "closeConnection") || bson_iter_as_bool(&f);
        if (bson_iter_init_find(&f, ptw, "failBeforeCommitExceptionCode")) {
            /* Fails before the write commits: nothing was written; the connection closes (as
             * mongod's does unless closeConnection is false), else the error is the answer. */
            if (close_conn) {
                bson_destroy(ptw);
                return false;
            }
            bson_t reply = BSON_INITIALIZER;
            BSON_APPEND_DOUBLE(&reply, "ok", 0);
            BSON_APPEND_UTF8(&reply, "errmsg", "Failing write via 'onPrimaryTransactionalWrite' failpoint");
            BSON_APPEND_INT32(&reply, "code", (int32_t) bson_iter_as_int64(&f));
            ok = send_reply(c->client, req_id, &reply);
            bson_destroy(&reply);
        } else {
            /* The write commits; its reply never arrives (closeConnection, true by default). */
            if (close_conn) c->close_request = req_id;
            ok = write_full(c->server, m, len);
        }
        bson_destroy(ptw);
        return ok;
    }
    bson_t *data = cmd ? fires(c->px, cmd, c->app) : NULL;
    if (data) {
        bool ok = apply(c, m, len, req_id, data);
        bson_destroy(data);
        return ok;
    }
    return write_full(c->server, m, len);
}

/* A message from the server: forwarded, with the writeConcernError added when it answers the
 * request the fail point marked. */
static bool from_server(conn_t *c, uint8_t *m, uint32_t len)
{
    bson_t body;
    uint32_t flags;
    bson_iter_t it;
    if (c->close_request && rd32(m + 8) == c->close_request) return false;
    if (!c->wce_request || rd32(m + 8) != c->wce_request || !msg_body(m, len, &body, &flags))
        return write_full(c->client, m, len);
    bson_t reply = BSON_INITIALIZER;
    bson_copy_to_excluding_noinit(&body, &reply, "writeConcernError", "errorLabels", NULL);
    if (bson_iter_init_find(&it, c->wce_data, "writeConcernError")) bson_append_iter(&reply, "writeConcernError", -1, &it);
    append_labels(&reply, c->wce_data);
    bool ok = send_reply(c->client, c->wce_request, &reply);
    bson_destroy(&reply);
    bson_destroy(c->wce_data);
    c->wce_data = NULL;
    c->wce_request = 0;
    return ok;
}

static void *serve(void *arg)
{
    conn_t *c = arg;
    struct pollfd fds[2] = {{.fd = c->client, .events = POLLIN}, {.fd = c->server, .events = POLLIN}};
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        bool ok = true;
        for (int i = 0; i < 2 && ok; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            uint32_t len;
            uint8_t *m = read_msg(fds[i].fd, &len);
            ok = m && (i == 0 ? from_client(c, m, len) : from_server(c, m, len));
            free(m);
        }
        if (!ok) break;
    }
    close(c->client);
    close(c->server);
    if (c->wce_data) bson_destroy(c->wce_data);
    free(c);
    return NULL;
}

static int dial(const proxy_t *px)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t) px->port)};
    inet_pton(AF_INET, px->host, &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *) &a, sizeof a) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void *acceptor(void *arg)
{
    proxy_t *px = arg;
    for (;;) {
        int fd = accept(px->listen, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR) continue;
            return NULL;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn_t *c = calloc(1, sizeof *c);
        if (!c) abort();
        c->px = px;
        c->client = fd;
        if ((c->server = dial(px)) < 0) {
            close(fd);
            free(c);
            continue;
        }
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &at, serve, c) != 0) {
            close(c->client);
            close(c->server);
            free(c);
        }
        pthread_attr_destroy(&at);
    }
}

const char *failproxy_start(const char *target_uri)
{
    const char *uri = NULL;
    pthread_mutex_lock(&g_start_mu);
    for (size_t i = 0; i < g_nproxies; i++)
        if (!strcmp(g_proxies[i].target, target_uri)) {
            uri = g_proxies[i].uri;
            goto out;
        }
    if (g_nproxies == sizeof g_proxies / sizeof g_proxies[0]) goto out;
    proxy_t *px = &g_proxies[g_nproxies];
    memset(px, 0, sizeof *px);
    /* "mongodb://127.0.0.1:PORT/..." of a single loopback server. */
    const char *p = strstr(target_uri, "://");
    if (!p || sscanf(p + 3, "%255[^:/]:%d", px->host, &px->port) != 2) goto out;
    snprintf(px->target, sizeof px->target, "%s", target_uri);
    pthread_mutex_init(&px->mu, NULL);
    px->listen = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof a;
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (px->listen < 0 || bind(px->listen, (struct sockaddr *) &a, sizeof a) != 0 || listen(px->listen, 128) != 0 ||
        getsockname(px->listen, (struct sockaddr *) &a, &al) != 0) {
        if (px->listen >= 0) close(px->listen);
        goto out;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, acceptor, px) != 0) {
        close(px->listen);
        goto out;
    }
    pthread_detach(t);
    snprintf(px->uri, sizeof px->uri, "mongodb://127.0.0.1:%d/", ntohs(a.sin_port));
    g_nproxies++;
    uri = px->uri;
out:
    pthread_mutex_unlock(&g_start_mu);
    return uri;
}
