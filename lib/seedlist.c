/* srv: mongodb+srv:// seed list discovery; see srv.h. */
#include "seedlist.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common.h"

void mqc_seedlist_records_cleanup(mqc_seedlist_records_t *rec)
{
    if (!rec) return;
    free(rec->targets);
    free(rec->txt);
    memset(rec, 0, sizeof *rec);
}

/* ---- DNS ------------------------------------------------------------------------------------ */

/* The getaddrinfo-style code of a resolver failure: MQC_ERROR_RESOLVE's codes are those. */
static int eai_of(int herr)
{
    switch (herr) {
    case HOST_NOT_FOUND:
    case NO_DATA: return EAI_NONAME;
    case TRY_AGAIN: return EAI_AGAIN;
    default: return EAI_FAIL;
    }
}

static const char *herr_text(int herr)
{
    switch (herr) {
    case HOST_NOT_FOUND: return "no such name (NXDOMAIN)";
    case NO_DATA: return "no record of that type";
    case TRY_AGAIN: return "no answer from the name server (timeout or SERVFAIL)";
    case NO_RECOVERY: return "the name server refused or failed the query";
    default: return "resolver error";
    }
}

/* "IPv4:port" as the only name server of st. */
static bool use_nameserver(res_state st, const char *ns)
{
    char ip[INET_ADDRSTRLEN];
    const char *colon = strrchr(ns, ':');
    if (!colon || (size_t) (colon - ns) >= sizeof ip) return false;
    memcpy(ip, ns, (size_t) (colon - ns));
    ip[colon - ns] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    struct in_addr a;
    if (*end || port <= 0 || port > 65535 || inet_pton(AF_INET, ip, &a) != 1) return false;
    memset(&st->nsaddr_list[0], 0, sizeof st->nsaddr_list[0]);
    st->nsaddr_list[0].sin_family = AF_INET;
    st->nsaddr_list[0].sin_port = htons((uint16_t) port);
    st->nsaddr_list[0].sin_addr = a;
    st->nscount = 1;
    return true;
}

/* One query; the answer's length, or -1 with *herr. */
static int query(res_state st, const char *name, int type, unsigned char *buf, int size, int *herr)
{
    int n = res_nquery(st, name, ns_c_in, type, buf, size);
    if (n < 0) *herr = st->res_h_errno;
    else if (n > size) n = size; /* truncated: what fits (glibc retries over TCP before this) */
    return n;
}

static bool parse_srv(const unsigned char *buf, int len, mqc_seedlist_records_t *out)
{
    ns_msg msg;
    if (ns_initparse(buf, len, &msg) < 0) return false;
    int count = ns_msg_count(msg, ns_s_an);
    out->targets = calloc(count > 0 ? (size_t) count : 1, sizeof *out->targets);
    if (!out->targets) abort();
    for (int i = 0; i < count; i++) {
        ns_rr rr;
        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0) return false;
        if (ns_rr_type(rr) != ns_t_srv || ns_rr_class(rr) != ns_c_in) continue; /* a CNAME, say */
        const unsigned char *rd = ns_rr_rdata(rr);
        if (ns_rr_rdlen(rr) < 7) return false;
        char name[NS_MAXDNAME];
        /* priority and weight (the first four bytes) are ignored, as the spec says */
        if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd + 6, name, sizeof name) < 0) return false;
        mqc_seedlist_target_t *t = &out->targets[out->n_targets];
        if (strlen(name) >= sizeof t->host) return false;
        memcpy(t->host, name, strlen(name) + 1);
        mqc_seedlist_normalize(t->host);
        t->port = ns_get16(rd + 4);
        out->n_targets++;
    }
    return true;
}

