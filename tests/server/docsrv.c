/* docsrv: the document-keeping mode of the scripted server (docsrv.h). Collections are arrays of
 * bson_t * (never of bson_t: they grow). The state is the server's (srv.h): the loop's thread
 * runs commands with the server's lock held, the test's thread reads documents under it. */
#include "docsrv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "docsrv_eval.h"
#include "srv.h"

typedef struct {
    char *ns;
    bson_t **docs;
    size_t n, cap;
    /* _id hashes with counts (open addressing): a miss proves an _id new without a scan */
    uint64_t *ih;
    uint32_t *icount;
    size_t icap, iused;
} coll_t;

typedef struct {
    int64_t id;
    char *ns;
    bson_t **docs;            /* copies taken when the cursor opened */
    size_t n, pos;
} cursor_t;

struct docsrv {
    docsrv_limits_t lim;
    srv_t *srv;
    coll_t *colls;
    size_t ncolls;
    cursor_t **cursors;
    size_t ncursors;
    int64_t next_cursor;
    docsrv_stats_t st;
};

/* ---- collections --------------------------------------------------------------------------- */

static coll_t *coll_get(docsrv_t *s, const char *ns, bool create)
{
    for (size_t i = 0; i < s->ncolls; i++)
        if (!strcmp(s->colls[i].ns, ns)) return &s->colls[i];
    if (!create) return NULL;
    s->colls = realloc(s->colls, (s->ncolls + 1) * sizeof *s->colls);
    coll_t *c = &s->colls[s->ncolls++];
    memset(c, 0, sizeof *c);
    c->ns = strdup(ns);
    return c;
}

/* h's slot (claimed when insert), or NULL when absent */
static uint32_t *id_slot(coll_t *c, uint64_t h, bool insert)
{
    size_t i = (size_t) (h % c->icap);
    while (c->ih[i] && c->ih[i] != h) i = (i + 1) % c->icap;
    if (!c->ih[i] && !insert) return NULL;
    c->ih[i] = h;
    return &c->icount[i];
}

static void id_count(coll_t *c, const bson_t *doc, int delta)
{
    bson_value_t id;
    if (!docsrv_get_field(doc, "_id", &id)) return;
    if (c->iused * 2 >= c->icap) {
        uint64_t *oh = c->ih;
        uint32_t *oc = c->icount;
        size_t ocap = c->icap;
        c->icap = ocap ? ocap * 2 : 256;
        c->ih = calloc(c->icap, sizeof *c->ih);
        c->icount = calloc(c->icap, sizeof *c->icount);
        c->iused = 0;
        for (size_t i = 0; i < ocap; i++)
            if (oh[i] && oc[i]) *id_slot(c, oh[i], true) = oc[i], c->iused++;
        free(oh), free(oc);
    }
    uint32_t *n = id_slot(c, docsrv_id_hash(&id), true);
    if (*n == 0 && delta > 0) c->iused++; /* slots are never freed: a count of 0 still takes one */
    *n = (uint32_t) ((int64_t) *n + delta);
}

static void coll_add(coll_t *c, bson_t *doc)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->docs = realloc(c->docs, c->cap * sizeof *c->docs);
    }
    c->docs[c->n++] = doc;
    id_count(c, doc, 1);
}

static void coll_remove(coll_t *c, size_t i)
{
    id_count(c, c->docs[i], -1);
    bson_destroy(c->docs[i]);
    memmove(&c->docs[i], &c->docs[i + 1], (c->n - i - 1) * sizeof *c->docs);
    c->n--;
}

static bool has_id(coll_t *c, const bson_value_t *id, const bson_t *except)
{
    bson_value_t v;
    uint32_t *n = c->icap ? id_slot(c, docsrv_id_hash(id), false) : NULL;
    if (!n || !*n) return false;
    for (size_t i = 0; i < c->n; i++)
        if (c->docs[i] != except && docsrv_get_field(c->docs[i], "_id", &v) && docsrv_compare_values(&v, id) == 0)
            return true;
    return false;
}

static int by_id(const void *a, const void *b)
{
    bson_value_t va, vb;
    bool ha = docsrv_get_field(*(bson_t *const *) a, "_id", &va), hb = docsrv_get_field(*(bson_t *const *) b, "_id", &vb);
    if (!ha || !hb) return ha - hb;
    return docsrv_compare_values(&va, &vb);
}

