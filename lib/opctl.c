/* opctl: what the floors above ask of operations besides starting them (lib/op.c): the
 * timeoutMS option, cancelling one, failing every live one at destroy, the getters, and the
 * client's clean-up of the op layer. Nothing in op.c calls here. */
#include <stdlib.h>

#include "op.h"
#include "server.h"
#include "topology.h"

void mqc_ops_cleanup(mqc_client_t *client)
{
    mqc_ops_t *q = mqc_ops_of(client);
    ev_timer_stop(q->loop, &q->flush_timer);
    ev_timer_stop(q->loop, &q->wake);
}

/* Apart from mqc_op_set_timeout_from: its iterator would give every call, most without options,
 * a 128-byte aligned frame (libbson aligns bson_iter_t so). */
static __attribute__((noinline)) void timeout_from(mqc_op_t *op, const bson_t *opts)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, opts, "timeoutMS") && BSON_ITER_HOLDS_NUMBER(&it)) {
        int64_t ms = bson_iter_as_int64(&it);
        if (ms < 0) mqc_op_fail_early(op, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG, "timeoutMS must be >= 0");
        op->deadline_us = ms > 0 ? op->start_us + ms * 1000 : 0;
    }
}

void mqc_op_set_timeout_from(mqc_op_t *op, const bson_t *opts)
{
    if (opts && !bson_empty(opts)) timeout_from(op, opts);
}

void mqc_op_free_list_drain(mqc_client_t *client)
{
    mqc_ops_t *q = mqc_ops_of(client);
    mqc_op_t *op;
    while ((op = q->free_ops)) {
        q->free_ops = op->impl;
        free(op);
    }
    q->n_free_ops = 0;
}

void mqc_op_cancel(mqc_op_t *op)
{
    if (!op || op->state == MQC_OP_QUEUED || op->state == MQC_OP_DONE) return;
    mqc_client_t *client = op->client;
    mqc_ops_t *q = mqc_ops_of(client);
    op->cancelled = true;
    q->submitting++; /* cancel is asynchronous: the callback comes from the loop */
    if (op->group && op->vt->cancel) {
        op->vt->cancel(op);
    } else {
        mqc_error_t err;
        mqc_error_set(&err, MQC_ERROR_CANCELLED, 0, "%s was cancelled", op->name ? op->name : "operation");
        mqc_op_abort(op, &err);
    }
    q->submitting--;
}

void mqc_op_fail_all(mqc_client_t *client)
{
    mqc_ops_t *q = mqc_ops_of(client);
    mqc_error_t err;
    mqc_error_set(&err, MQC_ERROR_SHUTDOWN, 0, "the client was destroyed before the operation completed");
    /* Plain ops first: gathers complete as their members do. Callbacks may submit more ops;
     * those fail at once (closing is set), so the loop ends. */
    for (int pass = 0; pass < 2; pass++) {
        mqc_link_t *l = q->live.next;
        while (l != &q->live) {
            mqc_op_t *op = mqc_container_of(l, mqc_op_t, link);
            if (op->state == MQC_OP_QUEUED || op->state == MQC_OP_DONE || (pass == 0 && op->group)) {
                l = l->next;
                continue;
            }
            mqc_op_abort(op, &err);
            l = q->live.next; /* the list changed under us: start over */
        }
        mqc_op_flush_completions(client);
    }
}

/* ---- getters ------------------------------------------------------------------------------ */

mqc_client_t *mqc_op_get_client(const mqc_op_t *op) { return op->client; }
const char *mqc_op_get_name(const mqc_op_t *op) { return op->name ? op->name : ""; }
int64_t mqc_op_get_duration_us(const mqc_op_t *op) { return op->end_us ? op->end_us - op->start_us : 0; }
const char *mqc_op_get_server(const mqc_op_t *op) { return op->server ? op->server->host.host_and_port : NULL; }
