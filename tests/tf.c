/* tf: runner for the single test binary. See tf.h. */
#include "tf.h"
#include "failproxy.h"

#include <mongoc/mongoc.h>

#include "mqc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
static unsigned g_timeout = 120;
static size_t g_cur_index;      /* of the running test in g_tests: names its tmp folders */
static pid_t g_runner_pid;      /* the process that owns the run's servers and tmp folder */

/* What a test's process hands back to the runner, and what outlives the test's process: the
 * servers it started (one FerretDB of each kind per run, whichever test asked first). Mapped
 * shared before the first fork. */
#define TF_MAX_SERVERS 8
typedef struct {
    char kind[16];
    int state;                  /* 1 running (uri set), 2 failed to start */
    char uri[4096];
} tf_server_t;
typedef struct {
    tf_server_t servers[TF_MAX_SERVERS];
    size_t nservers;
} tf_shared_t;
static tf_shared_t g_local_shared, *g_shared = &g_local_shared;

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

static void make_tmp_root(void)
{
    snprintf(g_tmp_root, sizeof g_tmp_root, "%s/mqc-test-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_tmp_root)) {
        perror("mkdtemp");
        abort();
    }
}

/* Named after the test's index and a count within the test: each test runs in a process of its
 * own, so a counter alone would hand two tests the same folder. */