/* ---- commands ------------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    const uint8_t *data; /* the documents, back to back */
    size_t len;
} seq_t;

static void write_error(bson_t *errs, int *nerr, int index, int code, const char *msg)
{
    char k[16];
    bson_t e;
    snprintf(k, sizeof k, "%d", (*nerr)++);
    bson_append_document_begin(errs, k, -1, &e);
    BSON_APPEND_INT32(&e, "index", index);
    BSON_APPEND_INT32(&e, "code", code);
    BSON_APPEND_UTF8(&e, "errmsg", msg);
    bson_append_document_end(errs, &e);
}

static bson_t *error_reply(int code, const char *name, const char *msg)
{
    return BCON_NEW("ok", BCON_DOUBLE(0), "code", BCON_INT32(code), "codeName", BCON_UTF8(name), "errmsg", BCON_UTF8(msg));
}

/* The statements of a write: the body's array field, or the kind-1 sequence of that name. */
static size_t statements(const bson_t *cmd, const seq_t *seqs, int nseq, const char *field, bson_t ***out)
{
    size_t n = 0, cap = 16;
    bson_t **v = malloc(cap * sizeof *v);
    bson_iter_t it, a;
    if (bson_iter_init_find(&it, cmd, field) && bson_iter_recurse(&it, &a)) {
        while (bson_iter_next(&a)) {
            uint32_t l;
            const uint8_t *d;
            if (!BSON_ITER_HOLDS_DOCUMENT(&a)) continue;
            bson_iter_document(&a, &l, &d);
            if (n == cap) v = realloc(v, (cap *= 2) * sizeof *v);
            v[n++] = bson_new_from_data(d, l);
        }
    }
    for (int s = 0; s < nseq; s++) {
        if (strcmp(seqs[s].name, field)) continue;
        for (size_t off = 0; off + 5 <= seqs[s].len;) {
            uint32_t l = (uint32_t) srv_get_le32(seqs[s].data + off);
            if (l < 5 || off + l > seqs[s].len) break;
            if (n == cap) v = realloc(v, (cap *= 2) * sizeof *v);
            v[n++] = bson_new_from_data(seqs[s].data + off, l);
            off += l;
        }
    }
    *out = v;
    return n;
}

static void free_list(bson_t **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i]) bson_destroy(v[i]);
    free(v);
}

static const char *str_field(const bson_t *cmd, const char *key, const char *dflt)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, cmd, key) && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : dflt;
}

static int64_t int_field(const bson_t *cmd, const char *key, int64_t dflt)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, cmd, key) && BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : dflt;
}

static bool doc_field(const bson_t *cmd, const char *key, bson_t *out)
{
    bson_iter_t it;
    uint32_t l;
    const uint8_t *d;
    if (!bson_iter_init_find(&it, cmd, key) || !(BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it))) return false;
    if (BSON_ITER_HOLDS_DOCUMENT(&it)) bson_iter_document(&it, &l, &d);
    else bson_iter_array(&it, &l, &d);
    return bson_init_static(out, d, l);
}

