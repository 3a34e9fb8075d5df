/* xopts: the output and YCSB options (xopts.h). */
#include "xopts.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

static const double DEFAULT_PCTS[] = {0.50, 0.90, 0.95, 0.99, 0.999, 0.9999};

void mqload_xopts_init(mqload_xopts_t *x) { memset(x, 0, sizeof *x); }

void mqload_xopts_free(mqload_xopts_t *x)
{
    free(x->hlog);
    free(x->csv);
    free(x->ycsb_summary);
    free(x->metrics_listen);
    memset(x, 0, sizeof *x);
}

size_t mqload_default_percentiles(const double **out)
{
    *out = DEFAULT_PCTS;
    return sizeof DEFAULT_PCTS / sizeof DEFAULT_PCTS[0];
}

void mqload_xopts_usage(FILE *out)
{
    fputs("more output (docs/mqload/mqload.md, \"Results for other tools\"); latencies are the\n"
          "successful operations', failures are counted apart\n"
          "      --percentiles LIST    percentiles of the latency table and JSON, e.g. 50,95,99.9\n"
          "                            (default 50,90,95,99,99.9,99.99)\n"
          "      --hlog FILE           HdrHistogram interval log (one interval per second, ns)\n"
          "      --csv FILE            one row per second: ops, ok, errors, percentiles\n"
          "      --ycsb-summary FILE   YCSB's summary format ([READ], 99thPercentileLatency(us), ...;\n"
          "                            failures as [READ-FAILED]); \"-\" for stdout\n"
          "      --metrics-listen ADDR serve live OpenMetrics/Prometheus metrics on HOST:PORT\n"
          "                            (GET /metrics) while the run lasts\n"
          "      --metrics-linger DUR  then serve the final values this long (for scrapers with a\n"
          "                            long interval; Ctrl-C ends it)\n"
          "YCSB (with --preset ycsb-*)\n"
          "      --recordcount N       records loaded (--seed N; also the key space)\n"
          "      --operationcount N    operations measured (-n N)\n"
          "      --fieldcount N        fields per record (default 10)\n"
          "      --fieldlength N       bytes per field (default 100)\n"
          "      --phase load|run      load: insert the recordcount records, measured, as YCSB's\n"
          "                            load phase; run: the workload over records already loaded\n",
          out);
}

