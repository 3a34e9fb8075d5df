/* The property scenario against a real server (FerretDB started by the harness, or MQC_TEST_URI),
 * with a differential check: libmongoc, an independent client, reads back the collection mqc
 * wrote, and it must equal, byte for byte, the model that mqc's own reads were checked against.
 * FerretDB 1.x stores fewer types than MongoDB (propgen's PG_TYPES_FERRETDB) and is slow on _id
 * lookups, so the default counts are modest; MQC_PROPERTY_LONG=1 raises them and adds documents
 * of exactly the server's maxBsonObjectSize. */
#include <mongoc/mongoc.h>
#include <stdlib.h>

#include "propkit.h"

static void read_with_libmongoc(prop_t *p, const char *uri)
{
    bson_error_t be;
    mongoc_client_t *mc = mongoc_client_new(uri);
    ASSERT_MSG(mc, "libmongoc rejects %s", uri);
    mongoc_collection_t *mcoll = mongoc_client_get_collection(mc, p->db, p->name);
    bson_t *filter = bson_new(), *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(mcoll, filter, opts, NULL);
    const bson_t *d;
    bson_t **got = NULL;
    size_t n = 0, cap = 0;
    while (mongoc_cursor_next(cur, &d)) {
        if (n == cap) got = realloc(got, (cap = cap * 2 + 64) * sizeof *got);
        got[n++] = bson_copy(d);
    }
    P_ASSERT(!mongoc_cursor_error(cur, &be), "libmongoc: %s", be.message);
    prop_check(p, got, n, -1, "libmongoc's read");
    tf_note("libmongoc read back %zu documents, equal to the model mqc's reads were checked against", n);
    for (size_t i = 0; i < n; i++) bson_destroy(got[i]);
    free(got);
    mongoc_cursor_destroy(cur);
    bson_destroy(filter), bson_destroy(opts);
    mongoc_collection_destroy(mcoll);
    mongoc_client_destroy(mc);
}

/* The base URI with one more option. */
static const char *with_option(const char *base, const char *opt)
{
    static char buf[1024];
    size_t bl = strlen(base);
    const char *sep = strchr(base, '?') ? "&" : (bl && base[bl - 1] == '/') ? "?" : "/?";
    snprintf(buf, sizeof buf, "%s%s%s", base, sep, opt);
    return buf;
}

TEST("/property/ferretdb/every_api_differential", property_ferretdb_differential)
{
    const char *uri = tf_server_uri("plain");
    prop_t p;
    int scale = prop_long_run() ? 5 : 1;
    /* Hundreds of operations are in flight in mqc, but FerretDB's SQLite answers concurrent
     * writes to one collection with "database is locked (SQLITE_BUSY)": one connection, so that
     * the server sees them one after another (mqc's wait queue holds the rest). */
    prop_open(&p, tf_server_is_external() ? uri : with_option(uri, "maxPoolSize=1"), PG_TYPES_FERRETDB, prop_long_run() ? 1024 * 1024 : 32 * 1024);
    int n0 = 60 * scale + (int) pg_below(&p.rng, 60);
    int32_t space = n0 + 300;
    prop_insert_many(&p, 0, n0, pg_below(&p.rng, 2));
    size_t max = p.max_size;
    p.max_size = 300;
    prop_insert_many(&p, n0, 50 * scale, true);
    p.max_size = max;
    prop_read_back(&p, false, -1);
    prop_singles(&p, 200 * scale, space);
    prop_bulk(&p, 40 * scale, space, true);
    prop_bulk(&p, 40 * scale, space, false);
    prop_find_and(&p, 40 * scale, space);
    prop_many(&p);
    prop_gather(&p, 200 * scale, space);
    if (prop_long_run()) {
        /* documents of exactly maxBsonObjectSize: three do not fit one message */
        bson_t *big[3];
        for (int i = 0; i < 3; i++) {
            bson_t tmp;
            pg_doc(&p.rng, &tmp, space + 5000 + i, 0, 16 * 1024 * 1024, PG_TYPES_FERRETDB);
            big[i] = bson_copy(&tmp);
            bson_destroy(&tmp);
            prop_model_put(&p, space + 5000 + i, bson_copy(big[i]));
        }
        prop_res_t r = {0};
        mqc_collection_insert_many(p.coll, (const bson_t *const *) big, 3, NULL, prop_on_res, &r);
        prop_wait(&p);
        EXPECT_OK(r);
        bson_destroy(r.reply);
        for (int i = 0; i < 3; i++) bson_destroy(big[i]);
    }
    prop_read_back(&p, false, -1);
    prop_read_back(&p, true, (int32_t) pg_below(&p.rng, 8));
    prop_count_check(&p, -1);
    read_with_libmongoc(&p, uri);
    prop_close(&p);
}
