/* hotcmd: hot commands from prebuilt bytes (see hotcmd.h). The layouts below are BSON's: an
 * element is its type byte, its key as a C string, then its value; a string value is its length
 * (with the NUL) as int32, the bytes, a NUL; a document value is the document's bytes. */
#include <string.h>

#include "hotcmd.h"

bool mqc_hotcmd_off;

/* The constant runs of the commands, element headers included. */
static const uint8_t FIND_KEY[] = {0x02, 'f', 'i', 'n', 'd', 0};
static const uint8_t FILTER_KEY[] = {0x03, 'f', 'i', 'l', 't', 'e', 'r', 0};
/* limit: 1 (int32), singleBatch: true */
static const uint8_t FIND_ONE_TAIL[] = {0x10, 'l', 'i', 'm', 'i', 't', 0, 1, 0, 0, 0,
                                        0x08, 's', 'i', 'n', 'g', 'l', 'e', 'B', 'a', 't', 'c', 'h', 0, 1};
static const uint8_t RC_KEY[] = {0x03, 'r', 'e', 'a', 'd', 'C', 'o', 'n', 'c', 'e', 'r', 'n', 0};
static const uint8_t DB_KEY[] = {0x02, '$', 'd', 'b', 0};
static const uint8_t ORDERED_KEY[] = {0x08, 'o', 'r', 'd', 'e', 'r', 'e', 'd', 0};
static const uint8_t EMPTY_DOC[] = {5, 0, 0, 0, 0};

/* The keys mqc_copy_passthrough_opts never copies (cmd.c's `ours`). */
static const char *const OURS[] = {"timeoutMS", "readPreference", "readConcern", "writeConcern", "session", "$db",
                                   NULL};
/* What find_one does not send from opts: its own three, and what it takes elsewhere or ignores. */
static const char *const FIND_ONE_QUIET[] = {"timeoutMS", "writeConcern", "session", "$db", "limit", "batchSize",
                                             "singleBatch", NULL};

static bool in_list(const char *key, const char *const *list)
{
    for (; list && *list; list++)
        if (strcmp(key, *list) == 0) return true;
    return false;
}

/* Whether every key of opts is in a or b. */
static bool opts_within(const bson_t *opts, const char *const *a, const char *const *b)
{
    bson_iter_t it;
    if (!opts || bson_empty(opts)) return true;
    if (!bson_iter_init(&it, opts)) return false;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (!in_list(k, a) && !in_list(k, b)) return false;
    }
    return true;
}

static uint8_t *put(uint8_t *p, const void *src, size_t n)
{
    memcpy(p, src, n);
    return p + n;
}

static uint8_t *put_i32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 24);
    return p + 4;
}

/* A string value: int32 length with the NUL, the bytes, the NUL. */
static uint8_t *put_str(uint8_t *p, const char *s, size_t n)
{
    p = put_i32(p, (uint32_t) (n + 1));
    p = put(p, s, n);
    *p++ = 0;
    return p;
}

/* Sizes are checked against what a bson_t can hold before anything is written. */
#define HOT_MAX ((size_t) INT32_MAX)

bool mqc_hotcmd_find_one(bson_t *cmd, const char *coll, const char *db, const bson_t *filter, const bson_t *opts,
                         const bson_t *rc)
{
    if (mqc_hotcmd_off || !cmd || !coll || !db || !bson_empty(cmd)) return false;
    if (!opts_within(opts, FIND_ONE_QUIET, NULL)) return false;
    size_t coll_n = strlen(coll), db_n = strlen(db);
    const uint8_t *f = filter ? bson_get_data(filter) : EMPTY_DOC;
    size_t f_n = filter ? filter->len : sizeof EMPTY_DOC;
    bool with_rc = rc && !bson_empty(rc);
    size_t total = 4 + sizeof FIND_KEY + 4 + coll_n + 1 + sizeof FILTER_KEY + f_n + sizeof FIND_ONE_TAIL +
                   (with_rc ? sizeof RC_KEY + rc->len : 0) + sizeof DB_KEY + 4 + db_n + 1 + 1;
    if (total > HOT_MAX) return false;
    uint8_t *p = bson_reserve_buffer(cmd, (uint32_t) total);
    if (!p) return false;
    p = put_i32(p, (uint32_t) total);
    p = put(p, FIND_KEY, sizeof FIND_KEY);
    p = put_str(p, coll, coll_n);
    p = put(p, FILTER_KEY, sizeof FILTER_KEY);
    p = put(p, f, f_n);
    p = put(p, FIND_ONE_TAIL, sizeof FIND_ONE_TAIL);
    if (with_rc) {
        p = put(p, RC_KEY, sizeof RC_KEY);
        p = put(p, bson_get_data(rc), rc->len);
    }
    p = put(p, DB_KEY, sizeof DB_KEY);
    p = put_str(p, db, db_n);
    *p = 0;
    return true;
}

bool mqc_hotcmd_write_body(bson_t *body, const char *name, const char *coll, const char *db, bool ordered,
                           const bson_t *opts, const char *const *handled, const bson_t *wc)
{
    if (mqc_hotcmd_off || !body || !name || !coll || !db || !bson_empty(body)) return false;
    if (!opts_within(opts, OURS, handled)) return false;
    size_t name_n = strlen(name), coll_n = strlen(coll), db_n = strlen(db);
    /* wc's elements, without its length and terminating NUL (bson_concat's bytes) */
    size_t wc_n = wc && wc->len > 5 ? wc->len - 5 : 0;
    size_t total = 4 + 1 + name_n + 1 + 4 + coll_n + 1 + sizeof ORDERED_KEY + 1 + wc_n + sizeof DB_KEY + 4 + db_n +
                   1 + 1;
    if (total > HOT_MAX) return false;
    uint8_t *p = bson_reserve_buffer(body, (uint32_t) total);
    if (!p) return false;
    p = put_i32(p, (uint32_t) total);
    *p++ = 0x02;
    p = put(p, name, name_n + 1);
    p = put_str(p, coll, coll_n);
    p = put(p, ORDERED_KEY, sizeof ORDERED_KEY);
    *p++ = ordered ? 1 : 0;
    if (wc_n) p = put(p, bson_get_data(wc) + 4, wc_n);
    p = put(p, DB_KEY, sizeof DB_KEY);
    p = put_str(p, db, db_n);
    *p = 0;
    return true;
}

void mqc_hotcmd_reply_scan(const bson_t *reply, mqc_hotcmd_reply_t *out)
{
    bson_iter_t it;
    bool seen_ok = false, seen_cursor = false;
    memset(out, 0, sizeof *out);
    if (!reply || !bson_iter_init(&it, reply)) return;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (!seen_ok && k[0] == 'o' && k[1] == 'k' && k[2] == 0) {
            seen_ok = true;
            out->ok = bson_iter_as_bool(&it);
        } else if (!seen_cursor && k[0] == 'c' && strcmp(k, "cursor") == 0) {
            seen_cursor = true;
            out->has_cursor = BSON_ITER_HOLDS_DOCUMENT(&it);
            out->cursor = it;
        } else if (!out->has_wce && k[0] == 'w' && strcmp(k, "writeConcernError") == 0) {
            out->has_wce = true;
        }
    }
}
