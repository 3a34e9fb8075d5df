/* stubd: the scripted server (srv.h) as a standalone process in its canned mode (canned.h):
 * the benchmark's server (scripts/bench, bench-faults, bench-scale, check-instructions, soak)
 * and the server of the tests that kill and restart one (tests/chaos_stub.h).
 *
 * What it is for: the benchmark must measure the client, so the server side has to be as cheap
 * as possible and identical for every contender; and the reliability tests need a server that
 * misbehaves on purpose. It answers from canned documents, keeps no data, runs single-threaded
 * (no lock is taken) and can inject faults (hang-ups, garbage, oversize frames, wrong
 * responseTo, slow and error replies).
 *
 * Sessions are held to MongoDB's rules (session_rules.h): overlapping requests on one lsid are
 * counted, an older txnNumber is refused with TransactionTooOld, distinct lsids are counted.
 * --mongos and --replset NAME make the hello say what a mongos or a replica-set primary says, so
 * that a client treats it as one (retryable writes with txnNumber).
 *
 * The first line of stdout is the listening port (then stdout is flushed), so that scripts and
 * tests can start it with --port 0. Counters are printed as one JSON line on SIGUSR1 and on exit
 * (SIGTERM, SIGINT), to stderr or to --stats FILE (replaced atomically). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "canned.h"
#include "srv.h"

static struct {
    int port;
    const char *bind;
    const char *stats_path;
    bool seeded;
    srv_config_t cfg;
    canned_t mode;
} g_opt = {.port = 27017, .bind = "127.0.0.1", .cfg = {.fault_rate = 0.05}, .mode = {.docs = 100}};

static void print_stats(srv_t *s, const char *event)
{
    const srv_counts_t *c = srv_counts(s);
    const srules_t *ss = srv_sessions(s);
    const canned_t *m = &g_opt.mode;
    char line[2048];
    int n = snprintf(line, sizeof line,
                     "{\"event\":\"%s\",\"port\":%d,\"uptime_s\":%.3f,\"seed\":%" PRIu64
                     ",\"connections_accepted\":%" PRIu64 ",\"connections_open\":%" PRIu64
                     ",\"connections_max\":%" PRIu64 ",\"messages\":%" PRIu64 ",\"commands\":%" PRIu64
                     ",\"replies\":%" PRIu64 ",\"no_reply\":%" PRIu64 ",\"bad_messages\":%" PRIu64
                     ",\"cursors_opened\":%" PRIu64 ",\"cursors_open\":%" PRIu64
                     ",\"sessions\":{\"distinct\":%" PRIu64 ",\"overlaps\":%" PRIu64
                     ",\"transaction_too_old\":%" PRIu64 ",\"with_lsid\":%" PRIu64 ",\"without_lsid\":%" PRIu64
                     ",\"in_progress_max\":%" PRIu64 "},\"faults\":{",
                     event, g_opt.port, (double) (srv_now_ns() - c->start_ns) / 1e9, g_opt.cfg.seed, c->accepted,
                     c->open, c->max_open, c->messages, c->commands, c->replies, c->no_reply,
                     c->bad_messages + c->oversize_messages, m->cursors_opened, m->cursors_open, ss->distinct,
                     ss->overlaps, ss->too_old, ss->with_lsid, ss->without_lsid, ss->busy_peak);
    uint64_t total = 0;
    const srv_config_t *cfg = srv_config(s);
    for (int i = 0; i < SRV_F_COUNT; i++) {
        total += cfg->faults[i].injected;
        n += snprintf(line + n, sizeof line - (size_t) n, "\"%s\":%" PRIu64 ",", srv_fault_names[i],
                      cfg->faults[i].injected);
    }
    n += snprintf(line + n, sizeof line - (size_t) n, "\"total\":%" PRIu64 "}}\n", total);
    if (!g_opt.stats_path) {
        fputs(line, stderr);
        fflush(stderr);
        return;
    }
    /* Replaced whole (write, then rename) so a reader never sees half a line. */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", g_opt.stats_path);
    FILE *f = fopen(tmp, "w");
    if (!f || fputs(line, f) < 0 || fclose(f) != 0 || rename(tmp, g_opt.stats_path) != 0)
        fprintf(stderr, "stubd: writing %s: %s\n", g_opt.stats_path, strerror(errno));
}