const char *tf_tmpdir(void)
{
    static unsigned n;
    char buf[PATH_MAX + 64];
    if (!g_tmp_root[0]) make_tmp_root();
    snprintf(buf, sizeof buf, "%s/%zu.%u", g_tmp_root, g_cur_index, ++n);
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

/* The backend scripts/ferretdb starts: its default, or MQC_FERRETDB_BACKEND. */
static const char *ferretdb_backend(void)
{
    const char *b = getenv("MQC_FERRETDB_BACKEND");
    return b && *b ? b : "sqlite";
}

/* One call for all: the script stops them in parallel (each takes about a second to shut down).
 * Only the runner stops them: a test's process exits with the run still going. */
static void stop_servers(void)
{
    if (getpid() != g_runner_pid) return;
    char cmd[PATH_MAX + TF_MAX_SERVERS * 4200];
    size_t n = (size_t) snprintf(cmd, sizeof cmd, "'%s/scripts/ferretdb' stop", g_src_dir);
    bool any = false;
    for (size_t i = 0; i < g_shared->nservers && n < sizeof cmd; i++) {
        if (g_shared->servers[i].state != 1) continue;
        n += (size_t) snprintf(cmd + n, sizeof cmd - n, " '%s'", g_shared->servers[i].uri);
        any = true;
    }
    if (!any || n >= sizeof cmd - 32) return;
    snprintf(cmd + n, sizeof cmd - n, " >/dev/null 2>&1");
    if (system(cmd) != 0) fprintf(stderr, "tf: could not stop every FerretDB: %s\n", cmd);
}

/* Started by the first test that asks, from that test's process: scripts/ferretdb detaches the
 * server (setsid), so it outlives the test; the URI goes into the shared table, where the tests
 * after it find it and from where the runner stops it at exit. */
static const char *start_server(const char *kind, const char *flags)
{
    for (size_t i = 0; i < g_shared->nservers; i++)
        if (strcmp(g_shared->servers[i].kind, kind) == 0) {
            if (g_shared->servers[i].state != 1) FAIL("FerretDB (%s) failed to start earlier in this run", kind);
            return g_shared->servers[i].uri;
        }
    if (g_shared->nservers == TF_MAX_SERVERS) FAIL("too many servers");
    tf_server_t *s = &g_shared->servers[g_shared->nservers++];
    snprintf(s->kind, sizeof s->kind, "%s", kind);
    s->state = 2;

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
    snprintf(s->uri, sizeof s->uri, "%s", last);
    s->state = 1;
    char shown[4096];
    fprintf(stderr, "tf: FerretDB %s (%s backend) started in %.1f s: %s\n", kind, ferretdb_backend(),
            tf_now() - t0, mqc_uri_redact(s->uri, shown, sizeof shown));
    return s->uri;
}

/* Appends the running test's name to $MQC_TEST_SERVER_LOG, when set: the list of the tests that
 * need a real server, which .ci/run runs once more against FerretDB's PostgreSQL backend
 * (MQC_FERRETDB_BACKEND=postgresql, honoured by scripts/ferretdb). */
static void log_server_test(void)
{
    const char *path = getenv("MQC_TEST_SERVER_LOG");
    if (!path || !*path || !g_cur) return;
    FILE *f = fopen(path, "a");
    if (!f) {
        fprintf(stderr, "tf: MQC_TEST_SERVER_LOG=%s: %s\n", path, strerror(errno));
        return;
    }
    fprintf(f, "%s\n", g_cur->path);
    fclose(f);
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
    log_server_test();
    const char *e = getenv(env);
    if (e && *e) return e;
    if (strcmp(kind, "plain") != 0 && tf_server_is_external())
        SKIP("MQC_TEST_URI is set but %s is not: no %s server to test against", env, kind);
    return start_server(kind, flags);
}

const char *tf_rs_uri(void)
{
    log_server_test();
    const char *e = getenv("MQC_TEST_RS_URI");
    if (e && *e) return e;
    if (tf_server_is_external()) SKIP("MQC_TEST_URI is set but MQC_TEST_RS_URI is not");
    return start_server("rs", "--repl-set-name rs0");
}

/* --- runner -------------------------------------------------------------------------------- */

/* Each test runs in a process of its own (as libuv's runner does): a crash, a sanitizer report, a
 * leak or a hang is that test's failure, reported by its name, and what a failed test leaves
 * behind (clients, threads, sockets: a failed assertion longjmps past their cleanup) dies with its
 * process instead of running on into the tests after it. --no-fork runs them all in this
 * process, one after the other, for a debugger. */

typedef enum { TF_PASS, TF_FAIL, TF_SKIP } tf_verdict_t;

/* What a test's process writes to the runner before it exits; the runner prints it. */
typedef struct {
    int verdict;                /* tf_verdict_t */
    double ms;
    char msg[2048];             /* the failure, or the skip's reason */
} tf_report_t;

static bool g_fork = true;
static volatile sig_atomic_t g_child_pgid;

static void on_alarm(int sig)
{
    (void) sig;
    char msg[600];
    int n = snprintf(msg, sizeof msg, "\nFAIL %s: timed out after %u s (whole run aborted)\n",
                     g_cur ? g_cur->path : "?", g_timeout);
    if (write(2, msg, (size_t) n) < 0) { /* nothing more to do */ }
    _exit(3);
}

/* The runner's SIGINT/SIGTERM: the running test is in a process group of its own, out of reach
 * of the terminal's ^C, so take it (and whatever it started) down too. */
static void on_stop_signal(int sig)
{
    if (g_child_pgid > 0) kill(-(pid_t) g_child_pgid, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
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
    puts("usage: mqc-test [-v] [--list] [--no-fork] [--spec-dir DIR] [--timeout SECS] [-x EXCLUDE]... [PATTERN]...\n"
         "  PATTERN selects tests whose name starts with or contains it (e.g. /wire/ or partial).\n"
         "  Each test runs in a process of its own, killed after --timeout seconds (default 120,\n"
         "  x3 with ASan, x10 under valgrind; MQC_TEST_TIMEOUT); --no-fork (MQC_TEST_NO_FORK=1)\n"
         "  runs them all in this process.\n"
         "  Environment: MQC_TEST_URI (use this server, not FerretDB), MQC_TEST_RS_URI,\n"
         "  MQC_TEST_TLS_URI, MQC_TEST_AUTH_URI, MQC_SPEC_TESTS; MQC_FERRETDB_BACKEND (sqlite or\n"
         "  postgresql: the FerretDB the tests start); MQC_TEST_SERVER_LOG (append the names of the\n"
         "  tests that need a real server to this file).");
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
    if (getpid() != g_runner_pid || !g_tmp_root[0] || getenv("MQC_TEST_KEEP_TMP")) return;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp_root);
    if (system(cmd) != 0) { /* best effort */ }
}

/* setjmp lives in its own frame so that no local of the caller can be clobbered by the longjmp. */
static void run_fn(const tf_test_t *t, tf_report_t *rep)
{
    double t0 = tf_now();
    int r = setjmp(g_jmp);
    if (r == 0) {
        t->fn();
        rep->verdict = TF_PASS;
        rep->ms = (tf_now() - t0) * 1e3;
    } else if (r == 1) {
        rep->verdict = TF_FAIL;
        snprintf(rep->msg, sizeof rep->msg, "%s", g_fail_msg);
    } else {
        rep->verdict = TF_SKIP;
        snprintf(rep->msg, sizeof rep->msg, "%s", g_skip_reason);
    }
}

static void print_report(const tf_test_t *t, const tf_report_t *rep)
{
    if (rep->verdict == TF_PASS) printf("ok   %s (%.1f ms)\n", t->path, rep->ms);
    else if (rep->verdict == TF_FAIL) printf("FAIL %s\n     %s\n", t->path, rep->msg);
    else printf("skip %s: %s\n", t->path, rep->msg);
}

static int run_in_process(const tf_test_t *t)
{
    tf_report_t rep = {0};
    g_cur = t;
    alarm(g_timeout);
    run_fn(t, &rep);
    alarm(0);
    g_cur = NULL;
    print_report(t, &rep);
    return rep.verdict;
}

#if defined(__SANITIZE_ADDRESS__)
#define TF_LEAK_CHECKED_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TF_LEAK_CHECKED_BUILD 1
#endif
#endif

/* Whether something checks the test's process for leaks when it exits: LeakSanitizer in an ASan
 * build, or valgrind (which preloads its own library). Without one, exit()'s cleanup (libmongoc's,
 * OpenSSL's) would be a few milliseconds per test spent for nothing. */
static bool leak_checked(void)
{
#ifdef TF_LEAK_CHECKED_BUILD
    return true;
#else
    const char *pre = getenv("LD_PRELOAD");
    return !tf_time_bounds() || (pre && strstr(pre, "valgrind"));
#endif
}

/* The test's process: runs the test, hands its report to the runner through fd, and exits. A
 * test that passed exits through exit() when a leak checker watches, so that it checks the test
 * and the exit status says so; a failed or skipped one leaves at once (_exit): its assertion or
 * skip jumped over its cleanup, and the leaks that follow prove nothing (and LeakSanitizer's
 * scan costs ~30 ms a process, which the unified runner's 1,900 skips paid twice per run). */
static void run_child(const tf_test_t *t, int fd)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    tf_report_t rep = {0};
    g_cur = t;
    run_fn(t, &rep);
    g_cur = NULL;
    if (write(fd, &rep, sizeof rep) != (ssize_t) sizeof rep) _exit(120);
    close(fd);
    fflush(NULL);
    if (rep.verdict == TF_FAIL || rep.verdict == TF_SKIP || !leak_checked()) _exit(0);
    exit(0);
}

