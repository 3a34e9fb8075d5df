#!/usr/bin/env python3
"""Decodes an mqload .hlog with the `hdrhistogram` package (HdrHistogram's Python port, an
implementation independent of mqload's) and checks it against mqload's JSON result of the same run:
- the sum of the untagged interval histograms has the run's count of successful operations (the
  log, like the report's table, holds the successes only), and the same count in every bucket;
  each operation's tagged intervals ("Tag=find") add up to that operation's histogram;
- each percentile of the report lies in the bucket that the decoded histogram gives for it
  (mqload's nearest rank, ceil(q * n)), and HdrHistogram's own getValueAtPercentile is the top of
  that bucket (of its own rank, int(q * n + 0.5), where the two ranks differ).
usage: hlog_check.py RUN.hlog RUN.json   (exit 0: agree, 1: disagree, 77: hdrhistogram missing)"""
import json
import math
import sys

try:
    from hdrh.histogram import HdrHistogram
    from hdrh.log import HistogramLogReader
except ImportError:
    print("hlog_check: the hdrhistogram package is not installed (scripts/install-deps makes its venv)")
    sys.exit(77)

hlog_path, json_path = sys.argv[1], sys.argv[2]
with open(json_path) as f:
    res = json.load(f)

ref = HdrHistogram(1, 1 << 43, 2)
reader = HistogramLogReader(hlog_path, ref)
total = HdrHistogram(1, 1 << 43, 2)
tagged = {}
intervals = 0
while True:
    h = reader.get_next_interval_histogram()
    if h is None:
        break
    tag = h.get_tag()
    if tag is None:
        total.add(h)
        intervals += 1
    else:
        tagged.setdefault(tag, HdrHistogram(1, 1 << 43, 2)).add(h)
reader.close()

bad = []
n = total.get_total_count()
print("intervals %d, count %d (report: %d successful, %d failed, %d seconds in the timeline)"
      % (intervals, n, res["ok"], res["errors"], len(res["timeline"])))
if intervals != len(res["timeline"]):
    bad.append("interval count %d != timeline length %d" % (intervals, len(res["timeline"])))
if n != res["ok"]:
    bad.append("count %d != successful operations %d" % (n, res["ok"]))

# Bucket for bucket: the JSON's histogram is [index, count] in mqload's layout, which is
# HdrHistogram's counts index (1 ns unit, 2 significant digits).
want = {int(i): int(c) for i, c in res["histogram"]["buckets"]}
got = {i: total.get_count_at_index(i) for i in range(total.counts_len) if total.get_count_at_index(i)}
if want != got:
    diff = sorted(set(want.items()) ^ set(got.items()))[:5]
    bad.append("bucket counts differ, e.g. %s" % diff)


def buckets(h):
    return {i: h.get_count_at_index(i) for i in range(h.counts_len) if h.get_count_at_index(i)}


# Each operation's tagged intervals add up to its histogram in the report.
if set(tagged) != set(res["ops"]) - {k for k, v in res["ops"].items() if not v["ok"]}:
    bad.append("tags %s, operations %s" % (sorted(tagged), sorted(res["ops"])))
for name, h in tagged.items():
    op = res["ops"].get(name)
    want_op = {int(i): int(c) for i, c in op["histogram"]["buckets"]} if op else None
    same = want_op == buckets(h)
    print("Tag=%-10s count %d (report %s) buckets %s" % (name, h.get_total_count(), op and op["ok"],
                                                          "equal" if same else "DIFFER"))
    if not same:
        bad.append("Tag=%s: the tagged intervals do not add up to the operation's histogram" % name)


def bucket_of_rank(h, rank):
    """The bucket [low, high] of the rank-th smallest value."""
    seen = 0
    for i in range(h.counts_len):
        seen += h.get_count_at_index(i)
        if seen >= rank:
            v = h.get_value_from_index(i)
            return h.get_lowest_equivalent_value(v), h.get_highest_equivalent_value(v)
    return None


lat = res["latency_us"]
for key, val in lat.items():
    if not key.startswith("p"):
        continue
    q = float(key[1:].replace("_", ".")) / 100.0
    rep_ns = val * 1e3
    # mqload's rank: the nearest rank ceil(q * n). HdrHistogram's: int(q * n + 0.5).
    rank = max(1, math.ceil(q * n - 1e-9))
    hdr_rank = max(1, int(q * n + 0.5))
    low, high = bucket_of_rank(total, rank)
    hdr_ns = total.get_value_at_percentile(q * 100.0)
    ok = low - 0.5 <= rep_ns <= high + 0.5
    if hdr_rank == rank:
        # Same rank: HdrHistogram's own answer is the top of the very bucket the report's value is in.
        ok = ok and hdr_ns == high
        note = "same rank"
    else:
        # Ranks differ by one (HdrHistogram rounds): its answer is the top of that rank's bucket.
        ok = ok and hdr_ns == bucket_of_rank(total, hdr_rank)[1]
        note = "rank %d vs %d" % (hdr_rank, rank)
    print("%-7s report %12.3f us  hlog bucket [%.3f, %.3f] us  HdrHistogram %12.3f us (%s)  %s"
          % (key, val, low / 1e3, high / 1e3, hdr_ns / 1e3, note, "ok" if ok else "MISMATCH"))
    if not ok:
        bad.append("%s: report %.3f us, decoded bucket [%.3f, %.3f] us, HdrHistogram %.3f us"
                   % (key, val, low / 1e3, high / 1e3, hdr_ns / 1e3))
mx = total.get_max_value()
if not (total.get_lowest_equivalent_value(mx) <= lat["max"] * 1e3 + 0.5 <= mx + 1):
    bad.append("max %.3f us outside the decoded top bucket ending at %.3f us" % (lat["max"], mx / 1e3))
print("max     report %12.3f us  HdrHistogram %12.3f us" % (lat["max"], mx / 1e3))
if bad:
    print("hlog_check: FAILED:\n  " + "\n  ".join(bad))
    sys.exit(1)
print("hlog_check: the hlog decodes to the report's counts and percentiles")
