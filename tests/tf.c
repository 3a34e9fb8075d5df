/* tf: runner for the single test binary. See tf.h. */
#include "tf.h"
#include "failproxy.h"

#include <mongoc/mongoc.h>

#include "mqc.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char *path;
    tf_fn fn;
    void *data;
    void (*free_data)(void *);
} tf_test_t;

static tf_test_t *g_tests;
static size_t g_ntests, g_cap;
static void (*g_inits[64])(void);
static size_t g_ninits;
static jmp_buf g_jmp;
static const tf_test_t *g_cur;
static int g_verbose;
static char g_skip_reason[512];
static char g_fail_msg[2048];
static const char *g_spec_dir;
static char g_src_dir[PATH_MAX], g_build_dir[PATH_MAX], g_tmp_root[PATH_MAX];
static unsigned g_timeout = 300;

void tf_register(const char *path, tf_fn fn, void *data, void (*free_data)(void *))
{
    if (g_ntests == g_cap) {
        g_cap = g_cap ? g_cap * 2 : 256;
        g_tests = realloc(g_tests, g_cap * sizeof *g_tests);
        if (!g_tests) abort();
    }
    g_tests[g_ntests++] = (tf_test_t) {strdup(path), fn, data, free_data};
}

void tf_register_init(void (*init)(void))
{
    if (g_ninits < sizeof g_inits / sizeof g_inits[0]) g_inits[g_ninits++] = init;
}

void *tf_data(void) { return g_cur ? g_cur->data : NULL; }
const char *tf_current(void) { return g_cur ? g_cur->path : ""; }

void tf_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(g_fail_msg, sizeof g_fail_msg, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vsnprintf(g_fail_msg + n, sizeof g_fail_msg - (size_t) n, fmt, ap);
    va_end(ap);
    longjmp(g_jmp, 1);
}

void tf_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_skip_reason, sizeof g_skip_reason, fmt, ap);
    va_end(ap);
    longjmp(g_jmp, 2);
}

void tf_note(const char *fmt, ...)
{
    if (!g_verbose) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("    # ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
}

double tf_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

const char *tf_spec_dir(void)
{
    struct stat st;
    if (!g_spec_dir) g_spec_dir = getenv("MQC_SPEC_TESTS");
    if (!g_spec_dir || !*g_spec_dir) {
        static char def[PATH_MAX + 32];
        snprintf(def, sizeof def, "%s/../shared/spec-tests", g_src_dir);
        g_spec_dir = def;
    }
    if (stat(g_spec_dir, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
    return g_spec_dir;
}

const char *tf_src_dir(void) { return g_src_dir; }
const char *tf_build_dir(void) { return g_build_dir; }

/* Folders handed out by tf_tmpdir, referenced here so that leak checkers see them (file scope: a
 * write-only static inside the function would be optimised away). */
char *tf_kept_tmpdirs[256];

const char *tf_tmpdir(void)
{
    static unsigned n;
    char buf[PATH_MAX + 64];
    if (!g_tmp_root[0]) {
        snprintf(g_tmp_root, sizeof g_tmp_root, "%s/mqc-test-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(g_tmp_root)) {
            perror("mkdtemp");
            abort();
        }
    }
    snprintf(buf, sizeof buf, "%s/%u", g_tmp_root, ++n);
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) FAIL("mkdir %s: %s", buf, strerror(errno));
    /* Lives until exit, by contract; kept here so that leak checkers see it referenced. */
    char *p = strdup(buf);
    if (n <= sizeof tf_kept_tmpdirs / sizeof tf_kept_tmpdirs[0]) tf_kept_tmpdirs[n - 1] = p;
    return p;
}

const char *tf_unique(const char *prefix)
{
    static char buf[8][96];
    static unsigned slot, n;
    char *b = buf[slot++ % 8];
    snprintf(b, sizeof buf[0], "%s_%d_%u", prefix, (int) getpid(), ++n);
    return b;
}

/* --- FerretDB fixture ---------------------------------------------------------------------- */

typedef struct {
    const char *kind;
    char *uri;
} tf_server_t;

static tf_server_t g_servers[8];
static size_t g_nservers;

/* One call for all: the script stops them in parallel (each takes about a second to shut down). */
static void stop_servers(void)
{
    char cmd[PATH_MAX + 8 * 4200];
    size_t n = (size_t) snprintf(cmd, sizeof cmd, "'%s/scripts/ferretdb' stop", g_src_dir);
    bool any = false;
    for (size_t i = 0; i < g_nservers && n < sizeof cmd; i++) {
        if (!g_servers[i].uri) continue;
        n += (size_t) snprintf(cmd + n, sizeof cmd - n, " '%s'", g_servers[i].uri);
        any = true;
    }
    if (!any || n >= sizeof cmd - 32) return;
    snprintf(cmd + n, sizeof cmd - n, " >/dev/null 2>&1");
    if (system(cmd) != 0) fprintf(stderr, "tf: could not stop every FerretDB: %s\n", cmd);
}

static const char *start_server(const char *kind, const char *flags)
{
    for (size_t i = 0; i < g_nservers; i++)
        if (strcmp(g_servers[i].kind, kind) == 0) {
            if (!g_servers[i].uri) FAIL("FerretDB (%s) failed to start earlier in this run", kind);
            return g_servers[i].uri;
        }
    if (g_nservers == sizeof g_servers / sizeof g_servers[0]) FAIL("too many servers");
    tf_server_t *s = &g_servers[g_nservers++];
    s->kind = kind;
    if (g_nservers == 1) atexit(stop_servers);

    char cmd[PATH_MAX + 256], line[4096], last[4096] = "";
    snprintf(cmd, sizeof cmd, "'%s/scripts/ferretdb' start %s", g_src_dir, flags);
    double t0 = tf_now();
    FILE *p = popen(cmd, "r");
    if (!p) FAIL("popen %s: %s", cmd, strerror(errno));
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0]) snprintf(last, sizeof last, "%s", line);
    }
    int rc = pclose(p);
    if (rc != 0 || strncmp(last, "mongodb://", 10) != 0)
        FAIL("could not start FerretDB (%s): '%s' exited %d, last line '%s'", kind, cmd, rc, last);
    s->uri = strdup(last);
    char shown[4096];
    fprintf(stderr, "tf: FerretDB %s started in %.1f s: %s\n", kind, tf_now() - t0,
            mqc_uri_redact(s->uri, shown, sizeof shown));
    return s->uri;
}

