/* cursor: batches of a cursor-returning command, then getMore on the server that opened it
 * (lib/cursor.c). */
#ifndef MQC_CURSOR_H
#define MQC_CURSOR_H

#include "common.h"
#include "mqc.h"

/* A cursor over the reply of any cursor-returning command (listCollections, listIndexes, a
 * runCursorCommand): cmd (without "$db") is taken over and destroyed. coll names the cursor until
 * the reply's ns does. array_key (static), when set, reads reply[array_key] as the one and only
 * batch (listDatabases). opts: batchSize and comment (for getMore), timeoutMS, readPreference. */
mqc_cursor_t *mqc_cursor_open(mqc_client_t *client, const char *db, const char *coll, bson_t *cmd,
                              const bson_t *opts, bool retryable, const char *array_key, mqc_batch_cb cb, void *ud);
/* A cursor over cmd's reply (a whole find or aggregate, with "$db"; taken over and destroyed)
 * for the collection db.coll: the first batch, then getMore on demand. retryable: the opening
 * command is a retryable read. opts: batchSize, comment and timeoutMS. */
mqc_cursor_t *mqc_cursor_start(mqc_client_t *client, const char *db, const char *coll, bson_t *cmd, const bson_t *opts,
                               bool retryable, mqc_batch_cb cb, void *ud);
/* Every getMore of c carries maxTimeMS: ms (runCursorCommand's maxTimeMS; 0 removes it). */
void mqc_cursor_set_getmore_max_time(mqc_cursor_t *c, int64_t ms);

/* The client is going away: live cursors become inert (no killCursors, no callbacks). */
void mqc_cursor_detach_all(mqc_client_t *client);

#endif