static bson_t *cmd_write(docsrv_t *s, const bson_t *cmd, const char *kind, const char *ns, const seq_t *seqs, int nseq)
{
    const char *field = !strcmp(kind, "insert") ? "documents" : !strcmp(kind, "update") ? "updates" : "deletes";
    bson_t **st;
    size_t n = statements(cmd, seqs, nseq, field, &st);
    bson_iter_t it;
    bool ordered = !bson_iter_init_find(&it, cmd, "ordered") || bson_iter_as_bool(&it);
    s->st.write_batches++;
    if (n > s->st.max_statements) s->st.max_statements = n;
    if (n == 0 || n > (size_t) s->lim.max_batch) {
        char msg[128];
        snprintf(msg, sizeof msg, "Write batch sizes must be between 1 and %d. Got %zu operations.", s->lim.max_batch, n);
        s->st.limit_errors++;
        free_list(st, n);
        return error_reply(16, "InvalidLength", msg);
    }
    coll_t *c = coll_get(s, ns, true);
    bson_t errs, upserted;
    bson_init(&errs), bson_init(&upserted);
    int nerr = 0, nups = 0;
    int64_t count = 0, modified = 0;
    for (size_t i = 0; i < n && !(ordered && nerr); i++) {
        if (field[0] == 'd' && field[1] == 'o') { /* insert */
            bson_value_t id;
            if (st[i]->len > (uint32_t) s->lim.max_bson) {
                s->st.limit_errors++;
                write_error(&errs, &nerr, (int) i, 10334, "object to insert too large");
            } else if (!docsrv_get_field(st[i], "_id", &id)) {
                write_error(&errs, &nerr, (int) i, 2, "docsrv: documents must come with an _id (drivers add it)");
            } else if (has_id(c, &id, NULL)) {
                write_error(&errs, &nerr, (int) i, 11000, "E11000 duplicate key error collection: _id_ dup key");
            } else {
                coll_add(c, st[i]);
                st[i] = NULL;
                count++;
            }
            continue;
        }
        bson_t q, u;
        if (!doc_field(st[i], "q", &q)) bson_init(&q);
        if (field[0] == 'd') { /* delete */
            int64_t limit = int_field(st[i], "limit", 0);
            for (size_t k = 0; k < c->n;) {
                if (docsrv_matches(c->docs[k], &q)) {
                    coll_remove(c, k);
                    count++;
                    if (limit == 1) break;
                } else k++;
            }
            continue;
        }
        bool multi = bson_iter_init_find(&it, st[i], "multi") && bson_iter_as_bool(&it);
        bool upsert = bson_iter_init_find(&it, st[i], "upsert") && bson_iter_as_bool(&it);
        if (!doc_field(st[i], "u", &u)) {
            write_error(&errs, &nerr, (int) i, 9, "docsrv: update without u");
            continue;
        }
        int64_t matched = 0;
        for (size_t k = 0; k < c->n && (multi || matched == 0); k++) {
            if (!docsrv_matches(c->docs[k], &q)) continue;
            bool pipe;
            int code = 0;
            bson_t *nd = docsrv_apply_update(c->docs[k], &u, &pipe, &code);
            matched++;
            if (!nd) {
                write_error(&errs, &nerr, (int) i, code, "docsrv: unsupported update");
                break;
            }
            if (nd->len > (uint32_t) s->lim.max_bson) {
                write_error(&errs, &nerr, (int) i, 17419, "Resulting document after update is larger than maxBsonObjectSize");
                bson_destroy(nd);
                break;
            }
            if (nd->len != c->docs[k]->len || memcmp(bson_get_data(nd), bson_get_data(c->docs[k]), nd->len)) modified++;
            bson_destroy(c->docs[k]);
            c->docs[k] = nd;
        }
        count += matched;
        if (matched == 0 && upsert) {
            int code = 0;
            bson_t *nd = docsrv_upsert_doc(&q, &u, &code);
            bson_value_t id;
            if (!nd) {
                write_error(&errs, &nerr, (int) i, code, "docsrv: unsupported update");
                continue;
            }
            docsrv_get_field(nd, "_id", &id);
            char k[16];
            bson_t e;
            snprintf(k, sizeof k, "%d", nups++);
            bson_append_document_begin(&upserted, k, -1, &e);
            BSON_APPEND_INT32(&e, "index", (int32_t) i);
            BSON_APPEND_VALUE(&e, "_id", &id);
            bson_append_document_end(&upserted, &e);
            coll_add(c, nd);
            count++;
        }
    }
    bson_t *r = bson_new();
    BSON_APPEND_INT32(r, "n", (int32_t) count);
    if (field[0] == 'u') BSON_APPEND_INT32(r, "nModified", (int32_t) modified);
    if (nups) BSON_APPEND_ARRAY(r, "upserted", &upserted);
    if (nerr) BSON_APPEND_ARRAY(r, "writeErrors", &errs);
    BSON_APPEND_DOUBLE(r, "ok", 1);
    bson_destroy(&errs), bson_destroy(&upserted);
    free_list(st, n);
    return r;
}

