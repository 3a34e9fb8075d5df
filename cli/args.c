/* args: the command line (see mqload_usage and docs/mqload/mqload.md). */
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keydist.h"
#include "mqc.h"

void mqload_config_init(mqload_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    const char *env = getenv("MQLOAD_URI");
    cfg->uri = strdup(env && *env ? env : MQLOAD_DEFAULT_URI);
    cfg->db = strdup("mqload");
    cfg->collection = strdup("bench");
    cfg->duration_s = 10;
    cfg->warmup_s = 1;
    cfg->concurrency = 16;
    cfg->threads = 1;
    cfg->keys = 10000;
    cfg->key_dist = -1;
    cfg->seed_batch = 1000;
    cfg->progress = -1;
    cfg->grace_s = 5;
    cfg->workers = 1;
    cfg->start_tolerance_s = 1;
    cfg->max_error_rate = MQLOAD_DEFAULT_MAX_ERROR_RATE;
    mqload_xopts_init(&cfg->x);
}

void mqload_config_free(mqload_config_t *cfg)
{
    char **strs[] = {&cfg->uri, &cfg->db, &cfg->collection, &cfg->op, &cfg->mix, &cfg->workload_file,
                     &cfg->preset, &cfg->json_out, &cfg->html_out, &cfg->threshold, &cfg->server_label};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
    mqload_xopts_free(&cfg->x);
}

void mqload_usage(FILE *out)
{
    fputs("usage: mqload [options]                    run a workload, print a report\n"
          "       mqload merge FILE.json... [--json F] [--html F] [--threshold EXPR] [--hlog F] [--csv F]\n"
          "                    [--ycsb-summary F] [--percentiles LIST]   merge workers' results\n"
          "\n"
          "target\n"
          "  --uri URI                 server (default " MQLOAD_DEFAULT_URI "; env MQLOAD_URI)\n"
          "  --db NAME                 database (default mqload)\n"
          "  --collection NAME         collection (default bench)\n"
          "  --engine mqc|mongoc       mqc event loops, or libmongoc's pool with a thread per operation\n"
          "  --server-label TEXT       what the server is (product, storage, settings), shown in the\n"
          "                            reports so that its speed is not taken for mqload's\n"
          "load\n"
          "  -d, --duration DUR        measured time: 10, 10s, 500ms, 2m (default 10s)\n"
          "  -n, --requests N          measure N operations instead of a duration\n"
          "      --warmup DUR          run before measuring, not counted (default 1s)\n"
          "  -c, --concurrency N       operations in flight over all threads (default 16); with\n"
          "                            --rate, the most allowed in flight\n"
          "  -R, --rate OPS            fixed total arrival rate (open loop); latency counts from the\n"
          "                            intended send time (no coordinated omission), waiting for a\n"
          "                            free slot included; the report counts every scheduled\n"
          "                            operation as sent or unsent, the late ones and the backlog\n"
          "      --stages DUR:RATE,... arrival-rate stages, each ramping linearly from the previous\n"
          "                            target (the first from --rate, default 0): 10s:1k,1m:5k,10s:0;\n"
          "                            open loop, each stage reported on its own\n"
          "      --concurrency-stages DUR:N,...   the same for operations in flight (closed loop;\n"
          "                            the first ramps from -c, default 0): 10s:16,1m:64,10s:0\n"
          "  -t, --threads N           event-loop threads, each with its own client (default 1)\n"
          "  -C, --connections N       maxPoolSize per thread (default: enough for the concurrency)\n"
          "      --timeout DUR         per-operation timeout (timeoutMS; default none)\n"
          "      --grace DUR           at the end or on Ctrl-C, wait this long for operations in\n"
          "                            flight before cancelling them (default 5s)\n"
          "workload\n"
          "  --op NAME                 find|insert|update|delete|aggregate|count|command|scan (default find)\n"
          "  --mix OP=W,...            weighted mix, e.g. find=90,update=10\n"
          "  --workload FILE           Extended JSON workload: operations, weights, templates\n"
          "  --preset NAME             ycsb-a .. ycsb-f (YCSB core workloads)\n"
          "  --seed N                  drop the collection and insert N documents (_id 0..N-1) first\n"
          "  --seed-batch N            documents per insert_many while seeding (default 1000)\n"
          "  --keys N                  key space for {\"$key\": {}} (default: --seed N, else 10000)\n"
          "  --key-dist NAME           key distribution: uniform (default), zipfian, latest, hotspot,\n"
          "                            exponential (YCSB's generators)\n"
          "  --seed-rng N              seed of the random generators (default: from the clock)\n"
          "distributed (docs/mqload/distributed.md)\n"
          "  --worker-index I --workers N   this process is worker I of N: its share of rate,\n"
          "                            concurrency, requests and keys (defaults: env\n"
          "                            JOB_COMPLETION_INDEX and MQLOAD_WORKERS)\n"
          "  --start-at TIME           start the measured window at this wall-clock time: RFC 3339\n"
          "                            (2030-01-02T03:04:05Z) or Unix seconds; warmup runs before it\n"
          "      --start-tolerance DUR a start later than --start-at + DUR is recorded as late (1s)\n"
          "output\n"
          "  --json FILE               machine-readable result (\"-\" for stdout)\n"
          "      --json-framed         also the result on stdout between MQLOAD-RESULT-BEGIN/END lines\n"
          "                            (base64), for pod logs; `mqload merge` reads such logs\n"
          "  --html FILE               self-contained HTML report with charts\n"
          "  --threshold EXPR          e.g. \"p99<5ms,errors<0.1%,ops>10000\": exit 2 when violated;\n"
          "                            checked against the workload's operations before the run\n"
          "      --max-error-rate PCT  more failed operations than this exits 4 (default 5%; 100 = off)\n"
          "  -q, --quiet               no progress line and no text report\n"
          "      --progress            a progress line every second on stderr (default on a terminal)\n"
          "      --no-progress\n"
          , out);
    mqload_xopts_usage(out);
    fputs("general\n"
          "  -h, --help                this text\n"
          "  -V, --version             the version\n"
          "\n"
          "exit status: 0 success, 1 bad usage or setup failure (before any traffic) or a result\n"
          "that could not be written, 2 threshold violated, 3 the target rate was not reached\n"
          "(fewer than 99% of the scheduled operations sent), 4 more errors than --max-error-rate,\n"
          "130 interrupted (the report of what was measured is still printed). When several\n"
          "apply, the first in the order 1, 4, 3, 2, 130 is returned.\n",
          out);
}

