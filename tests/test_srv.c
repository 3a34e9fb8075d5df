/* mongodb+srv:// seed list discovery (lib/seedlist.c): the pure rules, the DNS queries against a fake
 * name server in this process (canned SRV and TXT records, hand-encoded DNS messages on a UDP
 * socket of 127.0.0.1), the asynchronous lookup, and a client that finds a scripted server
 * (tests/fakesrv) through SRV.
 *
 * The fake zone holds the records the spec's tests use (initial-dns-seedlist-discovery/tests/
 * README.md) under test.build.10gen.cc. Their targets (localhost.test.build.10gen.cc) cannot be
 * connected to: getaddrinfo reads the system's configuration, which tests must not change. The
 * end-to-end tests use a name whose domain an IP literal can be under instead: the SRV name
 * "db.0.1" has the domain "0.1", and "127.0.0.1" ends in ".0.1". */
#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "server/fakesrv.h"
#include "mqc.h"
#include "seedlist.h"
#include "support/result.h"
#include "tf.h"
#include "uri.h"

/* ---- the fake name server ------------------------------------------------------------------ */

enum { T_SRV = 33, T_TXT = 16 };

typedef struct {
    char name[256];
    int type;
    uint16_t port;             /* SRV */
    char data[300];            /* SRV: the target; TXT: strings separated by '|' */
} fake_rr_t;

typedef struct {
    int fd;
    uint16_t port;
    pthread_t th;
    atomic_bool stop;
    atomic_int queries, answered;
    int delay_ms;
    pthread_mutex_t mu;
    fake_rr_t rr[64];
    int n_rr;
    char servfail[256];        /* a name answered with SERVFAIL */
} fakedns_t;

static void dns_add(fakedns_t *d, const char *name, int type, uint16_t port, const char *data)
{
    ASSERT(d->n_rr < 64);
    fake_rr_t *r = &d->rr[d->n_rr++];
    snprintf(r->name, sizeof r->name, "%s", name);
    r->type = type;
    r->port = port;
    snprintf(r->data, sizeof r->data, "%s", data);
}

/* Appends name as DNS labels. */
static size_t put_name(uint8_t *out, const char *name)
{
    size_t o = 0;
    for (const char *p = name; *p;) {
        size_t l = strcspn(p, ".");
        out[o++] = (uint8_t) l;
        memcpy(out + o, p, l);
        o += l;
        p += l + (p[l] == '.');
    }
    out[o++] = 0;
    return o;
}

static void answer(fakedns_t *d, const uint8_t *q, size_t n, uint8_t *out, size_t *out_len)
{
    *out_len = 0;
    if (n < 12) return;
    char name[300];
    size_t o = 12, nl = 0;
    while (o < n && q[o]) {
        size_t l = q[o++];
        if (o + l > n || nl + l + 1 >= sizeof name) return;
        if (nl) name[nl++] = '.';
        memcpy(name + nl, q + o, l);
        nl += l;
        o += l;
    }
    name[nl] = 0;
    if (o + 5 > n) return;
    int qtype = q[o + 1] << 8 | q[o + 2];
    size_t qend = o + 5;
    memcpy(out, q, qend);
    out[2] = (uint8_t) (0x80 | (q[2] & 0x79) | 0x04); /* QR, opcode, AA, RD */
    out[3] = 0x80;                                    /* RA, NOERROR */
    memset(out + 6, 0, 6);                            /* no answers, authority, additional yet */
    size_t w = qend, an = 0;
    bool known = false;
    pthread_mutex_lock(&d->mu);
    bool fail = !strcasecmp(name, d->servfail);
    for (int i = 0; i < d->n_rr && !fail; i++) {
        const fake_rr_t *r = &d->rr[i];
        if (strcasecmp(r->name, name)) continue;
        known = true;
        if (r->type != qtype) continue;
        uint8_t rd[600];
        size_t rl = 0;
        if (r->type == T_SRV) {
            memset(rd, 0, 4); /* priority, weight */
            rd[4] = (uint8_t) (r->port >> 8);
            rd[5] = (uint8_t) r->port;
            rl = 6 + put_name(rd + 6, r->data);
        } else {
            for (const char *p = r->data;; p++) { /* one character-string per '|'-separated part */
                size_t l = strcspn(p, "|");
                rd[rl++] = (uint8_t) l;
                memcpy(rd + rl, p, l);
                rl += l;
                p += l;
                if (!*p) break;
            }
        }
        const uint8_t head[] = {0xc0, 12, 0, (uint8_t) qtype, 0, 1, 0, 0, 0, 60, (uint8_t) (rl >> 8), (uint8_t) rl};
        memcpy(out + w, head, sizeof head);
        memcpy(out + w + sizeof head, rd, rl);
        w += sizeof head + rl;
        an++;
    }
    pthread_mutex_unlock(&d->mu);
    if (fail) out[3] = 0x82;                /* SERVFAIL */
    else if (!known) out[3] = 0x83;         /* NXDOMAIN */
    out[7] = (uint8_t) an;
    *out_len = w;
}