/* The TXT answers: counts them, keeps the first one's strings joined. */
static bool parse_txt(const unsigned char *buf, int len, mqc_seedlist_records_t *out)
{
    ns_msg msg;
    if (ns_initparse(buf, len, &msg) < 0) return false;
    int count = ns_msg_count(msg, ns_s_an);
    for (int i = 0; i < count; i++) {
        ns_rr rr;
        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0) return false;
        if (ns_rr_type(rr) != ns_t_txt || ns_rr_class(rr) != ns_c_in) continue;
        if (out->n_txt++ > 0) continue;
        const unsigned char *rd = ns_rr_rdata(rr);
        size_t rdlen = ns_rr_rdlen(rr), o = 0;
        out->txt = malloc(rdlen + 1);
        if (!out->txt) abort();
        for (size_t k = 0; k < rdlen;) {
            size_t l = rd[k++];
            if (l > rdlen - k || memchr(rd + k, 0, l)) return false;
            memcpy(out->txt + o, rd + k, l);
            o += l;
            k += l;
        }
        out->txt[o] = 0;
    }
    return true;
}

bool mqc_seedlist_query(const char *host, const char *service, const char *nameserver, mqc_seedlist_records_t *out,
                   mqc_error_t *error)
{
    memset(out, 0, sizeof *out);
    char name[NS_MAXDNAME + 80], norm[NS_MAXDNAME]; /* res_nquery refuses names too long for DNS */
    snprintf(norm, sizeof norm, "%s", host);
    mqc_seedlist_normalize(norm);
    snprintf(name, sizeof name, "_%s._tcp.%s", service && *service ? service : "mongodb", norm);

    struct __res_state st;
    memset(&st, 0, sizeof st);
    if (res_ninit(&st) != 0) {
        mqc_error_set(error, MQC_ERROR_RESOLVE, EAI_SYSTEM, "SRV lookup of %s: cannot read the resolver configuration",
                      name);
        return false;
    }
    /* Answers of several hosts can pass 512 bytes: ask for larger UDP answers (EDNS0). */
    st.options |= RES_USE_EDNS0;
    if (nameserver && !use_nameserver(&st, nameserver)) {
        res_nclose(&st);
        mqc_error_set(error, MQC_ERROR_RESOLVE, EAI_SYSTEM, "SRV lookup of %s: bad name server \"%s\"", name,
                      nameserver);
        return false;
    }
    const int size = 65536;
    unsigned char *buf = malloc((size_t) size);
    if (!buf) abort();
    int herr = 0, n = query(&st, name, ns_t_srv, buf, size, &herr);
    bool ok = false;
    if (n < 0) {
        mqc_error_set(error, MQC_ERROR_RESOLVE, eai_of(herr), "SRV lookup of %s failed: %s", name, herr_text(herr));
    } else if (!parse_srv(buf, n, out)) {
        mqc_error_set(error, MQC_ERROR_RESOLVE, EAI_FAIL, "SRV lookup of %s: malformed answer", name);
    } else if (out->n_targets == 0) {
        mqc_error_set(error, MQC_ERROR_RESOLVE, EAI_NONAME, "SRV lookup of %s: no SRV record", name);
    } else {
        /* TXT of the name itself. None at all is fine; a failure is not: the record could have
         * carried replicaSet, without which the deployment would be misread. */
        n = query(&st, norm, ns_t_txt, buf, size, &herr);
        if (n < 0 && herr != HOST_NOT_FOUND && herr != NO_DATA)
            mqc_error_set(error, MQC_ERROR_RESOLVE, eai_of(herr), "TXT lookup of %s failed: %s", norm, herr_text(herr));
        else if (n >= 0 && !parse_txt(buf, n, out))
            mqc_error_set(error, MQC_ERROR_RESOLVE, EAI_FAIL, "TXT lookup of %s: malformed answer", norm);
        else
            ok = true;
    }
    free(buf);
    res_nclose(&st);
    if (!ok) mqc_seedlist_records_cleanup(out);
    return ok;
}

/* ---- pure rules ------------------------------------------------------------------------------- */