bool tf_server_is_external(void)
{
    const char *e = getenv("MQC_TEST_URI");
    return e && *e;
}

const char *tf_server_uri(const char *kind)
{
    if (!kind || !*kind) kind = "plain";
    const char *env = NULL, *flags = "";
    if (strcmp(kind, "failpoint,rs") == 0) {
        /* The replica-set-named server behind the proxy. directConnection: its hello names the
         * server's own address, which discovery would otherwise switch to, bypassing the proxy. */
        static char uri[256];
        const char *proxied = failproxy_start(tf_rs_uri());
        if (!proxied) FAIL("could not put the fail point proxy in front of %s", tf_rs_uri());
        snprintf(uri, sizeof uri, "%s?directConnection=true", proxied);
        return uri;
    }
    if (strcmp(kind, "failpoint") == 0) {
        /* The plain server behind tests/failproxy.c, which gives it mongod's failCommand. A server
         * that has fail points of its own can be named instead (MQC_TEST_FAILPOINT_URI). */
        const char *fe = getenv("MQC_TEST_FAILPOINT_URI");
        if (fe && *fe) return fe;
        const char *target = tf_server_uri("plain");
        const char *proxied = failproxy_start(target);
        if (!proxied) FAIL("could not put the fail point proxy in front of %s", target);
        return proxied;
    }
    if (strcmp(kind, "plain") == 0) env = "MQC_TEST_URI";
    else if (strcmp(kind, "tls") == 0) env = "MQC_TEST_TLS_URI", flags = "--tls";
    else if (strcmp(kind, "auth") == 0) env = "MQC_TEST_AUTH_URI", flags = "--auth";
    else if (strcmp(kind, "tls,auth") == 0) env = "MQC_TEST_TLS_AUTH_URI", flags = "--tls --auth";
    else FAIL("unknown server kind '%s'", kind);
    const char *e = getenv(env);
    if (e && *e) return e;
    if (strcmp(kind, "plain") != 0 && tf_server_is_external())
        SKIP("MQC_TEST_URI is set but %s is not: no %s server to test against", env, kind);
    return start_server(kind, flags);
}

const char *tf_rs_uri(void)
{
    const char *e = getenv("MQC_TEST_RS_URI");
    if (e && *e) return e;
    if (tf_server_is_external()) SKIP("MQC_TEST_URI is set but MQC_TEST_RS_URI is not");
    return start_server("rs", "--repl-set-name rs0");
}

/* --- runner -------------------------------------------------------------------------------- */

static void on_alarm(int sig)
{
    (void) sig;
    char msg[600];
    int n = snprintf(msg, sizeof msg, "\nFAIL %s: timed out after %u s (whole run aborted)\n",
                     g_cur ? g_cur->path : "?", g_timeout);
    if (write(2, msg, (size_t) n) < 0) { /* nothing more to do */ }
    _exit(3);
}

static bool matches(const char *path, char **pats, int npats, char **excl, int nexcl)
{
    for (int i = 0; i < nexcl; i++)
        if (strstr(path, excl[i])) return false;
    if (npats == 0) return true;
    for (int i = 0; i < npats; i++)
        if (strncmp(path, pats[i], strlen(pats[i])) == 0 || strstr(path, pats[i])) return true;
    return false;
}

static int cmp_tests(const void *a, const void *b)
{
    return strcmp(((const tf_test_t *) a)->path, ((const tf_test_t *) b)->path);
}

