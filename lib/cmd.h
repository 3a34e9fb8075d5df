/* cmd: the plain command operation (one command, one reply) and the option helpers every
 * command builder uses: read concern and preference, write concern, passthrough options. */
#ifndef MQC_CMD_H
#define MQC_CMD_H

#include "op.h"

/* A plain command op (client.c): encodes body `cmd` (which holds "$db"). */
typedef struct {
    bson_t cmd;
    bool unacknowledged;
    /* When set, called with an ok:1 reply instead of finishing with it; must finish the op. */
    void (*post)(mqc_op_t *op, const bson_t *reply);
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
mqc_op_t *mqc_cmd_op_adopt(mqc_client_t *client, const char *db, mqc_cmd_impl_t *impl, mqc_reply_cb cb, void *ud);
/* Appends the client's (or opts') readConcern / $readPreference to a read command. */
void mqc_apply_read_opts(mqc_client_t *client, bson_t *cmd, const bson_t *opts);
/* The write concern for a write: opts' "writeConcern", else the URI's. *unacked for w:0. */
void mqc_apply_write_concern(mqc_client_t *client, bson_t *cmd, const bson_t *opts, bool *unacked);
/* Copies opts into cmd except the keys mqc handles itself (timeoutMS, readPreference,
 * readConcern, writeConcern, session, and the NULL-terminated extra list). */
void mqc_copy_passthrough_opts(bson_t *cmd, const bson_t *opts, const char *const *extra);

#endif
