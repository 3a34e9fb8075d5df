/* Shared pieces of the specification-test runners (see spec.h). */
#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "spec.h"
#include "../tf.h"

static void skip_missing_root(void)
{
    SKIP("spec tests folder not found (../shared/spec-tests or --spec-dir)");
}

const char *spec_root(void)
{
    static bool registered;
    const char *root = tf_spec_dir();
    if (!root && !registered) {
        registered = true;
        tf_register("/spec/missing", skip_missing_root, NULL, NULL);
    }
    return root;
}

const spec_case_t *spec_case(void) { return tf_data(); }

static void case_free(void *p)
{
    spec_case_t *c = p;
    free(c->file);
    bson_destroy(c->doc);
    bson_destroy(c->file_doc);
    free(c);
}

/* A test standing for a file or folder that cannot be run: its data is the reason. */
typedef struct {
    char *reason;
    bool fail;
} note_t;

static void note_free(void *p)
{
    note_t *n = p;
    free(n->reason);
    free(n);
}

static void note_test(void)
{
    const note_t *n = tf_data();
    if (n->fail) FAIL("%s", n->reason);
    SKIP("%s", n->reason);
}

static void register_note(const char *path, bool fail, const char *fmt, const char *arg)
{
    note_t *n = calloc(1, sizeof *n);
    char buf[1024];
    snprintf(buf, sizeof buf, fmt, arg);
    n->reason = strdup(buf);
    n->fail = fail;
    tf_register(path, note_test, n, note_free);
}

void spec_register_skip(const char *name, const char *reason) { register_note(name, false, "%s", reason); }

bool spec_set(spec_outcome_t *o, int rc, const char *fmt, ...)
{
    va_list ap;
    if (o->rc) return false; /* the first reason is kept */
    o->rc = rc;
    va_start(ap, fmt);
    vsnprintf(o->msg, sizeof o->msg, fmt, ap);
    va_end(ap);
    return false;
}

void spec_conclude(const spec_outcome_t *o)
{
    if (o->rc == 1) FAIL("%s", o->msg);
    if (o->rc == 2) SKIP("%s", o->msg);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *) a, *(char *const *) b); }

char **spec_subdirs(const char *root, const char *rel, size_t *n)
{
    char dir[4096];
    char **v = NULL;
    size_t cap = 0;
    DIR *d;
    struct dirent *e;
    *n = 0;
    snprintf(dir, sizeof dir, "%s/%s", root, rel);
    if (!(d = opendir(dir))) return NULL;
    while ((e = readdir(d))) {
        char path[4096 + 256];
        struct stat st;
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            if (!(v = realloc(v, cap * sizeof *v))) abort();
        }
        v[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    if (*n) qsort(v, *n, sizeof *v, cmp_str);
    return v;
}

/* Collects *.json under dir (recursively) into a growing array. */
static void collect(const char *dir, char ***files, size_t *n, size_t *cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d) return;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            collect(path, files, n, cap);
        } else {
            size_t len = strlen(e->d_name);
            if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0) continue;
            if (*n == *cap) {
                *cap = *cap ? *cap * 2 : 64;
                *files = realloc(*files, *cap * sizeof **files);
                if (!*files) abort();
            }
            (*files)[(*n)++] = strdup(path);
        }
    }
    closedir(d);
}

static bool load_json(const char *path, bson_t *out, bson_error_t *err)
{
    bson_json_reader_t *r = bson_json_reader_new_from_file(path, err);
    if (!r) return false;
    bson_init(out);
    int rc = bson_json_reader_read(r, out, err);
    bson_json_reader_destroy(r);
    if (rc != 1) {
        if (rc == 0) bson_set_error(err, 0, 0, "empty file");
        bson_destroy(out);
        return false;
    }
    return true;
}

