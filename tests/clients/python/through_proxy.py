"""Talks to Sentry through a reverse proxy with TLS (the test of dist/nginx.conf).

    through_proxy.py HTTPS_BASE HTTP_BASE CA_FILE DSN EMAIL PASSWORD SLUG

Prints one `FACTS {json}` line: the plain-HTTP answer (a redirect to https), the statuses of
wrong logins from one claimed address and of the right password from another, whether a live
update came through the proxy at once, and whether the SDK's event was sent without errors.
"""
import http.cookiejar
import json
import logging
import re
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import sentry_sdk

https_base, http_base, ca_file, dsn, email, password, slug = sys.argv[1:8]
context = ssl.create_default_context(cafile=ca_file)
facts = {}


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def opener(jar=None):
    handlers = [urllib.request.HTTPSHandler(context=context), NoRedirect()]
    if jar is not None:
        handlers.append(urllib.request.HTTPCookieProcessor(jar))
    return urllib.request.build_opener(*handlers)


def call(op, url, data=None, headers=None, timeout=10):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with op.open(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


# 1. Plain HTTP is sent to https.
status, headers, _ = call(opener(), http_base + "/login")
facts["http_status"] = status
facts["http_location"] = headers.get("Location", "")


def login(address, pw):
    """One login attempt that says it comes from `address` (the proxy adds what it saw)."""
    jar = http.cookiejar.CookieJar()
    op = opener(jar)
    _, _, page = call(op, https_base + "/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"email": email, "password": pw, "csrf": csrf, "next": "/dashboard"}).encode()
    status, _, _ = call(op, https_base + "/login", data=body, headers={"X-Forwarded-For": address, "Content-Type": "application/x-www-form-urlencoded"})
    return status, jar, op


# 2. Wrong passwords from one person's address lock out that address only.
facts["wrong_logins"] = [login("203.0.113.1", "not the password")[0] for _ in range(11)]
status, jar, op = login("203.0.113.2", password)
facts["right_login"] = status

# 3. A live update reaches a logged-in page through the proxy at once.
try:
    live = op.open(urllib.request.Request(https_base + "/p/" + slug + "/live", headers={"Accept": "text/event-stream"}), timeout=15)
except urllib.error.HTTPError as e:
    live = None
    facts["live_status"] = e.code
errors = []


class Errors(logging.Handler):
    def emit(self, record):
        errors.append(record.getMessage())


logging.getLogger("sentry_sdk.errors").addHandler(Errors(level=logging.WARNING))
sentry_sdk.init(dsn, ca_certs=ca_file, default_integrations=False)
sent = time.time()
sentry_sdk.capture_message("sent through the proxy")
sentry_sdk.flush(10)
facts["sdk_errors"] = errors
got = None
deadline = time.time() + 10
while live is not None and time.time() < deadline:
    line = live.readline().decode()
    if line.startswith("data:") or line.startswith("event:"):
        got = time.time() - sent
        break
facts["live_after_seconds"] = got
print("FACTS " + json.dumps(facts))
