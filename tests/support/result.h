/* tests/support: what an operation's callback reported, and the client helpers the client tests
 * share (instead of one tally and one helper per test file).
 *
 *   tf_res_t r = {0};
 *   mqc_client_command(c, "admin", cmd, NULL, tf_res_cb, &r);
 *   tf_client_wait_idle(c, 20);
 *   ASSERT_EQ(r.calls, 1);                      (every operation ends in exactly one callback)
 *   ASSERT_MSG(!r.failed, "%s", r.error.message);
 *   tf_res_cleanup(&r); */
#ifndef MQC_TESTS_SUPPORT_RESULT_H
#define MQC_TESTS_SUPPORT_RESULT_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>

#include "mqc.h"

typedef struct {
    int calls;                  /* callbacks so far */
    int ok, errors;             /* of which without / with an error */
    bool failed;                /* the last callback had an error */
    mqc_error_t error;          /* the last error */
    mqc_error_t first_error;    /* the first error */
    bson_t *reply;              /* a copy of the last reply when keep_reply (tf_res_cleanup frees it) */
    bool keep_reply;
    size_t docs;                /* cursor batches: documents in the last batch */
    double at;                  /* tf_now() at the last callback */
} tf_res_t;

/* mqc_op_cb and mqc_cursor_cb that fill the tf_res_t given as their user data. */
void tf_res_cb(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud);
void tf_res_batch_cb(mqc_cursor_t *cursor, const bson_t *docs, size_t n, const mqc_error_t *error, void *ud);
/* Frees the copied reply and zeroes r (keep_reply stays as it was). */
void tf_res_reset(tf_res_t *r);
void tf_res_cleanup(tf_res_t *r);

/* A client for uri (on the default loop); fails the test when the URI is refused. */
mqc_client_t *tf_client_new(const char *uri);
/* The same for a URI made with printf. */
__attribute__((format(printf, 1, 2))) mqc_client_t *tf_client_newf(const char *fmt, ...);
/* base with the URI options extra (no leading '&' or '?') appended the right way; static storage
 * (4 slots). extra may be NULL or empty. */
const char *tf_uri_with(const char *base, const char *extra);
/* Runs the client's loop until nothing is pending; fails the test after secs seconds. */
void tf_client_wait_idle(mqc_client_t *c, double secs);

/* One command / find_one / insert_one ({x: 1}) on "db"."c", run to completion within secs; fails
 * the test unless exactly one callback came. opts may be NULL. */
tf_res_t tf_run_command(mqc_client_t *c, const char *db, const bson_t *cmd, const bson_t *opts, double secs);
tf_res_t tf_ping(mqc_client_t *c, const bson_t *opts, double secs);
tf_res_t tf_find_one(mqc_client_t *c, const bson_t *opts, double secs);
tf_res_t tf_insert_one(mqc_client_t *c, const bson_t *opts, double secs);

#endif