static void register_case(const char *area, const char *stem, const char *path, const bson_t *file_doc,
                          const bson_t *doc, size_t index, void (*fn)(void))
{
    char name[2200];
    const char *desc = spec_str(doc, "description");
    char idx[32];
    snprintf(idx, sizeof idx, "case %zu", index);
    if (index == SIZE_MAX) snprintf(name, sizeof name, "/spec/%s/%s", area, stem); /* the file is the case */
    else snprintf(name, sizeof name, "/spec/%s/%s/%s", area, stem, desc ? desc : idx);
    spec_case_t *c = calloc(1, sizeof *c);
    c->file = strdup(path);
    c->doc = bson_copy(doc);
    c->file_doc = bson_new();
    bson_copy_to_excluding_noinit(file_doc, c->file_doc, "tests", NULL);
    tf_register(name, fn, c, case_free);
}

void spec_register_folder(const char *root, const char *rel, const char *area, const char *cases_key,
                          void (*fn)(void))
{
    char dir[4096], name[2048];
    struct stat st;
    snprintf(dir, sizeof dir, "%s/%s", root, rel);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(name, sizeof name, "/spec/%s", area);
        register_note(name, false, "folder %s not found in the spec tests folder", rel);
        return;
    }
    char **files = NULL;
    size_t n = 0, cap = 0;
    collect(dir, &files, &n, &cap);
    if (n) qsort(files, n, sizeof *files, cmp_str);
    for (size_t i = 0; i < n; i++) {
        /* the stem: path below dir, without ".json" */
        char stem[1024];
        snprintf(stem, sizeof stem, "%s", files[i] + strlen(dir) + 1);
        stem[strlen(stem) - 5] = 0;
        bson_t doc;
        bson_error_t err;
        snprintf(name, sizeof name, "/spec/%s/%s", area, stem);
        if (!load_json(files[i], &doc, &err)) {
            register_note(name, true, "cannot read this JSON file: %s", err.message);
            free(files[i]);
            continue;
        }
        if (!cases_key) {
            register_case(area, stem, files[i], &doc, &doc, SIZE_MAX, fn);
        } else {
            bson_iter_t it, a;
            if (bson_iter_init_find(&it, &doc, cases_key) && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &a)) {
                size_t k = 0;
                while (bson_iter_next(&a)) {
                    if (!BSON_ITER_HOLDS_DOCUMENT(&a)) continue;
                    uint32_t len;
                    const uint8_t *data;
                    bson_t sub;
                    bson_iter_document(&a, &len, &data);
                    if (bson_init_static(&sub, data, len)) register_case(area, stem, files[i], &doc, &sub, k++, fn);
                }
            } else {
                register_note(name, false, "no \"%s\" array: not a file of this runner's format", cases_key);
            }
        }
        bson_destroy(&doc);
        free(files[i]);
    }
    free(files);
}

/* ---- getters -------------------------------------------------------------------------------- */

const char *spec_str(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    if (doc && bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)) return bson_iter_utf8(&it, NULL);
    return NULL;
}

bool spec_has(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    return doc && bson_iter_init_find(&it, doc, key) && !BSON_ITER_HOLDS_NULL(&it);
}

bool spec_bool(const bson_t *doc, const char *key, bool dflt)
{
    bson_iter_t it;
    if (doc && bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_BOOL(&it)) return bson_iter_bool(&it);
    return dflt;
}

int64_t spec_int(const bson_t *doc, const char *key, int64_t dflt)
{
    bson_iter_t it;
    if (doc && bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it)) return bson_iter_as_int64(&it);
    return dflt;
}

bool spec_sub_iter(const bson_iter_t *it, bson_t *out)
{
    uint32_t len;
    const uint8_t *data;
    if (BSON_ITER_HOLDS_DOCUMENT(it)) bson_iter_document(it, &len, &data);
    else if (BSON_ITER_HOLDS_ARRAY(it)) bson_iter_array(it, &len, &data);
    else return false;
    return bson_init_static(out, data, len);
}

bool spec_sub(const bson_t *doc, const char *key, bson_t *out)
{
    bson_iter_t it;
    return doc && bson_iter_init_find(&it, doc, key) && spec_sub_iter(&it, out);
}

/* ---- comparison ----------------------------------------------------------------------------- */

static bool is_number(const bson_iter_t *it) { return BSON_ITER_HOLDS_NUMBER(it); }

