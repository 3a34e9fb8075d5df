/* resolve: getaddrinfo on a worker thread, results delivered on the loop (ev_async). */
#include "resolve.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct req {
    struct req *next;
    char host[256];
    char port[8];
    mqc_resolve_cb cb;
    void *ctx;
    struct addrinfo *res;
    int gai;
    bool cancelled;
} req_t;

struct mqc_resolver {
    struct ev_loop *loop;
    ev_async async;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    req_t *todo_head, *todo_tail; /* waiting for the worker */
    req_t *done;                  /* finished, waiting for the loop */
    req_t *busy;                  /* the one the worker is on */
    bool stop;
    bool started;
};

static void *worker(void *arg)
{
    mqc_resolver_t *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->stop && !r->todo_head) pthread_cond_wait(&r->cv, &r->mu);
        if (r->stop) break;
        req_t *q = r->todo_head;
        r->todo_head = q->next;
        if (!r->todo_head) r->todo_tail = NULL;
        r->busy = q;
        pthread_mutex_unlock(&r->mu);

        struct addrinfo hints;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_ADDRCONFIG;
        q->gai = getaddrinfo(q->host, q->port, &hints, &q->res);

        pthread_mutex_lock(&r->mu);
        r->busy = NULL;
        q->next = r->done;
        r->done = q;
        ev_async_send(r->loop, &r->async);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void on_async(struct ev_loop *loop, ev_async *w, int revents)
{
    (void) loop;
    (void) revents;
    mqc_resolver_t *r = w->data;
    pthread_mutex_lock(&r->mu);
    req_t *list = r->done;
    r->done = NULL;
    pthread_mutex_unlock(&r->mu);
    /* The list is newest first; deliver oldest first. */
    req_t *rev = NULL;
    while (list) {
        req_t *n = list->next;
        list->next = rev;
        rev = list;
        list = n;
    }
    while (rev) {
        req_t *q = rev;
        rev = rev->next;
        if (q->cancelled) {
            if (q->res) freeaddrinfo(q->res);
        } else {
            q->cb(q->ctx, q->gai == 0 ? q->res : NULL, q->gai);
            if (q->gai != 0 && q->res) freeaddrinfo(q->res);
        }
        free(q);
    }
}

mqc_resolver_t *mqc_resolver_new(struct ev_loop *loop)
{
    mqc_resolver_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->loop = loop;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    ev_async_init(&r->async, on_async);
    r->async.data = r;
    ev_async_start(loop, &r->async);
    ev_unref(loop); /* an idle resolver must not keep ev_run alive */
    return r;
}

void mqc_resolver_destroy(mqc_resolver_t *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (r->started) pthread_join(r->thread, NULL);
    ev_ref(r->loop);
    ev_async_stop(r->loop, &r->async);
    for (req_t *lists[2] = {r->todo_head, r->done}, **l = lists; l < lists + 2; l++)
        while (*l) {
            req_t *q = *l;
            *l = q->next;
            if (q->res) freeaddrinfo(q->res);
            free(q);
        }
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
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
    pthread_mutex_lock(&r->mu);
    if (!r->started) {
        /* The thread is made on first use: clients that only talk to numeric addresses never
         * pay for it. */
        if (pthread_create(&r->thread, NULL, worker, r) != 0) {
            pthread_mutex_unlock(&r->mu);
            free(q);
            return false;
        }
        r->started = true;
    }
    if (r->todo_tail) r->todo_tail->next = q;
    else r->todo_head = q;
    r->todo_tail = q;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return true;
}

void mqc_resolver_cancel(mqc_resolver_t *r, void *ctx)
{
    pthread_mutex_lock(&r->mu);
    for (req_t *q = r->todo_head; q; q = q->next)
        if (q->ctx == ctx) q->cancelled = true;
    for (req_t *q = r->done; q; q = q->next)
        if (q->ctx == ctx) q->cancelled = true;
    if (r->busy && r->busy->ctx == ctx) r->busy->cancelled = true;
    pthread_mutex_unlock(&r->mu);
}

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