void mqc_seedlist_normalize(char *name)
{
    for (char *p = name; *p; p++) *p = (char) tolower((unsigned char) *p);
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '.') name[n - 1] = 0;
}

const char *mqc_seedlist_domain(const char *host)
{
    const char *first = strchr(host, '.');
    if (first && strchr(first + 1, '.')) return first + 1; /* three labels or more */
    return host;
}

bool mqc_seedlist_target_allowed(const char *srv_host, const char *target)
{
    /* One rule covers both cases of the spec: a name of three labels or more shares its parent
     * domain with its targets (which may be the name itself); a shorter name is itself the
     * domain, so a target ending in "." + name has at least one more label. */
    const char *domain = mqc_seedlist_domain(srv_host);
    size_t dl = strlen(domain), tl = strlen(target);
    if (dl == 0 || tl < dl + 2) return false;
    return target[tl - dl - 1] == '.' && strcmp(target + tl - dl, domain) == 0 && target[0] != '.';
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decoded copy of s[0..n), NULL on a bad escape or an encoded NUL. */
static char *decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out) abort();
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        int h = i + 2 < n ? hexval((unsigned char) s[i + 1]) : -1;
        int l = h >= 0 ? hexval((unsigned char) s[i + 2]) : -1;
        if (h < 0 || l < 0 || (h == 0 && l == 0)) {
            free(out);
            return NULL;
        }
        out[o++] = (char) (h * 16 + l);
        i += 2;
    }
    out[o] = 0;
    return out;
}

bool mqc_seedlist_parse_txt(const char *txt, mqc_seedlist_txt_t *out, mqc_error_t *error)
{
    memset(out, 0, sizeof *out);
    out->load_balanced = -1;
    for (const char *p = txt; *p;) {
        size_t item = strcspn(p, "&");
        const char *eq = memchr(p, '=', item);
        size_t klen = eq ? (size_t) (eq - p) : item;
        if (item == 0) { /* "a=b&&c=d": an empty item says nothing */
            p++;
            continue;
        }
        if (!eq) {
            mqc_error_set(error, MQC_ERROR_URI, 0, "TXT record option \"%.*s\" has no value", (int) (klen < 64 ? klen : 64), p);
            return false;
        }
        char *val = decode(eq + 1, item - klen - 1);
        if (!val) {
            mqc_error_set(error, MQC_ERROR_URI, 0, "TXT record option %.*s: bad percent-encoding", (int) (klen < 64 ? klen : 64), p);
            return false;
        }
        char **dst = NULL;
        if (klen == 10 && !strncasecmp(p, "authSource", klen)) dst = &out->auth_source;
        else if (klen == 10 && !strncasecmp(p, "replicaSet", klen)) dst = &out->replica_set;
        if (dst) {
            if (!*val) {
                mqc_error_set(error, MQC_ERROR_URI, 0, "TXT record option %.*s must not be empty", (int) klen, p);
                free(val);
                return false;
            }
            free(*dst);
            *dst = val;
        } else if (klen == 12 && !strncasecmp(p, "loadBalanced", klen)) {
            bool t = !strcasecmp(val, "true"), f = !strcasecmp(val, "false");
            if (!t && !f) {
                mqc_error_set(error, MQC_ERROR_URI, 0, "TXT record option loadBalanced must be true or false (got \"%.40s\")",
                              val);
                free(val);
                return false;
            }
            out->load_balanced = t;
            free(val);
        } else {
            free(val);
            mqc_error_set(error, MQC_ERROR_URI, 0,
                          "TXT record option %.*s is not allowed (only authSource, replicaSet and loadBalanced)",
                          (int) (klen < 64 ? klen : 64), p);
            return false;
        }
        p += item + (p[item] == '&');
    }
    return true;
}

void mqc_seedlist_txt_cleanup(mqc_seedlist_txt_t *txt)
{
    if (!txt) return;
    free(txt->auth_source);
    free(txt->replica_set);
    memset(txt, 0, sizeof *txt);
    txt->load_balanced = -1;
}

