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

/* Walks root/rel for *.json files (recursively, sorted) and registers one test per case:
 * "/spec/<area>/<file stem>/<description>". With cases_key (e.g. "tests") the file holds an
 * array of cases under it; with NULL the file is one case. A file that cannot be read or lacks
 * the array registers a test that fails (unreadable JSON) or skips (another format), with the
 * reason. A missing folder registers one skipping test. */
void spec_register_folder(const char *root, const char *rel, const char *area, const char *cases_key,
                          void (*fn)(void));

/* The running test's case. */
const spec_case_t *spec_case(void);

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

#endif
