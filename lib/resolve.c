/* resolve: getaddrinfo as jobs of a worker thread (lib/worker.c), results delivered on the loop. */
#include "resolve.h"

#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct req {
    char host[256];
    char port[8];
    mqc_resolve_cb cb;
    void *ctx;             /* read by match_ctx under the worker's lock: never written by run */
    struct addrinfo *res;
    int gai;
} req_t;

struct mqc_resolver {
    mqc_worker_t *worker;
};

static void run_lookup(void *data)
{
    req_t *q = data;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    q->gai = getaddrinfo(q->host, q->port, &hints, &q->res);
}

static void lookup_done(void *data, bool cancelled)
{
    req_t *q = data;
    if (!cancelled) {
        q->cb(q->ctx, q->gai == 0 ? q->res : NULL, q->gai);
        if (q->gai == 0) q->res = NULL; /* the callee owns it */
    }
    if (q->res) freeaddrinfo(q->res);
    free(q);
}

mqc_resolver_t *mqc_resolver_new(struct ev_loop *loop)
{
    mqc_resolver_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->worker = mqc_worker_new(loop);
    if (!r->worker) {
        free(r);
        return NULL;
    }
    return r;
}

void mqc_resolver_destroy(mqc_resolver_t *r)
{
    if (!r) return;
    mqc_worker_destroy(r->worker);
    free(r);
}

bool mqc_resolver_lookup(mqc_resolver_t *r, const char *host, uint16_t port, mqc_resolve_cb cb, void *ctx)
{
    req_t *q = calloc(1, sizeof *q);
    if (!q) return false;
    snprintf(q->host, sizeof q->host, "%s", host);
    snprintf(q->port, sizeof q->port, "%u", (unsigned) port);
    q->cb = cb;
    q->ctx = ctx;
    if (!mqc_worker_submit(r->worker, run_lookup, lookup_done, q)) {
        free(q);
        return false;
    }
    return true;
}

static bool match_ctx(void *data, void *arg) { return ((req_t *) data)->ctx == arg; }

void mqc_resolver_cancel(mqc_resolver_t *r, void *ctx) { mqc_worker_cancel(r->worker, match_ctx, ctx); }

struct addrinfo *mqc_resolve_numeric(const char *host, uint16_t port)
{
    struct addrinfo hints, *res = NULL;
    char p[8];
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    snprintf(p, sizeof p, "%u", (unsigned) port);
    if (getaddrinfo(host, p, &hints, &res) != 0) return NULL;
    return res;
}
