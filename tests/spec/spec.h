/* Shared pieces of the specification-test runners: finding and reading the JSON files of a
 * folder of mongodb/specifications (source/ layout), registering one test per case, and
 * comparing values as the spec READMEs describe. */
#ifndef MQC_SPEC_H
#define MQC_SPEC_H

#include <bson/bson.h>
#include <stdbool.h>

/* One case handed to a test through tf_data(). */
typedef struct {
    char *file;     /* path of the JSON file */
    bson_t *doc;      /* the case (a copy; pointers: bson_t wants an alignment calloc lacks) */
    bson_t *file_doc; /* the whole file's top level without "tests" (runOn, style, ...) */
} spec_case_t;

/* The spec folder, or NULL after registering (once) a test that skips with the reason. */
const char *spec_root(void);

/* Walks root/rel for *.json files (recursively, sorted) and registers one test per case. With
 * cases_key (e.g. "tests") the file holds an array of cases under it, each named
 * "/spec/<area>/<file stem>/<description>"; with NULL the file is one case, "/spec/<area>/<file
 * stem>" (the stem is the path below root/rel without ".json"). A file that cannot be read or lacks
 * the array registers a test that fails (unreadable JSON) or skips (another format), with the
 * reason. A missing folder registers one skipping test. */
void spec_register_folder(const char *root, const char *rel, const char *area, const char *cases_key,
                          void (*fn)(void));

/* The running test's case. */
const spec_case_t *spec_case(void);

/* The sub-folders of root/rel, sorted; the caller frees each and the array. NULL (n = 0) when
 * there are none or the folder is missing. */
char **spec_subdirs(const char *root, const char *rel, size_t *n);
/* Registers a test that skips with reason: a folder of a format this runner does not run. */
void spec_register_skip(const char *name, const char *reason);

/* A runner's verdict on its case, built up while it runs: rc 0 pass, 1 fail, 2 skip; the first
 * reason set is the one kept. */
typedef struct {
    int rc;
    char msg[1024];
} spec_outcome_t;
/* Sets o's verdict unless one is set already; returns false, for "return spec_set(o, 1, ...)". */
__attribute__((format(printf, 3, 4))) bool spec_set(spec_outcome_t *o, int rc, const char *fmt, ...);
/* Ends the running test as o says: FAIL or SKIP with its reason, else returns (a pass). */
void spec_conclude(const spec_outcome_t *o);

/* Value comparison. exact: same type (numbers as numbers), same value; documents and arrays
 * with the same keys. match (CMAP MATCH): expected is a subset of actual, 42 or "42" match any
 * present value. On a mismatch, why names the path. */
bool spec_value_equal(const bson_iter_t *expected, const bson_iter_t *actual, bool match, char *why,
                      size_t why_size);
/* Document versions: keys of expected looked up in actual (case-insensitively when nocase). */
bool spec_doc_equal(const bson_t *expected, const bson_t *actual, bool match, bool nocase, char *why,
                    size_t why_size);

/* Getters that tolerate absence and other types. */
const char *spec_str(const bson_t *doc, const char *key);      /* NULL unless a string */
bool spec_has(const bson_t *doc, const char *key);             /* present and not null */
bool spec_bool(const bson_t *doc, const char *key, bool dflt);
int64_t spec_int(const bson_t *doc, const char *key, int64_t dflt);
bool spec_sub(const bson_t *doc, const char *key, bson_t *out); /* document or array, static view */
bool spec_sub_iter(const bson_iter_t *it, bson_t *out);         /* the same, of what it points at */

#endif