size_t mqc_seedlist_pick(mqc_seedlist_target_t *targets, size_t n, int32_t max_hosts, mqc_rand_fn rand_fn, void *rand_ud)
{
    if (max_hosts <= 0 || (size_t) max_hosts >= n) return n;
    /* Fisher-Yates, stopped after max_hosts steps: positions 0..k-1 hold a uniform sample. */
    size_t k = (size_t) max_hosts;
    for (size_t i = 0; i < k; i++) {
        size_t j = i + (size_t) (rand_fn(rand_ud) % (uint32_t) (n - i));
        mqc_seedlist_target_t t = targets[i];
        targets[i] = targets[j];
        targets[j] = t;
    }
    return k;
}

bool mqc_seedlist_apply(mqc_uri_t *uri, mqc_seedlist_records_t *rec, mqc_rand_fn rand_fn, void *rand_ud, mqc_error_t *error)
{
    char srv[NS_MAXDNAME];
    snprintf(srv, sizeof srv, "%s", uri->srv_host ? uri->srv_host : "");
    mqc_seedlist_normalize(srv);
    const char *svc = uri->srv_service_name ? uri->srv_service_name : "mongodb";
    if (rec->n_targets == 0) {
        mqc_error_set(error, MQC_ERROR_RESOLVE, EAI_NONAME, "SRV lookup of _%s._tcp.%s: no SRV record", svc, srv);
        return false;
    }
    /* Every target is checked before any is used: one foreign name means the answer cannot be
     * trusted (and the spec's tests expect the error). */
    size_t n = 0;
    for (size_t i = 0; i < rec->n_targets; i++) {
        mqc_seedlist_target_t *t = &rec->targets[i];
        mqc_seedlist_normalize(t->host);
        if (!mqc_seedlist_target_allowed(srv, t->host)) {
            mqc_error_set(error, MQC_ERROR_RESOLVE, EAI_FAIL,
                          "SRV lookup of _%s._tcp.%s: target \"%s\" is not under the domain \"%s\"%s", svc, srv, t->host,
                          mqc_seedlist_domain(srv), mqc_seedlist_domain(srv) == srv ? " (and must have more labels)" : "");
            return false;
        }
        if (t->port == 0) {
            mqc_error_set(error, MQC_ERROR_RESOLVE, EAI_FAIL, "SRV lookup of _%s._tcp.%s: target \"%s\" has port 0", svc,
                          srv, t->host);
            return false;
        }
        bool dup = false;
        for (size_t k = 0; k < n && !dup; k++)
            dup = rec->targets[k].port == t->port && !strcmp(rec->targets[k].host, t->host);
        if (!dup) rec->targets[n++] = *t;
    }
    rec->n_targets = n;
    if (rec->n_txt > 1) {
        mqc_error_set(error, MQC_ERROR_RESOLVE, EAI_FAIL, "TXT lookup of %s: %zu TXT records, at most one is allowed",
                      srv, rec->n_txt);
        return false;
    }
    mqc_seedlist_txt_t txt;
    if (!mqc_seedlist_parse_txt(rec->txt ? rec->txt : "", &txt, error)) {
        char msg[sizeof error->message];
        snprintf(msg, sizeof msg, "%s", error->message);
        mqc_error_set(error, MQC_ERROR_URI, 0, "invalid connection string: %s of %s", msg, srv);
        mqc_seedlist_txt_cleanup(&txt);
        return false;
    }
    /* Options of the URI win over the TXT record's. */
    const char *replica_set = uri->replica_set ? uri->replica_set : txt.replica_set;
    bool load_balanced = uri->load_balanced_set || txt.load_balanced < 0 ? uri->load_balanced : txt.load_balanced == 1;
    n = mqc_seedlist_pick(rec->targets, n, uri->srv_max_hosts, rand_fn, rand_ud);
    const char *conflict = NULL;
    if (uri->srv_max_hosts > 0 && replica_set) conflict = "srvMaxHosts must not be given with replicaSet";
    else if (uri->srv_max_hosts > 0 && load_balanced) conflict = "srvMaxHosts must not be given with loadBalanced=true";
    else if (load_balanced && replica_set) conflict = "loadBalanced=true must not be given with replicaSet";
    else if (load_balanced && n > 1) conflict = "loadBalanced=true must not be used with several hosts";
    if (conflict) {
        mqc_error_set(error, MQC_ERROR_URI, 0, "invalid connection string (with the SRV and TXT records of %s): %s", srv,
                      conflict);
        mqc_seedlist_txt_cleanup(&txt);
        return false;
    }

    mqc_uri_host_t *hosts = bson_malloc0(n * sizeof *hosts);
    for (size_t i = 0; i < n; i++) {
        bson_strncpy(hosts[i].host, rec->targets[i].host, sizeof hosts[i].host);
        hosts[i].port = rec->targets[i].port;
        snprintf(hosts[i].host_and_port, sizeof hosts[i].host_and_port, "%s:%u", hosts[i].host,
                 (unsigned) hosts[i].port);
    }
    bson_free(uri->hosts);
    uri->hosts = hosts;
    uri->n_hosts = n;
    if (!uri->replica_set && txt.replica_set) uri->replica_set = bson_strdup(txt.replica_set);
    if (!uri->auth_source_given && txt.auth_source) {
        bson_free(uri->auth_source);
        uri->auth_source = bson_strdup(txt.auth_source);
    }
    uri->load_balanced = load_balanced;
    mqc_seedlist_txt_cleanup(&txt);
    return true;
}

