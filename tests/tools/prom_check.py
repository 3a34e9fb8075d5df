#!/usr/bin/env python3
"""A real Prometheus scrapes a live mqload run, and its rate is read back through Prometheus'
HTTP API. Stdlib only. Starts (and always stops) stubd, Prometheus and mqload on loopback ports.
usage: prom_check.py MQLOAD STUBD WORKDIR   (exit 0 pass, 1 fail, 77 Prometheus not installed)"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

RATE = 200          # the fixed arrival rate the run asks for (ops/s)
DURATION = 9        # seconds measured


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def query(base, q):
    _, body = get(base + "/api/v1/query?" + urllib.parse.urlencode({"query": q}))
    d = json.loads(body)
    if d.get("status") != "success":
        raise RuntimeError("query %s: %s" % (q, body[:300]))
    return d["data"]["result"]


def main():
    mqload, stubd, work = sys.argv[1], sys.argv[2], sys.argv[3]
    prom = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not os.access(prom, os.X_OK):
        print("prom_check: prometheus is not installed (Debian package prometheus; scripts/install-deps)")
        return 77
    os.makedirs(work, exist_ok=True)
    procs = []
    try:
        stub = subprocess.Popen([stubd, "--port", "0", "--delay-us", "500"], stdout=subprocess.PIPE, text=True)
        procs.append(stub)
        stub_port = int(stub.stdout.readline().strip())
        mport, pport = free_port(), free_port()
        cfg = os.path.join(work, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
                    "scrape_configs:\n  - job_name: mqload\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % mport)
        plog = open(os.path.join(work, "prometheus.log"), "w")
        p = subprocess.Popen([prom, "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(work, "tsdb-%d" % pport),
                              "--web.listen-address=127.0.0.1:%d" % pport, "--log.level=warn"],
                             stdout=plog, stderr=subprocess.STDOUT)
        procs.append(p)
        base = "http://127.0.0.1:%d" % pport
        deadline = time.time() + 60
        while True:
            try:
                if get(base + "/-/ready", 1)[0] == 200:
                    break
            except Exception:
                pass
            if p.poll() is not None or time.time() > deadline:
                print("prom_check: Prometheus did not become ready; its log:\n" + open(plog.name).read()[-2000:])
                return 1
            time.sleep(0.2)
        # Prometheus hands new targets to its scrapers every 5 s: wait for the first scrape (of a
        # target not up yet) so that the whole run is scraped.
        while True:
            tg = json.loads(get(base + "/api/v1/targets")[1])["data"]["activeTargets"]
            if tg and tg[0].get("health") not in (None, "", "unknown"):
                break
            if time.time() > deadline:
                print("prom_check: Prometheus never scraped its target: %s" % tg)
                return 1
            time.sleep(0.2)
        mlog = open(os.path.join(work, "mqload.out"), "w")
        m = subprocess.Popen([mqload, "--uri", "mongodb://127.0.0.1:%d/?directConnection=true" % stub_port,
                              "--mix", "find=3,update=1", "-R", str(RATE), "-d", str(DURATION), "--warmup", "0.5", "-c", "50",
                              "--no-progress", "--metrics-listen", "127.0.0.1:%d" % mport],
                             stdout=mlog, stderr=subprocess.STDOUT)
        procs.append(m)
        t_start = time.time()
        # Let Prometheus scrape a few seconds of steady load, then ask for the rate.
        time.sleep(DURATION - 2)
        raw = query(base, 'mqload_operations_completed_total{job="mqload"}[8s]')
        print("%.1f s after mqload started, samples of the last 8 s: %s"
              % (time.time() - t_start, [[v[1] for v in r["values"]] for r in raw]))
        rate = query(base, 'rate(mqload_operations_completed_total{job="mqload"}[4s])')
        up = query(base, 'up{job="mqload"}')
        by_op = query(base, 'sum by (op) (rate(mqload_measured_operations_total{job="mqload"}[4s]))')
        target = query(base, 'mqload_target_rate{job="mqload"}')
        p99 = query(base, 'histogram_quantile(0.99, rate(mqload_latency_seconds_bucket{job="mqload"}[4s]))')
        _, tbody = get(base + "/api/v1/targets")
        tgt = json.loads(tbody)["data"]["activeTargets"]
        rc = m.wait(timeout=DURATION + 30)
        print("targets: %s" % [(t["scrapeUrl"], t["health"], t.get("lastError", "")) for t in tgt])
        print("up: %s" % [r["value"][1] for r in up])
        print("rate(mqload_operations_completed_total[4s]): %s ops/s (asked for %d)" % ([r["value"][1] for r in rate], RATE))
        print("mqload_target_rate: %s" % [r["value"][1] for r in target])
        print("sum by (op) (rate(mqload_measured_operations_total[4s])): %s"
              % {r["metric"].get("op"): r["value"][1] for r in by_op})
        print("histogram_quantile(0.99, ...): %s s" % [r["value"][1] for r in p99])
        print("mqload exit %d" % rc)
        bad = []
        if rc != 0:
            bad.append("mqload exited %d:\n%s" % (rc, open(mlog.name).read()[-2000:]))
        if not up or up[0]["value"][1] != "1":
            bad.append("the target is not up: %s" % tgt)
        if not rate:
            bad.append("no rate: Prometheus has no samples of mqload_operations_completed_total")
        else:
            v = float(rate[0]["value"][1])
            if not (RATE * 0.8 <= v <= RATE * 1.2):
                bad.append("rate %.1f ops/s is not within 20%% of the %d asked for" % (v, RATE))
        per_op = {r["metric"].get("op"): float(r["value"][1]) for r in by_op}
        if set(per_op) != {"find", "update"} or not (per_op["find"] > per_op["update"] > 0):
            bad.append("per-operation rates %s: expected find (3/4 of the mix) above update (1/4)" % per_op)
        elif not (RATE * 0.8 <= per_op["find"] + per_op["update"] <= RATE * 1.2):
            bad.append("per-operation rates %s do not add up to about %d" % (per_op, RATE))
        if not target or float(target[0]["value"][1]) != RATE:
            bad.append("mqload_target_rate %s != %d" % (target, RATE))
        if not p99 or not (0.0005 <= float(p99[0]["value"][1]) <= 1.0):
            bad.append("p99 from the scraped histogram %s is not between the server's 0.5 ms delay and 1 s" % p99)
        if bad:
            print("prom_check: FAILED:\n  " + "\n  ".join(bad))
            return 1
        print("prom_check: Prometheus scraped the live run and its rate matches")
        return 0
    finally:
        for pr in reversed(procs):
            if pr.poll() is None:
                pr.send_signal(signal.SIGTERM)
                try:
                    pr.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pr.kill()
                    pr.wait()


if __name__ == "__main__":
    sys.exit(main())