static void *dns_thread(void *arg)
{
    fakedns_t *d = arg;
    uint8_t q[1500], out[4096];
    while (!atomic_load(&d->stop)) {
        struct pollfd p = {.fd = d->fd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0) continue;
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(d->fd, q, sizeof q, 0, (struct sockaddr *) &from, &fl);
        if (n <= 0) continue;
        size_t len;
        answer(d, q, (size_t) n, out, &len);
        atomic_fetch_add(&d->queries, 1);
        if (d->delay_ms) usleep((useconds_t) d->delay_ms * 1000);
        if (len) sendto(d->fd, out, len, 0, (struct sockaddr *) &from, fl);
        atomic_fetch_add(&d->answered, 1);
    }
    return NULL;
}

/* The records of the spec tests' README, under test.build.10gen.cc. */
static void add_spec_zone(fakedns_t *d)
{
    static const struct {
        const char *name;
        uint16_t port;
        const char *target;
    } srv[] = {
        {"test1", 27017, "localhost.test.build.10gen.cc"}, {"test1", 27018, "localhost.test.build.10gen.cc"},
        {"test2", 27018, "localhost.test.build.10gen.cc"}, {"test2", 27019, "localhost.test.build.10gen.cc"},
        {"test3", 27017, "localhost.test.build.10gen.cc"}, {"test5", 27017, "localhost.test.build.10gen.cc"},
        {"test6", 27017, "localhost.test.build.10gen.cc"}, {"test7", 27017, "localhost.test.build.10gen.cc"},
        {"test8", 27017, "localhost.test.build.10gen.cc"}, {"test10", 27017, "localhost.test.build.10gen.cc"},
        {"test11", 27017, "localhost.test.build.10gen.cc"}, {"test12", 27017, "localhost.build.10gen.cc"},
        {"test13", 27017, "test.build.10gen.cc"}, {"test14", 27017, "localhost.not-test.build.10gen.cc"},
        {"test15", 27017, "localhost.test.not-build.10gen.cc"}, {"test16", 27017, "localhost.test.build.not-10gen.cc"},
        {"test17", 27017, "localhost.test.build.10gen.not-cc"}, {"test18", 27017, "localhost.sub.test.build.10gen.cc"},
        {"test19", 27017, "localhost.evil.build.10gen.cc"}, {"test19", 27017, "localhost.test.build.10gen.cc"},
        {"test20", 27017, "localhost.test.build.10gen.cc"}, {"test21", 27017, "localhost.test.build.10gen.cc"},
        {"test23", 8000, "localhost.test.build.10gen.cc"}, {"test24", 8000, "localhost.test.build.10gen.cc"},
    };
    char name[300];
    for (size_t i = 0; i < sizeof srv / sizeof srv[0]; i++) {
        snprintf(name, sizeof name, "_mongodb._tcp.%s.test.build.10gen.cc", srv[i].name);
        dns_add(d, name, T_SRV, srv[i].port, srv[i].target);
    }
    dns_add(d, "_customname._tcp.test22.test.build.10gen.cc", T_SRV, 27017, "localhost.test.build.10gen.cc");
    dns_add(d, "_mongodb._tcp.build.10gen.cc", T_SRV, 27017, "build.10gen.cc");
    dns_add(d, "_mongodb._tcp.test.build.10gen.cc", T_SRV, 27017, "test.build.10gen.cc");
    dns_add(d, "test5.test.build.10gen.cc", T_TXT, 0, "replicaSet=repl0&authSource=thisDB");
    dns_add(d, "test6.test.build.10gen.cc", T_TXT, 0, "replicaSet=repl0");
    dns_add(d, "test6.test.build.10gen.cc", T_TXT, 0, "authSource=otherDB");
    dns_add(d, "test7.test.build.10gen.cc", T_TXT, 0, "ssl=false");
    dns_add(d, "test8.test.build.10gen.cc", T_TXT, 0, "authSource");
    dns_add(d, "test10.test.build.10gen.cc", T_TXT, 0, "socketTimeoutMS=500");
    dns_add(d, "test11.test.build.10gen.cc", T_TXT, 0, "replicaS|et=rep|l0");
    dns_add(d, "test20.test.build.10gen.cc", T_TXT, 0, "loadBalanced=true");
    dns_add(d, "test21.test.build.10gen.cc", T_TXT, 0, "loadBalanced=false");
    dns_add(d, "test24.test.build.10gen.cc", T_TXT, 0, "loadBalanced=true");
}

