/* workload: parse --op/--mix/--preset/--workload into a description; per-thread draws. */
#include "workload.h"
#include "ycsb.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

static const char *const OP_NAMES[MQLOAD_OP__COUNT] = {
    "find", "insert", "update", "delete", "aggregate", "count", "command", "scan", "rmw",
};

const char *mqload_op_type_name(mqload_op_type_t t) { return t < MQLOAD_OP__COUNT ? OP_NAMES[t] : "?"; }

int mqload_op_type_parse(const char *name)
{
    for (int i = 0; i < MQLOAD_OP__COUNT; i++)
        if (!strcmp(name, OP_NAMES[i])) return i;
    if (!strcmp(name, "read")) return MQLOAD_OP_FIND; /* YCSB's word */
    return -1;
}

static bool fail(char *err, size_t esz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(char *err, size_t esz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && esz) vsnprintf(err, esz, fmt, ap);
    va_end(ap);
    return false;
}

/* Default templates, per operation type. */
#define KEY_FILTER "{\"_id\": {\"$key\": {}}}"
#define DEFAULT_DOC "{\"_id\": {\"$key\": {}}, \"n\": {\"$randInt\": [0, 1000000]}, \"s\": {\"$randString\": 32}, \"t\": {\"$now\": {}}}"
#define DEFAULT_UPDATE "{\"$set\": {\"n\": {\"$randInt\": [0, 1000000]}}}"

/* libbson says "position N" (a byte offset) or "Incomplete JSON": where that is, as " line L column C". */
static void json_error_place(const char *data, size_t len, const char *msg, char *out, size_t outsz)
{
    const char *p = strstr(msg, "position ");
    size_t pos = len;
    out[0] = 0;
    if (p) pos = (size_t) strtoull(p + 9, NULL, 10);
    else if (!strstr(msg, "Incomplete")) return;
    if (pos > len) pos = len;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos; i++) {
        if (data[i] == '\n') line++, col = 1;
        else if (((unsigned char) data[i] & 0xC0) != 0x80) col++; /* columns in characters, not UTF-8 bytes */
    }
    snprintf(out, outsz, " line %zu column %zu%s:", line, col, p ? "" : " (the end of the file)");
}

static void json_into(bson_t *dst, const char *json)
{
    bson_error_t e;
    bson_t *b = bson_new_from_json((const uint8_t *) json, -1, &e);
    if (!b) {
        fprintf(stderr, "mqload: internal template does not parse: %s\n", e.message);
        abort();
    }
    bson_reinit(dst);
    bson_concat(dst, b);
    bson_destroy(b);
}

static void op_init(mqload_opdef_t *o, mqload_op_type_t type, double weight)
{
    memset(o, 0, sizeof *o);
    o->type = type;
    o->weight = weight;
    snprintf(o->name, sizeof o->name, "%s", OP_NAMES[type]);
    snprintf(o->cmd_db, sizeof o->cmd_db, "admin");
    bson_t *docs[] = {&o->filter, &o->document, &o->update, &o->pipeline, &o->command, &o->options};
    for (size_t i = 0; i < 6; i++) bson_init(docs[i]);
}

static void op_free(mqload_opdef_t *o)
{
    bson_t *docs[] = {&o->filter, &o->document, &o->update, &o->pipeline, &o->command, &o->options};
    for (size_t i = 0; i < 6; i++) bson_destroy(docs[i]);
}

/* Fills what the workload left empty with the operation type's defaults. */
static void op_defaults(mqload_opdef_t *o, bool ycsb)
{
    switch (o->type) {
    case MQLOAD_OP_FIND:
    case MQLOAD_OP_DELETE:
    case MQLOAD_OP_COUNT:
        if (bson_empty(&o->filter)) json_into(&o->filter, KEY_FILTER);
        break;
    case MQLOAD_OP_UPDATE:
    case MQLOAD_OP_RMW:
        if (bson_empty(&o->filter)) json_into(&o->filter, KEY_FILTER);
        if (bson_empty(&o->update)) json_into(&o->update, DEFAULT_UPDATE); /* YCSB presets: set before (ycsb.h) */
        break;
    case MQLOAD_OP_AGGREGATE:
        if (!o->pipeline_set)
            json_into(&o->pipeline, "{\"0\": {\"$match\": {\"_id\": {\"$gte\": {\"$key\": {}}}}}, \"1\": {\"$limit\": 10}}");
        break;
    case MQLOAD_OP_COMMAND:
        if (bson_empty(&o->command)) json_into(&o->command, "{\"ping\": 1}");
        break;
    case MQLOAD_OP_SCAN:
        if (bson_empty(&o->filter)) json_into(&o->filter, "{\"_id\": {\"$gte\": {\"$key\": {}}}}");
        if (bson_empty(&o->options))
            json_into(&o->options, "{\"sort\": {\"_id\": 1}, \"limit\": {\"$randInt\": [1, 100]}, \"batchSize\": 20}");
        break;
    default:
        break;
    }
}