/* Matching documents (copies), sorted and cut as asked. */
static bson_t **select_docs(docsrv_t *s, const char *ns, const bson_t *filter, int sort, int64_t skip, int64_t limit,
                            size_t *n)
{
    coll_t *c = coll_get(s, ns, false);
    bson_t **v = malloc(((c ? c->n : 0) + 1) * sizeof *v);
    size_t k = 0;
    for (size_t i = 0; c && i < c->n; i++)
        if (docsrv_matches(c->docs[i], filter)) v[k++] = c->docs[i];
    if (sort) qsort(v, k, sizeof *v, by_id);
    if (sort < 0)
        for (size_t i = 0; i < k / 2; i++) {
            bson_t *t = v[i];
            v[i] = v[k - 1 - i], v[k - 1 - i] = t;
        }
    size_t from = skip > 0 ? (size_t) skip < k ? (size_t) skip : k : 0;
    size_t to = limit > 0 && from + (size_t) limit < k ? from + (size_t) limit : k;
    for (size_t i = from; i < to; i++) v[i - from] = bson_copy(v[i]);
    *n = to - from;
    return v;
}

static int sort_of(const bson_t *cmd, const char *key)
{
    bson_t so;
    bson_iter_t it;
    if (!doc_field(cmd, key, &so) || !bson_iter_init(&it, &so) || !bson_iter_next(&it)) return 0;
    return bson_iter_as_int64(&it) < 0 ? -1 : 1;
}

/* A batch of cursor cu (at most `want` documents, within maxBsonObjectSize) into reply. */
static bson_t *batch_reply(docsrv_t *s, cursor_t *cu, int64_t want, bool first, const char *ns)
{
    bson_t *r = bson_new(), cur, arr;
    size_t bytes = 0, k = 0;
    if (want <= 0) want = first ? 101 : INT64_MAX;
    BSON_APPEND_DOCUMENT_BEGIN(r, "cursor", &cur);
    bson_append_array_begin(&cur, first ? "firstBatch" : "nextBatch", -1, &arr);
    while (cu->pos < cu->n && (int64_t) k < want) {
        bson_t *d = cu->docs[cu->pos];
        if (k > 0 && bytes + d->len > (size_t) s->lim.max_bson) break;
        char key[24];
        snprintf(key, sizeof key, "%zu", k++);
        BSON_APPEND_DOCUMENT(&arr, key, d);
        bytes += d->len;
        bson_destroy(d);
        cu->docs[cu->pos++] = NULL;
    }
    bson_append_array_end(&cur, &arr);
    bool done = cu->pos >= cu->n;
    BSON_APPEND_INT64(&cur, "id", done ? 0 : cu->id);
    BSON_APPEND_UTF8(&cur, "ns", ns);
    bson_append_document_end(r, &cur);
    BSON_APPEND_DOUBLE(r, "ok", 1);
    return r;
}

static void cursor_free(cursor_t *cu)
{
    free_list(cu->docs, cu->n);
    free(cu->ns);
    free(cu);
}

static void cursor_drop(docsrv_t *s, size_t i)
{
    cursor_free(s->cursors[i]);
    s->cursors[i] = s->cursors[--s->ncursors];
    s->st.cursors_open--;
}

static bson_t *open_cursor(docsrv_t *s, const char *ns, bson_t **docs, size_t n, int64_t batch, bool single)
{
    cursor_t *cu = calloc(1, sizeof *cu);
    cu->id = ++s->next_cursor;
    cu->ns = strdup(ns);
    cu->docs = docs;
    cu->n = n;
    bson_t *r = batch_reply(s, cu, batch, true, ns);
    if (cu->pos >= cu->n || single) {
        cursor_free(cu);
        if (single) { /* the reply named the cursor: make it 0 */
            bson_t *fixed = bson_new();
            bson_iter_t it;
            bson_iter_init(&it, r);
            while (bson_iter_next(&it)) {
                if (strcmp(bson_iter_key(&it), "cursor")) { bson_append_iter(fixed, NULL, 0, &it); continue; }
                bson_t sub, out;
                doc_field(r, "cursor", &sub);
                BSON_APPEND_DOCUMENT_BEGIN(fixed, "cursor", &out);
                bson_copy_to_excluding_noinit(&sub, &out, "id", NULL);
                BSON_APPEND_INT64(&out, "id", 0);
                bson_append_document_end(fixed, &out);
            }
            bson_destroy(r);
            r = fixed;
        }
        return r;
    }
    s->cursors = realloc(s->cursors, (s->ncursors + 1) * sizeof *s->cursors);
    s->cursors[s->ncursors++] = cu;
    s->st.cursors_open++;
    return r;
}