static fakedns_t *dns_start(void)
{
    fakedns_t *d = calloc(1, sizeof *d);
    ASSERT(d);
    pthread_mutex_init(&d->mu, NULL);
    d->fd = socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT(d->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ASSERT_EQ(bind(d->fd, (struct sockaddr *) &a, sizeof a), 0);
    socklen_t al = sizeof a;
    ASSERT_EQ(getsockname(d->fd, (struct sockaddr *) &a, &al), 0);
    d->port = ntohs(a.sin_port);
    return d;
}

static void dns_run(fakedns_t *d) { ASSERT_EQ(pthread_create(&d->th, NULL, dns_thread, d), 0); }

static const char *dns_addr(const fakedns_t *d)
{
    static char buf[32];
    snprintf(buf, sizeof buf, "127.0.0.1:%u", (unsigned) d->port);
    return buf;
}

static void dns_stop(fakedns_t *d)
{
    atomic_store(&d->stop, true);
    pthread_join(d->th, NULL);
    close(d->fd);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

/* ---- the rules ------------------------------------------------------------------------------ */

TEST("/srv/rules/domain", srv_rules_domain)
{
    ASSERT_STR_EQ(mqc_seedlist_domain("cluster_1.tests.mongodb.co.uk"), "tests.mongodb.co.uk");
    ASSERT_STR_EQ(mqc_seedlist_domain("hosts_34.example.com"), "example.com");
    ASSERT_STR_EQ(mqc_seedlist_domain("mongodb.local"), "mongodb.local");
    ASSERT_STR_EQ(mqc_seedlist_domain("localhost"), "localhost");

    /* the spec's prose tests 2, 3 and 4: rejected */
    ASSERT(!mqc_seedlist_target_allowed("localhost", "localhost.mongodb"));
    ASSERT(!mqc_seedlist_target_allowed("mongo.local", "test_1.evil.local"));
    ASSERT(!mqc_seedlist_target_allowed("blogs.mongodb.com", "blogs.evil.com"));
    ASSERT(!mqc_seedlist_target_allowed("localhost", "localhost"));
    ASSERT(!mqc_seedlist_target_allowed("mongo.local", "mongo.local"));
    ASSERT(!mqc_seedlist_target_allowed("localhost", "test_1.cluster_1localhost"));
    ASSERT(!mqc_seedlist_target_allowed("mongo.local", "test_1.my_hostmongo.local"));
    ASSERT(!mqc_seedlist_target_allowed("blogs.mongodb.com", "cluster.testmongodb.com"));
    ASSERT(!mqc_seedlist_target_allowed("blogs.mongodb.com", ".mongodb.com"));
    ASSERT(!mqc_seedlist_target_allowed("blogs.mongodb.com", "mongodb.com"));
    ASSERT(!mqc_seedlist_target_allowed("localhost", ""));
    /* accepted: under the domain; a three-label name may resolve to itself */
    ASSERT(mqc_seedlist_target_allowed("localhost", "db.localhost"));
    ASSERT(mqc_seedlist_target_allowed("mongo.local", "a.b.mongo.local"));
    ASSERT(mqc_seedlist_target_allowed("blogs.mongodb.com", "cluster.mongodb.com"));
    ASSERT(mqc_seedlist_target_allowed("blogs.mongodb.com", "blogs.mongodb.com"));
    ASSERT(mqc_seedlist_target_allowed("test.build.10gen.cc", "test.build.10gen.cc"));
    ASSERT(mqc_seedlist_target_allowed("db.0.1", "127.0.0.1"));

    char n[64] = "CLUSTER.MONGODB.COM.";
    mqc_seedlist_normalize(n);
    ASSERT_STR_EQ(n, "cluster.mongodb.com");
}

TEST("/srv/rules/txt", srv_rules_txt)
{
    mqc_seedlist_txt_t t;
    mqc_error_t e;
    ASSERT_MSG(mqc_seedlist_parse_txt("replicaSet=repl0&authSource=thisDB", &t, &e), "%s", e.message);
    ASSERT_STR_EQ(t.replica_set, "repl0");
    ASSERT_STR_EQ(t.auth_source, "thisDB");
    ASSERT_EQ(t.load_balanced, -1);
    mqc_seedlist_txt_cleanup(&t);
    ASSERT_MSG(mqc_seedlist_parse_txt("LOADBALANCED=TRUE&authsource=a%2Fb", &t, &e), "%s", e.message);
    ASSERT_EQ(t.load_balanced, 1);
    ASSERT_STR_EQ(t.auth_source, "a/b");
    mqc_seedlist_txt_cleanup(&t);
    ASSERT_MSG(mqc_seedlist_parse_txt("", &t, &e), "%s", e.message);
    ASSERT_NULL(t.replica_set);
    mqc_seedlist_txt_cleanup(&t);

    static const struct {
        const char *txt, *needle;
    } bad[] = {
        {"ssl=false", "ssl is not allowed"},
        {"tls=true", "tls is not allowed"},
        {"socketTimeoutMS=500", "socketTimeoutMS is not allowed"},
        {"authSource", "has no value"},
        {"authSource=", "must not be empty"},
        {"loadBalanced=yes", "true or false"},
        {"replicaSet=a%zz", "percent-encoding"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool ok = mqc_seedlist_parse_txt(bad[i].txt, &t, &e);
        mqc_seedlist_txt_cleanup(&t);
        ASSERT_MSG(!ok, "accepted TXT \"%s\"", bad[i].txt);
        ASSERT_EQ(e.domain, MQC_ERROR_URI);
        ASSERT_STR_CONTAINS(e.message, bad[i].needle);
    }
}

TEST("/srv/rules/srv_max_hosts", srv_rules_pick)
{
    mqc_rand_t rng;
    mqc_rand_seed(&rng, 42);
    mqc_seedlist_target_t t[5];
    int chosen[5] = {0};
    const int rounds = 5000;
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < 5; i++) {
            snprintf(t[i].host, sizeof t[i].host, "h%d.example.com", i);
            t[i].port = (uint16_t) (27017 + i);
        }
        ASSERT_EQ(mqc_seedlist_pick(t, 5, 2, mqc_rand_next, &rng), 2);
        ASSERT(t[0].port != t[1].port);
        chosen[t[0].port - 27017]++;
        chosen[t[1].port - 27017]++;
    }
    /* each is kept 2/5 of the time: 2000 expected, far more than 3 sigma (~104) of slack */
    for (int i = 0; i < 5; i++) ASSERT_MSG(chosen[i] > 1700 && chosen[i] < 2300, "host %d kept %d times", i, chosen[i]);
    ASSERT_EQ(mqc_seedlist_pick(t, 5, 0, mqc_rand_next, &rng), 5);
    ASSERT_EQ(mqc_seedlist_pick(t, 5, 5, mqc_rand_next, &rng), 5);
    ASSERT_EQ(mqc_seedlist_pick(t, 5, 9, mqc_rand_next, &rng), 5);
}

TEST("/srv/uri/parse", srv_uri_parse)
{
    mqc_uri_t u;
    mqc_error_t e;
    ASSERT_MSG(mqc_uri_parse(&u, "mongodb+srv://u:pw@Cluster0.Example.com/app?srvMaxHosts=3&srvServiceName=custom", &e),
               "%s", e.message);
    ASSERT_STR_EQ(u.srv_host, "cluster0.example.com");
    ASSERT_STR_EQ(u.srv_service_name, "custom");
    ASSERT_EQ(u.srv_max_hosts, 3);
    ASSERT_EQ(u.n_hosts, 0);
    ASSERT(u.tls); /* implied by mongodb+srv */
    ASSERT_STR_EQ(u.auth_source, "app");
    ASSERT(!u.auth_source_given);
    mqc_uri_cleanup(&u);

    /* one or two labels: allowed since the 2024 revision (libmongoc 1.23 still refuses them) */
    ASSERT_MSG(mqc_uri_parse(&u, "mongodb+srv://localhost/?tls=false", &e), "%s", e.message);
    ASSERT_STR_EQ(u.srv_host, "localhost");
    ASSERT_STR_EQ(u.srv_service_name, "mongodb");
    ASSERT(!u.tls);
    mqc_uri_cleanup(&u);
    ASSERT_MSG(mqc_uri_parse(&u, "mongodb+srv://user:p%40ss@mongo.local", &e), "%s", e.message);
    ASSERT_STR_EQ(u.srv_host, "mongo.local");
    ASSERT_STR_EQ(u.password, "p@ss");
    mqc_uri_cleanup(&u);

    /* plain URIs have no SRV name */
    ASSERT_MSG(mqc_uri_parse(&u, "mongodb://a.b.c", &e), "%s", e.message);
    ASSERT_NULL(u.srv_host);
    mqc_uri_cleanup(&u);

    static const char *const bad[] = {
        "mongodb+srv://a.example.com:27017/",          /* a port */
        "mongodb+srv://a.example.com,b.example.com/",  /* two names */
        "mongodb+srv://localhost:27017",
        "mongodb+srv://a.example.com/?directConnection=true",
        "mongodb+srv://a.example.com/?srvMaxHosts=2&replicaSet=rs",
        "mongodb+srv://a.example.com/?srvMaxHosts=2&loadBalanced=true",
        "mongodb://a.example.com/?srvMaxHosts=2",
        "mongodb://a.example.com/?srvServiceName=x",
        "mongodb+srv:///",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool ok = mqc_uri_parse(&u, bad[i], &e);
        if (ok) mqc_uri_cleanup(&u);
        ASSERT_MSG(!ok, "accepted %s", bad[i]);
        ASSERT_EQ(e.domain, MQC_ERROR_URI);
    }
}

static mqc_seedlist_records_t records(const char *const *targets, const uint16_t *ports, size_t n, const char *txt)
{
    mqc_seedlist_records_t r = {0};
    r.targets = calloc(n ? n : 1, sizeof *r.targets);
    for (size_t i = 0; i < n; i++) {
        snprintf(r.targets[i].host, sizeof r.targets[i].host, "%s", targets[i]);
        r.targets[i].port = ports[i];
    }
    r.n_targets = n;
    if (txt) {
        r.txt = strdup(txt);
        r.n_txt = 1;
    }
    return r;
}

/* Parses uri and applies the records; returns the error (domain NONE on success) and leaves
 * the URI in *u on success. */
static mqc_error_t apply(mqc_uri_t *u, const char *uri, const char *const *targets, const uint16_t *ports, size_t n,
                         const char *txt)
{
    mqc_error_t e;
    mqc_error_clear(&e);
    ASSERT_MSG(mqc_uri_parse(u, uri, &e), "%s: %s", uri, e.message);
    mqc_seedlist_records_t r = records(targets, ports, n, txt);
    mqc_rand_t rng;
    mqc_rand_seed(&rng, 7);
    bool ok = mqc_seedlist_apply(u, &r, mqc_rand_next, &rng, &e);
    mqc_seedlist_records_cleanup(&r);
    if (!ok) mqc_uri_cleanup(u);
    return e;
}

TEST("/srv/rules/apply", srv_rules_apply)
{
    mqc_uri_t u;
    const char *two[] = {"A.Example.COM.", "b.example.com"};
    const uint16_t ports[] = {27017, 27018};
    mqc_error_t e = apply(&u, "mongodb+srv://cluster.example.com/db", two, ports, 2, "replicaSet=rs0&authSource=auth");
    ASSERT_MSG(e.domain == MQC_ERROR_NONE, "%s", e.message);
    ASSERT_EQ(u.n_hosts, 2);
    ASSERT_STR_EQ(u.hosts[0].host_and_port, "a.example.com:27017");
    ASSERT_STR_EQ(u.hosts[1].host_and_port, "b.example.com:27018");
    ASSERT_STR_EQ(u.replica_set, "rs0");
    ASSERT_STR_EQ(u.auth_source, "auth"); /* the TXT record's, over the database's default */
    ASSERT(u.tls);
    mqc_uri_cleanup(&u);

    /* the URI's own options win */
    e = apply(&u, "mongodb+srv://cluster.example.com/?authSource=mine&replicaSet=rsX&loadBalanced=false", two, ports,
              2, "replicaSet=rs0&authSource=auth&loadBalanced=true");
    ASSERT_MSG(e.domain == MQC_ERROR_NONE, "%s", e.message);
    ASSERT_STR_EQ(u.auth_source, "mine");
    ASSERT_STR_EQ(u.replica_set, "rsX");
    ASSERT(!u.load_balanced);
    mqc_uri_cleanup(&u);

    /* duplicates are dropped; srvMaxHosts keeps that many */
    const char *dup[] = {"a.example.com", "a.example.com", "b.example.com"};
    const uint16_t dports[] = {1, 1, 2};
    e = apply(&u, "mongodb+srv://cluster.example.com/?srvMaxHosts=1", dup, dports, 3, NULL);
    ASSERT_MSG(e.domain == MQC_ERROR_NONE, "%s", e.message);
    ASSERT_EQ(u.n_hosts, 1);
    mqc_uri_cleanup(&u);
    e = apply(&u, "mongodb+srv://cluster.example.com/", dup, dports, 3, NULL);
    ASSERT_EQ(u.n_hosts, 2);
    mqc_uri_cleanup(&u);

    /* failures */
    const char *evil[] = {"a.example.com", "a.evil.com"};
    e = apply(&u, "mongodb+srv://cluster.example.com/", evil, ports, 2, NULL);
    ASSERT_EQ(e.domain, MQC_ERROR_RESOLVE);
    ASSERT_STR_CONTAINS(e.message, "a.evil.com");
    ASSERT_STR_CONTAINS(e.message, "_mongodb._tcp.cluster.example.com");
    e = apply(&u, "mongodb+srv://cluster.example.com/?srvMaxHosts=1", two, ports, 2, "replicaSet=rs0");
    ASSERT_EQ(e.domain, MQC_ERROR_URI);
    ASSERT_STR_CONTAINS(e.message, "srvMaxHosts");
    e = apply(&u, "mongodb+srv://cluster.example.com/", two, ports, 2, "loadBalanced=true");
    ASSERT_EQ(e.domain, MQC_ERROR_URI);
    ASSERT_STR_CONTAINS(e.message, "several hosts");
    e = apply(&u, "mongodb+srv://cluster.example.com/", two, ports, 1, "loadBalanced=true&replicaSet=x");
    ASSERT_EQ(e.domain, MQC_ERROR_URI);
    e = apply(&u, "mongodb+srv://cluster.example.com/", two, ports, 1, "tls=false");
    ASSERT_EQ(e.domain, MQC_ERROR_URI);
    const uint16_t zero[] = {0};
    e = apply(&u, "mongodb+srv://cluster.example.com/", two, zero, 1, NULL);
    ASSERT_EQ(e.domain, MQC_ERROR_RESOLVE);
    e = apply(&u, "mongodb+srv://cluster.example.com/", two, ports, 0, NULL);
    ASSERT_EQ(e.domain, MQC_ERROR_RESOLVE);
    /* a single-label name needs targets one level deeper */
    const char *lh[] = {"localhost"}, *lh2[] = {"db.localhost"};
    e = apply(&u, "mongodb+srv://localhost/", lh, ports, 1, NULL);
    ASSERT_EQ(e.domain, MQC_ERROR_RESOLVE);
    e = apply(&u, "mongodb+srv://localhost/", lh2, ports, 1, NULL);
    ASSERT_MSG(e.domain == MQC_ERROR_NONE, "%s", e.message);
    mqc_uri_cleanup(&u);
}

/* ---- DNS: the spec's zone ---------------------------------------------------------------------- */

typedef struct {
    const char *uri;
    const char *error;         /* substring of the expected error, NULL: success */
    const char *seeds;         /* "host:port,host:port" in order, or NULL */
    int num_seeds;             /* checked when > 0 */
    const char *replica_set, *auth_source;
    int load_balanced;         /* -1: not checked */
} dns_case_t;

static const dns_case_t dns_cases[] = {
    {"mongodb+srv://test1.test.build.10gen.cc/", NULL,
     "localhost.test.build.10gen.cc:27017,localhost.test.build.10gen.cc:27018", 0, NULL, "admin", 0},
    {"mongodb+srv://test3.test.build.10gen.cc/", NULL, "localhost.test.build.10gen.cc:27017", 0, NULL, NULL, -1},
    {"mongodb+srv://TEST1.TEST.BUILD.10GEN.CC/", NULL,
     "localhost.test.build.10gen.cc:27017,localhost.test.build.10gen.cc:27018", 0, NULL, NULL, -1},
    {"mongodb+srv://test4.test.build.10gen.cc/", "NXDOMAIN", NULL, 0, NULL, NULL, -1},
    {"mongodb+srv://test5.test.build.10gen.cc/", NULL, "localhost.test.build.10gen.cc:27017", 0, "repl0", "thisDB", -1},
    {"mongodb+srv://test5.test.build.10gen.cc/?authSource=otherDB", NULL, NULL, 1, "repl0", "otherDB", -1},
    {"mongodb+srv://test5.test.build.10gen.cc/?srvMaxHosts=1", "srvMaxHosts", NULL, 0, NULL, NULL, -1},
    {"mongodb+srv://test6.test.build.10gen.cc/", "2 TXT records", NULL, 0, NULL, NULL, -1},
    {"mongodb+srv://test7.test.build.10gen.cc/", "ssl is not allowed", NULL, 0, NULL, NULL, -1},
    {"mongodb+srv://test8.test.build.10gen.cc/", "no value", NULL, 0, NULL, NULL, -1},
    {"mongodb+srv://test10.test.build.10gen.cc/", "socketTimeoutMS", NULL, 0, NULL, NULL, -1},
    {"mongodb+srv://test11.test.build.10gen.cc/", NULL, NULL, 1, "repl0", NULL, -1},
    {"mongodb+srv://test12.test.build.10gen.cc/", "localhost.build.10gen.cc", NULL, 0, NULL, NULL, -1},
    {"mongodb+srv://test13.test.build.10gen.cc/", "not under", NULL, 0, NULL, NULL, -1},
    {"mongodb+srv://test14.test.build.10gen.cc/", "not under", NULL, 0, NULL, NULL, -1},
    {"mongodb+srv://test15.test.build.10gen.cc/", "not under", NULL, 0, NULL, NULL, -1},
    {"mongodb+srv://test16.test.build.10gen.cc/", "not under", NULL, 0, NULL, NULL, -1},
    {"mongodb+srv://test17.test.build.10gen.cc/", "not under", NULL, 0, NULL, NULL, -1},
    {"mongodb+srv://test18.test.build.10gen.cc/", NULL, "localhost.sub.test.build.10gen.cc:27017", 0, NULL, NULL, -1},
    {"mongodb+srv://test19.test.build.10gen.cc/", "localhost.evil.build.10gen.cc", NULL, 0, NULL, NULL, -1},
    {"mongodb+srv://test20.test.build.10gen.cc/", NULL, "localhost.test.build.10gen.cc:27017", 0, NULL, NULL, 1},
    {"mongodb+srv://test20.test.build.10gen.cc/?loadBalanced=false", NULL, NULL, 1, NULL, NULL, 0},
    {"mongodb+srv://test20.test.build.10gen.cc/?srvMaxHosts=1", "loadBalanced=true", NULL, 0, NULL, NULL, -1},
    {"mongodb+srv://test21.test.build.10gen.cc/", NULL, NULL, 1, NULL, NULL, 0},
    {"mongodb+srv://test1.test.build.10gen.cc/?loadBalanced=true", "several hosts", NULL, 0, NULL, NULL, -1},
    {"mongodb+srv://test1.test.build.10gen.cc/?srvMaxHosts=1", NULL, NULL, 1, NULL, NULL, -1},
    {"mongodb+srv://test1.test.build.10gen.cc/?srvMaxHosts=2", NULL, NULL, 2, NULL, NULL, -1},
    {"mongodb+srv://test22.test.build.10gen.cc/?srvServiceName=customname", NULL, "localhost.test.build.10gen.cc:27017",
     0, NULL, NULL, -1},
    {"mongodb+srv://test22.test.build.10gen.cc/", "_mongodb._tcp.test22.test.build.10gen.cc", NULL, 0, NULL, NULL, -1},
    {"mongodb+srv://test24.test.build.10gen.cc/", NULL, "localhost.test.build.10gen.cc:8000", 0, NULL, NULL, 1},
    {"mongodb+srv://build.10gen.cc/", NULL, "build.10gen.cc:27017", 0, NULL, NULL, -1},
    {"mongodb+srv://test.build.10gen.cc/", NULL, "test.build.10gen.cc:27017", 0, NULL, NULL, -1},
    {"mongodb+srv://servfail.test.build.10gen.cc/", "timeout or SERVFAIL", NULL, 0, NULL, NULL, -1},
};

/* One case: parse, query the fake, apply; a description of the first mismatch or "". */
static void run_dns_case(const dns_case_t *c, const char *ns, char *why, size_t wsize)
{
    why[0] = 0;
    mqc_uri_t u;
    mqc_error_t e;
    if (!mqc_uri_parse(&u, c->uri, &e)) {
        snprintf(why, wsize, "parse: %s", e.message);
        return;
    }
    mqc_seedlist_records_t rec;
    bool ok = mqc_seedlist_query(u.srv_host, u.srv_service_name, ns, &rec, &e);
    if (ok) {
        mqc_rand_t rng;
        mqc_rand_seed(&rng, 1);
        ok = mqc_seedlist_apply(&u, &rec, mqc_rand_next, &rng, &e);
        mqc_seedlist_records_cleanup(&rec);
    }
    if (c->error) {
        if (ok) snprintf(why, wsize, "no error, expected one with \"%s\"", c->error);
        else if (!strstr(e.message, c->error)) snprintf(why, wsize, "error \"%s\" lacks \"%s\"", e.message, c->error);
        mqc_uri_cleanup(&u);
        return;
    }
    if (!ok) {
        snprintf(why, wsize, "error: %s", e.message);
        mqc_uri_cleanup(&u);
        return;
    }
    char seeds[1024] = "";
    for (size_t i = 0; i < u.n_hosts; i++)
        snprintf(seeds + strlen(seeds), sizeof seeds - strlen(seeds), "%s%s", i ? "," : "", u.hosts[i].host_and_port);
    if (c->seeds && strcmp(seeds, c->seeds)) snprintf(why, wsize, "seeds %s, expected %s", seeds, c->seeds);
    else if (c->num_seeds > 0 && (int) u.n_hosts != c->num_seeds)
        snprintf(why, wsize, "%zu seeds, expected %d", u.n_hosts, c->num_seeds);
    else if (c->replica_set && (!u.replica_set || strcmp(u.replica_set, c->replica_set)))
        snprintf(why, wsize, "replicaSet %s, expected %s", u.replica_set ? u.replica_set : "(none)", c->replica_set);
    else if (c->auth_source && strcmp(u.auth_source, c->auth_source))
        snprintf(why, wsize, "authSource %s, expected %s", u.auth_source, c->auth_source);
    else if (c->load_balanced >= 0 && u.load_balanced != (c->load_balanced == 1))
        snprintf(why, wsize, "loadBalanced %d, expected %d", u.load_balanced, c->load_balanced);
    else if (!u.tls)
        snprintf(why, wsize, "tls is off: mongodb+srv implies it");
    mqc_uri_cleanup(&u);
}

TEST("/srv/dns/spec_zone", srv_dns_spec_zone)
{
    fakedns_t *d = dns_start();
    add_spec_zone(d);
    snprintf(d->servfail, sizeof d->servfail, "_mongodb._tcp.servfail.test.build.10gen.cc");
    dns_run(d);
    char why[1200];
    int failed = 0;
    for (size_t i = 0; i < sizeof dns_cases / sizeof dns_cases[0]; i++) {
        run_dns_case(&dns_cases[i], dns_addr(d), why, sizeof why);
        if (why[0]) {
            tf_note("%s: %s", dns_cases[i].uri, why);
            failed++;
        }
    }
    int queries = atomic_load(&d->queries);
    dns_stop(d);
    ASSERT_EQ(failed, 0);
    ASSERT_GE(queries, (int) (sizeof dns_cases / sizeof dns_cases[0]));
}

TEST("/srv/dns/bad_nameserver", srv_dns_bad_nameserver)
{
    mqc_seedlist_records_t rec;
    mqc_error_t e;
    ASSERT(!mqc_seedlist_query("x.example.com", "mongodb", "not-an-address", &rec, &e));
    ASSERT_EQ(e.domain, MQC_ERROR_RESOLVE);
    ASSERT_STR_CONTAINS(e.message, "bad name server");
    ASSERT_EQ(rec.n_targets, 0);
}

/* ---- the asynchronous lookup --------------------------------------------------------------- */

typedef struct {
    int calls;
    size_t n_targets;
    char txt[128];
    mqc_error_t error;
} lookup_res_t;

static void on_lookup(void *ctx, mqc_seedlist_records_t *rec, const mqc_error_t *error)
{
    lookup_res_t *r = ctx;
    r->calls++;
    if (rec) {
        r->n_targets = rec->n_targets;
        snprintf(r->txt, sizeof r->txt, "%s", rec->txt ? rec->txt : "");
    } else {
        r->error = *error;
    }
}

TEST("/srv/dns/async", srv_dns_async)
{
    fakedns_t *d = dns_start();
    add_spec_zone(d);
    d->delay_ms = 50;
    dns_run(d);
    setenv("MQC_TEST_DNS", dns_addr(d), 1);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    mqc_worker_t *w = mqc_worker_new(loop);
    lookup_res_t r = {0}, r2 = {0};
    mqc_seedlist_lookup_t *l = mqc_seedlist_lookup_start(w, "test5.test.build.10gen.cc", "mongodb", on_lookup, &r);
    ASSERT_NOT_NULL(l);
    mqc_seedlist_lookup_t *l2 = mqc_seedlist_lookup_start(w, "test4.test.build.10gen.cc", "mongodb", on_lookup, &r2);
    ASSERT_NOT_NULL(l2);
    ASSERT_EQ(r.calls, 0); /* never from inside the start call */
    double t0 = tf_now();
    while ((r.calls == 0 || r2.calls == 0) && tf_now() - t0 < 10) ev_run(loop, EVRUN_ONCE);
    ASSERT_EQ(r.calls, 1);
    ASSERT_EQ(r.n_targets, 1);
    ASSERT_STR_EQ(r.txt, "replicaSet=repl0&authSource=thisDB");
    ASSERT_EQ(r2.calls, 1);
    ASSERT_EQ(r2.error.domain, MQC_ERROR_RESOLVE);
    ASSERT_STR_CONTAINS(r2.error.message, "_mongodb._tcp.test4.test.build.10gen.cc");

    /* Cancelled while DNS is slow: no callback; the thread lets go when its answers come. */
    lookup_res_t r3 = {0};
    int answered = atomic_load(&d->answered);
    mqc_seedlist_lookup_t *l3 = mqc_seedlist_lookup_start(w, "test1.test.build.10gen.cc", "mongodb", on_lookup, &r3);
    mqc_seedlist_lookup_cancel(w, l3);
    t0 = tf_now();
    while (atomic_load(&d->answered) < answered + 2 && tf_now() - t0 < 10) usleep(5000);
    ev_run(loop, EVRUN_NOWAIT);
    usleep(50000); /* the thread frees its half after the last answer */
    ASSERT_EQ(r3.calls, 0);
    mqc_worker_destroy(w);
    ASSERT_EQ(r3.calls, 0);
    unsetenv("MQC_TEST_DNS");
    ev_loop_destroy(loop);
    dns_stop(d);
}

/* ---- a client made from a mongodb+srv URI ----------------------------------------------------- */

static void ping(mqc_client_t *c, tf_res_t *r)
{
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    mqc_client_command(c, "admin", cmd, NULL, tf_res_cb, r);
    bson_destroy(cmd);
}

TEST("/srv/client/ping", srv_client_ping)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    fakedns_t *d = dns_start();
    dns_add(d, "_mongodb._tcp.db.0.1", T_SRV, fakesrv_port(s), "127.0.0.1");
    d->delay_ms = 150; /* the operation must wait for the seed list */
    dns_run(d);
    setenv("MQC_TEST_DNS", dns_addr(d), 1);
    mqc_error_t e;
    double t0 = tf_now();
    mqc_client_t *c = mqc_client_new_from_uri(NULL, "mongodb+srv://db.0.1/?tls=false", &e);
    ASSERT_MSG(c, "%s", e.message);
    double took = tf_now() - t0;
    ASSERT_MSG(took < 0.1, "creating the client took %.3f s: it must not wait for DNS", took);
    tf_res_t r = {0};
    ping(c, &r);
    ASSERT(mqc_client_run_until_idle(c, 20));
    ASSERT_EQ(r.calls, 1);
    ASSERT_MSG(!r.failed, "%s", r.error.message);
    /* it waited for both answers (SRV, then TXT, 150 ms each) */
    ASSERT_MSG(r.at - t0 >= 0.29, "the ping ended %.3f s after the client was made", r.at - t0);
    ASSERT_EQ(fakesrv_commands(s), 1);
    /* later operations go straight to the server */
    tf_res_t r2 = {0};
    ping(c, &r2);
    ASSERT(mqc_client_run_until_idle(c, 20));
    ASSERT_MSG(!r2.failed, "%s", r2.error.message);
    unsetenv("MQC_TEST_DNS");
    mqc_client_destroy(c);
    dns_stop(d);
    fakesrv_stop(s);
}