static mqload_args_rc_t fail(char *err, size_t esz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static mqload_args_rc_t fail(char *err, size_t esz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && esz) vsnprintf(err, esz, fmt, ap);
    va_end(ap);
    return MQLOAD_ARGS_ERROR;
}

/* "2030-01-02T03:04:05[.frac](Z|+hh:mm|-hh:mm)" (RFC 3339, 'T' or ' ', any case). */
static bool parse_rfc3339(const char *s, double *out)
{
    int Y, M, D, h, m, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &Y, &M, &D, &n) != 3 || n != 10) return false;
    s += n;
    if (*s != 'T' && *s != 't' && *s != ' ') return false;
    s++;
    if (sscanf(s, "%2d:%2d:%2d%n", &h, &m, &sec, &n) != 3 || n != 8) return false;
    s += n;
    double frac = 0;
    if (*s == '.') {
        double scale = 0.1;
        if (!(s[1] >= '0' && s[1] <= '9')) return false;
        for (s++; *s >= '0' && *s <= '9'; s++, scale /= 10) frac += (*s - '0') * scale;
    }
    long off = 0;
    if (*s == 'Z' || *s == 'z') s++;
    else if (*s == '+' || *s == '-') {
        int oh, om;
        if (sscanf(s + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5 || oh > 23 || om > 59) return false;
        off = (*s == '-' ? -1 : 1) * (oh * 3600L + om * 60L);
        s += 6;
    } else return false;
    if (*s || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return false;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = Y - 1900, tm.tm_mon = M - 1, tm.tm_mday = D;
    tm.tm_hour = h, tm.tm_min = m, tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t) -1) return false;
    /* A local time offset +02:00 is two hours ahead of UTC: subtract it. */
    *out = (double) t - (double) off + frac;
    return true;
}