static bson_t *cmd_aggregate(docsrv_t *s, const bson_t *cmd, const char *ns)
{
    bson_t pipeline, cursor, match;
    bson_iter_t it;
    int64_t skip = 0, limit = 0;
    int sort = 0;
    bool count = false;
    const char *count_name = "n";
    bson_init(&match);
    if (!doc_field(cmd, "pipeline", &pipeline)) return error_reply(9, "FailedToParse", "aggregate needs a pipeline");
    bson_iter_init(&it, &pipeline);
    while (bson_iter_next(&it)) {
        bson_t stage;
        bson_iter_t st;
        uint32_t l;
        const uint8_t *d;
        bson_iter_document(&it, &l, &d);
        if (!d || !bson_init_static(&stage, d, l) || !bson_iter_init(&st, &stage) || !bson_iter_next(&st))
            return error_reply(9, "FailedToParse", "bad stage");
        const char *k = bson_iter_key(&st);
        if (!strcmp(k, "$match")) {
            bson_t m;
            doc_field(&stage, "$match", &m);
            bson_concat(&match, &m);
        } else if (!strcmp(k, "$sort")) sort = sort_of(&stage, "$sort");
        else if (!strcmp(k, "$skip")) skip += bson_iter_as_int64(&st);
        else if (!strcmp(k, "$limit")) limit = bson_iter_as_int64(&st);
        else if (!strcmp(k, "$count")) count = true, count_name = bson_iter_utf8(&st, NULL);
        else if (!strcmp(k, "$group")) count = true; /* {_id: 1, n: {$sum: 1}}: a count */
        else {
            bson_destroy(&match);
            return error_reply(40324, "Location40324", "docsrv: unsupported pipeline stage");
        }
    }
    size_t n;
    bson_t **docs = select_docs(s, ns, &match, sort, skip, limit, &n);
    bson_destroy(&match);
    if (count) {
        free_list(docs, n);
        docs = malloc(sizeof *docs);
        if (n) {
            docs[0] = bson_new();
            BSON_APPEND_INT32(docs[0], "_id", 1);
            BSON_APPEND_INT32(docs[0], count_name, (int32_t) n);
        }
        n = n ? 1 : 0;
    }
    int64_t batch = doc_field(cmd, "cursor", &cursor) ? int_field(&cursor, "batchSize", 101) : 101;
    return open_cursor(s, ns, docs, n, batch, false);
}

static bson_t *cmd_find_and_modify(docsrv_t *s, const bson_t *cmd, const char *ns)
{
    bson_t q, u;
    bson_iter_t it;
    if (!doc_field(cmd, "query", &q)) bson_init(&q);
    bool remove = bson_iter_init_find(&it, cmd, "remove") && bson_iter_as_bool(&it);
    bool want_new = bson_iter_init_find(&it, cmd, "new") && bson_iter_as_bool(&it);
    bool upsert = bson_iter_init_find(&it, cmd, "upsert") && bson_iter_as_bool(&it);
    if (!remove && !doc_field(cmd, "update", &u)) return error_reply(9, "FailedToParse", "findAndModify: no update");
    coll_t *c = coll_get(s, ns, true);
    size_t n;
    bson_t **cand = select_docs(s, ns, &q, sort_of(cmd, "sort"), 0, 1, &n);
    bson_t *r = bson_new(), leo;
    BSON_APPEND_DOCUMENT_BEGIN(r, "lastErrorObject", &leo);
    if (n == 0) {
        BSON_APPEND_INT32(&leo, "n", 0);
        BSON_APPEND_BOOL(&leo, "updatedExisting", false);
        bson_t *nd = NULL;
        int code = 0;
        if (!remove && upsert && (nd = docsrv_upsert_doc(&q, &u, &code))) {
            bson_value_t id;
            docsrv_get_field(nd, "_id", &id);
            BSON_APPEND_VALUE(&leo, "upserted", &id);
            coll_add(c, nd);
        }
        bson_append_document_end(r, &leo);
        if (nd && want_new) BSON_APPEND_DOCUMENT(r, "value", nd);
        else BSON_APPEND_NULL(r, "value");
    } else {
        bson_value_t id, v;
        docsrv_get_field(cand[0], "_id", &id);
        size_t k = 0;
        while (k < c->n && !(docsrv_get_field(c->docs[k], "_id", &v) && docsrv_compare_values(&v, &id) == 0)) k++;
        BSON_APPEND_INT32(&leo, "n", 1);
        if (!remove) BSON_APPEND_BOOL(&leo, "updatedExisting", true);
        bson_append_document_end(r, &leo);
        if (remove) {
            BSON_APPEND_DOCUMENT(r, "value", cand[0]);
            coll_remove(c, k);
        } else {
            bool pipe;
            int code = 0;
            bson_t *nd = docsrv_apply_update(c->docs[k], &u, &pipe, &code);
            if (!nd) {
                bson_destroy(r);
                free_list(cand, n);
                return error_reply(code, "FailedToParse", "docsrv: unsupported update");
            }
            BSON_APPEND_DOCUMENT(r, "value", want_new ? nd : cand[0]);
            bson_destroy(c->docs[k]);
            c->docs[k] = nd;
        }
    }
    free_list(cand, n);
    BSON_APPEND_DOUBLE(r, "ok", 1);
    return r;
}

