/* tf: the test framework of mqc's single test binary.
 *
 * Tests are named like paths ("/wire/reader/partial_header") and selected on the command line by
 * prefix or substring. Each test runs in a process of its own (forked from the runner, as libuv's
 * are), killed after --timeout seconds: a crash, a hang, or a sanitizer or leak report at the
 * process's exit fails that test by name, and nothing a test leaves behind reaches the next one.
 * --no-fork runs them all in one process (for a debugger). A failed assertion prints both values
 * and ends the test (longjmp). The binary ends with the line "N passed, N failed, N skipped".
 *
 * What a test's process changes is lost when it ends, except the servers the fixtures below
 * start (one per kind per run, shared through memory the runner maps before forking).
 *
 *   TEST("/area/case", area_case) { ASSERT_EQ(1 + 1, 2); }
 *
 * Tests registered at run time (one per spec JSON case, say) use tf_register() from a
 * TF_SUITE_INIT() hook, which runs after the command line is parsed. */
#ifndef MQC_TF_H
#define MQC_TF_H

#include <inttypes.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void (*tf_fn)(void);

/* Registers a test. path is copied; data is handed to the test through tf_data() and released
 * with free_data (may be NULL) at exit. */
void tf_register(const char *path, tf_fn fn, void *data, void (*free_data)(void *));
void tf_register_init(void (*init)(void));
void *tf_data(void);
const char *tf_current(void);

#define TEST(path, fn)                                                                  \
    static void fn(void);                                                               \
    __attribute__((constructor)) static void fn##_tf_reg(void) { tf_register(path, fn, NULL, NULL); } \
    static void fn(void)

#define TF_SUITE_INIT(fn)                                                               \
    static void fn(void);                                                               \
    __attribute__((constructor)) static void fn##_tf_init_reg(void) { tf_register_init(fn); } \
    static void fn(void)

/* Failure and skip end the running test. */
__attribute__((noreturn, format(printf, 3, 4))) void tf_fail(const char *file, int line, const char *fmt, ...);
__attribute__((noreturn, format(printf, 1, 2))) void tf_skip(const char *fmt, ...);
/* Prints a note under the current test (shown with -v, and always for failures). */
__attribute__((format(printf, 1, 2))) void tf_note(const char *fmt, ...);

#define SKIP(...) tf_skip(__VA_ARGS__)
#define FAIL(...) tf_fail(__FILE__, __LINE__, __VA_ARGS__)

