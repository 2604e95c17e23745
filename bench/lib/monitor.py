#!/usr/bin/env python3
"""Sample memory and CPU of a server's process trees (and optionally the load generator) while a benchmark runs.

    monitor.py sample --pids "P1 P2" [--client-pid P] --out samples.jsonl --stop-file F [--interval 0.5] [--max-seconds 900]
    monitor.py summarize samples.jsonl T_LOAD_START T_LOAD_END T_DRAIN_END

`sample`: every interval, collect all live descendants of the given root PIDs (and of --client-pid) (e.g. gunicorn master + its workers,
snappea foreman), and record the sum of their RSS and PSS (from /proc/PID/status and /proc/PID/smaps_rollup), the sum of
their utime+stime, the client's utime+stime, and the machine-wide /proc/stat counters. Stops when the stop file exists,
when all root PIDs are gone, or after --max-seconds.
`quiet S`: machine-wide busy % over S seconds (used to wait for an idle box before a run).
`rss "P1 P2"`: RSS in MB summed over the process trees of the given root PIDs, right now (idle memory).
`summarize`: peak RSS/PSS, and average CPU (percent of ONE core; 100% x ncores = machine saturated) for the load phase
[T_LOAD_START, T_LOAD_END] and the drain phase [T_LOAD_END, T_DRAIN_END] (epoch seconds).
"""
import json
import os
import sys
import time

CLK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count()


def read_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    rest = s[s.rfind(")") + 2:].split()
    ppid = int(rest[1])
    ticks = int(rest[11]) + int(rest[12])  # utime + stime
    return ppid, ticks


def mem(pid):
    rss = pss = 0
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def machine():
    """(total, idle+iowait, irq+softirq, steal) jiffies from the first line of /proc/stat (guest is inside user)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v), v[3] + v[4], v[5] + v[6], v[7]


def tree(roots, client_root=None):
    parent, ticks = {}, {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                p, t = read_stat(int(d))
            except OSError:
                continue
            parent[int(d)] = p
            ticks[int(d)] = t
    def closure(rs):
        members = set(r for r in rs if r in parent)
        changed = True
        while changed:
            changed = False
            for pid, pp in parent.items():
                if pp in members and pid not in members:
                    members.add(pid)
                    changed = True
        return members
    return closure(roots), closure([client_root] if client_root else []), ticks


def sample(args):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--pids", required=True)
    ap.add_argument("--client-pid", type=int)
    ap.add_argument("--out", required=True)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--max-seconds", type=float, default=900)
    a = ap.parse_args(args)
    roots = [int(p) for p in a.pids.split()]
    t_end = time.time() + a.max_seconds
    with open(a.out, "w") as out:
        while time.time() < t_end and not os.path.exists(a.stop_file):
            members, client, ticks = tree(roots, a.client_pid)
            if not members:
                break
            rss = pss = 0
            for pid in members:
                r, p = mem(pid)
                rss += r
                pss += p
            tot, idle, irq, steal = machine()
            rec = {"t": time.time(), "n": len(members), "rss_kb": rss, "pss_kb": pss,
                   "ticks": sum(ticks.get(p, 0) for p in members),
                   "client_ticks": sum(ticks.get(p, 0) for p in client),
                   "m_total": tot, "m_idle": idle, "m_irq": irq, "m_steal": steal}
            out.write(json.dumps(rec) + "\n")
            out.flush()
            time.sleep(a.interval)


def phase(samples, t0, t1):
    s = [x for x in samples if t0 <= x["t"] <= t1]
    if len(s) < 2:
        return None
    a, b = s[0], s[-1]
    dt = b["t"] - a["t"]
    # server ticks: sum of per-sample positive increments (robust to processes exiting/respawning)
    srv = sum(max(0, y["ticks"] - x["ticks"]) for x, y in zip(s, s[1:]))
    cli = sum(max(0, y["client_ticks"] - x["client_ticks"]) for x, y in zip(s, s[1:]))
    mt, mi = b["m_total"] - a["m_total"], b["m_idle"] - a["m_idle"]
    busy = (1 - mi / mt) if mt else 0.0
    irq = (b.get("m_irq", 0) - a.get("m_irq", 0)) / mt if mt else 0.0
    steal = (b.get("m_steal", 0) - a.get("m_steal", 0)) / mt if mt else 0.0
    server_pct, client_pct = 100.0 * srv / CLK / dt, 100.0 * cli / CLK / dt
    return {
        "seconds": round(dt, 2),
        "server_cpu_pct_of_one_core": round(server_pct, 1),
        "client_cpu_pct_of_one_core": round(client_pct, 1),
        "machine_busy_pct": round(100.0 * busy, 1),
        # everything else on the box (monitor, stored-count polling, kernel threads, OTHER WORKLOADS): if this is
        # large, the run was contended and its figures are not comparable
        "other_cpu_pct_of_one_core": round(100.0 * busy * NCPU - server_pct - client_pct, 1),
        # ...of which: irq+softirq time (loopback TCP is largely softirq; not charged to any process) and steal
        "irq_softirq_pct_of_one_core": round(100.0 * irq * NCPU, 1),
        "steal_pct_of_one_core": round(100.0 * steal * NCPU, 1),
        "other_processes_pct_of_one_core": round(100.0 * (busy - irq - steal) * NCPU - server_pct - client_pct, 1),
        "peak_rss_mb": round(max(x["rss_kb"] for x in s) / 1024, 1),
        "peak_pss_mb": round(max(x["pss_kb"] for x in s) / 1024, 1),
        "max_procs": max(x["n"] for x in s),
    }


def summarize(args):
    path, t0, t1, t2 = args[0], float(args[1]), float(args[2]), float(args[3])
    samples = [json.loads(l) for l in open(path) if l.strip()]
    res = {"ncpu": NCPU,
           "load": phase(samples, t0, t1), "drain": phase(samples, t1, t2), "all": phase(samples, t0, t2)}
    if samples:
        res["peak_rss_mb"] = round(max(x["rss_kb"] for x in samples) / 1024, 1)
        res["peak_pss_mb"] = round(max(x["pss_kb"] for x in samples) / 1024, 1)
    print(json.dumps(res))


def quiet(args):
    """quiet SECONDS: print the machine-wide busy percentage (0-100, all cores) over SECONDS."""
    secs = float(args[0]) if args else 2.0
    t0, i0, _, _ = machine()
    time.sleep(secs)
    t1, i1, _, _ = machine()
    print(round(100.0 * (1 - (i1 - i0) / (t1 - t0)), 1) if t1 > t0 else 0.0)


def rss(args):
    """rss "P1 P2": print the RSS (MB) summed over the process trees of the given root PIDs."""
    members, _, _ = tree([int(p) for p in " ".join(args).split()])
    print(round(sum(mem(p)[0] for p in members) / 1024, 1))


if __name__ == "__main__":
    {"sample": sample, "summarize": summarize, "quiet": quiet, "rss": rss}[sys.argv[1]](sys.argv[2:])
