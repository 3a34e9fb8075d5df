/* reply: pure parsers of server replies that carry data back (cursor batches, write results).
 * No connection, no client: they take a reply document and fill plain structs, so that the
 * fuzzer (tests/fuzz/fuzz_reply.c) runs exactly what cursor.c and write.c run. */
#ifndef MQC_REPLY_H
#define MQC_REPLY_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqc.h"

/* ---- cursors ---- */

typedef struct {
    int64_t id;               /* cursor.id; 0 when absent or not a number (the cursor is done) */
    const char *ns;           /* cursor.ns inside the reply, NULL when absent */
    uint32_t ns_len;
    bool has_batch;           /* cursor.firstBatch or cursor.nextBatch is an array */
    bson_iter_t batch;        /* positioned before its first element when has_batch */
} mqc_cursor_reply_t;

/* Reads reply's cursor document. False when there is none (a protocol error for the caller). */
bool mqc_cursor_reply_parse(const bson_t *reply, mqc_cursor_reply_t *out);

/* Splits "db.coll" (len bytes, not necessarily terminated) at its first dot: db into db_out
 * (db_size bytes), the collection into *coll_out (malloc'd, the caller frees). False, touching
 * nothing, when there is no dot, either part is empty, contains a NUL, or db does not fit. */
bool mqc_ns_split(const char *ns, size_t len, char *db_out, size_t db_size, char **coll_out);

/* Collects the documents of a batch (non-documents are skipped) into *docs, grown as needed
 * (capacity *cap; realloc'd, the caller frees). The bson_t are static views into the reply:
 * valid as long as the reply is. Returns how many. */
size_t mqc_batch_collect(bson_iter_t *batch, bson_t **docs, size_t *cap);

/* ---- write results ---- */

struct mqc_hotcmd_reply; /* lib/hotcmd.h */

typedef enum { MQC_WRITE_INSERT = 0, MQC_WRITE_UPDATE, MQC_WRITE_DELETE } mqc_write_kind_t;

/* The running result of a bulk write, folded one batch reply at a time. Counts saturate at
 * INT64_MAX and ignore negative values: they come from the server and must never overflow. */
typedef struct {
    int64_t inserted, matched, modified, deleted, upserted;
    bson_t upserted_ids;      /* {"<model index>": _id} */
    bson_t write_errors;      /* array of writeErrors with indexes relative to the whole bulk */
    bson_t wc_errors;         /* array of writeConcernError documents */
    uint32_t n_write_errors, n_wc_errors;
    mqc_error_t first_error;  /* the first write error or write concern error: when has_error */
    bool has_error;
} mqc_write_result_t;

void mqc_write_result_init(mqc_write_result_t *r);
void mqc_write_result_cleanup(mqc_write_result_t *r);

/* Folds the acknowledged reply (ok: 1) of the batch of batch_n models of kind starting at model
 * batch_start. Indexes the server gives outside [0, batch_n) are reported as -1 (and upserts
 * with such an index are counted but not listed). Returns true when the reply had write errors
 * (an ordered bulk stops then). scan: the reply's one-pass scan (lib/hotcmd.h, op.c's), or NULL
 * (the fold scans it). */
bool mqc_write_result_fold(mqc_write_result_t *r, mqc_write_kind_t kind, size_t batch_start, size_t batch_n,
                           const bson_t *reply, const struct mqc_hotcmd_reply *scan);

#endif