static void usage(void)
{
    puts("usage: mqc-test [-v] [--list] [--spec-dir DIR] [--timeout SECS] [-x EXCLUDE]... [PATTERN]...\n"
         "  PATTERN selects tests whose name starts with or contains it (e.g. /wire/ or partial).\n"
         "  Environment: MQC_TEST_URI (use this server, not FerretDB), MQC_TEST_RS_URI,\n"
         "  MQC_TEST_TLS_URI, MQC_TEST_AUTH_URI, MQC_SPEC_TESTS.");
}

static void find_dirs(const char *argv0)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) snprintf(exe, sizeof exe, "%s", argv0);
    else exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    snprintf(g_build_dir, sizeof g_build_dir, "%s", exe);
    /* Walk up from the binary to the folder that holds the Makefile and scripts/. */
    char d[PATH_MAX];
    snprintf(d, sizeof d, "%s", exe);
    for (int i = 0; i < 6; i++) {
        char probe[PATH_MAX + 32];
        snprintf(probe, sizeof probe, "%s/scripts/ferretdb", d);
        if (access(probe, F_OK) == 0) {
            snprintf(g_src_dir, sizeof g_src_dir, "%s", d);
            return;
        }
        char *s = strrchr(d, '/');
        if (!s || s == d) break;
        *s = 0;
    }
    if (!getcwd(g_src_dir, sizeof g_src_dir)) snprintf(g_src_dir, sizeof g_src_dir, ".");
}

static void rm_tmp(void)
{
    if (!g_tmp_root[0] || getenv("MQC_TEST_KEEP_TMP")) return;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp_root);
    if (system(cmd) != 0) { /* best effort */ }
}

/* setjmp lives in its own frame so that no local of main can be clobbered by the longjmp. */
static int run_one(const tf_test_t *t)
{
    g_cur = t;
    double t0 = tf_now();
    alarm(g_timeout);
    int r = setjmp(g_jmp);
    if (r == 0) {
        t->fn();
        printf("ok   %s (%.1f ms)\n", t->path, (tf_now() - t0) * 1e3);
    } else if (r == 1) {
        printf("FAIL %s\n     %s\n", t->path, g_fail_msg);
    } else {
        printf("skip %s: %s\n", t->path, g_skip_reason);
    }
    alarm(0);
    g_cur = NULL;
    return r;
}

int main(int argc, char **argv)
{
    char *pats[256], *excl[64];
    int npats = 0, nexcl = 0;
    bool list = false;

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    find_dirs(argv[0]);
    atexit(rm_tmp);
    /* libmongoc (the environment tests, the mongoc baseline) cannot be initialised again after
     * mongoc_cleanup: once per run, here. */
    mongoc_init();
    atexit(mongoc_cleanup);
    if (getenv("MQC_TEST_TIMEOUT")) g_timeout = (unsigned) atoi(getenv("MQC_TEST_TIMEOUT"));

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v")) g_verbose = 1;
        else if (!strcmp(argv[i], "--list")) list = true;
        else if (!strcmp(argv[i], "--spec-dir") && i + 1 < argc) g_spec_dir = argv[++i];
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) g_timeout = (unsigned) atoi(argv[++i]);
        else if (!strcmp(argv[i], "-x") && i + 1 < argc && nexcl < 64) excl[nexcl++] = argv[++i];
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(); return 0; }
        else if (argv[i][0] == '-') { fprintf(stderr, "mqc-test: unknown option %s\n", argv[i]); usage(); return 1; }
        else if (npats < 256) pats[npats++] = argv[i];
    }
    for (size_t i = 0; i < g_ninits; i++) g_inits[i]();
    qsort(g_tests, g_ntests, sizeof *g_tests, cmp_tests);

    size_t passed = 0, failed = 0, skipped = 0, selected = 0;
    char **failures = calloc(g_ntests + 1, sizeof *failures);
    signal(SIGALRM, on_alarm);
    for (size_t i = 0; i < g_ntests; i++) {
        tf_test_t *t = &g_tests[i];
        if (!matches(t->path, pats, npats, excl, nexcl)) continue;
        selected++;
        if (list) { puts(t->path); continue; }
        int r = run_one(t);
        if (r == 0) passed++;
        else if (r == 1) failures[failed++] = t->path;
        else skipped++;
        g_cur = NULL;
    }
    if (list) return 0;
    if (selected == 0) fprintf(stderr, "mqc-test: no test matches\n");
    if (failed) {
        printf("\nfailed tests:\n");
        for (size_t i = 0; i < failed; i++) printf("  %s\n", failures[i]);
    }
    printf("%zu passed, %zu failed, %zu skipped\n", passed, failed, skipped);
    for (size_t i = 0; i < g_ntests; i++) {
        if (g_tests[i].free_data) g_tests[i].free_data(g_tests[i].data);
        free(g_tests[i].path);
    }
    free(g_tests);
    free(failures);
    fflush(stdout);
    return failed || selected == 0 ? 1 : 0;
}

bool tf_time_bounds(void)
{
    const char *v = getenv("MQC_TEST_VALGRIND");
    return !(v && *v && strcmp(v, "0") != 0);
}