static bool add_op(mqload_workload_t *wl, mqload_op_type_t type, double weight, char *err, size_t esz)
{
    if (wl->n_ops == MQLOAD_MAX_OPS) return fail(err, esz, "too many operations (at most %d)", MQLOAD_MAX_OPS);
    op_init(&wl->ops[wl->n_ops++], type, weight);
    return true;
}

typedef struct {
    const char *name;
    struct { mqload_op_type_t type; double weight; } ops[2];
    mqload_keydist_kind_t dist;
} preset_t;

/* The YCSB core workloads (workloads/workloada .. workloadf of the YCSB distribution). */
static const preset_t PRESETS[] = {
    {"ycsb-a", {{MQLOAD_OP_FIND, 50}, {MQLOAD_OP_UPDATE, 50}}, MQLOAD_KEYS_ZIPFIAN},
    {"ycsb-b", {{MQLOAD_OP_FIND, 95}, {MQLOAD_OP_UPDATE, 5}}, MQLOAD_KEYS_ZIPFIAN},
    {"ycsb-c", {{MQLOAD_OP_FIND, 100}, {MQLOAD_OP_FIND, 0}}, MQLOAD_KEYS_ZIPFIAN},
    {"ycsb-d", {{MQLOAD_OP_FIND, 95}, {MQLOAD_OP_INSERT, 5}}, MQLOAD_KEYS_LATEST},
    {"ycsb-e", {{MQLOAD_OP_SCAN, 95}, {MQLOAD_OP_INSERT, 5}}, MQLOAD_KEYS_ZIPFIAN},
    {"ycsb-f", {{MQLOAD_OP_FIND, 50}, {MQLOAD_OP_RMW, 50}}, MQLOAD_KEYS_ZIPFIAN},
};

static bool load_mix(mqload_workload_t *wl, const char *mix, char *err, size_t esz)
{
    char *copy = strdup(mix), *save = NULL;
    bool ok = true;
    for (char *tok = strtok_r(copy, ",", &save); tok && ok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        double w = 1;
        if (eq) {
            *eq = 0;
            char *end;
            errno = 0;
            w = strtod(eq + 1, &end);
            if (errno || end == eq + 1 || *end || w < 0) {
                ok = fail(err, esz, "--mix: weight of '%s' must be a non-negative number, got '%s'", tok, eq + 1);
                break;
            }
        }
        int t = mqload_op_type_parse(tok);
        if (t < 0) {
            ok = fail(err, esz, "--mix: unknown operation '%s' (find, insert, update, delete, aggregate, count, command, scan, rmw)", tok);
            break;
        }
        for (size_t i = 0; i < wl->n_ops; i++)
            if (wl->ops[i].type == (mqload_op_type_t) t) ok = fail(err, esz, "--mix: '%s' appears twice", tok);
        if (ok) ok = add_op(wl, (mqload_op_type_t) t, w, err, esz);
    }
    free(copy);
    if (ok && wl->n_ops == 0) ok = fail(err, esz, "--mix: no operations given");
    return ok;
}

static bool doc_field(bson_iter_t *it, bson_t *dst, bool array_ok, const char *where, char *err, size_t esz)
{
    if (!BSON_ITER_HOLDS_DOCUMENT(it) && !(array_ok && BSON_ITER_HOLDS_ARRAY(it)))
        return fail(err, esz, "%s: '%s' must be %s", where, bson_iter_key(it), array_ok ? "an array" : "a document");
    uint32_t len;
    const uint8_t *data;
    if (BSON_ITER_HOLDS_DOCUMENT(it)) bson_iter_document(it, &len, &data);
    else bson_iter_array(it, &len, &data);
    bson_t tmp;
    bson_init_static(&tmp, data, len);
    bson_reinit(dst);
    bson_concat(dst, &tmp);
    return true;
}