static void usage(FILE *out)
{
    fputs("usage: stubd [options]\n"
          "  --port N            listen port (0: pick a free one); the first line of stdout is the port\n"
          "  --bind ADDR         listen address (default 127.0.0.1)\n"
          "  --docs N            documents in every collection's cursor (default 100)\n"
          "  --delay-us N        delay every reply but hello's by N microseconds\n"
          "  --stats FILE        write the JSON counters there instead of stderr\n"
          "  --seed N            seed of the fault dice (default: from the clock)\n"
          "faults, for commands other than hello; RATE is a probability (0.01) or @N (every Nth):\n"
          "  --fault-hangup-before[=RATE]   close instead of replying\n"
          "  --fault-hangup-mid[=RATE]      write half the reply, then close\n"
          "  --fault-garbage[=RATE]         send random bytes instead of the reply\n"
          "  --fault-oversize[=RATE]        a reply whose length prefix says 100 MB\n"
          "  --fault-wrong-response-to[=RATE]  a reply whose responseTo matches nothing\n"
          "  --fault-slow MS[:RATE]         reply MS milliseconds late\n"
          "  --fault-error CODE[:RATE]      reply {ok: 0, code: CODE, codeName}\n"
          "  --fault-rate P      total probability shared by the faults given no RATE (default 0.05)\n"
          "  --fault-hello       hello commands get faults too (not delays)\n"
          "role (default: a standalone with sessions):\n"
          "  --mongos            say msg: isdbgrid, as a mongos does\n"
          "  --replset NAME      say it is the primary of replica set NAME (hosts: itself)\n"
          "sessions are held to MongoDB's rules: overlaps on one lsid are counted, an older\n"
          "txnNumber is refused with TransactionTooOld (225); see \"sessions\" in the counters\n",
          out);
}

static bool parse_rate(srv_fault_t *f, const char *s)
{
    char *end;
    f->enabled = true;
    f->prob = -1;
    f->every = 0;
    if (!s || !*s) return true;
    if (*s == '@') {
        unsigned long long n = strtoull(s + 1, &end, 10);
        if (*end || n == 0) return false;
        f->every = n;
        return true;
    }
    double p = strtod(s, &end);
    if (*end || p < 0 || p > 1) return false;
    f->prob = p;
    return true;
}