static void describe_status(int status, char *out, size_t size)
{
    if (WIFSIGNALED(status))
        snprintf(out, size, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(out, size, "exited %d", WEXITSTATUS(status));
}

/* Forks the test, waits for it at most g_timeout seconds (SIGCHLD is blocked in the runner, so
 * sigtimedwait sleeps until a child ends), and prints its verdict. A status other than a clean
 * exit fails the test even when its assertions passed: that is a sanitizer, leak or valgrind
 * report (printed above by the test's process). */
static int run_forked(const tf_test_t *t)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        perror("tf: pipe");
        exit(2);
    }
    fflush(NULL);
    double t0 = tf_now();
    pid_t pid = fork();
    if (pid < 0) {
        perror("tf: fork");
        exit(2);
    }
    if (pid == 0) {
        /* Its own process group, so that a timeout also ends what the test started. */
        setpgid(0, 0);
        close(fds[0]);
        run_child(t, fds[1]);
    }
    setpgid(pid, pid);
    g_child_pgid = pid;
    close(fds[1]);

    int status = 0;
    bool timed_out = false;
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) {
            perror("tf: waitpid");
            exit(2);
        }
        double left = t0 + g_timeout - tf_now();
        if (left <= 0) {
            timed_out = true;
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) { /* retry */ }
            break;
        }
        struct timespec ts = {(time_t) left, (long) ((left - (double) (time_t) left) * 1e9)};
        if (ts.tv_sec > 1) ts.tv_sec = 1, ts.tv_nsec = 0;   /* re-check the clock now and then */
        sigtimedwait(&chld, NULL, &ts);
    }
    /* What the test started and left running (a server, a child of its own) goes with it. */
    kill(-pid, SIGKILL);
    g_child_pgid = 0;

    tf_report_t rep = {0};
    ssize_t got = read(fds[0], &rep, sizeof rep);
    close(fds[0]);
    char how[128];
    describe_status(status, how, sizeof how);
    if (timed_out) {
        rep.verdict = TF_FAIL;
        snprintf(rep.msg, sizeof rep.msg, "timed out after %u s (killed; the run goes on)", g_timeout);
    } else if (got != (ssize_t) sizeof rep) {
        rep.verdict = TF_FAIL;
        snprintf(rep.msg, sizeof rep.msg, "the test's process %s before the test ended", how);
    } else if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        /* The assertions passed (or it skipped), then the process did not exit cleanly: a leak or
         * another sanitizer report at exit. A failed test's own message says more than this. */
        if (rep.verdict != TF_FAIL) {
            snprintf(rep.msg, sizeof rep.msg, "%s, then its process %s (a sanitizer, leak or valgrind "
                     "report above)", rep.verdict == TF_PASS ? "passed" : "skipped", how);
            rep.verdict = TF_FAIL;
        }
    }
    print_report(t, &rep);
    return rep.verdict;
}