static bool load_op_doc(mqload_workload_t *wl, bson_iter_t *opit, size_t idx, char *err, size_t esz)
{
    char where[64];
    snprintf(where, sizeof where, "operations[%zu]", idx);
    if (!BSON_ITER_HOLDS_DOCUMENT(opit)) return fail(err, esz, "%s must be a document", where);
    bson_iter_t f;
    const char *opname = NULL;
    bson_iter_recurse(opit, &f);
    while (bson_iter_next(&f))
        if (!strcmp(bson_iter_key(&f), "op") && BSON_ITER_HOLDS_UTF8(&f)) opname = bson_iter_utf8(&f, NULL);
    if (!opname) return fail(err, esz, "%s: needs \"op\": find|insert|update|delete|aggregate|count|command|scan|rmw", where);
    int t = mqload_op_type_parse(opname);
    if (t < 0) return fail(err, esz, "%s: unknown op '%s'", where, opname);
    if (!add_op(wl, (mqload_op_type_t) t, 1, err, esz)) return false;
    mqload_opdef_t *o = &wl->ops[wl->n_ops - 1];
    bson_iter_recurse(opit, &f);
    while (bson_iter_next(&f)) {
        const char *k = bson_iter_key(&f);
        bool ok = true;
        if (!strcmp(k, "op")) continue;
        if (!strcmp(k, "name")) {
            if (!BSON_ITER_HOLDS_UTF8(&f) || !*bson_iter_utf8(&f, NULL) || strlen(bson_iter_utf8(&f, NULL)) >= sizeof o->name)
                return fail(err, esz, "%s: name must be a string of 1..31 characters", where);
            snprintf(o->name, sizeof o->name, "%s", bson_iter_utf8(&f, NULL));
        } else if (!strcmp(k, "weight")) {
            if (!BSON_ITER_HOLDS_NUMBER(&f) || bson_iter_as_double(&f) < 0)
                return fail(err, esz, "%s: weight must be a non-negative number", where);
            o->weight = bson_iter_as_double(&f);
        } else if (!strcmp(k, "db")) {
            if (!BSON_ITER_HOLDS_UTF8(&f)) return fail(err, esz, "%s: db must be a string", where);
            snprintf(o->cmd_db, sizeof o->cmd_db, "%s", bson_iter_utf8(&f, NULL));
        } else if (!strcmp(k, "filter")) ok = doc_field(&f, &o->filter, false, where, err, esz);
        else if (!strcmp(k, "document")) ok = doc_field(&f, &o->document, false, where, err, esz);
        else if (!strcmp(k, "update")) ok = BSON_ITER_HOLDS_ARRAY(&f) ? doc_field(&f, &o->update, true, where, err, esz)
                                                                      : doc_field(&f, &o->update, false, where, err, esz);
        else if (!strcmp(k, "pipeline")) ok = doc_field(&f, &o->pipeline, true, where, err, esz), o->pipeline_set = true;
        else if (!strcmp(k, "command")) ok = doc_field(&f, &o->command, false, where, err, esz);
        else if (!strcmp(k, "options")) ok = doc_field(&f, &o->options, false, where, err, esz);
        else return fail(err, esz, "%s: unknown field '%s' (op, name, weight, filter, document, update, pipeline, command, options, db)", where, k);
        if (!ok) return false;
    }
    for (size_t i = 0; i + 1 < wl->n_ops; i++)
        if (!strcmp(wl->ops[i].name, o->name))
            return fail(err, esz, "%s: two operations are named '%s': give one a \"name\"", where, o->name);
    return true;
}

