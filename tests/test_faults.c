/* The client against a scripted server: timeouts, cancellation, broken replies. Each fault ends
 * the operation with one clear error, the bad connection is never reused and a later operation
 * succeeds. */
#include <ev.h>

#include "server/fakesrv.h"
#include "mqc.h"
#include "support/result.h"
#include "tf.h"

static mqc_client_t *client_for(fakesrv_t *s, const char *extra) { return tf_client_new(fakesrv_uri(s, extra)); }
static tf_res_t ping(mqc_client_t *c, const bson_t *opts) { return tf_ping(c, opts, 20); }

TEST("/faults/ok_baseline", faults_ok)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = client_for(s, NULL);
    tf_res_t r = ping(c, NULL);
    ASSERT_MSG(!r.failed, "%s", r.error.message);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/faults/timeout/operation", faults_timeout_op)
{
    fakesrv_t *s = fakesrv_start(FAKE_DELAY, 1500);
    mqc_client_t *c = client_for(s, NULL);
    bson_t *opts = BCON_NEW("timeoutMS", BCON_INT32(200));
    double t0 = tf_now();
    tf_res_t r = ping(c, opts);
    double took = tf_now() - t0;
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_TIMEOUT);
    ASSERT_LT((int) (took * 1000), 1400); /* it did not wait for the slow reply (ASSERT_LT compares integers) */
    /* The connection that timed out is not reused: the next ping opens another one. */
    fakesrv_set_mode(s, FAKE_OK, 0, 0);
    r = ping(c, NULL);
    ASSERT_MSG(!r.failed, "%s", r.error.message);
    ASSERT_EQ(mqc_client_stat(c, MQC_STAT_CONNS_OPENED), 2);
    bson_destroy(opts);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/faults/timeout/socket", faults_timeout_socket)
{
    fakesrv_t *s = fakesrv_start(FAKE_DELAY, 1500);
    mqc_client_t *c = client_for(s, "socketTimeoutMS=200");
    tf_res_t r = ping(c, NULL);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_TIMEOUT);
    ASSERT_EQ(r.error.code, MQC_TIMEOUT_SOCKET);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/faults/cancel/in_flight", faults_cancel)
{
    fakesrv_t *s = fakesrv_start(FAKE_DELAY, 1000);
    mqc_client_t *c = client_for(s, NULL);
    tf_res_t r = {0};
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    mqc_op_t *op = mqc_client_command(c, "admin", cmd, NULL, tf_res_cb, &r);
    ev_run(mqc_client_get_loop(c), EVRUN_NOWAIT);
    ev_run(mqc_client_get_loop(c), EVRUN_NOWAIT);
    mqc_op_cancel(op);
    ASSERT_EQ(r.calls, 0); /* asynchronous */
    ASSERT(mqc_client_run_until_idle(c, 5));
    ASSERT_EQ(r.calls, 1);
    ASSERT_EQ(r.error.domain, MQC_ERROR_CANCELLED);
    /* Cancelled before it was even sent: */
    memset(&r, 0, sizeof r);
    op = mqc_client_command(c, "admin", cmd, NULL, tf_res_cb, &r);
    mqc_op_cancel(op);
    mqc_op_cancel(op); /* twice is harmless */
    ASSERT(mqc_client_run_until_idle(c, 5));
    ASSERT_EQ(r.calls, 1);
    ASSERT_EQ(r.error.domain, MQC_ERROR_CANCELLED);
    bson_destroy(cmd);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

static void check_fault(fake_mode_t mode, int arg, uint32_t domain)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = client_for(s, "socketTimeoutMS=3000");
    tf_res_t r = ping(c, NULL);
    ASSERT_MSG(!r.failed, "%s", r.error.message);
    fakesrv_set_mode(s, mode, arg, 1);
    r = ping(c, NULL);
    ASSERT(r.failed);
    ASSERT_MSG(r.error.domain == domain, "domain %s, expected %s: %s", mqc_error_domain_name(r.error.domain),
               mqc_error_domain_name(domain), r.error.message);
    tf_note("error: %s", r.error.message);
    r = ping(c, NULL);
    ASSERT_MSG(!r.failed, "after the fault: %s", r.error.message);
    if (domain != MQC_ERROR_SERVER) ASSERT_EQ(mqc_client_stat(c, MQC_STAT_CONNS_OPENED), 2);
    else ASSERT_EQ(mqc_client_stat(c, MQC_STAT_CONNS_OPENED), 1);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/faults/hangup_before_reply", faults_hangup_before) { check_fault(FAKE_HANGUP_BEFORE, 0, MQC_ERROR_NETWORK); }
TEST("/faults/hangup_mid_reply", faults_hangup_mid) { check_fault(FAKE_HANGUP_MID, 0, MQC_ERROR_NETWORK); }
TEST("/faults/garbage", faults_garbage) { check_fault(FAKE_GARBAGE, 0, MQC_ERROR_PROTOCOL); }
TEST("/faults/oversize_length", faults_oversize) { check_fault(FAKE_OVERSIZE, 0, MQC_ERROR_PROTOCOL); }
TEST("/faults/wrong_response_to", faults_wrong_rt) { check_fault(FAKE_WRONG_RESPONSE_TO, 0, MQC_ERROR_PROTOCOL); }
TEST("/faults/server_error", faults_server_error) { check_fault(FAKE_ERROR, 189, MQC_ERROR_SERVER); }

TEST("/faults/overloaded", faults_overloaded)
{
    fakesrv_t *s = fakesrv_start(FAKE_DELAY, 100);
    mqc_client_t *c = client_for(s, "maxPoolSize=2&maxPendingOperations=10");
    int calls = 0, overloaded = 0;
    tf_res_t rs[40];
    memset(rs, 0, sizeof rs);
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    for (int i = 0; i < 40; i++) mqc_client_command(c, "admin", cmd, NULL, tf_res_cb, &rs[i]);
    ASSERT(mqc_client_run_until_idle(c, 20));
    for (int i = 0; i < 40; i++) {
        calls += rs[i].calls;
        if (rs[i].failed && rs[i].error.domain == MQC_ERROR_OVERLOADED) overloaded++;
    }
    ASSERT_EQ(calls, 40);
    ASSERT_GE(overloaded, 20);
    tf_note("%d of 40 refused as overloaded", overloaded);
    bson_destroy(cmd);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}