static bool parse_options(int argc, char **argv)
{
    enum { O_PORT = 256, O_BIND, O_DOCS, O_DELAY, O_STATS, O_SEED, O_RATE, O_SLOW, O_ERROR, O_HELLO, O_MONGOS, O_REPLSET,
           O_FAULT0 };
    static const struct option opts[] = {
        { "port", required_argument, NULL, O_PORT },
        { "bind", required_argument, NULL, O_BIND },
        { "docs", required_argument, NULL, O_DOCS },
        { "delay-us", required_argument, NULL, O_DELAY },
        { "stats", required_argument, NULL, O_STATS },
        { "seed", required_argument, NULL, O_SEED },
        { "fault-rate", required_argument, NULL, O_RATE },
        { "fault-slow", required_argument, NULL, O_SLOW },
        { "fault-error", required_argument, NULL, O_ERROR },
        { "fault-hello", no_argument, NULL, O_HELLO },
        { "mongos", no_argument, NULL, O_MONGOS },
        { "replset", required_argument, NULL, O_REPLSET },
        { "fault-hangup-before", optional_argument, NULL, O_FAULT0 + SRV_F_HANGUP_BEFORE },
        { "fault-hangup-mid", optional_argument, NULL, O_FAULT0 + SRV_F_HANGUP_MID },
        { "fault-garbage", optional_argument, NULL, O_FAULT0 + SRV_F_GARBAGE },
        { "fault-oversize", optional_argument, NULL, O_FAULT0 + SRV_F_OVERSIZE },
        { "fault-wrong-response-to", optional_argument, NULL, O_FAULT0 + SRV_F_WRONG_RESPONSE_TO },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int o;
    char *end;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case O_PORT:
            g_opt.port = (int) strtol(optarg, &end, 10);
            if (*end || g_opt.port < 0 || g_opt.port > 65535) goto bad;
            break;
        case O_BIND: g_opt.bind = optarg; break;
        case O_DOCS: g_opt.mode.docs = strtoll(optarg, &end, 10); if (*end || g_opt.mode.docs < 0) goto bad; break;
        case O_DELAY: g_opt.cfg.delay_ns = strtoull(optarg, &end, 10) * 1000u; if (*end) goto bad; break;
        case O_STATS: g_opt.stats_path = optarg; break;
        case O_HELLO: g_opt.cfg.fault_hello = true; break;
        case O_MONGOS: g_opt.mode.mongos = true; break;
        case O_REPLSET: g_opt.mode.set_name = optarg; break;
        case O_SEED: g_opt.cfg.seed = strtoull(optarg, &end, 0); g_opt.seeded = true; if (*end) goto bad; break;
        case O_RATE:
            g_opt.cfg.fault_rate = strtod(optarg, &end);
            if (*end || g_opt.cfg.fault_rate < 0 || g_opt.cfg.fault_rate > 1) goto bad;
            break;
        case O_SLOW:
        case O_ERROR: {
            long long v = strtoll(optarg, &end, 10);
            if (end == optarg || (*end && *end != ':')) goto bad;
            srv_fault_t *f = &g_opt.cfg.faults[o == O_SLOW ? SRV_F_SLOW : SRV_F_ERROR];
            if (!parse_rate(f, *end ? end + 1 : NULL)) goto bad;
            if (o == O_SLOW) g_opt.cfg.slow_ns = (uint64_t) (v < 0 ? 0 : v) * 1000000u;
            else g_opt.cfg.error_code = (int32_t) v;
            break;
        }
        case 'h': usage(stdout); exit(0);
        default:
            if (o >= O_FAULT0 && o < O_FAULT0 + SRV_F_COUNT) {
                if (!parse_rate(&g_opt.cfg.faults[o - O_FAULT0], optarg)) goto bad;
                break;
            }
            usage(stderr);
            return false;
        }
    }
    if (optind < argc) goto bad;
    if (g_opt.mode.mongos && g_opt.mode.set_name) {
        fprintf(stderr, "stubd: --mongos and --replset exclude each other\n");
        return false;
    }
    if (!g_opt.seeded) g_opt.cfg.seed = srv_now_ns() ^ ((uint64_t) getpid() << 32);
    return true;
bad:
    fprintf(stderr, "stubd: bad option or value: %s\n", argv[optind > 1 ? optind - 1 : 1]);
    usage(stderr);
    return false;
}

/* 10,000+ connections need more descriptors than the usual soft limit of 1024. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void on_signal(srv_t *s, void *ud)
{
    int sfd = *(int *) ud;
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == (ssize_t) sizeof si) {
        if (si.ssi_signo == SIGUSR1) {
            print_stats(s, "stats");
        } else {
            print_stats(s, "exit");
            srv_quit(s);
            return;
        }
    }
}

int main(int argc, char **argv)
{
    if (!parse_options(argc, argv)) return 2;
    raise_fd_limit();
    srv_t *s = srv_new(&g_opt.cfg, canned_command, &g_opt.mode);
    if (srv_listen(s, g_opt.bind, g_opt.port) < 0) {
        fprintf(stderr, "stubd: %s:%d: %s\n", g_opt.bind, g_opt.port, strerror(errno));
        return 1;
    }
    g_opt.port = srv_port(s, 0);
    snprintf(g_opt.mode.me, sizeof g_opt.mode.me, "%s:%d", g_opt.bind, g_opt.port);

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGUSR1);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        perror("stubd");
        return 1;
    }
    printf("%d\n", g_opt.port);
    fflush(stdout);
    int rc = srv_run(s, sfd, on_signal, &sfd);
    srv_free(s);
    canned_free(&g_opt.mode);
    close(sfd);
    return rc;
}