static bson_t *hello_reply(docsrv_t *s)
{
    return BCON_NEW("ismaster", BCON_BOOL(true), "isWritablePrimary", BCON_BOOL(true), "helloOk", BCON_BOOL(true),
                    "maxBsonObjectSize", BCON_INT32(s->lim.max_bson), "maxMessageSizeBytes", BCON_INT32(s->lim.max_message),
                    "maxWriteBatchSize", BCON_INT32(s->lim.max_batch), "minWireVersion", BCON_INT32(0),
                    "maxWireVersion", BCON_INT32(17), "connectionId", BCON_INT32(1), "ok", BCON_DOUBLE(1));
}

static bson_t *run_command(docsrv_t *s, const bson_t *cmd, const seq_t *seqs, int nseq)
{
    bson_iter_t it;
    if (!bson_iter_init(&it, cmd) || !bson_iter_next(&it)) return error_reply(9, "FailedToParse", "empty command");
    const char *name = bson_iter_key(&it);
    if (!strcasecmp(name, "hello") || !strcasecmp(name, "ismaster")) return hello_reply(s);
    s->st.commands++;
    if (cmd->len > (uint32_t) s->lim.max_bson + 16 * 1024) {
        s->st.limit_errors++;
        return error_reply(10334, "BSONObjectTooLarge", "command document too large");
    }
    char ns[512];
    snprintf(ns, sizeof ns, "%s.%s", str_field(cmd, "$db", "test"), BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "");
    if (!strcmp(name, "insert") || !strcmp(name, "update") || !strcmp(name, "delete"))
        return cmd_write(s, cmd, name, ns, seqs, nseq);
    if (!strcmp(name, "find")) {
        bson_t f;
        bool has_f = doc_field(cmd, "filter", &f);
        bool single = bson_iter_init_find(&it, cmd, "singleBatch") && bson_iter_as_bool(&it);
        int64_t limit = int_field(cmd, "limit", 0), batch = int_field(cmd, "batchSize", 0);
        size_t n;
        bson_t **docs = select_docs(s, ns, has_f ? &f : NULL, sort_of(cmd, "sort"), int_field(cmd, "skip", 0),
                                    limit < 0 ? -limit : limit, &n);
        return open_cursor(s, ns, docs, n, batch ? batch : limit && limit < 101 ? (limit < 0 ? -limit : limit) : 0,
                           single || limit < 0);
    }
    if (!strcmp(name, "aggregate")) return cmd_aggregate(s, cmd, ns);
    if (!strcmp(name, "findAndModify") || !strcmp(name, "findandmodify")) return cmd_find_and_modify(s, cmd, ns);
    if (!strcmp(name, "getMore")) {
        int64_t id = bson_iter_as_int64(&it);
        s->st.getmores++;
        for (size_t i = 0; i < s->ncursors; i++) {
            if (s->cursors[i]->id != id) continue;
            bson_t *r = batch_reply(s, s->cursors[i], int_field(cmd, "batchSize", 0), false, s->cursors[i]->ns);
            if (s->cursors[i]->pos >= s->cursors[i]->n) cursor_drop(s, i);
            return r;
        }
        return error_reply(43, "CursorNotFound", "cursor id not found");
    }
    if (!strcmp(name, "killCursors")) {
        bson_t ids;
        bson_iter_t c;
        if (doc_field(cmd, "cursors", &ids) && bson_iter_init(&c, &ids))
            while (bson_iter_next(&c))
                for (size_t i = 0; i < s->ncursors; i++)
                    if (s->cursors[i]->id == bson_iter_as_int64(&c)) {
                        cursor_drop(s, i);
                        break;
                    }
        return BCON_NEW("cursorsKilled", "[", "]", "ok", BCON_DOUBLE(1));
    }
    if (!strcmp(name, "drop")) {
        coll_t *c = coll_get(s, ns, false);
        while (c && c->n) coll_remove(c, c->n - 1);
        return BCON_NEW("ok", BCON_DOUBLE(1));
    }
    if (!strcmp(name, "ping") || !strcmp(name, "endSessions") || !strcmp(name, "buildInfo"))
        return BCON_NEW("ok", BCON_DOUBLE(1));
    return error_reply(59, "CommandNotFound", "no such command");
}

