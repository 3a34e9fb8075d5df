/* Builders of read commands shared by read.c and cursor.c. */
#ifndef MQC_READ_H
#define MQC_READ_H

#include "client.h"

/* Appends a whole find / aggregate command (with "$db") for coll to cmd (initialised). */
void mqc_build_find(mqc_client_t *client, const mqc_collection_t *coll, const bson_t *filter, const bson_t *opts,
                    bson_t *cmd);
void mqc_build_aggregate(mqc_client_t *client, const mqc_collection_t *coll, const bson_t *pipeline,
                         const bson_t *opts, bson_t *cmd);
/* Positions batch inside reply's cursor.firstBatch or cursor.nextBatch array. */
bool mqc_reply_first_batch(const bson_t *reply, bson_iter_t *batch);

/* A cursor over the reply of any cursor-returning command (listCollections, listIndexes, a
 * runCursorCommand): cmd (without "$db") is taken over and destroyed. coll names the cursor until
 * the reply's ns does. array_key (static), when set, reads reply[array_key] as the one and only
 * batch (listDatabases). opts: batchSize and comment (for getMore), timeoutMS, readPreference. */
mqc_cursor_t *mqc_cursor_open(mqc_client_t *client, const char *db, const char *coll, bson_t *cmd,
                              const bson_t *opts, bool retryable, const char *array_key, mqc_batch_cb cb, void *ud);
/* Every getMore of c carries maxTimeMS: ms (runCursorCommand's maxTimeMS; 0 removes it). */
void mqc_cursor_set_getmore_max_time(mqc_cursor_t *c, int64_t ms);

#endif