static bool load_file(mqload_workload_t *wl, const char *path, char *err, size_t esz)
{
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, esz, "--workload %s: %s", path, strerror(errno));
    char *data = NULL;
    size_t len = 0, cap = 0, n;
    do {
        if (len + 65536 > cap) {
            cap = (cap ? cap * 2 : 65536) + 65536;
            data = realloc(data, cap);
            if (!data) abort();
        }
        n = fread(data + len, 1, cap - len - 1, f);
        len += n;
    } while (n > 0 && len < 64u * 1024 * 1024);
    bool rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(data);
        return fail(err, esz, "--workload %s: read error", path);
    }
    data[len] = 0;
    bson_error_t be;
    bson_t *doc = bson_new_from_json((const uint8_t *) data, (ssize_t) len, &be);
    if (!doc) {
        char where[64];
        json_error_place(data, len, be.message, where, sizeof where);
        free(data);
        return fail(err, esz, "--workload %s:%s invalid Extended JSON: %s", path, where, be.message);
    }
    free(data);
    bool ok = true, have_ops = false;
    bson_iter_t it;
    bson_iter_init(&it, doc);
    while (ok && bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        /* A known field with a wrong value says so: "unknown field" would send the user looking for a typo. */
        bool is_str = BSON_ITER_HOLDS_UTF8(&it);
        if ((!strcmp(k, "name") || !strcmp(k, "database") || !strcmp(k, "collection") || !strcmp(k, "key_dist")) && !is_str) {
            ok = fail(err, esz, "--workload %s: \"%s\" must be a string", path, k);
        } else if (!strcmp(k, "name")) {
            snprintf(wl->name, sizeof wl->name, "%s", bson_iter_utf8(&it, NULL));
        } else if (!strcmp(k, "database")) {
            snprintf(wl->db, sizeof wl->db, "%s", bson_iter_utf8(&it, NULL));
        } else if (!strcmp(k, "collection")) {
            snprintf(wl->collection, sizeof wl->collection, "%s", bson_iter_utf8(&it, NULL));
        } else if (!strcmp(k, "keys")) {
            double v = BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_double(&it) : -1;
            if (!(v >= 1 && v <= 9007199254740992.0 && v == floor(v)))
                ok = fail(err, esz, "--workload %s: \"keys\" must be a positive integer (the key space 0..keys-1)", path);
            else wl->keys = (uint64_t) v;
        } else if (!strcmp(k, "key_dist")) {
            wl->key_dist = mqload_keydist_parse(bson_iter_utf8(&it, NULL));
            if (wl->key_dist < 0) ok = fail(err, esz, "--workload %s: key_dist must be " MQLOAD_KEYDIST_NAMES, path);
        } else if (!strcmp(k, "document")) {
            char where[300];
            snprintf(where, sizeof where, "--workload %s", path);
            ok = doc_field(&it, &wl->document, false, where, err, esz);
        } else if (!strcmp(k, "operations") && !BSON_ITER_HOLDS_ARRAY(&it)) {
            ok = fail(err, esz, "--workload %s: \"operations\" must be an array of operations", path);
        } else if (!strcmp(k, "operations")) {
            bson_iter_t a;
            size_t i = 0;
            have_ops = true;
            bson_iter_recurse(&it, &a);
            while (ok && bson_iter_next(&a)) {
                ok = load_op_doc(wl, &a, i++, err, esz);
                if (!ok) {
                    /* Say which file: the op-level message does not know it. */
                    char inner[512];
                    snprintf(inner, sizeof inner, "%s", err);
                    fail(err, esz, "--workload %s: %s", path, inner);
                }
            }
        } else {
            ok = fail(err, esz, "--workload %s: unknown field '%s' (the fields: name, database, collection, keys, key_dist, document, operations)", path, k);
        }
    }
    bson_destroy(doc);
    if (ok && (!have_ops || wl->n_ops == 0)) ok = fail(err, esz, "--workload %s: needs a non-empty \"operations\" array", path);
    return ok;
}

/* FNV-1a 64 of a string. */
static uint64_t fnv_str(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char) s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

