#!/usr/bin/env python3
"""The apply lag of one load cell, from two scrapes of /metrics (before and after the cell).

    bench/lib/apply_lag.py LABEL BEFORE_FILE AFTER_FILE  ->  one JSON record (kind "apply_lag")

`sentry_spool_apply_lag_seconds` is a histogram of the time from an event's acknowledgement
(its append to the spool) to its commit in the database. The quantiles given are the upper
bound of the bucket the quantile falls in (so "<= 0.01" means at most 10 ms).
"""
import json
import re
import sys


def buckets(path):
    text = open(path).read()
    out = {}
    for m in re.finditer(r'^sentry_spool_apply_lag_seconds_bucket\{le="([^"]+)"\} (\S+)', text, re.M):
        out[float("inf") if m.group(1) == "+Inf" else float(m.group(1))] = int(float(m.group(2)))
    return out


def quantile(diff, q):
    total = diff[max(diff)] if diff else 0
    if not total:
        return None
    for bound in sorted(diff):
        if diff[bound] >= q * total:
            return bound if bound != float("inf") else None
    return None


def main(label, before, after):
    b, a = buckets(before), buckets(after)
    diff = {k: a[k] - b.get(k, 0) for k in a}
    print(json.dumps({"kind": "apply_lag", "label": label, "events": diff[max(diff)] if diff else 0,
                      "p50_le_s": quantile(diff, 0.5), "p99_le_s": quantile(diff, 0.99)}))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    main(*sys.argv[1:])
