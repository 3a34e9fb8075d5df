/* hotcmd: the commands of the hot path written as bytes, and a reply read in one pass.
 *
 * find by key (find_one), and the body of insert / update / delete, are the same few fields in
 * every call: the constant parts are written from prebuilt bytes, only the collection, the
 * filter and the database are appended, straight into the command's buffer (bson_reserve_buffer)
 * instead of one libbson append per field. Each encoder handles only what it is sure to encode
 * exactly as the generic builder does (find.c, write.c) and returns false, touching nothing, for
 * anything else (options it does not know, a readPreference, ...): the caller then builds the
 * command the generic way. tests/test_hotcmd.c proves both give the same bytes.
 *
 * A leaf: knows libbson and nothing of clients, ops or connections. */
#ifndef MQC_HOTCMD_H
#define MQC_HOTCMD_H

#include <bson/bson.h>
#include <stdbool.h>

/* {find: coll, filter: filter ({} for NULL), limit: 1, singleBatch: true, [readConcern: rc],
 * $db: db}, as mqc_collection_find_one builds it, into cmd (initialised and empty). rc: the
 * client's default readConcern (NULL or empty: none). opts may hold only keys find_one ignores
 * or takes elsewhere (timeoutMS, limit, batchSize, singleBatch, writeConcern, session); any
 * other key, readConcern and readPreference included, makes it return false. */
bool mqc_hotcmd_find_one(bson_t *cmd, const char *coll, const char *db, const bson_t *filter, const bson_t *opts,
                         const bson_t *rc);
/* The same with the names' lengths (strlen) known: a collection handle keeps them. */
bool mqc_hotcmd_find_one_n(bson_t *cmd, const char *coll, size_t coll_n, const char *db, size_t db_n,
                           const bson_t *filter, const bson_t *opts, const bson_t *rc);

/* A write command's body {<name>: coll, ordered: ordered, <the elements of wc>, $db: db}, as
 * write.c builds it, into body (initialised and empty). opts may hold only keys the generic
 * builder does not copy into the body: those mqc handles itself (timeoutMS, readPreference,
 * readConcern, writeConcern, session, $db) and the NULL-terminated `handled`; else false.
 * wc: the resolved {writeConcern: ...} (empty for none). */
bool mqc_hotcmd_write_body(bson_t *body, const char *name, const char *coll, const char *db, bool ordered,
                           const bson_t *opts, const char *const *handled, const bson_t *wc);

/* What a write's reply (insert, update, delete) is folded from (lib/reply.c), found in one pass
 * over its top-level keys like mqc_hotcmd_reply_scan: the first "n" and "nModified" (their type
 * and value bytes, inside the reply; NULL when absent), and whether "upserted", "writeErrors"
 * and "writeConcernError" are there at all (the caller reads those rare ones with libbson).
 * False when the walk meets a type it does not read (or no reply): the caller then looks up
 * every key with libbson. */
typedef struct mqc_hotcmd_write_reply {
    const uint8_t *n, *n_modified;
    uint8_t n_type, n_modified_type;
    bool upserted, write_errors, wce;
} mqc_hotcmd_write_reply_t;
bool mqc_hotcmd_write_scan(const bson_t *reply, mqc_hotcmd_write_reply_t *out);

/* What reply dispatch looks at, found in one pass over the reply's top-level keys (the first
 * of each name, as bson_iter_init_find would find it), stopping where bson_iter_next would. */
typedef struct mqc_hotcmd_reply {
    bool ok;                     /* "ok" present and true (bson_iter_as_bool) */
    bool has_wce;                /* "writeConcernError" present */
    bool has_cursor;             /* "cursor" present and a document */
    const uint8_t *cursor;       /* when has_cursor: its bytes inside the reply, cursor_len of */
    uint32_t cursor_len;         /* them (its own length field, what bson_iter_recurse takes) */
    /* The cursor's first element is its "firstBatch" or "nextBatch" array (as servers send it):
     * doc and doc_len are then mqc_hotcmd_find_one_doc's answer, found in the same pass. */
    bool batch_seen;
    const uint8_t *doc;
    uint32_t doc_len;
    /* What mqc_hotcmd_write_scan would find, from the same pass (a write's reply is folded
     * from it, lib/reply.c): valid when write_seen (the pass read every element itself). */
    bool write_seen;
    mqc_hotcmd_write_reply_t write;
} mqc_hotcmd_reply_t;
void mqc_hotcmd_reply_scan(const bson_t *reply, mqc_hotcmd_reply_t *out);

/* find_one's document in reply: the first element of the first "firstBatch" or "nextBatch"
 * array of its first "cursor" document, as bson_iter_recurse and bson_iter_next find it. False
 * when there is no such array (a protocol error for the caller); else *doc and *doc_len are the
 * element's document bytes, or NULL when the batch is empty or its first element is not a
 * document (the caller's bson_init_static checks the rest). cursor, cursor_len: the scan's
 * (mqc_hotcmd_reply_t), walked by hand; NULL, or a walk that meets a type it does not read
 * (binary, regex, ...), looks with libbson's iterators instead. */
bool mqc_hotcmd_find_one_doc(const bson_t *reply, const uint8_t *cursor, uint32_t cursor_len, const uint8_t **doc,
                             uint32_t *doc_len);

/* The same from the scan of reply (NULL: none): its answer when it saw the batch, else the walk. */
static inline bool mqc_hotcmd_scan_first_doc(const bson_t *reply, const mqc_hotcmd_reply_t *scan, const uint8_t **doc,
                                             uint32_t *doc_len)
{
    if (scan && scan->batch_seen) {
        *doc = scan->doc;
        *doc_len = scan->doc_len;
        return true;
    }
    const uint8_t *c = scan && scan->has_cursor ? scan->cursor : NULL;
    return mqc_hotcmd_find_one_doc(reply, c, c ? scan->cursor_len : 0, doc, doc_len);
}

/* For tests only: when set, the encoders above and mqc_hotcmd_write_scan return false (and the
 * write fold ignores the reply scan's write fields), so that the generic code runs (tests compare
 * both). Never set by the library. */
extern bool mqc_hotcmd_off;

#endif