TEST("/srv/client/lookup_fails", srv_client_lookup_fails)
{
    fakedns_t *d = dns_start();
    dns_add(d, "_mongodb._tcp.db.0.1", T_SRV, 27017, "127.0.0.1");
    dns_add(d, "_mongodb._tcp.bad.0.1", T_SRV, 27017, "127.0.0.2.evil.com");
    dns_run(d);
    setenv("MQC_TEST_DNS", dns_addr(d), 1);
    mqc_error_t e;
    /* no such name: MQC_ERROR_RESOLVE naming the SRV name, for operations that waited and for
     * later ones */
    mqc_client_t *c = mqc_client_new_from_uri(NULL, "mongodb+srv://missing.0.1/?tls=false", &e);
    ASSERT_MSG(c, "%s", e.message);
    tf_res_t r = {0}, r2 = {0};
    ping(c, &r);
    ASSERT(mqc_client_run_until_idle(c, 20));
    ASSERT_EQ(r.calls, 1);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_RESOLVE);
    ASSERT_STR_CONTAINS(r.error.message, "_mongodb._tcp.missing.0.1");
    ping(c, &r2);
    ASSERT(mqc_client_run_until_idle(c, 20));
    ASSERT(r2.failed);
    ASSERT_EQ(r2.error.domain, MQC_ERROR_RESOLVE);
    mqc_client_destroy(c);

    /* a target outside the domain */
    c = mqc_client_new_from_uri(NULL, "mongodb+srv://bad.0.1/?tls=false", &e);
    ASSERT_MSG(c, "%s", e.message);
    tf_res_t r3 = {0};
    ping(c, &r3);
    ASSERT(mqc_client_run_until_idle(c, 20));
    ASSERT(r3.failed);
    ASSERT_EQ(r3.error.domain, MQC_ERROR_RESOLVE);
    ASSERT_STR_CONTAINS(r3.error.message, "127.0.0.2.evil.com");
    mqc_client_destroy(c);

    /* destroyed while the lookup runs: the operation fails with SHUTDOWN, nothing leaks */
    d->delay_ms = 100;
    int answered = atomic_load(&d->answered);
    c = mqc_client_new_from_uri(NULL, "mongodb+srv://db.0.1/?tls=false", &e);
    ASSERT_MSG(c, "%s", e.message);
    tf_res_t r4 = {0};
    ping(c, &r4);
    mqc_client_destroy(c);
    ASSERT_EQ(r4.calls, 1);
    ASSERT_EQ(r4.error.domain, MQC_ERROR_SHUTDOWN);
    double t0 = tf_now();
    while (atomic_load(&d->answered) < answered + 2 && tf_now() - t0 < 10) usleep(5000);
    usleep(50000);
    unsetenv("MQC_TEST_DNS");
    dns_stop(d);
}
