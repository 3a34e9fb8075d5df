#!/usr/bin/env python3
"""Opens an mqload HTML report in headless Chromium (Debian's package) and checks it as a person
would see it: no console errors or exceptions, every expected chart drawn (an <svg class="chart">
with drawn series of non-zero size), and keeps a full-page screenshot. Talks the DevTools
protocol over --remote-debugging-pipe (fds 3 and 4, NUL-separated JSON): no websocket, no npm.
usage: html_check.py REPORT.html SHOT.png [--charts a,b] [--series chart:name,...] [--text STR]...
                     [--errmarks N]   (at least N error marks of 4 px or more on the throughput chart)
exit 0 pass, 1 fail, 77 Chromium not installed"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe"]


class Browser:
    def __init__(self, exe, profile):
        r_ours, w_theirs = os.pipe()    # chromium writes on its fd 4
        r_theirs, w_ours = os.pipe()    # chromium reads its fd 3

        # preexec_fn runs before the child closes what pass_fds does not name: 3 and 4 are named.
        def fds():
            hi_r, hi_w = os.dup2(r_theirs, 100), os.dup2(w_theirs, 101)  # neither may be 3 or 4 when moved
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)
        self.proc = subprocess.Popen([exe] + FLAGS + ["--user-data-dir=" + profile, "about:blank"],
                                     pass_fds=(3, 4, r_theirs, w_theirs), preexec_fn=fds,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(r_theirs)
        os.close(w_theirs)
        self.r, self.w = os.fdopen(r_ours, "rb", buffering=0), os.fdopen(w_ours, "wb", buffering=0)
        self.buf = b""
        self.next_id = 0
        self.events = []

    def _read_msg(self, deadline):
        while b"\0" not in self.buf:
            if time.time() > deadline:
                raise TimeoutError("no answer from Chromium")
            chunk = self.r.read(65536)
            if not chunk:
                raise EOFError("Chromium closed the pipe: " + self.proc.stderr.read().decode(errors="replace")[-1500:])
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        m = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            m["sessionId"] = session
        self.w.write(json.dumps(m).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            r = self._read_msg(deadline)
            if r.get("id") == self.next_id:
                if "error" in r:
                    raise RuntimeError("%s: %s" % (method, r["error"]))
                return r.get("result", {})
            self.events.append(r)

    def wait_event(self, name, timeout=30):
        deadline = time.time() + timeout
        for e in self.events:
            if e.get("method") == name:
                return e
        while True:
            e = self._read_msg(deadline)
            self.events.append(e)
            if e.get("method") == name:
                return e

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


PROBE = r"""JSON.stringify({
  title: document.title,
  text: document.body.innerText,
  charts: [...document.querySelectorAll('svg.chart')].map(svg => {
    const r = svg.getBoundingClientRect();
    return {id: svg.dataset.chart, w: r.width, h: r.height,
            series: [...svg.querySelectorAll('.series')].map(e => {
              const b = e.getBBox();
              return {name: e.dataset.series, tag: e.tagName, w: b.width, h: b.height};
            }),
            errmarks: [...svg.querySelectorAll('.errmark')].map(e => e.getBBox().height)};
  })
})"""


def main():
    args = sys.argv[1:]
    html, shot = os.path.abspath(args[0]), args[1]
    want_charts, want_series, want_text, want_errmarks = [], [], [], 0
    i = 2
    while i < len(args):
        if args[i] == "--charts":
            want_charts = args[i + 1].split(",")
        elif args[i] == "--series":
            want_series = [tuple(s.split(":", 1)) for s in args[i + 1].split(",")]
        elif args[i] == "--text":
            want_text.append(args[i + 1])
        elif args[i] == "--errmarks":
            want_errmarks = int(args[i + 1])
        i += 2
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        print("html_check: chromium is not installed (Debian package chromium; scripts/install-deps)")
        return 77
    profile = tempfile.mkdtemp(prefix="mqload-chromium-")
    b = Browser(exe, profile)
    try:
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        sess = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for m in ("Page.enable", "Runtime.enable", "Log.enable"):
            b.send(m, session=sess)
        b.send("Emulation.setDeviceMetricsOverride", {"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False},
               session=sess)
        b.events.clear()
        b.send("Page.navigate", {"url": "file://" + html}, session=sess)
        b.wait_event("Page.loadEventFired")
        probe = json.loads(b.send("Runtime.evaluate", {"expression": PROBE, "returnByValue": True}, session=sess)["result"]["value"])
        height = int(b.send("Page.getLayoutMetrics", session=sess)["cssContentSize"]["height"]) + 1
        b.send("Emulation.setDeviceMetricsOverride", {"width": 1200, "height": min(height, 16000), "deviceScaleFactor": 1,
                                                       "mobile": False}, session=sess)
        png = base64.b64decode(b.send("Page.captureScreenshot", {"format": "png"}, session=sess)["data"])
        os.makedirs(os.path.dirname(os.path.abspath(shot)), exist_ok=True)
        with open(shot, "wb") as f:
            f.write(png)
        # Anything the page said at error level, and any uncaught exception.
        problems = []
        for e in b.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert", "warning"):
                problems.append("console.%s: %s" % (p["type"], [a.get("value", a.get("description")) for a in p.get("args", [])]))
            elif m == "Runtime.exceptionThrown":
                problems.append("exception: %s" % p.get("exceptionDetails", {}).get("text"))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
                problems.append("log %s: %s" % (p["entry"]["level"], p["entry"].get("text")))
    finally:
        b.close()
        shutil.rmtree(profile, ignore_errors=True)

    charts = {c["id"]: c for c in probe["charts"]}
    print("page %r, %d bytes of screenshot (%d px high) in %s" % (probe["title"], len(png), height, shot))
    for c in probe["charts"]:
        print("chart %-12s %4.0fx%-4.0f series %s errmarks %s" % (c["id"], c["w"], c["h"],
              ["%s %.0fx%.0f" % (s["name"], s["w"], s["h"]) for s in c["series"]], ["%.0f" % h for h in c["errmarks"]]))
    print("console/log problems: %d" % len(problems))
    bad = list(problems)
    for cid in want_charts:
        c = charts.get(cid)
        if not c:
            bad.append("chart %s is missing" % cid)
        elif c["w"] < 300 or c["h"] < 100:
            bad.append("chart %s is drawn %.0fx%.0f px" % (cid, c["w"], c["h"]))
        elif not any(s["w"] > 50 for s in c["series"]):
            bad.append("chart %s has no drawn series" % cid)
    for cid, name in want_series:
        c = charts.get(cid, {"series": []})
        if not any(s["name"] == name and s["w"] > 0 for s in c["series"]):
            bad.append("chart %s has no drawn series %s" % (cid, name))
    marks = [h for h in charts.get("throughput", {"errmarks": []})["errmarks"] if h >= 3.99]
    if len(marks) < want_errmarks:
        bad.append("%d error marks of 4 px or more on the throughput chart, %d expected" % (len(marks), want_errmarks))
    for t in want_text:
        if t not in probe["text"]:
            bad.append("the page does not show %r" % t)
    if bad:
        print("html_check: FAILED:\n  " + "\n  ".join(bad))
        return 1
    print("html_check: rendered without console errors, every chart drawn")
    return 0


if __name__ == "__main__":
    sys.exit(main())
