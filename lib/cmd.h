/* cmd: the plain command operation (one command, one reply) and the option helpers every
 * command builder uses: read concern and preference, write concern, passthrough options. */
#ifndef MQC_CMD_H
#define MQC_CMD_H

#include "op.h"

/* What the API makes of an ok:1 reply (find_one's first document, a count's number), handed
 * to the command op once when it is built and applied on the way up, before the op ends. A
 * pure function of the command and its reply: it neither finishes the op nor calls anything
 * of the op's; the op ends with what it leaves in result (or with the reply and error when it
 * returns false). */
typedef struct {
    const char *name;            /* the op's name, for messages */
    const bson_t *cmd;           /* the command sent */
    const bson_t *reply;         /* its ok:1 reply */
    const struct mqc_hotcmd_reply *scan; /* the one-pass scan of reply (op.c, hotcmd.h), or
                                  * NULL: the transform looks for itself */
    const bson_t *result;        /* out: reply, view, tmp, or NULL (no document) */
    bson_t *view;                /* for a document inside reply (bson_init_static): never freed */
    bson_t *tmp;                 /* for a result built anew: initialised by the transform, freed
                                  * by op.c once the op has finished (mqc_op_outcome_t) */
    mqc_error_t error;           /* out, when the transform returns false */
} mqc_cmd_result_t;
typedef bool (*mqc_cmd_result_fn)(mqc_cmd_result_t *r);

/* A plain command op (cmd.c): encodes body `cmd` (which holds "$db"). */
/* libbson declares bson_t 128-byte aligned, which would pad the impl to 256 bytes; malloc gives
 * 16 and libbson needs no more (the sanitizer build already leaves its alignment check out). A
 * typedef may lower the alignment: the impl is then 144 bytes, and an op in flight costs its
 * allocations (docs/internals/performance.md, "Memory"). */
typedef bson_t mqc_bson16_t __attribute__((aligned(16)));

typedef struct mqc_cmd_impl {
    mqc_bson16_t cmd;
    mqc_cmd_result_fn result;    /* when set, turns an ok:1 reply into the op's result */
    struct mqc_cmd_impl *next_free; /* in the client's free-list (mqc_ops_t.free_impls) */
} mqc_cmd_impl_t;
extern const mqc_op_vt_t mqc_cmd_vt;
/* New command op: copies cmd and appends "$db" (and readConcern/writeConcern as given). */
mqc_op_t *mqc_cmd_op_new(mqc_client_t *client, const char *db, const bson_t *cmd, mqc_reply_cb cb,
                         void *ud);
/* The same for a command built by the caller, already holding "$db": takes it over (cmd is
 * left destroyed), saving a copy on the hot path. */
mqc_op_t *mqc_cmd_op_take(mqc_client_t *client, const char *db, bson_t *cmd, mqc_reply_cb cb, void *ud);
/* Cheapest of all: the command is built straight into impl->cmd (from mqc_cmd_impl_new). */
mqc_cmd_impl_t *mqc_cmd_impl_new(void);
/* The same from the client's free-list (no allocation in a steady state). */
mqc_cmd_impl_t *mqc_cmd_impl_get(mqc_client_t *client);
/* Empties the client's free-list of command impls (client destroy). */
void mqc_cmd_free_list_drain(mqc_client_t *client);
mqc_op_t *mqc_cmd_op_adopt(mqc_client_t *client, const char *db, mqc_cmd_impl_t *impl, mqc_reply_cb cb, void *ud);
/* The same when the caller knows the command's name (its first key; a string that outlives the
 * op): nothing to read back out of the command. */
mqc_op_t *mqc_cmd_op_adopt_named(mqc_client_t *client, const char *db, mqc_cmd_impl_t *impl, const char *name,
                                 mqc_reply_cb cb, void *ud);
/* Appends the client's (or opts') readConcern / $readPreference to a read command. */
void mqc_apply_read_opts(mqc_client_t *client, bson_t *cmd, const bson_t *opts);
/* The write concern for a write: opts' "writeConcern", else the URI's. *unacked for w:0. */
void mqc_apply_write_concern(mqc_client_t *client, bson_t *cmd, const bson_t *opts, bool *unacked);
/* Copies opts into cmd except the keys mqc handles itself (timeoutMS, readPreference,
 * readConcern, writeConcern, session, and the NULL-terminated extra list). */
void mqc_copy_passthrough_opts(bson_t *cmd, const bson_t *opts, const char *const *extra);

#endif
