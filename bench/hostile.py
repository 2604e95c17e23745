#!/usr/bin/env python3
"""What a hostile or careless client costs the server: a benchmark, not a test (it reports).

    bench/hostile.py [--sentry target/release/sentry] [--sockets 30000] [--logins 200]

Starts the real binary on a fresh data directory (request timeout 5 s), then:

1. idle sockets: opens --sockets connections that send nothing (from several loopback source
   addresses, with this process's and the server's file limit raised), polls /healthz every
   100 ms meanwhile, and reports the server's open descriptors at most (its cap is 10,000
   connections), /healthz's slowest answer, and how many of the idle sockets the server had
   closed 3 s after its timeout;
2. the issue page of an event with the most tags an event keeps (200 of the 20,000 it sent):
   its render time, p50 and max of 20 loads;
3. worst single requests of at most the body limit: the server's CPU time (from /proc) and the
   wall time of each, and a normal event's latency while two of them run;
4. --logins concurrent wrong passwords for one account: how many were hashed
   (`sentry_login_hashes_total`), their statuses, and the server's RSS growth.

Needs python3 only (stdlib). Prints one table per part.
"""
import argparse
import http.client
import json
import os
import re
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def raise_nofile():
    """As many open files as allowed (root may raise the hard limit too)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for want in (1 << 20, 262144, 65536, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return
        except (ValueError, OSError):
            continue


class Server:
    def __init__(self, binary, work):
        self.port = free_port()
        self.work = work
        self.config = os.path.join(work, "sentry.toml")
        with open(self.config, "w") as f:
            f.write('bind = "127.0.0.1:%d"\ndata_dir = "%s"\n\n[ingest]\nrequest_timeout_secs = 5\n'
                    % (self.port, os.path.join(work, "data")))
        self.binary = binary
        project = json.loads(self.cli("project", "create", "hostile", "--json"))
        self.project_id = project["id"]
        self.key = urllib.parse.urlsplit(project["dsn"]).username
        self.cli("user", "create", "owner@example.com", "--admin", "--password-stdin", stdin="correct horse battery\n")
        self.log = open(os.path.join(work, "server.log"), "w")
        self.proc = subprocess.Popen([binary, "--config", self.config, "start", "--no-daemon"], stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=raise_nofile)
        for _ in range(100):
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit("the server did not start; see %s" % self.log.name)

    def cli(self, *args, stdin=None):
        out = subprocess.run([self.binary, "--config", self.config, *args], input=stdin, capture_output=True,
                             text=True, check=True)
        return out.stdout

    def request(self, method, path, body=b"", headers=None, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, r.getheaders(), data

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def auth(self):
        return {"X-Sentry-Auth": "Sentry sentry_key=%s, sentry_version=7" % self.key}

    def metric(self, name):
        text = self.get("/metrics")[2].decode()
        m = re.search(r"^%s (\S+)" % re.escape(name), text, re.M)
        return float(m.group(1)) if m else 0.0

    def cpu_seconds(self):
        fields = open("/proc/%d/stat" % self.proc.pid).read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self):
        for line in open("/proc/%d/status" % self.proc.pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


def table(cols, rows):
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")
    print()


def hold_idle(port, first, count, wait, results):
    """In a process of its own (a file limit is per process): opens `count` idle connections,
    waits `wait` seconds, then reports how many the server had closed."""
    raise_nofile()
    socks, failed = [], 0
    for i in range(first, first + count):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.bind(("127.0.0.%d" % (2 + i // 20000), 0))
            s.connect_ex(("127.0.0.1", port))
            socks.append(s)
        except OSError:
            failed += 1
            s.close()
    time.sleep(wait)
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    ready = {key.fileobj for key, _ in sel.select(timeout=1)}
    closed = 0
    for s in socks:
        if s in ready:
            try:
                if s.recv(1) == b"":
                    closed += 1
            except OSError:
                closed += 1
    results.put((len(socks), failed, closed))


def idle_sockets(server, n):
    import multiprocessing
    stop = threading.Event()
    health = []

    def poll():
        while not stop.is_set():
            t = time.perf_counter()
            try:
                ok = server.get("/healthz")[0] == 200
            except OSError:
                ok = False
            health.append((time.perf_counter() - t, ok))
            time.sleep(0.1)

    poller = threading.Thread(target=poll)
    poller.start()
    results = multiprocessing.Queue()
    per = 10000
    wait = 5 + 3  # the server's timeout, and some
    procs = [multiprocessing.Process(target=hold_idle, args=(server.port, first, min(per, n - first), wait, results))
             for first in range(0, n, per)]
    t0 = time.time()
    for p in procs:
        p.start()
    max_fds = 0
    while any(p.is_alive() for p in procs) and time.time() < t0 + wait + 30:
        max_fds = max(max_fds, server.fds())
        time.sleep(0.1)
    got = [results.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=5)
    stop.set()
    poller.join()
    opened, failed, closed = (sum(g[i] for g in got) for i in range(3))
    slowest = max((h[0] for h in health), default=0) * 1000
    unanswered = sum(1 for h in health if not h[1])
    print("## 1. Idle sockets\n")
    table(["sockets opened", "failed to open", "server fds at most", "closed by the server %d s after opening" % wait,
           "/healthz polls", "unanswered", "slowest /healthz ms"],
          [[opened, failed, max_fds, closed, len(health), unanswered, round(slowest, 1)]])


def login_session(server, password):
    status, headers, body = server.get("/login")
    cookie = next(v for k, v in headers if k.lower() == "set-cookie" and v.startswith("sentry_csrf="))
    cookie = cookie.split(";")[0]
    csrf = re.search(rb'name="csrf" value="([0-9a-f]+)"', body).group(1).decode()
    form = urllib.parse.urlencode({"email": "owner@example.com", "password": password, "csrf": csrf}).encode()
    status, headers, _ = server.request("POST", "/login", form, {
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie,
        "Origin": "http://127.0.0.1:%d" % server.port})
    session = [v.split(";")[0] for k, v in headers if k.lower() == "set-cookie" and not v.startswith("sentry_csrf=")]
    return status, cookie, csrf, session


def max_tags_page(server):
    # As many tags as a body within the default limit holds.
    tags = {"tag%06d" % i: "value %06d %s" % (i, "x" * 20) for i in range(20000)}
    event = json.dumps({"event_id": "%032x" % 7, "message": "many tags", "level": "error", "tags": tags}).encode()
    status = server.request("POST", "/api/%d/store/" % server.project_id, event, server.auth())[0]
    groups = json.loads(server.cli("groups", "--project", "hostile", "--json"))
    group = next((g for g in groups if g["title"] == "many tags"), None)
    if group is None:
        raise SystemExit("the event with many tags was not stored (answer %s)" % status)
    _, _, _, session = login_session(server, "correct horse battery")
    cookie = "; ".join(session)
    times = []
    for _ in range(20):
        t = time.perf_counter()
        s, _, body = server.get("/p/hostile/issues/%d/" % group["id"], {"Cookie": cookie})
        times.append((time.perf_counter() - t) * 1000)
        assert s == 200, s
    times.sort()
    print("## 2. The issue page of an event with the most tags\n")
    table(["tags sent", "store answer", "page KiB", "p50 ms", "max ms"],
          [[len(tags), status, len(body) // 1024, round(times[10], 1), round(times[-1], 1)]])


def worst_requests(server):
    limit = 1 << 20
    items = []
    for i in range(1000):
        items.append('{"type":"kind%04d","length":%d}\n%s' % (i, 900, "y" * 900))
    many_items = ('{"event_id":"%032x"}\n' % 11 + "\n".join(items) + "\n").encode()[:limit]
    tags = {"t%05d" % i: "v" for i in range(60000)}
    many_tags = json.dumps({"event_id": "%032x" % 12, "message": "tags", "tags": tags}).encode()[:limit]
    deep = ('{"event_id":"%032x","message":"deep","extra":{"x":' % 13 + "[" * 100000 + "]" * 100000 + "}}").encode()
    deep = deep[:limit]
    cases = [("envelope, 1,000 items of distinct types", "/api/%d/envelope/" % server.project_id, many_items),
             ("event, 60,000 tags", "/api/%d/store/" % server.project_id, many_tags),
             ("event, JSON 100,000 deep", "/api/%d/store/" % server.project_id, deep)]
    rows = []
    for name, path, body in cases:
        cpu0, t = server.cpu_seconds(), time.perf_counter()
        status = server.request("POST", path, body, server.auth())[0]
        wall = (time.perf_counter() - t) * 1000
        time.sleep(0.2)
        rows.append([name, len(body), status, round((server.cpu_seconds() - cpu0) * 1000), round(wall, 1)])
    # A normal event while two worst cases run.
    normal = json.dumps({"message": "normal", "level": "error"}).encode()
    lat = []
    for _ in range(3):
        ts = [threading.Thread(target=server.request, args=("POST", cases[0][1], cases[0][2], server.auth()))
              for _ in range(2)]
        for th in ts:
            th.start()
        t = time.perf_counter()
        server.request("POST", "/api/%d/store/" % server.project_id, normal, server.auth())
        lat.append((time.perf_counter() - t) * 1000)
        for th in ts:
            th.join()
    print("## 3. Worst single requests (server CPU includes storing them behind the spool)\n")
    table(["request", "bytes", "status", "server CPU ms", "wall ms"], rows)
    print("A normal event's latency while two of the first run: %s ms (max of 3)\n" % round(max(lat), 1))


def logins(server, n):
    _, cookie, csrf, _ = login_session(server, "wrong")
    hashes0, rss0 = server.metric("sentry_login_hashes_total"), server.rss_mb()
    peak = [rss0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], server.rss_mb())
            time.sleep(0.01)

    statuses = {}
    lock = threading.Lock()

    def attempt():
        form = urllib.parse.urlencode({"email": "owner@example.com", "password": "wrong", "csrf": csrf}).encode()
        try:
            s = server.request("POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded",
                                                        "Cookie": cookie,
                                                        "Origin": "http://127.0.0.1:%d" % server.port})[0]
        except OSError:
            s = "error"
        with lock:
            statuses[s] = statuses.get(s, 0) + 1

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [threading.Thread(target=attempt) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    sampler.join()
    print("## 4. Concurrent wrong logins for one account\n")
    table(["attempts", "hashed", "statuses", "RSS before MB", "RSS grew MB"],
          [[n, int(server.metric("sentry_login_hashes_total") - hashes0), statuses, round(rss0, 1),
            round(peak[0] - rss0, 1)]])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentry", default=os.path.join(ROOT, "target", "release", "sentry"))
    ap.add_argument("--sockets", type=int, default=30000)
    ap.add_argument("--logins", type=int, default=200)
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    args = ap.parse_args()
    if not os.path.exists(args.sentry):
        raise SystemExit("%s is missing: cargo build --release -p server" % args.sentry)
    raise_nofile()
    work = tempfile.mkdtemp(prefix="sentry-hostile.")
    server = Server(args.sentry, work)
    try:
        print("# Hostile clients against %s (pid %d), %d cores\n" % (args.sentry, server.proc.pid, os.cpu_count()))
        idle_sockets(server, args.sockets)
        max_tags_page(server)
        worst_requests(server)
        logins(server, args.logins)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