bool mqload_parse_start_at(const char *s, double *out)
{
    if (!s || !*s) return false;
    if (strchr(s, '-') || strchr(s, ':')) return parse_rfc3339(s, out);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    /* Digits and one optional fraction only: no exponent, no hex, no "inf". */
    if (errno || *end || !isfinite(v) || v <= 0 || strspn(s, "0123456789.") != strlen(s)) return false;
    *out = v;
    return true;
}

bool mqload_parse_stages(const char *s, bool integers, mqload_stage_arg_t *out, size_t max, size_t *n, char *err,
                         size_t esz)
{
    size_t k = 0;
    const char *p = s;
    if (!*s) return snprintf(err, esz, "expected DUR:TARGET,... like 10s:1k,1m:5k,10s:0"), false;
    while (*p) {
        size_t len = strcspn(p, ",");
        char one[64], *colon;
        if (len == 0 || len >= sizeof one)
            return snprintf(err, esz, "stage %zu: expected DUR:TARGET like 30s:%s", k + 1, integers ? "64" : "5k"), false;
        memcpy(one, p, len);
        one[len] = 0;
        if (!(colon = strchr(one, ':')))
            return snprintf(err, esz, "stage %zu '%s': expected DUR:TARGET like 30s:%s", k + 1, one, integers ? "64" : "5k"), false;
        *colon = 0;
        double d, t;
        if (!mqload_parse_duration(one, &d) || d <= 0)
            return snprintf(err, esz, "stage %zu: '%s' is not a positive duration like 10s or 2m", k + 1, one), false;
        if (!mqload_parse_number(colon + 1, &t) || (integers && (t != floor(t) || t > 1000000)))
            return snprintf(err, esz, "stage %zu: '%s' is not %s", k + 1, colon + 1,
                            integers ? "a count of operations in flight (0..1000000)" : "a rate like 500, 5k or 0"), false;
        if (k == max) return snprintf(err, esz, "at most %zu stages", max), false;
        out[k].dur_s = d, out[k].target = t;
        k++;
        p += len;
        if (*p == ',') {
            p++;
            if (!*p) return snprintf(err, esz, "a stage is missing after the last ','"), false;
        }
    }
    *n = k;
    return true;
}

static bool parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    double v;
    if (!mqload_parse_number(s, &v) || v != floor(v) || v > (double) max) return false;
    *out = (uint64_t) v;
    return true;
}

static uint64_t share_of(uint64_t total, uint64_t n, uint64_t i)
{
    return n ? total / n + (i < total % n ? 1 : 0) : total;
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = strdup(v);
}

typedef enum {
    O_URI, O_DB, O_COLL, O_DURATION, O_REQUESTS, O_WARMUP, O_CONC, O_RATE, O_THREADS, O_CONNS, O_OP,
    O_MIX, O_WORKLOAD, O_PRESET, O_SEED, O_SEED_BATCH, O_KEYS, O_KEYDIST, O_SEED_RNG, O_JSON, O_HTML,
    O_THRESHOLD, O_ENGINE, O_QUIET, O_PROGRESS, O_NO_PROGRESS, O_TIMEOUT, O_GRACE, O_WORKER_INDEX,
    O_WORKERS, O_START_AT, O_START_TOL, O_JSON_FRAMED, O_HELP, O_VERSION, O_STAGES, O_CSTAGES, O_MAX_ERR, O_SERVER_LABEL,
} opt_id_t;

typedef struct {
    const char *name;
    char short_name;
    bool has_arg;
    opt_id_t id;
} opt_t;

