#!/usr/bin/env python3
"""Print the markdown report of a bench/run.sh run from its results.jsonl (or several).

    bench/lib/results_table.py /tmp/sentry-bench/results/<run>/results.jsonl

Sections: the machine, one row per load cell (ours, the ceiling, Bugsink), memory and disk per server, ratios
(ours / ceiling, ours / Bugsink, from the SAME run) and the issue's goals. Records written by bench/ingest_bench.sh
alone (no "system" field) are shown with the system taken from their label.
"""
import json
import sys


def fmt(v):
    if v is None or v == "":
        return "-"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return "{:,.0f}".format(v)
        return "{:.2f}".format(v) if abs(v) < 10 else "{:.1f}".format(v)
    if isinstance(v, int):
        return "{:,}".format(v)
    return str(v)


def table(cols, rows):
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(fmt(x) for x in r) + " |")
    return "\n".join(out)


def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


def main(paths):
    cells, servers, runs, ends, lags = [], [], [], [], []
    for path in paths:
        for line in open(path):
            if not line.strip():
                continue
            d = json.loads(line)
            kind = d.get("kind", "cell")
            {"cell": cells, "server": servers, "run": runs, "run_end": ends, "apply_lag": lags}.get(kind, []).append(d)
    for c in cells:
        c.setdefault("system", c["label"].split("-")[0])

    print("## Machine\n")
    for r in runs:
        print("- run %s: git %s (%d modified tracked files), sentry binary built %s, %d cores, %s s per cell, %s bodies"
              % (r["when"], r["git_rev"], r["git_modified_files"], r["sentry_bin_built"], r["nproc"],
                 r["duration_s"], r["encoding"]))
        print("- `uptime` at start: %s" % r["uptime_start"])
        if r.get("fdatasync_ms"):
            print("- fdatasync of a 4 KiB write where the data dirs live: p50 %s ms, p99 %s ms (with ack after commit, "
                  "N connections in a closed loop can't exceed about N / commit time)"
                  % (r["fdatasync_ms"]["p50"], r["fdatasync_ms"]["p99"]))
    for e in ends:
        print("- `uptime` at end:   %s" % e["uptime_end"])
    print("- per cell below: *load 1m* = load average before the cell, *busy before* = whole-box CPU busy % in the 3 s "
          "before it, *other procs* = CPU of everything else on the box during the load (% of one core; 100 = one "
          "core taken from us)\n")

    print("## Load cells\n")
    cols = ["system", "payload", "conns", "paced at /s", "accepted env/s", "stored events/s", "stored env/s",
            "events/env", "non-2xx", "sock err", "p50 ms", "p99 ms", "max ms", "peak RSS MB", "server CPU %",
            "client CPU %", "other procs %", "load 1m", "busy before %", "drain"]
    rows = []
    for c in cells:
        s = c.get("stored") or {}
        r = (c.get("resources") or {}).get("load") or {}
        non2 = {k: v for k, v in c["by_status"].items() if not k.startswith("2")}
        sock = {k: v for k, v in c["socket_errors"].items() if v}
        rows.append([c["system"], c["payload"], c["concurrency"], c.get("target_rate_per_s"), c["accepted_per_s"],
                     s.get("stored_per_s"), s.get("envelopes_per_s"), s.get("events_per_envelope"),
                     json.dumps(non2) if non2 else "-", json.dumps(sock) if sock else "-",
                     c["latency_ms"]["p50"], c["latency_ms"]["p99"], c["latency_ms"]["max"],
                     (c.get("resources") or {}).get("peak_rss_mb"), r.get("server_cpu_pct_of_one_core"),
                     r.get("client_cpu_pct_of_one_core"), r.get("other_processes_pct_of_one_core"),
                     (c.get("loadavg_before") or [None])[0], c.get("machine_busy_before_pct"), s.get("drain")])
    print(table(cols, rows))
    print()

    if servers:
        print("## Memory and disk per server\n")
        cols = ["system", "payload", "idle RSS MB before load", "idle RSS MB after load", "stored events",
                "db+wal bytes", "bytes/event (db+wal)", "bytes/event after stop", "server-side statuses"]
        rows = [[s["system"], s["payload"], s.get("idle_rss_mb_before_load"), s.get("idle_rss_mb_after_load"),
                 s.get("stored_events"), (s.get("db_bytes") or 0) + (s.get("wal_bytes") or 0), s.get("bytes_per_event"),
                 s.get("bytes_per_event_after_stop"), json.dumps(s["server_statuses"]) if s.get("server_statuses") else "-"]
                for s in servers]
        print(table(cols, rows))
        print()

    if lags:
        print("## Apply lag: acknowledged (in the spool) to stored (in the database)\n")
        print(table(["cell", "events", "p50 <= s", "p99 <= s"],
                    [[l["label"], l["events"], l["p50_le_s"], l["p99_le_s"]] for l in lags]))
        print()

    def cell(system, payload, conns, paced=False):
        found = [c for c in cells if c["system"] == system and c["payload"] == payload and c["concurrency"] == conns
                 and bool(c.get("target_rate_per_s")) == paced]
        return found[-1] if found else None

    def stored(c):
        return ((c or {}).get("stored") or {}).get("stored_per_s")

    def p99(c):
        return c["latency_ms"]["p99"] if c else None

    print("## Ratios (same run)\n")
    rows = []
    for payload in sorted({c["payload"] for c in cells if c["system"] == "sentry"}):
        for n in (8, 64):
            ours = cell("sentry", payload, n)
            ceil = cell("ceiling", payload, n) or cell("ceiling", "exception", n)
            if ours and ceil:
                rows.append(["sentry / ceiling accepted/s", "%s c%d (ceiling: %s)" % (payload, n, ceil["payload"]),
                             ours["accepted_per_s"], ceil["accepted_per_s"], ratio(ours["accepted_per_s"], ceil["accepted_per_s"])])
    for c in sorted({c["concurrency"] for c in cells if c["system"] == "bugsink"}):
        ours, bs = cell("sentry", "exception", c), cell("bugsink", "exception", c)
        if ours and bs:
            rows.append(["sentry / Bugsink accepted/s", "exception c%d" % c, ours["accepted_per_s"],
                         bs["accepted_per_s"], ratio(ours["accepted_per_s"], bs["accepted_per_s"])])
            rows.append(["sentry / Bugsink stored events/s", "exception c%d" % c, stored(ours), stored(bs),
                         ratio(stored(ours), stored(bs))])
            rows.append(["Bugsink / sentry p99 ms", "exception c%d" % c, p99(ours), p99(bs), ratio(p99(bs), p99(ours))])
            rows.append(["Bugsink / sentry peak RSS MB", "exception c%d" % c, ours["resources"].get("peak_rss_mb"),
                         bs["resources"].get("peak_rss_mb"),
                         ratio(bs["resources"].get("peak_rss_mb"), ours["resources"].get("peak_rss_mb"))])
    if rows:
        print(table(["ratio", "cell", "sentry", "other", "ratio"], rows))
    else:
        print("(no ceiling or Bugsink cells in this run)")
    print()

    print("## Goals\n")
    ours = [c for c in cells if c["system"] == "sentry"]
    sv = [s for s in servers if s["system"] == "sentry"]
    goals = []

    def goal(name, value, ok, note=""):
        goals.append([name, value, "-" if ok is None else ("PASS" if ok else "FAIL"), note])

    e8 = cell("sentry", "exception", 8)
    v = stored(e8)
    goal("stored/s, exception, 8 conns >= 20,000", v, None if v is None else v >= 20000)
    b8 = cell("bugsink", "exception", 8)
    goal("ratio to Bugsink (stored/s, exception, 8 conns)", ratio(v, stored(b8)), None,
         "" if b8 else "Bugsink not run (--with-bugsink)")
    for payload in sorted({c["payload"] for c in ours}):
        o64 = cell("sentry", payload, 64)
        c64 = cell("ceiling", payload, 64) or cell("ceiling", "exception", 64)
        if o64 and c64:
            r = ratio(o64["accepted_per_s"], c64["accepted_per_s"])
            goal("accepted/s >= 50%% of the ceiling, 64 conns (%s)" % payload, r, r >= 0.5)
    a80 = next((c for c in ours if c.get("label", "").endswith("exception-c64-at80")), None)
    if a80:
        goal("ack p99 < 10 ms, 64 conns, paced at 80% of max (exception)", a80["latency_ms"]["p99"],
             a80["latency_ms"]["p99"] < 10, "achieved %s of %s req/s" % (fmt(a80["accepted_per_s"]),
                                                                        fmt(a80["target_rate_per_s"])))
    l50 = next((l for l in lags if l["label"].endswith("exception-c64-at50")), None)
    if l50:
        goal("apply lag p99 < 1 s, 64 conns, paced at 50% of max (exception)", l50["p99_le_s"],
             l50["p99_le_s"] is not None and l50["p99_le_s"] <= 1, "upper bound of the histogram bucket")
    peak = max((c["resources"].get("peak_rss_mb") or 0 for c in ours if c.get("resources")), default=None)
    goal("peak RSS < 300 MB (max over our cells)", peak, None if peak is None else peak < 300)
    idle = max((s["idle_rss_mb_before_load"] for s in sv), default=None)
    goal("idle RSS < 40 MB (before load, max over payloads)", idle, None if idle is None else idle < 40)
    idle_after = max((s.get("idle_rss_mb_after_load") or 0 for s in sv), default=None)
    goal("(info) idle RSS after load", idle_after, None, "memory kept after a burst")
    for s in sv:
        if s["payload"] == "exception":
            goal("disk <= 300 B per stored exception event (db+wal after stop, spool applied)",
                 s["bytes_per_event_after_stop"], s["bytes_per_event_after_stop"] <= 300,
                 "while running: %s B" % fmt(s["bytes_per_event"]))
    goal("dashboard stream query p95 at 50% ingest load", None, None, "measured by bench/stream_under_load.sh, not by this run")
    print(table(["goal", "value", "", "note"], goals))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1:])