/* ---- asynchronous lookup ------------------------------------------------------------------------ */

struct mqc_seedlist_lookup {
    mqc_seedlist_cb cb;
    void *ctx;
    char host[NS_MAXDNAME];
    char service[64];
    char nameserver[64];       /* empty: the system's */
    bool ok;                   /* written by the worker's thread, read on the loop after it */
    mqc_seedlist_records_t rec;
    mqc_error_t error;
};

static void lookup_run(void *data)
{
    mqc_seedlist_lookup_t *l = data;
    l->ok = mqc_seedlist_query(l->host, l->service, l->nameserver[0] ? l->nameserver : NULL, &l->rec, &l->error);
}

static void lookup_done(void *data, bool cancelled)
{
    mqc_seedlist_lookup_t *l = data;
    if (!cancelled) l->cb(l->ctx, l->ok ? &l->rec : NULL, l->ok ? NULL : &l->error);
    mqc_seedlist_records_cleanup(&l->rec);
    free(l);
}

static bool lookup_is(void *data, void *arg) { return data == arg; }

mqc_seedlist_lookup_t *mqc_seedlist_lookup_start(mqc_worker_t *worker, const char *host, const char *service,
                                                 mqc_seedlist_cb cb, void *ctx)
{
    mqc_seedlist_lookup_t *l = calloc(1, sizeof *l);
    if (!l) abort();
    l->cb = cb;
    l->ctx = ctx;
    snprintf(l->host, sizeof l->host, "%s", host);
    snprintf(l->service, sizeof l->service, "%s", service ? service : "mongodb");
    /* For the tests' canned records only (secure_getenv: never in set-uid programs). */
    const char *ns = secure_getenv("MQC_TEST_DNS");
    if (ns) snprintf(l->nameserver, sizeof l->nameserver, "%s", ns);
    if (!worker || !mqc_worker_submit(worker, lookup_run, lookup_done, l)) {
        free(l);
        return NULL;
    }
    return l;
}

void mqc_seedlist_lookup_cancel(mqc_worker_t *worker, mqc_seedlist_lookup_t *l)
{
    if (l) mqc_worker_cancel(worker, lookup_is, l);
}
