/* Builders of read commands shared by read.c and cursor.c. */
#ifndef MQC_READ_H
#define MQC_READ_H

#include "handles.h"

/* Appends a whole find / aggregate command (with "$db") for coll to cmd (initialised). */
void mqc_build_find(mqc_client_t *client, const mqc_collection_t *coll, const bson_t *filter, const bson_t *opts,
                    bson_t *cmd);
void mqc_build_aggregate(mqc_client_t *client, const mqc_collection_t *coll, const bson_t *pipeline,
                         const bson_t *opts, bson_t *cmd);
/* Positions batch inside reply's cursor.firstBatch or cursor.nextBatch array. */
bool mqc_reply_first_batch(const bson_t *reply, bson_iter_t *batch);

#endif
