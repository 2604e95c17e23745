"""Shared helpers for the real-client scenario scripts (sdk_scenarios.py, raven_scenarios.py).

Every scenario takes the DSN from argv[2] or the SENTRY_DSN variable, reports with release
`shop@1.2.3`, environment `production` and server name `web-1`, and ends with one stdout line
`FACTS {json}` holding what the test needs to know (URLs with their random ports, and so on).
It exits non-zero when the client library logged a failure to send.
"""
import http.cookiejar
import json
import logging
import os
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request

RELEASE = "shop@1.2.3"
ENVIRONMENT = "production"
SERVER_NAME = "web-1"
HERE = os.path.dirname(os.path.abspath(__file__))


def dsn():
    if len(sys.argv) > 2:
        return sys.argv[2]
    value = os.environ.get("SENTRY_DSN")
    if not value:
        sys.exit("usage: %s SCENARIO [DSN]   (or set SENTRY_DSN)" % sys.argv[0])
    return value


class SendErrors(logging.Handler):
    """Collects what a client library logs when it fails to deliver (non-2xx, connection refused)."""

    def __init__(self, *logger_names):
        super().__init__(level=logging.WARNING)
        self.records = []
        for name in logger_names:
            logging.getLogger(name).addHandler(self)

    def emit(self, record):
        self.records.append(record)


def finish(errors, **facts):
    """Prints the facts line; exits 3 if the client reported delivery problems."""
    print("FACTS " + json.dumps(facts), flush=True)
    if errors is not None and errors.records:
        for r in errors.records:
            print("client library reported: %s: %s" % (r.levelname, r.getMessage()), file=sys.stderr)
        sys.exit(3)


class Browser:
    """A plain HTTP client with a cookie jar, playing the user of the apps under test."""

    def __init__(self, base):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.opener.addheaders = [("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")]

    def request(self, method, path, form=None, headers=None):
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        try:
            with self.opener.open(req) as resp:
                resp.read()
                code = resp.status
        except urllib.error.HTTPError as e:
            e.read()
            code = e.code
        print("  %s %s -> %s" % (method, path, code), file=sys.stderr)
        return code


def serve_wsgi(app, server_class=None, handler_class=None):
    """Serves `app` on a free loopback port in a thread. Returns (base_url, stop)."""
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Quiet(handler_class or WSGIRequestHandler):
        def log_message(self, *a):
            pass

    httpd = make_server("127.0.0.1", 0, app, server_class=server_class or WSGIServer, handler_class=Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def stop():
        httpd.shutdown()
        httpd.server_close()

    return "http://127.0.0.1:%d" % httpd.server_address[1], stop


def setup_django(client):
    """Configures the shop (SQLite in a temp dir unless SHOP_DB=postgres), migrates, creates alice.

    `client` is "sdk" or "raven". Call after sentry_sdk.init() for the SDK (its Django integration
    patches Django when Django is set up).
    """
    sys.path.insert(0, HERE)
    os.environ["DJANGO_SETTINGS_MODULE"] = "shop.settings"
    os.environ["SHOP_CLIENT"] = client
    if os.environ.get("SHOP_DB") != "postgres":
        os.environ["SHOP_SQLITE_PATH"] = os.path.join(tempfile.mkdtemp(prefix="shop-"), "db.sqlite3")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if not User.objects.filter(username="alice").exists():
        User.objects.create_user("alice", "alice@example.com", "s3cret-pw", first_name="Alice")


def serve_django():
    """Serves the configured shop with Django's own dev WSGIServer. Returns (base_url, stop)."""
    from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer
    from django.core.wsgi import get_wsgi_application

    return serve_wsgi(get_wsgi_application(), server_class=WSGIServer, handler_class=WSGIRequestHandler)
