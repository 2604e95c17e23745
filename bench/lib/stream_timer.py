#!/usr/bin/env python3
"""Times the dashboard's project stream page over HTTP, as a logged-in person's browser asks for it.

    stream_timer.py --url http://127.0.0.1:PORT --slug bench --email E --password P [--rounds N] [--label L]

Logs in through the login form (CSRF cookie + field, Origin header), then for every sort, without and with a tag
filter (`q=server:web-3`, `q=customer:customer-7`), over the intervals 15m, 1h, 24h, 7d, 30d and all, fetches
`/p/<slug>/?sort=…&interval=…&fragment=1` (the list the page's live updates fetch) N times and prints one JSON line
per sort × filter with p50 / p95 / max in ms. Standard library only.
"""
import argparse
import http.cookiejar
import json
import re
import sys
import time
import urllib.parse
import urllib.request

SORTS = ["priority", "last_seen", "first_seen", "frequency", "time_spent", "total_time_spent"]
FILTERS = [("none", ""), ("server=web-3", "server:web-3"), ("customer=customer-7", "customer:customer-7")]
INTERVALS = ["15m", "1h", "24h", "7d", "30d", "all"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--slug", default="bench")
    ap.add_argument("--email", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--label", default="")
    a = ap.parse_args()

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(a.url + "/login", timeout=30).read().decode()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"csrf": csrf, "email": a.email, "password": a.password, "next": "/"}).encode()
    req = urllib.request.Request(a.url + "/login", data=form, headers={"Origin": a.url})
    opener.open(req, timeout=30).read()
    if not any(c.name == "sentry_session" for c in jar):
        sys.exit("stream_timer: login failed (no session cookie)")

    for sort in SORTS:
        for fname, q in FILTERS:
            times = []
            for interval in INTERVALS:
                for _ in range(a.rounds):
                    params = {"sort": sort, "interval": interval, "fragment": "1"}
                    if q:
                        params["q"] = q
                    url = f"{a.url}/p/{a.slug}/?{urllib.parse.urlencode(params)}"
                    t = time.perf_counter()
                    with opener.open(url, timeout=60) as resp:
                        body = resp.read()
                        status = resp.status
                    times.append((time.perf_counter() - t) * 1000)
                    if status != 200 or b"<" not in body:
                        sys.exit(f"stream_timer: {url} answered {status}")
            times.sort()
            pick = lambda p: times[min(len(times) - 1, len(times) * p // 100)]
            print(json.dumps({"label": a.label, "sort": sort, "filter": fname, "n": len(times),
                              "p50_ms": round(pick(50), 2), "p95_ms": round(pick(95), 2), "max_ms": round(times[-1], 2)}),
                  flush=True)


if __name__ == "__main__":
    main()