void mqload_workload_to_bson(const mqload_workload_t *wl, bson_t *out)
{
    bson_t ops, op;
    double sum = 0;
    for (size_t i = 0; i < wl->n_ops; i++) sum += wl->ops[i].weight;
    BSON_APPEND_UTF8(out, "name", wl->name);
    BSON_APPEND_UTF8(out, "database", wl->db);
    BSON_APPEND_UTF8(out, "collection", wl->collection);
    BSON_APPEND_INT64(out, "keys", (int64_t) wl->keys);
    BSON_APPEND_UTF8(out, "key_dist", mqload_keydist_name((mqload_keydist_kind_t) wl->key_dist));
    BSON_APPEND_DOCUMENT(out, "document", &wl->document);
    BSON_APPEND_ARRAY_BEGIN(out, "operations", &ops);
    for (size_t i = 0; i < wl->n_ops; i++) {
        const mqload_opdef_t *o = &wl->ops[i];
        char k[24];
        snprintf(k, sizeof k, "%zu", i);
        BSON_APPEND_DOCUMENT_BEGIN(&ops, k, &op);
        BSON_APPEND_UTF8(&op, "op", OP_NAMES[o->type]);
        BSON_APPEND_UTF8(&op, "name", o->name);
        /* Weights as shares, so find=9,update=1 and find=90,update=10 are the same workload. */
        BSON_APPEND_DOUBLE(&op, "weight", sum > 0 ? o->weight / sum : 0);
        if (!bson_empty(&o->filter)) BSON_APPEND_DOCUMENT(&op, "filter", &o->filter);
        if (!bson_empty(&o->document)) BSON_APPEND_DOCUMENT(&op, "document", &o->document);
        if (!bson_empty(&o->update)) BSON_APPEND_DOCUMENT(&op, "update", &o->update);
        if (o->pipeline_set || o->type == MQLOAD_OP_AGGREGATE) BSON_APPEND_ARRAY(&op, "pipeline", &o->pipeline);
        if (!bson_empty(&o->command)) BSON_APPEND_DOCUMENT(&op, "command", &o->command), BSON_APPEND_UTF8(&op, "db", o->cmd_db);
        if (!bson_empty(&o->options)) BSON_APPEND_DOCUMENT(&op, "options", &o->options);
        bson_append_document_end(&ops, &op);
    }
    bson_append_array_end(out, &ops);
}

bool mqload_workload_load(mqload_workload_t *wl, const mqload_config_t *cfg, char *err, size_t esz)
{
    memset(wl, 0, sizeof *wl);
    bson_init(&wl->document);
    wl->key_dist = -1;
    bool ycsb = false, ok = true;
    int preset_dist = MQLOAD_KEYS_UNIFORM;
    if (cfg->workload_file) {
        ok = load_file(wl, cfg->workload_file, err, esz);
        if (!wl->name[0]) {
            const char *base = strrchr(cfg->workload_file, '/');
            snprintf(wl->name, sizeof wl->name, "%s", base ? base + 1 : cfg->workload_file);
        }
    } else if (cfg->preset) {
        const preset_t *p = NULL;
        for (size_t i = 0; i < sizeof PRESETS / sizeof PRESETS[0]; i++)
            if (!strcmp(PRESETS[i].name, cfg->preset)) p = &PRESETS[i];
        if (!p) {
            mqload_workload_free(wl);
            return fail(err, esz, "--preset: unknown preset '%s' (ycsb-a, ycsb-b, ycsb-c, ycsb-d, ycsb-e, ycsb-f)", cfg->preset);
        }
        ycsb = true;
        /* --phase load: YCSB's load phase, the records inserted as measured operations. */
        snprintf(wl->name, sizeof wl->name, "%s%s", p->name, cfg->x.phase_load ? ":load" : "");
        if (cfg->x.phase_load) add_op(wl, MQLOAD_OP_INSERT, 1, err, esz);
        else
            for (size_t i = 0; i < 2; i++)
                if (p->ops[i].weight > 0) add_op(wl, p->ops[i].type, p->ops[i].weight, err, esz);
        preset_dist = p->dist;
    } else if (cfg->mix) {
        ok = load_mix(wl, cfg->mix, err, esz);
        snprintf(wl->name, sizeof wl->name, "mix");
    } else {
        const char *op = cfg->op ? cfg->op : "find";
        int t = mqload_op_type_parse(op);
        if (t < 0) ok = fail(err, esz, "--op: unknown operation '%s' (find, insert, update, delete, aggregate, count, command, scan, rmw)", op);
        else add_op(wl, (mqload_op_type_t) t, 1, err, esz), snprintf(wl->name, sizeof wl->name, "op:%s", op);
    }
    if (!ok) {
        mqload_workload_free(wl);
        return false;
    }
    double sum = 0;
    for (size_t i = 0; i < wl->n_ops; i++) sum += wl->ops[i].weight;
    if (sum <= 0) {
        mqload_workload_free(wl);
        return fail(err, esz, "the operations' weights are all zero");
    }
    if (bson_empty(&wl->document)) {
        if (ycsb) mqload_ycsb_document(&wl->document, cfg->x.fieldcount, cfg->x.fieldlength);
        else json_into(&wl->document, DEFAULT_DOC);
    }
    for (size_t i = 0; i < wl->n_ops; i++) {
        mqload_opdef_t *o = &wl->ops[i];
        if (ycsb && (o->type == MQLOAD_OP_UPDATE || o->type == MQLOAD_OP_RMW) && bson_empty(&o->update))
            mqload_ycsb_update(&o->update, cfg->x.fieldcount, cfg->x.fieldlength);
        op_defaults(o, ycsb);
    }
    if (cfg->key_dist >= 0) wl->key_dist = cfg->key_dist;
    else if (wl->key_dist < 0) wl->key_dist = preset_dist;
    if (cfg->keys_set || (cfg->seed_set && cfg->seed_docs) || !wl->keys) wl->keys = cfg->keys;
    if (cfg->db_set || !wl->db[0]) snprintf(wl->db, sizeof wl->db, "%s", cfg->db);
    if (cfg->collection_set || !wl->collection[0]) snprintf(wl->collection, sizeof wl->collection, "%s", cfg->collection);
    /* YCSB's load phase inserts keys 0 .. recordcount-1: fresh insert keys start at keys (insert below). */
    if (cfg->x.phase_load) wl->keys = 0;

    /* Compile every template once here, so that a malformed one fails before any traffic. */
    mqload_wl_thread_t probe;
    if (!mqload_wl_thread_init(&probe, wl, 1, 0, 1, err, esz)) {
        if (cfg->workload_file) {
            char inner[512];
            snprintf(inner, sizeof inner, "%s", err);
            fail(err, esz, "--workload %s: %s", cfg->workload_file, inner);
        }
        mqload_workload_free(wl);
        return false;
    }
    mqload_wl_thread_free(&probe);

    bson_t norm = BSON_INITIALIZER;
    mqload_workload_to_bson(wl, &norm);
    size_t jl;
    char *json = bson_as_canonical_extended_json(&norm, &jl);
    snprintf(wl->id, sizeof wl->id, "%016llx", (unsigned long long) fnv_str(json, jl));
    bson_free(json);
    bson_destroy(&norm);
    return true;
}

