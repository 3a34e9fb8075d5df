/* The runner itself: each test runs in a process of its own, so a crash, a hang, a leak or a
 * failed assertion is reported by the test's name and the run goes on. The cases under
 * /tf/victim/ exist only when MQC_TEST_TF_VICTIMS=1 (they fail on purpose); /tf/runner/ runs this
 * binary on them and reads what it printed. */
#include "tf.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define TF_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TF_ASAN 1
#endif
#endif

static int g_state_left_by_earlier_test;

static void victim_pass(void) { g_state_left_by_earlier_test = 1; }
static void victim_fail(void) { ASSERT_EQ(1 + 1, 3); }
static void victim_skip(void) { SKIP("skipped on purpose"); }
static void victim_crash(void) { raise(SIGSEGV); }
static void victim_exit(void) { exit(0); }
static void victim_hang(void) { for (;;) pause(); }
/* The earlier victim set it in its own process: here it must still be 0. */
static void victim_isolated(void) { ASSERT_EQ(g_state_left_by_earlier_test, 0); }
static void *volatile g_leak_sink;
static void victim_leak(void)
{
    g_leak_sink = malloc(64);
    g_leak_sink = NULL;
}
/* Ends before the hang: the run must reach it, not stop at the hang. */
static void victim_zz_last(void) {}

TF_SUITE_INIT(tf_victims_init)
{
    const char *v = getenv("MQC_TEST_TF_VICTIMS");
    if (!v || strcmp(v, "1") != 0) return;
    tf_register("/tf/victim/a_pass", victim_pass, NULL, NULL);
    tf_register("/tf/victim/b_isolated", victim_isolated, NULL, NULL);
    tf_register("/tf/victim/crash", victim_crash, NULL, NULL);
    tf_register("/tf/victim/exit", victim_exit, NULL, NULL);
    tf_register("/tf/victim/fail", victim_fail, NULL, NULL);
    tf_register("/tf/victim/hang", victim_hang, NULL, NULL);
    tf_register("/tf/victim/leak", victim_leak, NULL, NULL);
    tf_register("/tf/victim/skip", victim_skip, NULL, NULL);
    tf_register("/tf/victim/zz_last", victim_zz_last, NULL, NULL);
}

/* Runs this binary with args; returns its output (static) and exit status. */
static const char *run_self(const char *args, int *status)
{
    static char out[65536];
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "MQC_TEST_TF_VICTIMS=1 ASAN_OPTIONS=detect_leaks=1 '%s/mqc-test' %s 2>&1",
             tf_build_dir(), args);
    FILE *p = popen(cmd, "r");
    ASSERT_NOT_NULL(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    *status = pclose(p);
    return out;
}

TEST("/tf/runner/isolates_each_test", tf_runner_isolates)
{
    if (getenv("MQC_TEST_TF_VICTIMS")) SKIP("inside the victims' run");
    int status;
    double t0 = tf_now();
    const char *out = run_self("--timeout 2 /tf/victim/", &status);
    tf_note("%.1f s:\n%s", tf_now() - t0, out);
    ASSERT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 1);
    ASSERT_STR_CONTAINS(out, "ok   /tf/victim/a_pass");
    ASSERT_STR_CONTAINS(out, "ok   /tf/victim/b_isolated");
    /* A plain build dies of the signal; under ASan its handler reports and exits 1. */
    ASSERT_STR_CONTAINS(out, "FAIL /tf/victim/crash\n     the test's process ");
    ASSERT_STR_CONTAINS(out, "FAIL /tf/victim/exit\n     the test's process exited 0 before the test ended");
    ASSERT_STR_CONTAINS(out, "FAIL /tf/victim/fail\n     ");
    ASSERT_STR_CONTAINS(out, "1 + 1 == 3: 2 vs 3");
    ASSERT_STR_CONTAINS(out, "FAIL /tf/victim/hang\n     timed out after 2 s");
    ASSERT_STR_CONTAINS(out, "skip /tf/victim/skip: skipped on purpose");
    ASSERT_STR_CONTAINS(out, "ok   /tf/victim/zz_last");
#ifdef TF_ASAN
    ASSERT_STR_CONTAINS(out, "FAIL /tf/victim/leak\n     passed, then its process exited");
    ASSERT_STR_CONTAINS(out, "3 passed, 5 failed, 1 skipped");
#else
    /* (no leak checker in this run: run_self does not run the binary under valgrind) */
    ASSERT_STR_CONTAINS(out, "ok   /tf/victim/leak");
    ASSERT_STR_CONTAINS(out, "4 passed, 4 failed, 1 skipped");
#endif
}

TEST("/tf/runner/no_fork_runs_in_process", tf_runner_no_fork)
{
    if (getenv("MQC_TEST_TF_VICTIMS")) SKIP("inside the victims' run");
    int status;
    /* In one process the state the first test left is seen by the second: what forking prevents. */
    const char *out = run_self("--no-fork /tf/victim/a_pass /tf/victim/b_isolated /tf/victim/fail "
                               "/tf/victim/skip /tf/victim/zz", &status);
    tf_note("%s", out);
    ASSERT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 1);
    ASSERT_STR_CONTAINS(out, "ok   /tf/victim/a_pass");
    ASSERT_STR_CONTAINS(out, "FAIL /tf/victim/b_isolated\n     ");
    ASSERT_STR_CONTAINS(out, "g_state_left_by_earlier_test == 0: 1 vs 0");
    ASSERT_STR_CONTAINS(out, "skip /tf/victim/skip");
    ASSERT_STR_CONTAINS(out, "2 passed, 2 failed, 1 skipped");
}