/* ---- the server ------------------------------------------------------------------------------ */

static void docsrv_command(void *ud, srv_t *srv, srv_req_t *rq, bson_t *reply)
{
    docsrv_t *s = ud;
    if (rq->refused) return;
    seq_t seqs[SRV_MAX_SEQS];
    for (int i = 0; i < rq->nseqs; i++)
        seqs[i] = (seq_t){.name = rq->seqs[i].id, .data = rq->seqs[i].docs, .len = rq->seqs[i].len};
    bson_t *r = run_command(s, &rq->body, seqs, rq->nseqs);
    bson_concat(reply, r);
    bson_destroy(r);
}

docsrv_t *docsrv_start(const docsrv_limits_t *limits)
{
    docsrv_t *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->lim = limits ? *limits : (docsrv_limits_t){SRV_MAX_BSON_SIZE, SRV_MAX_MESSAGE_SIZE, SRV_MAX_WRITE_BATCH};
    /* a message longer than maxMessageSizeBytes closes the connection (the core does it) */
    srv_config_t cfg = {.max_message = s->lim.max_message};
    s->srv = srv_new(&cfg, docsrv_command, s);
    if (srv_listen(s->srv, "127.0.0.1", 0) < 0) abort();
    srv_start_thread(s->srv);
    return s;
}

srv_t *docsrv_server(docsrv_t *s) { return s->srv; }

void docsrv_stop(docsrv_t *s)
{
    if (!s) return;
    srv_free(s->srv);
    for (size_t i = 0; i < s->ncolls; i++) {
        for (size_t k = 0; k < s->colls[i].n; k++) bson_destroy(s->colls[i].docs[k]);
        free(s->colls[i].docs);
        free(s->colls[i].ns);
        free(s->colls[i].ih);
        free(s->colls[i].icount);
    }
    free(s->colls);
    for (size_t i = 0; i < s->ncursors; i++) cursor_free(s->cursors[i]);
    free(s->cursors);
    free(s);
}

const char *docsrv_uri(const docsrv_t *s, const char *extra) { return srv_uri(srv_port(s->srv, 0), NULL, extra); }

docsrv_stats_t docsrv_stats(docsrv_t *s)
{
    srv_lock(s->srv);
    docsrv_stats_t st = s->st;
    const srv_counts_t *c = srv_counts(s->srv);
    st.max_message = c->longest_message;
    st.limit_errors += c->oversize_messages;
    srv_unlock(s->srv);
    return st;
}

bson_t **docsrv_docs(docsrv_t *s, const char *ns, size_t *n)
{
    srv_lock(s->srv);
    bson_t **v = select_docs(s, ns, NULL, 1, 0, 0, n);
    srv_unlock(s->srv);
    return v;
}

void docsrv_free_docs(bson_t **docs, size_t n) { free_list(docs, n); }
