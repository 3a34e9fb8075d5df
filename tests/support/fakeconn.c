/* tests/support: see fakeconn.h. */
#include "fakeconn.h"

#include <stdio.h>
#include <stdlib.h>

#include "common.h"

typedef struct {
    mqc_pconn_t pc; /* first: the pool hands it back */
    ev_timer t;
    tf_fakeconn_t *f;
} fconn_t;

static void fconn_done(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void) loop;
    (void) revents;
    fconn_t *c = t->data;
    tf_fakeconn_t *f = c->f;
    if (f->fail_next) {
        mqc_error_t e;
        f->fail_next = false;
        mqc_error_set(&e, MQC_ERROR_NETWORK, 111, "connection refused (scripted)");
        mqc_pool_conn_established(f->pool, &c->pc, &e);
    } else {
        mqc_pool_conn_established(f->pool, &c->pc, NULL);
    }
}

static mqc_pconn_t *fake_open(mqc_pool_t *pool, void *ctx)
{
    tf_fakeconn_t *f = ctx;
    fconn_t *c = calloc(1, sizeof *c);
    if (!c) abort();
    (void) pool;
    c->f = f;
    f->opened++;
    f->live++;
    ev_timer_init(&c->t, fconn_done, f->delay, 0.);
    c->t.data = c;
    ev_timer_start(f->loop, &c->t);
    return &c->pc;
}

static void fake_close(mqc_pconn_t *conn, const char *reason, void *ctx)
{
    tf_fakeconn_t *f = ctx;
    fconn_t *c = (fconn_t *) conn;
    ev_timer_stop(f->loop, &c->t);
    snprintf(f->last_close_reason, sizeof f->last_close_reason, "%s", reason ? reason : "");
    if (f->on_close) f->on_close(f, conn, f->ud);
    f->closed++;
    f->live--;
    free(c);
}

const mqc_pool_connector_t tf_fakeconn_connector = {fake_open, fake_close};