void mqload_percentile_label(double q, bool json, char *out, size_t n)
{
    char num[32];
    snprintf(num, sizeof num, "%.6g", q * 100.0);
    if (json)
        for (char *p = num; *p; p++)
            if (*p == '.') *p = '_';
    snprintf(out, n, "p%s", num);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

bool mqload_parse_percentiles(const char *s, double *out, size_t max, size_t *n)
{
    *n = 0;
    const char *p = s;
    while (*p) {
        if (*p == 'p' || *p == 'P') p++;
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (errno || end == p || !isfinite(v) || v <= 0 || v >= 100) return false;
        if (*end && *end != ',') return false;
        if (*n == max) return false;
        double q = round(v / 100.0 * 1e12) / 1e12; /* 99.9 -> 0.999 exactly as written, not 0.9990000000000001 */
        bool dup = false;
        for (size_t i = 0; i < *n; i++) dup = dup || out[i] == q;
        if (!dup) out[(*n)++] = q;
        p = *end ? end + 1 : end;
        if (*end == ',' && !*p) return false;
    }
    if (!*n) return false;
    qsort(out, *n, sizeof *out, cmp_dbl);
    return true;
}

static int xfail(char *err, size_t esz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int xfail(char *err, size_t esz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && esz) vsnprintf(err, esz, fmt, ap);
    va_end(ap);
    return -1;
}

static bool count_arg(const char *v, uint64_t max, uint64_t *out)
{
    double d;
    if (!mqload_parse_number(v, &d) || d != floor(d) || d < 1 || d > (double) max) return false;
    *out = (uint64_t) d;
    return true;
}

static void set(char **dst, const char *v)
{
    free(*dst);
    *dst = strdup(v);
    if (!*dst) abort();
}

static const char *const NAMES[] = {"percentiles", "hlog",       "csv",         "ycsb-summary", "metrics-listen", "recordcount",
                                    "operationcount", "fieldcount", "fieldlength", "phase",        "metrics-linger"};

int mqload_xopts_parse(mqload_config_t *cfg, int argc, char **argv, int *i, char *err, size_t esz)
{
    const char *a = argv[*i];
    if (a[0] != '-' || a[1] != '-') return 0;
    const char *name = a + 2, *eq = strchr(name, '='), *v;
    size_t nl = eq ? (size_t) (eq - name) : strlen(name);
    int id = -1;
    for (size_t k = 0; k < sizeof NAMES / sizeof NAMES[0]; k++)
        if (strlen(NAMES[k]) == nl && !strncmp(NAMES[k], name, nl)) id = (int) k;
    if (id < 0) return 0;
    if (eq) v = eq + 1;
    else if (*i + 1 < argc) v = argv[++*i];
    else return xfail(err, esz, "option --%s needs a value", NAMES[id]);
    mqload_xopts_t *x = &cfg->x;
    uint64_t u;
    switch (id) {
    case 0:
        if (!mqload_parse_percentiles(v, x->pcts, MQLOAD_MAX_PERCENTILES, &x->n_pcts))
            return xfail(err, esz, "--percentiles: expected up to %d percentiles in (0, 100) like 50,95,99.9; got '%s'",
                         MQLOAD_MAX_PERCENTILES, v);
        break;
    case 1: set(&x->hlog, v); break;
    case 2: set(&x->csv, v); break;
    case 3: set(&x->ycsb_summary, v); break;
    case 4: {
        const char *colon = strrchr(v, ':');
        char *end;
        long port = colon ? strtol(colon + 1, &end, 10) : -1;
        if (!colon || !colon[1] || *end || port < 0 || port > 65535)
            return xfail(err, esz, "--metrics-listen: expected HOST:PORT like 127.0.0.1:9464 or :9464; got '%s'", v);
        set(&x->metrics_listen, v);
        break;
    }
    case 5:
        if (!count_arg(v, (uint64_t) 1 << 53, &u)) return xfail(err, esz, "--recordcount: expected a positive integer; got '%s'", v);
        cfg->seed_docs = u, cfg->seed_set = true;
        cfg->keys = u, cfg->keys_set = true;
        x->recordcount = u;
        break;
    case 6:
        if (!count_arg(v, UINT64_MAX / 2, &u)) return xfail(err, esz, "--operationcount: expected a positive integer; got '%s'", v);
        cfg->requests = u;
        break;
    case 7:
        if (!count_arg(v, 1000, &u)) return xfail(err, esz, "--fieldcount: expected an integer in 1..1000; got '%s'", v);
        x->fieldcount = (uint32_t) u;
        break;
    case 8:
        if (!count_arg(v, 1 << 20, &u)) return xfail(err, esz, "--fieldlength: expected an integer in 1..1048576; got '%s'", v);
        x->fieldlength = (uint32_t) u;
        break;
    case 9:
        if (strcmp(v, "load") && strcmp(v, "run")) return xfail(err, esz, "--phase: expected load or run; got '%s'", v);
        x->phase_set = true;
        x->phase_load = !strcmp(v, "load");
        break;
    case 10: {
        double d;
        if (!mqload_parse_duration(v, &d)) return xfail(err, esz, "--metrics-linger: expected a duration like 30s; got '%s'", v);
        x->metrics_linger_s = d;
        break;
    }
    }
    return 1;
}

int mqload_xopts_check(mqload_config_t *cfg, char *err, size_t esz)
{
    mqload_xopts_t *x = &cfg->x;
    if (x->metrics_linger_s > 0 && !x->metrics_listen)
        return xfail(err, esz, "--metrics-linger keeps --metrics-listen serving: give --metrics-listen too");
    if ((x->fieldcount || x->fieldlength || x->phase_set) && !cfg->preset)
        return xfail(err, esz, "--fieldcount, --fieldlength and --phase shape YCSB's records: use them with --preset ycsb-*");
    if (x->phase_set) {
        if (!cfg->keys_set)
            return xfail(err, esz, "--phase %s needs --recordcount N (the records the load phase inserts and the run phase reads)",
                         x->phase_load ? "load" : "run");
        if (cfg->seed_set && cfg->seed_docs != x->recordcount)
            return xfail(err, esz, "--phase %s does not seed (load inserts the records, run reads them): drop --seed",
                         x->phase_load ? "load" : "run");
        /* Neither phase drops and seeds: load inserts the records as measured operations, run reads them. */
        cfg->seed_set = false;
        cfg->seed_docs = 0;
        if (x->phase_load && !cfg->requests) cfg->requests = cfg->keys;
    }
    const char *outs[] = {cfg->json_out, cfg->html_out, x->hlog, x->csv, x->ycsb_summary};
    const char *names[] = {"--json", "--html", "--hlog", "--csv", "--ycsb-summary"};
    for (size_t a = 0; a < 5; a++)
        for (size_t b = a + 1; b < 5; b++)
            if (outs[a] && outs[b] && !strcmp(outs[a], outs[b]) && strcmp(outs[a], "-"))
                return xfail(err, esz, "%s and %s name the same file", names[a], names[b]);
    size_t n_stdout = 0;
    for (size_t a = 0; a < 5; a++) n_stdout += outs[a] && !strcmp(outs[a], "-");
    if (n_stdout > 1) return xfail(err, esz, "only one output can go to stdout (\"-\")");
    return 0;
}