static const opt_t OPTS[] = {
    {"uri", 0, true, O_URI},          {"db", 0, true, O_DB},
    {"collection", 0, true, O_COLL},  {"duration", 'd', true, O_DURATION},
    {"requests", 'n', true, O_REQUESTS}, {"warmup", 0, true, O_WARMUP},
    {"concurrency", 'c', true, O_CONC}, {"rate", 'R', true, O_RATE},
    {"threads", 't', true, O_THREADS}, {"connections", 'C', true, O_CONNS},
    {"op", 0, true, O_OP},            {"mix", 0, true, O_MIX},
    {"workload", 0, true, O_WORKLOAD}, {"preset", 0, true, O_PRESET},
    {"seed", 0, true, O_SEED},        {"seed-batch", 0, true, O_SEED_BATCH},
    {"keys", 0, true, O_KEYS},        {"key-dist", 0, true, O_KEYDIST},
    {"seed-rng", 0, true, O_SEED_RNG}, {"json", 0, true, O_JSON},
    {"html", 0, true, O_HTML},        {"threshold", 0, true, O_THRESHOLD},
    {"engine", 0, true, O_ENGINE},    {"quiet", 'q', false, O_QUIET},
    {"progress", 0, false, O_PROGRESS}, {"no-progress", 0, false, O_NO_PROGRESS},
    {"timeout", 0, true, O_TIMEOUT},  {"grace", 0, true, O_GRACE},
    {"worker-index", 0, true, O_WORKER_INDEX}, {"workers", 0, true, O_WORKERS},
    {"start-at", 0, true, O_START_AT}, {"start-tolerance", 0, true, O_START_TOL},
    {"json-framed", 0, false, O_JSON_FRAMED}, {"stages", 0, true, O_STAGES},
    {"concurrency-stages", 0, true, O_CSTAGES}, {"max-error-rate", 0, true, O_MAX_ERR},
    {"server-label", 0, true, O_SERVER_LABEL},
    {"help", 'h', false, O_HELP},     {"version", 'V', false, O_VERSION},
};

static mqload_args_rc_t apply(mqload_config_t *cfg, const opt_t *o, const char *v, FILE *out, char *err, size_t esz)
{
    uint64_t u;
    double d;
    switch (o->id) {
    case O_URI:
        if (strncmp(v, "mongodb://", 10) && strncmp(v, "mongodb+srv://", 14))
            return fail(err, esz, "--uri: expected a mongodb:// or mongodb+srv:// connection string");
        set_str(&cfg->uri, v);
        break;
    case O_DB:
        if (!*v || strpbrk(v, "/\\. \"$")) return fail(err, esz, "--db: invalid database name '%s'", v);
        set_str(&cfg->db, v), cfg->db_set = true;
        break;
    case O_COLL:
        if (!*v || strchr(v, '$')) return fail(err, esz, "--collection: invalid collection name '%s'", v);
        set_str(&cfg->collection, v), cfg->collection_set = true;
        break;
    case O_DURATION:
        if (!mqload_parse_duration(v, &d) || d <= 0)
            return fail(err, esz, "--duration: expected a positive duration like 10, 10s, 500ms, 2m; got '%s'", v);
        cfg->duration_s = d, cfg->duration_set = true;
        break;
    case O_REQUESTS:
        if (!parse_uint(v, UINT64_MAX / 2, &u) || !u) return fail(err, esz, "--requests: expected a positive integer; got '%s'", v);
        cfg->requests = u;
        break;
    case O_WARMUP:
        if (!mqload_parse_duration(v, &d)) return fail(err, esz, "--warmup: expected a duration like 1s or 0; got '%s'", v);
        cfg->warmup_s = d, cfg->warmup_set = true;
        break;
    case O_CONC:
        if (!parse_uint(v, 1000000, &u) || !u) return fail(err, esz, "--concurrency: expected an integer in 1..1000000; got '%s'", v);
        cfg->concurrency = (uint32_t) u, cfg->concurrency_set = true;
        break;
    case O_RATE:
        if (!mqload_parse_number(v, &d) || d <= 0) return fail(err, esz, "--rate: expected a positive rate (ops/s) like 5000 or 5k; got '%s'", v);
        cfg->rate = d;
        break;
    case O_THREADS:
        if (!parse_uint(v, 1024, &u) || !u) return fail(err, esz, "--threads: expected an integer in 1..1024; got '%s'", v);
        cfg->threads = (uint32_t) u;
        break;
    case O_CONNS:
        if (!parse_uint(v, 100000, &u) || !u) return fail(err, esz, "--connections: expected an integer in 1..100000; got '%s'", v);
        cfg->connections = (uint32_t) u;
        break;
    case O_OP: set_str(&cfg->op, v); break;
    case O_MIX: set_str(&cfg->mix, v); break;
    case O_WORKLOAD: set_str(&cfg->workload_file, v); break;
    case O_PRESET: set_str(&cfg->preset, v); break;
    case O_SEED:
        if (!parse_uint(v, (uint64_t) 1 << 53, &u)) return fail(err, esz, "--seed: expected a document count; got '%s'", v);
        cfg->seed_docs = u, cfg->seed_set = true;
        break;
    case O_SEED_BATCH:
        if (!parse_uint(v, 100000, &u) || !u) return fail(err, esz, "--seed-batch: expected an integer in 1..100000; got '%s'", v);
        cfg->seed_batch = (uint32_t) u;
        break;
    case O_KEYS:
        if (!parse_uint(v, (uint64_t) 1 << 53, &u) || !u) return fail(err, esz, "--keys: expected a positive integer; got '%s'", v);
        cfg->keys = u, cfg->keys_set = true;
        break;
    case O_KEYDIST: {
        int k = mqload_keydist_parse(v);
        if (k < 0) return fail(err, esz, "--key-dist: expected " MQLOAD_KEYDIST_NAMES "; got '%s'", v);
        cfg->key_dist = k;
        break;
    }
    case O_SEED_RNG: {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 0);
        if (errno || !*v || *end || *v == '-') return fail(err, esz, "--seed-rng: expected an unsigned integer; got '%s'", v);
        cfg->rng_seed = s, cfg->rng_seed_set = true;
        break;
    }
    case O_JSON: set_str(&cfg->json_out, v); break;
    case O_HTML: set_str(&cfg->html_out, v); break;
    case O_SERVER_LABEL: set_str(&cfg->server_label, v); break;
    case O_THRESHOLD: set_str(&cfg->threshold, v); break;
    case O_ENGINE:
        if (!strcmp(v, "mqc")) cfg->engine = MQLOAD_ENGINE_MQC;
        else if (!strcmp(v, "mongoc")) cfg->engine = MQLOAD_ENGINE_MONGOC;
        else return fail(err, esz, "--engine: expected mqc or mongoc; got '%s'", v);
        break;
    case O_QUIET: cfg->quiet = true; break;
    case O_PROGRESS: cfg->progress = 1; break;
    case O_NO_PROGRESS: cfg->progress = 0; break;
    case O_TIMEOUT:
        if (!mqload_parse_duration(v, &d)) return fail(err, esz, "--timeout: expected a duration like 500ms; got '%s'", v);
        cfg->timeout_s = d;
        break;
    case O_GRACE:
        if (!mqload_parse_duration(v, &d)) return fail(err, esz, "--grace: expected a duration like 5s; got '%s'", v);
        cfg->grace_s = d;
        break;
    case O_WORKER_INDEX:
        if (!parse_uint(v, 100000, &u)) return fail(err, esz, "--worker-index: expected an integer; got '%s'", v);
        cfg->worker_index = (uint32_t) u;
        break;
    case O_WORKERS:
        if (!parse_uint(v, 100000, &u) || !u) return fail(err, esz, "--workers: expected a positive integer; got '%s'", v);
        cfg->workers = (uint32_t) u, cfg->workers_set = true;
        break;
    case O_START_AT:
        if (!mqload_parse_start_at(v, &d))
            return fail(err, esz, "--start-at: expected RFC 3339 (2030-01-02T03:04:05Z) or Unix seconds; got '%s'", v);
        cfg->start_at = d;
        break;
    case O_START_TOL:
        if (!mqload_parse_duration(v, &d)) return fail(err, esz, "--start-tolerance: expected a duration like 1s; got '%s'", v);
        cfg->start_tolerance_s = d;
        break;
    case O_JSON_FRAMED: cfg->json_framed = true; break;
    case O_STAGES:
    case O_CSTAGES: {
        mqload_stages_kind_t k = o->id == O_STAGES ? MQLOAD_STAGES_RATE : MQLOAD_STAGES_CONCURRENCY;
        char e2[200];
        if (cfg->stages_kind && cfg->stages_kind != k) return fail(err, esz, "--stages and --concurrency-stages: give one of them");
        if (!mqload_parse_stages(v, k == MQLOAD_STAGES_CONCURRENCY, cfg->stages, MQLOAD_MAX_STAGE_ARGS, &cfg->n_stages, e2,
                                 sizeof e2))
            return fail(err, esz, "--%s: %s", o->name, e2);
        cfg->stages_kind = k;
        break;
    }
    case O_MAX_ERR: {
        char *end;
        errno = 0;
        d = strtod(v, &end);
        if (*end == '%') end++;
        if (errno || end == v || *end || !isfinite(d) || d < 0 || d > 100)
            return fail(err, esz, "--max-error-rate: expected a percentage in 0..100 like 5 or 0.5%%; got '%s'", v);
        cfg->max_error_rate = d / 100;
        break;
    }
    case O_HELP:
        mqload_usage(out);
        return MQLOAD_ARGS_EXIT;
    case O_VERSION:
        fprintf(out, "mqload %s (mqc %s)\n", MQC_VERSION, mqc_version());
        return MQLOAD_ARGS_EXIT;
    }
    return MQLOAD_ARGS_RUN;
}

static mqload_args_rc_t check(mqload_config_t *cfg, char *err, size_t esz)
{
    if (mqload_xopts_check(cfg, err, esz) < 0) return MQLOAD_ARGS_ERROR;
    int sources = !!cfg->op + !!cfg->mix + !!cfg->workload_file + !!cfg->preset;
    if (sources > 1) return fail(err, esz, "--op, --mix, --workload and --preset choose the workload: give one of them");
    if (cfg->worker_index >= cfg->workers)
        return fail(err, esz, "--worker-index %u (or JOB_COMPLETION_INDEX) is not below --workers %u (or MQLOAD_WORKERS)",
                    cfg->worker_index, cfg->workers);
    if (cfg->rate > 0 && cfg->requests == 0 && cfg->duration_s <= 0)
        return fail(err, esz, "--rate needs a duration or a request count");
    if (cfg->stages_kind) {
        /* The stages are the measured window: no --duration or --requests besides them. */
        if (cfg->requests || cfg->duration_set)
            return fail(err, esz, "--stages and --concurrency-stages set the duration (their sum): no --duration or --requests with them");
        double total = 0;
        for (size_t i = 0; i < cfg->n_stages; i++) total += cfg->stages[i].dur_s;
        cfg->duration_s = total;
        if (cfg->stages_kind == MQLOAD_STAGES_CONCURRENCY && cfg->rate > 0)
            return fail(err, esz, "--concurrency-stages ramp a closed loop: no --rate with them (use --stages for rates)");
        /* The warmup runs at the starting value; with none given (0) it would idle. */
        if (!cfg->warmup_set) cfg->warmup_s = 0;
    }
    cfg->open_loop = cfg->rate > 0 || cfg->stages_kind == MQLOAD_STAGES_RATE;
    if (cfg->seed_set && !cfg->keys_set && cfg->seed_docs > 0) cfg->keys = cfg->seed_docs;
    /* This worker's share; the remainders go to the first workers, so the shares add up to the totals. */
    cfg->concurrency_total = cfg->concurrency;
    cfg->requests_total = cfg->requests;
    cfg->concurrency = (uint32_t) share_of(cfg->concurrency, cfg->workers, cfg->worker_index);
    if (cfg->concurrency == 0)
        return fail(err, esz, "--concurrency %u is below --workers %u: every worker needs an operation in flight",
                    cfg->concurrency_total, cfg->workers);
    if (cfg->requests) {
        cfg->requests = share_of(cfg->requests, cfg->workers, cfg->worker_index);
        if (cfg->requests == 0)
            return fail(err, esz, "--requests %llu is below --workers %u", (unsigned long long) cfg->requests_total, cfg->workers);
    }
    if (cfg->threads > cfg->concurrency && !cfg->open_loop && cfg->stages_kind != MQLOAD_STAGES_CONCURRENCY)
        return fail(err, esz, "--threads %u exceeds --concurrency %u: every thread needs an operation in flight",
                    cfg->threads, cfg->concurrency);
    if (cfg->json_out && cfg->html_out && !strcmp(cfg->json_out, cfg->html_out) && strcmp(cfg->json_out, "-"))
        return fail(err, esz, "--json and --html name the same file");
    return MQLOAD_ARGS_RUN;
}