int main(int argc, char **argv)
{
    char *pats[256], *excl[64];
    int npats = 0, nexcl = 0;
    bool list = false;

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    g_runner_pid = getpid();
    find_dirs(argv[0]);
    atexit(rm_tmp);
    atexit(stop_servers);
    /* libmongoc (the environment tests, the mongoc baseline) cannot be initialised again after
     * mongoc_cleanup: once per run, here; each test's process inherits it. */
    mongoc_init();
    atexit(mongoc_cleanup);
    if (getenv("MQC_TEST_VALGRIND") && strcmp(getenv("MQC_TEST_VALGRIND"), "0") != 0)
        g_timeout *= 10;    /* valgrind runs code 20-50 times slower */
#ifdef TF_LEAK_CHECKED_BUILD
    else
        g_timeout *= 3;     /* ASan: 2-3 times */
#endif
    if (getenv("MQC_TEST_TIMEOUT")) g_timeout = (unsigned) atoi(getenv("MQC_TEST_TIMEOUT"));
    if (getenv("MQC_TEST_NO_FORK") && strcmp(getenv("MQC_TEST_NO_FORK"), "0") != 0) g_fork = false;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v")) g_verbose = 1;
        else if (!strcmp(argv[i], "--list")) list = true;
        else if (!strcmp(argv[i], "--no-fork")) g_fork = false;
        else if (!strcmp(argv[i], "--spec-dir") && i + 1 < argc) g_spec_dir = argv[++i];
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) g_timeout = (unsigned) atoi(argv[++i]);
        else if (!strcmp(argv[i], "-x") && i + 1 < argc && nexcl < 64) excl[nexcl++] = argv[++i];
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(); return 0; }
        else if (argv[i][0] == '-') { fprintf(stderr, "mqc-test: unknown option %s\n", argv[i]); usage(); return 1; }
        else if (npats < 256) pats[npats++] = argv[i];
    }
    if (g_timeout == 0) g_timeout = 1;
    /* Tests registered at run time (TF_SUITE_INIT) are registered here, before any fork: every
     * test's process sees the same list. */
    for (size_t i = 0; i < g_ninits; i++) g_inits[i]();
    qsort(g_tests, g_ntests, sizeof *g_tests, cmp_tests);

    if (g_fork && !list) {
        void *m = mmap(NULL, sizeof *g_shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            perror("tf: mmap");
            return 2;
        }
        g_shared = m;
        /* Made before the first fork, so that every test's folders are under the one the runner
         * removes at exit. */
        make_tmp_root();
        sigset_t chld;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        sigprocmask(SIG_BLOCK, &chld, NULL);
        signal(SIGINT, on_stop_signal);
        signal(SIGTERM, on_stop_signal);
    } else {
        signal(SIGALRM, on_alarm);
    }

    size_t passed = 0, failed = 0, skipped = 0, selected = 0;
    char **failures = calloc(g_ntests + 1, sizeof *failures);
    for (size_t i = 0; i < g_ntests; i++) {
        tf_test_t *t = &g_tests[i];
        if (!matches(t->path, pats, npats, excl, nexcl)) continue;
        selected++;
        if (list) { puts(t->path); continue; }
        g_cur_index = i;
        int r = g_fork ? run_forked(t) : run_in_process(t);
        if (r == TF_PASS) passed++;
        else if (r == TF_FAIL) failures[failed++] = t->path;
        else skipped++;
    }
    if (list) {
        free(failures);
        return 0;
    }
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
