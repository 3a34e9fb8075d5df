/* chaos_stub: the scripted server's standalone process (build/tests/stubd, tests/server/stubd.c)
 * for the tests that need a process (test_chaos.c, test_stubd.c, test_loop.c): start on a free or given port, read its counters, kill -9 and restart, and the
 * process's resident memory. Header-only (static inline) so the test files share it. */
#ifndef MQC_CHAOS_STUB_H
#define MQC_CHAOS_STUB_H

#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tf.h"

typedef struct {
    pid_t pid;
    int port;
    char stats_path[PATH_MAX];
    char stats[8192]; /* the counters' JSON line, after chaos_stub_stop */
} chaos_stub_t;

/* Starts build/tests/stubd with extra options (NULL-terminated) on port (0: a free one, read
 * from its first line of output). */
static inline void chaos_stub_start(chaos_stub_t *s, int port, const char *const *extra)
{
    char exe[PATH_MAX], portbuf[16];
    struct stat st;
    snprintf(exe, sizeof exe, "%s/tests/stubd", tf_build_dir());
    ASSERT_MSG(stat(exe, &st) == 0, "%s is missing (make builds it with the tests)", exe);
    static const char *dir;
    static unsigned runs;
    if (!dir) dir = tf_tmpdir();
    snprintf(s->stats_path, sizeof s->stats_path, "%s/chaos-stubd-%u.json", dir, ++runs);
    snprintf(portbuf, sizeof portbuf, "%d", port);
    const char *argv[48] = {exe, "--port", portbuf, "--stats", s->stats_path};
    int argc = 5;
    for (; extra && *extra && argc < 47; extra++) argv[argc++] = *extra;
    argv[argc] = NULL;
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    s->pid = fork();
    ASSERT_GE(s->pid, 0);
    if (s->pid == 0) {
        /* dies with the test binary (a failed assertion leaves no stop), and keeps its stderr
         * off the binary's (a pipe reader would wait for it) */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, 2);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(exe, (char *const *) argv);
        _exit(127);
    }
    close(fds[1]);
    char line[32] = {0};
    size_t got = 0;
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    while (got < sizeof line - 1 && !memchr(line, '\n', got) && poll(&p, 1, 5000) == 1) {
        ssize_t n = read(fds[0], line + got, sizeof line - 1 - got);
        if (n <= 0) break;
        got += (size_t) n;
    }
    close(fds[0]);
    s->port = atoi(line);
    if (s->port <= 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        FAIL("stubd printed no port (got '%s')", line);
    }
}

/* SIGTERM, wait, and keep the counters it writes on the way out. */
static inline void chaos_stub_stop(chaos_stub_t *s)
{
    int status = 0;
    kill(s->pid, SIGTERM);
    ASSERT_EQ(waitpid(s->pid, &status, 0), s->pid);
    ASSERT_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "stubd exit status %d", status);
    FILE *f = fopen(s->stats_path, "r");
    ASSERT_NOT_NULL(f);
    size_t n = fread(s->stats, 1, sizeof s->stats - 1, f);
    fclose(f);
    s->stats[n] = '\0';
}

/* kill -9: no counters, the sockets just die (a crashed server). */
static inline void chaos_stub_kill9(chaos_stub_t *s)
{
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
}

static inline long long chaos_stub_stat(const chaos_stub_t *s, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(s->stats, pat);
    ASSERT_MSG(p != NULL, "no %s in stats %s", key, s->stats);
    return strtoll(p + strlen(pat), NULL, 10);
}

/* ASan keeps freed memory in quarantine (256 MB by default) and shadows every byte: RSS says
 * nothing about leaks there. Under ASan the RSS bounds are not asserted; LeakSanitizer (at exit)
 * checks that nothing leaked, which is stronger. The plain build asserts the RSS bounds. */
#if defined(__SANITIZE_ADDRESS__)
#define CHAOS_RSS_CHECKED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHAOS_RSS_CHECKED 0
#endif
#endif
#ifndef CHAOS_RSS_CHECKED
#define CHAOS_RSS_CHECKED 1
#endif

/* Resident set size of this process in bytes (/proc/self/statm, second field, in pages). */
static inline long long chaos_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long long size = 0, rss = 0;
    if (!f) return -1;
    if (fscanf(f, "%lld %lld", &size, &rss) != 2) rss = -1;
    fclose(f);
    return rss < 0 ? -1 : rss * sysconf(_SC_PAGESIZE);
}

static inline double chaos_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif
