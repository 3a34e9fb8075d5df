/* The unified runner's initialData (drop, create, insert) and outcome (documents by _id). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unified.h"
#include "../spec/spec.h"

/* ---- initial data and outcome ----------------------------------------------------------------- */

bool ux_load_initial_data(ux_run_t *run, const bson_t *arr)
{
    bson_iter_t it;
    bson_iter_init(&it, arr);
    while (bson_iter_next(&it)) {
        bson_t d, docs, opts;
        bson_iter_t di;
        mqc_error_t err;
        if (!spec_sub_iter(&it, &d)) return ux_set(&run->v, 1, "malformed initialData");
        const char *db = spec_str(&d, "databaseName"), *coll = spec_str(&d, "collectionName");
        if (!db || !coll) return ux_set(&run->v, 1, "initialData without databaseName/collectionName");
        bson_t cmd = BSON_INITIALIZER, wc;
        BSON_APPEND_UTF8(&cmd, "drop", coll);
        BSON_APPEND_DOCUMENT_BEGIN(&cmd, "writeConcern", &wc);
        BSON_APPEND_UTF8(&wc, "w", "majority");
        bson_append_document_end(&cmd, &wc);
        if (!ux_command(run->internal, db, &cmd, NULL, &err) && err.code != 26) {
            bson_destroy(&cmd);
            return ux_set(&run->v, 1, "initialData: drop %s.%s: %s", db, coll, err.message);
        }
        bson_reinit(&cmd);
        bool has_docs = spec_sub(&d, "documents", &docs) && bson_count_keys(&docs) > 0;
        if (!has_docs || spec_sub(&d, "createOptions", &opts)) {
            BSON_APPEND_UTF8(&cmd, "create", coll);
            if (spec_sub(&d, "createOptions", &opts)) bson_concat(&cmd, &opts);
            BSON_APPEND_DOCUMENT_BEGIN(&cmd, "writeConcern", &wc);
            BSON_APPEND_UTF8(&wc, "w", "majority");
            bson_append_document_end(&cmd, &wc);
            if (!ux_command(run->internal, db, &cmd, NULL, &err)) {
                bson_destroy(&cmd);
                return ux_set(&run->v, 1, "initialData: create %s.%s: %s", db, coll, err.message);
            }
            bson_reinit(&cmd);
        }
        if (has_docs) {
            bson_t arr2;
            BSON_APPEND_UTF8(&cmd, "insert", coll);
            BSON_APPEND_ARRAY_BEGIN(&cmd, "documents", &arr2);
            bson_iter_init(&di, &docs);
            while (bson_iter_next(&di)) bson_append_iter(&arr2, bson_iter_key(&di), -1, &di);
            bson_append_array_end(&cmd, &arr2);
            BSON_APPEND_DOCUMENT_BEGIN(&cmd, "writeConcern", &wc);
            BSON_APPEND_UTF8(&wc, "w", "majority");
            bson_append_document_end(&cmd, &wc);
            bson_t reply;
            bool ok = ux_command(run->internal, db, &cmd, &reply, &err);
            if (ok && bson_iter_init_find(&di, &reply, "writeErrors")) {
                ok = false;
                snprintf(err.message, sizeof err.message, "write errors");
            }
            bson_destroy(&reply);
            if (!ok) {
                bson_destroy(&cmd);
                return ux_set(&run->v, 1, "initialData: insert into %s.%s: %s", db, coll, err.message);
            }
        }
        bson_destroy(&cmd);
    }
    return true;
}

typedef struct {
    bson_t **docs;
    size_t n, cap;
    bool done;
    mqc_error_t err;
    bool has_err;
} drain_t;

static void on_drain(mqc_cursor_t *c, const bson_t *docs, size_t n, const mqc_error_t *error, void *ud)
{
    drain_t *d = ud;
    if (error) {
        d->err = *error;
        d->has_err = d->done = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (d->n == d->cap) {
            d->cap = d->cap ? d->cap * 2 : 16;
            d->docs = realloc(d->docs, d->cap * sizeof *d->docs);
            if (!d->docs) abort();
        }
        d->docs[d->n++] = bson_copy(&docs[i]);
    }
    if (!mqc_cursor_more(c) || !mqc_cursor_next(c)) d->done = true;
}

bool ux_check_outcome(ux_run_t *run, const bson_t *arr)
{
    bson_iter_t it;
    bson_iter_init(&it, arr);
    while (bson_iter_next(&it)) {
        bson_t d, docs, sort = BSON_INITIALIZER, opts = BSON_INITIALIZER;
        if (!spec_sub_iter(&it, &d) || !spec_sub(&d, "documents", &docs)) return ux_set(&run->v, 1, "malformed outcome");
        const char *db = spec_str(&d, "databaseName"), *coll = spec_str(&d, "collectionName");
        if (!db || !coll) return ux_set(&run->v, 1, "outcome without databaseName/collectionName");
        BSON_APPEND_INT32(&sort, "_id", 1);
        BSON_APPEND_DOCUMENT(&opts, "sort", &sort);
        mqc_collection_t *c = mqc_client_get_collection(run->internal, db, coll);
        drain_t dr = {0};
        mqc_cursor_t *cur = mqc_collection_find(c, NULL, &opts, on_drain, &dr);
        for (int i = 0; i < 300 && !dr.done; i++) mqc_client_run_until_idle(run->internal, 0.1);
        mqc_cursor_destroy(cur);
        mqc_collection_destroy(c);
        bson_destroy(&sort);
        bson_destroy(&opts);
        bool ok = true;
        if (dr.has_err) ok = ux_set(&run->v, 1, "outcome: find on %s.%s: %s", db, coll, dr.err.message);
        else if (dr.n != bson_count_keys(&docs))
            ok = ux_set(&run->v, 1, "outcome: %s.%s holds %zu documents, expected %u", db, coll, dr.n, bson_count_keys(&docs));
        else {
            bson_iter_t e;
            size_t i = 0;
            bson_iter_init(&e, &docs);
            while (ok && bson_iter_next(&e)) {
                bson_t ed;
                char why[1024];
                spec_sub_iter(&e, &ed);
                if (!ux_match_doc(run, &ed, dr.docs[i], false, why, sizeof why))
                    ok = ux_set(&run->v, 1, "outcome: %s.%s document %zu: %s", db, coll, i, why);
                i++;
            }
        }
        for (size_t i = 0; i < dr.n; i++) bson_destroy(dr.docs[i]);
        free(dr.docs);
        if (!ok) return false;
    }
    return true;
}