mqload_args_rc_t mqload_args_parse(mqload_config_t *cfg, int argc, char **argv, FILE *out, char *err, size_t errsize)
{
    if (err && errsize) err[0] = 0;
    const char *jci = getenv("JOB_COMPLETION_INDEX");
    uint64_t u;
    if (jci && *jci) {
        if (!parse_uint(jci, 100000, &u)) return fail(err, errsize, "JOB_COMPLETION_INDEX: expected an integer; got '%s'", jci);
        cfg->worker_index = (uint32_t) u;
    }
    const char *envw = getenv("MQLOAD_WORKERS");
    if (envw && *envw) {
        if (!parse_uint(envw, 100000, &u) || !u) return fail(err, errsize, "MQLOAD_WORKERS: expected a positive integer; got '%s'", envw);
        cfg->workers = (uint32_t) u, cfg->workers_set = true;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        const opt_t *o = NULL;
        char shortbuf[3] = "-?";
        if (a[0] == '-' && a[1] == '-' && a[2]) {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t nl = eq ? (size_t) (eq - name) : strlen(name);
            for (size_t k = 0; k < sizeof OPTS / sizeof OPTS[0]; k++)
                if (strlen(OPTS[k].name) == nl && !strncmp(OPTS[k].name, name, nl)) o = &OPTS[k];
            if (!o) {
                int x = mqload_xopts_parse(cfg, argc, argv, &i, err, errsize);
                if (x < 0) return MQLOAD_ARGS_ERROR;
                if (x > 0) continue;
                return fail(err, errsize, "unknown option '%.*s' (see mqload --help)", (int) (nl + 2), a);
            }
            if (eq) {
                if (!o->has_arg) return fail(err, errsize, "option --%s takes no value", o->name);
                val = eq + 1;
            }
        } else if (a[0] == '-' && a[1] && a[1] != '-') {
            for (size_t k = 0; k < sizeof OPTS / sizeof OPTS[0]; k++)
                if (OPTS[k].short_name == a[1]) o = &OPTS[k];
            shortbuf[1] = a[1];
            if (!o) return fail(err, errsize, "unknown option '%s' (see mqload --help)", shortbuf);
            if (a[2]) {
                if (!o->has_arg) return fail(err, errsize, "option -%c takes no value", a[1]);
                val = a + 2;
            }
        } else {
            return fail(err, errsize, "unexpected argument '%s' (options start with -; see mqload --help)", a);
        }
        if (o->has_arg && !val) {
            if (i + 1 >= argc) return fail(err, errsize, "option --%s needs a value", o->name);
            val = argv[++i];
        }
        mqload_args_rc_t rc = apply(cfg, o, val, out, err, errsize);
        if (rc != MQLOAD_ARGS_RUN) return rc;
    }
    return check(cfg, err, errsize);
}