void mqload_workload_free(mqload_workload_t *wl)
{
    for (size_t i = 0; i < wl->n_ops; i++) op_free(&wl->ops[i]);
    wl->n_ops = 0;
    bson_destroy(&wl->document);
    bson_init(&wl->document);
}

/* What an operation without one of the documents is given. */
static const bson_t EMPTY = BSON_INITIALIZER;

void mqload_opinst_init(mqload_opinst_t *oi)
{
    memset(oi, 0, sizeof *oi);
    for (size_t i = 0; i < 6; i++) bson_init(&oi->buf[i]), oi->docs[i] = &EMPTY;
    oi->docs_op = SIZE_MAX;
}

void mqload_opinst_free(mqload_opinst_t *oi)
{
    for (size_t i = 0; i < 6; i++) bson_destroy(&oi->buf[i]);
}

static mqload_template_t *compile_opt(const bson_t *src, bool is_array, bool present, const char *what,
                                      const char *opname, char *err, size_t esz)
{
    if (!present) return NULL;
    char inner[400];
    mqload_template_t *t = mqload_template_compile(src, is_array, inner, sizeof inner);
    if (!t) fail(err, esz, "operation '%s': %s: %s", opname, what, inner);
    return t;
}

bool mqload_wl_thread_init(mqload_wl_thread_t *t, const mqload_workload_t *wl, uint64_t rng_seed, uint64_t lane,
                           uint64_t lanes, char *err, size_t esz)
{
    memset(t, 0, sizeof *t);
    t->wl = wl;
    t->lane = lane;
    t->lanes = lanes ? lanes : 1;
    mqload_rng_seed(&t->rng, rng_seed, lane + 1);
    mqload_keydist_init(&t->keys, (mqload_keydist_kind_t) wl->key_dist, wl->keys);
    t->latest = wl->keys ? wl->keys - 1 : 0;
    t->tctx.rng = &t->rng;
    t->tctx.lane = t->lane;
    t->tctx.lanes = t->lanes;
    double sum = 0;
    for (size_t i = 0; i < wl->n_ops; i++) {
        const mqload_opdef_t *o = &wl->ops[i];
        mqload_compiled_op_t *c = &t->ops[i];
        const bson_t *doc = bson_empty(&o->document) ? &wl->document : &o->document;
        bool need_doc = o->type == MQLOAD_OP_INSERT || i == 0; /* op 0 also carries the seeding template */
        bool ok = true;
#define COMPILE(field, src, arr, present, what)                                          \
        if (ok && (present)) {                                                           \
            c->field = compile_opt(src, arr, true, what, o->name, err, esz);             \
            ok = c->field != NULL;                                                       \
        }
        COMPILE(filter, &o->filter, false, !bson_empty(&o->filter), "filter")
        COMPILE(document, doc, false, need_doc, "document")
        COMPILE(update, &o->update, false, !bson_empty(&o->update), "update")
        COMPILE(pipeline, &o->pipeline, true, o->type == MQLOAD_OP_AGGREGATE, "pipeline")
        COMPILE(command, &o->command, false, !bson_empty(&o->command), "command")
        COMPILE(options, &o->options, false, !bson_empty(&o->options), "options")
#undef COMPILE
        if (!ok) {
            t->wl = wl;
            mqload_wl_thread_free(t);
            return false;
        }
        for (uint8_t k = 0; k < 6; k++)
            /* op 0's document is the seeding template, sent by inserts only; an RMW's update is
             * rendered after its read (mqload_wl_rmw_update) */
            if (c->tpl[k] && (k != 1 || o->type == MQLOAD_OP_INSERT) && (k != 2 || o->type != MQLOAD_OP_RMW))
                c->drawn[c->n_drawn++] = k;
        sum += o->weight;
        t->cum[i] = sum;
    }
    return true;
}

