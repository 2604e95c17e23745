"""Real `raven` 6.10 scenarios (legacy /api/ID/store/) for crates/server/tests/it/clients.rs.

    raven_scenarios.py SCENARIO [DSN]      (or DSN in SENTRY_DSN)

Scenarios:
    capture-exception  captureException: an IndexError, then a RuntimeError raised from a
                       FileNotFoundError, with user, tags and extra context
    capture-message    captureMessage with level and tags, then one with %s params and a logger
    capture-query      captureQuery(..., engine="psycopg2", time_spent=...) twice, and
                       client.capture("raven.events.Query", query=..., engine=..., time_spent=...)
    logging-handler    raven.handlers.logging.SentryHandler at ERROR
    logbook-handler    raven.handlers.logbook.SentryHandler
    wsgi               raven.middleware.Sentry around a plain WSGI app
    django-unhandled   raven's Django app (RavenConfig), a view raising KeyError

All use the synchronous raven.transport.http.HTTPTransport: each capture returns once the server
answered, so the script's exit means everything was delivered.
"""
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import raven  # noqa: E402
from raven import Client  # noqa: E402
from raven.transport.http import HTTPTransport  # noqa: E402

import common  # noqa: E402

scenario = sys.argv[1] if len(sys.argv) > 1 else ""
errors = common.SendErrors("sentry.errors")


def make_client(**kw):
    return Client(
        common.dsn(),
        transport=HTTPTransport,
        raise_send_errors=True,
        release=common.RELEASE,
        environment=common.ENVIRONMENT,
        name=common.SERVER_NAME,
        **kw,
    )


def process_order(order):
    return order["items"][0]["sku"]


def load_config(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError as e:
        raise RuntimeError("config %r unavailable" % path) from e


def capture_exception():
    client = make_client()
    client.user_context({"id": "42", "email": "alice@example.com", "username": "alice"})
    client.tags_context({"component": "billing"})
    client.extra_context({"order_id": "A-17"})
    try:
        process_order({"items": []})
    except IndexError:
        client.captureException()
    try:
        load_config("/etc/shop/missing.conf")
    except RuntimeError:
        client.captureException(tags={"phase": "startup"})
    return {}


def capture_message():
    client = make_client()
    client.captureMessage("hello world", level="warning", tags={"customer_tier": "gold"}, extra={"cart_size": 3})
    client.captureMessage("Order %s failed for %s", params=("A-17", "alice"), data={"logger": "shop.orders"})
    return {}


QUERY_SQL = "SELECT * FROM shop_order WHERE customer = %s AND total_cents > %s"
SEED_SQL = "select id from shop_customer where email = 'alice@example.com'"


def capture_query():
    client = make_client()
    client.captureQuery(QUERY_SQL, params=("alice", 100), engine="psycopg2", time_spent=812, tags={"db": "shop"})
    client.captureQuery(QUERY_SQL, params=("bob", 5), engine="psycopg2", time_spent=188, tags={"db": "shop"})
    # the 2011 client API, spoken by raven's generic capture()
    client.capture("raven.events.Query", query=SEED_SQL, engine="psycopg2", time_spent=36)
    return dict(query_sql=QUERY_SQL, seed_sql=SEED_SQL)


def logging_handler():
    from raven.handlers.logging import SentryHandler

    handler = SentryHandler(make_client(), level=logging.ERROR)
    log = logging.getLogger("billing.worker")
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    log.info("worker started pid=%d", 4242)  # below the handler's level: breadcrumb only
    log.error("Failed to charge order %s for customer %s", "A-17", "alice@example.com")
    log.error("Failed to charge order %s for customer %s", "A-18", "bob@example.com")
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception("Payment gateway crashed for %s", "bob")
    return {}


def logbook_handler():
    import logbook
    from raven.handlers.logbook import SentryHandler

    log = logbook.Logger("billing.logbook")
    with SentryHandler(make_client(), level="ERROR", bubble=False).applicationbound():
        log.info("not sent (below ERROR)")
        log.error("Failed to charge order {} for {}", "A-17", "alice")
        try:
            {}["missing"]
        except KeyError:
            log.exception("lookup failed for {}", "missing")
    return {}


def wsgi():
    from raven.middleware import Sentry

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/boom":
            raise ValueError("boom from plain WSGI app")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]

    base, stop = common.serve_wsgi(Sentry(app, client=make_client()))
    b = common.Browser(base)
    assert b.request("GET", "/hello?name=world") == 200
    assert b.request("POST", "/boom?x=1", {"field": "value"}) == 500
    stop()
    return dict(url=base + "/boom")


def django_unhandled():
    os.environ["SENTRY_DSN"] = common.dsn()
    common.setup_django("raven")
    base, stop = common.serve_django()
    b = common.Browser(base)
    assert b.request("POST", "/login/", {"username": "alice", "password": "s3cret-pw"}) == 200
    assert b.request("POST", "/orders/42/checkout/?coupon=SPRING24", {"sku": "SKU-999", "qty": "2"}) == 500
    stop()
    from raven.contrib.django.models import client

    # if RavenConfig did not initialise, raven silently sends nothing: say so
    assert client.is_enabled(), "raven's Django client is not configured"
    return dict(url=base + "/orders/42/checkout/", client_class=type(client).__name__)


SCENARIOS = {
    "capture-exception": capture_exception,
    "capture-message": capture_message,
    "capture-query": capture_query,
    "logging-handler": logging_handler,
    "logbook-handler": logbook_handler,
    "wsgi": wsgi,
    "django-unhandled": django_unhandled,
}

if scenario not in SCENARIOS:
    sys.exit("usage: raven_scenarios.py {%s} [DSN]" % ",".join(SCENARIOS))
facts = SCENARIOS[scenario]()
facts["raven_version"] = raven.VERSION
common.finish(errors, **facts)