static bool is_placeholder(const bson_iter_t *it)
{
    if (is_number(it)) return bson_iter_as_double(it) == 42.0;
    if (BSON_ITER_HOLDS_UTF8(it)) return strcmp(bson_iter_utf8(it, NULL), "42") == 0;
    return false;
}

static bool sub_of(const bson_iter_t *it, bson_t *out)
{
    uint32_t len;
    const uint8_t *data;
    if (BSON_ITER_HOLDS_DOCUMENT(it)) bson_iter_document(it, &len, &data);
    else bson_iter_array(it, &len, &data);
    return bson_init_static(out, data, len);
}

bool spec_value_equal(const bson_iter_t *expected, const bson_iter_t *actual, bool match, char *why,
                      size_t why_size)
{
    if (match && is_placeholder(expected)) {
        if (BSON_ITER_HOLDS_NULL(actual)) {
            snprintf(why, why_size, "expected a value, got null");
            return false;
        }
        return true;
    }
    if (is_number(expected) && is_number(actual)) {
        if (bson_iter_as_double(expected) == bson_iter_as_double(actual)) return true;
        snprintf(why, why_size, "expected %g, got %g", bson_iter_as_double(expected), bson_iter_as_double(actual));
        return false;
    }
    if (bson_iter_type(expected) != bson_iter_type(actual)) {
        snprintf(why, why_size, "expected type 0x%02x, got type 0x%02x", bson_iter_type(expected), bson_iter_type(actual));
        return false;
    }
    switch (bson_iter_type(expected)) {
    case BSON_TYPE_UTF8:
        if (strcmp(bson_iter_utf8(expected, NULL), bson_iter_utf8(actual, NULL)) == 0) return true;
        snprintf(why, why_size, "expected \"%s\", got \"%s\"", bson_iter_utf8(expected, NULL), bson_iter_utf8(actual, NULL));
        return false;
    case BSON_TYPE_BOOL:
        if (bson_iter_bool(expected) == bson_iter_bool(actual)) return true;
        snprintf(why, why_size, "expected %s, got %s", bson_iter_bool(expected) ? "true" : "false",
                 bson_iter_bool(actual) ? "true" : "false");
        return false;
    case BSON_TYPE_NULL:
        return true;
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY: {
        bson_t e, a;
        if (!sub_of(expected, &e) || !sub_of(actual, &a)) return false;
        return spec_doc_equal(&e, &a, match, false, why, why_size);
    }
    default: {
        /* other types: compare their canonical JSON */
        bson_t e = BSON_INITIALIZER, a = BSON_INITIALIZER;
        bson_append_iter(&e, "v", 1, expected);
        bson_append_iter(&a, "v", 1, actual);
        char *je = bson_as_canonical_extended_json(&e, NULL), *ja = bson_as_canonical_extended_json(&a, NULL);
        bool same = strcmp(je, ja) == 0;
        if (!same) snprintf(why, why_size, "expected %s, got %s", je, ja);
        bson_free(je);
        bson_free(ja);
        bson_destroy(&e);
        bson_destroy(&a);
        return same;
    }
    }
}

static bool find_key(const bson_t *doc, const char *key, bool nocase, bson_iter_t *out)
{
    return nocase ? bson_iter_init_find_case(out, doc, key) : bson_iter_init_find(out, doc, key);
}

bool spec_doc_equal(const bson_t *expected, const bson_t *actual, bool match, bool nocase, char *why,
                    size_t why_size)
{
    bson_iter_t e, a;
    if (!bson_iter_init(&e, expected)) return false;
    while (bson_iter_next(&e)) {
        const char *key = bson_iter_key(&e);
        if (!find_key(actual, key, nocase, &a)) {
            snprintf(why, why_size, "%s: missing", key);
            return false;
        }
        char sub[512];
        if (!spec_value_equal(&e, &a, match, sub, sizeof sub)) {
            snprintf(why, why_size, "%s: %s", key, sub);
            return false;
        }
    }
    if (!match && bson_count_keys(expected) != bson_count_keys(actual)) {
        char *j = bson_as_relaxed_extended_json(actual, NULL);
        snprintf(why, why_size, "unexpected extra keys in %s", j);
        bson_free(j);
        return false;
    }
    return true;
}