void mqload_wl_thread_free(mqload_wl_thread_t *t)
{
    for (size_t i = 0; t->wl && i < t->wl->n_ops; i++) {
        mqload_compiled_op_t *c = &t->ops[i];
        mqload_template_destroy(c->filter);
        mqload_template_destroy(c->document);
        mqload_template_destroy(c->update);
        mqload_template_destroy(c->pipeline);
        mqload_template_destroy(c->command);
        mqload_template_destroy(c->options);
    }
    memset(t, 0, sizeof *t);
}

void mqload_wl_next(mqload_wl_thread_t *t, mqload_opinst_t *oi)
{
    const mqload_workload_t *wl = t->wl;
    size_t i = 0;
    if (wl->n_ops > 1) {
        double x = mqload_rng_double(&t->rng) * t->cum[wl->n_ops - 1];
        while (i + 1 < wl->n_ops && (x >= t->cum[i] || wl->ops[i].weight <= 0)) i++;
    }
    const mqload_opdef_t *o = &wl->ops[i];
    mqload_compiled_op_t *c = &t->ops[i];
    if (oi->docs_op != i) { /* empty what this op does not send: only what it does is drawn below */
        for (size_t k = 0; k < 6; k++) oi->docs[k] = &EMPTY;
        oi->docs_op = i;
    }
    oi->op = i;
    oi->type = o->type;
    if (o->type == MQLOAD_OP_INSERT) {
        /* A fresh key of this lane: keys + lane + lanes * n never collides with another lane's. */
        uint64_t k = wl->keys + t->lane + t->lanes * t->inserts++;
        oi->key = (int64_t) k;
        if (k > t->latest) t->latest = k;
    } else if (t->keys.kind == MQLOAD_KEYS_UNIFORM) { /* what mqload_keydist_next does, without the call */
        oi->key = (int64_t) mqload_rng_below(&t->rng, t->keys.n);
    } else {
        oi->key = (int64_t) mqload_keydist_next(&t->keys, &t->rng, t->latest);
    }
    t->tctx.key = oi->key;
    for (size_t j = 0; j < c->n_drawn; j++) {
        size_t k = c->drawn[j];
        oi->docs[k] = mqload_template_render(c->tpl[k], &t->tctx, &oi->buf[k]);
    }
}

void mqload_wl_rmw_update(mqload_wl_thread_t *t, mqload_opinst_t *oi)
{
    t->tctx.key = oi->key;
    oi->docs_op = SIZE_MAX; /* the documents are no longer one draw's */
    mqload_template_t *u = t->ops[oi->op].update;
    oi->update = u ? mqload_template_render(u, &t->tctx, &oi->buf[2]) : &EMPTY;
}

void mqload_wl_seed_doc(mqload_wl_thread_t *t, int64_t key, bson_t *out)
{
    /* The first insert op's own document, else the workload's. */
    size_t pick = 0;
    for (size_t i = 0; i < t->wl->n_ops; i++)
        if (t->wl->ops[i].type == MQLOAD_OP_INSERT) {
            pick = i;
            break;
        }
    t->tctx.key = key;
    mqload_template_eval(t->ops[pick].document, &t->tctx, out);
}