#define ASSERT(cond)                                                                    \
    do { if (!(cond)) tf_fail(__FILE__, __LINE__, "assertion failed: %s", #cond); } while (0)
#define ASSERT_MSG(cond, ...)                                                           \
    do { if (!(cond)) tf_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)

/* Integers compare as long long; when either side is floating (a time, a ratio), both compare
 * as long double: a cast to an integer would make "took < 1.4" mean "took < 1". */
#define TF_IS_FLOAT(x) _Generic((x), float: 1, double: 1, long double: 1, default: 0)
#define TF_CMP_INT(a, op, b)                                                            \
    do {                                                                                \
        if (TF_IS_FLOAT(a) || TF_IS_FLOAT(b)) {                                         \
            long double tf_fa_ = (long double) (a), tf_fb_ = (long double) (b);         \
            if (!(tf_fa_ op tf_fb_))                                                    \
                tf_fail(__FILE__, __LINE__, "%s %s %s: %Lg vs %Lg", #a, #op, #b, tf_fa_, tf_fb_); \
        } else {                                                                        \
            long long tf_a_ = (long long) (a), tf_b_ = (long long) (b);                 \
            if (!(tf_a_ op tf_b_))                                                      \
                tf_fail(__FILE__, __LINE__, "%s %s %s: %lld vs %lld", #a, #op, #b, tf_a_, tf_b_); \
        }                                                                               \
    } while (0)
#define ASSERT_EQ(a, b) TF_CMP_INT(a, ==, b)
#define ASSERT_NE(a, b) TF_CMP_INT(a, !=, b)
#define ASSERT_LT(a, b) TF_CMP_INT(a, <, b)
#define ASSERT_LE(a, b) TF_CMP_INT(a, <=, b)
#define ASSERT_GT(a, b) TF_CMP_INT(a, >, b)
#define ASSERT_GE(a, b) TF_CMP_INT(a, >=, b)

#define ASSERT_DBL_NEAR(a, b, eps)                                                      \
    do {                                                                                \
        double tf_a_ = (double) (a), tf_b_ = (double) (b);                              \
        if (!(tf_a_ - tf_b_ <= (eps) && tf_b_ - tf_a_ <= (eps)))                        \
            tf_fail(__FILE__, __LINE__, "%s ~ %s: %g vs %g (eps %g)", #a, #b, tf_a_, tf_b_, (double) (eps)); \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                             \
    do {                                                                                \
        const char *tf_a_ = (a), *tf_b_ = (b);                                          \
        if (!tf_a_ || !tf_b_ || strcmp(tf_a_, tf_b_) != 0)                              \
            tf_fail(__FILE__, __LINE__, "%s == %s: \"%s\" vs \"%s\"", #a, #b,           \
                    tf_a_ ? tf_a_ : "(null)", tf_b_ ? tf_b_ : "(null)");                 \
    } while (0)

#define ASSERT_STR_CONTAINS(hay, needle)                                                \
    do {                                                                                \
        const char *tf_h_ = (hay), *tf_n_ = (needle);                                   \
        if (!tf_h_ || !strstr(tf_h_, tf_n_))                                            \
            tf_fail(__FILE__, __LINE__, "%s contains \"%s\": got \"%s\"", #hay, tf_n_,  \
                    tf_h_ ? tf_h_ : "(null)");                                          \
    } while (0)

#define ASSERT_NULL(p)     ASSERT_MSG((p) == NULL, "%s is not NULL", #p)
#define ASSERT_NOT_NULL(p) ASSERT_MSG((p) != NULL, "%s is NULL", #p)

/* --- fixtures ----------------------------------------------------------------------------- */

/* The URI of a real server for integration tests: MQC_TEST_URI when set, else a FerretDB
 * instance started once per run with scripts/ferretdb (stopped at exit). Fails the test (not
 * skips) when no server can be had: a missing server is an environment bug. kind is "plain",
 * "tls", "auth" or "tls,auth" (environment MQC_TEST_TLS_URI / MQC_TEST_AUTH_URI override). */
const char *tf_server_uri(const char *kind);
/* kind "failpoint" ("failpoint,rs"): the plain (replica-set-named) server behind tests/failproxy.c (mongod's failCommand for any
 * server), or MQC_TEST_FAILPOINT_URI. */
/* Like tf_server_uri, for a replica-set-named instance (MQC_TEST_RS_URI). */
const char *tf_rs_uri(void);
/* True when the tests run against a server given in the environment (real MongoDB, say). */
bool tf_server_is_external(void);
/* The spec-tests folder (--spec-dir, MQC_SPEC_TESTS, default ../shared/spec-tests), or NULL. */
const char *tf_spec_dir(void);
/* A fresh folder under the run's temporary folder (named after the test), removed when the run
 * ends. Returned string is static storage that lives until exit. */
const char *tf_tmpdir(void);
/* False under valgrind (MQC_TEST_VALGRIND, set by scripts/run-tests --valgrind), which runs code
 * 20-50 times slower: tests that bound a time (the longest loop iteration) then only report it. */
bool tf_time_bounds(void);
extern char *tf_kept_tmpdirs[256];
/* The top of the source tree (where Makefile is), and the build folder holding mqc-test. */
const char *tf_src_dir(void);
const char *tf_build_dir(void);
/* A unique name (for databases and collections) so that runs and tests do not collide. */
const char *tf_unique(const char *prefix);
/* Seconds on a monotonic clock. */
double tf_now(void);

#endif
