"""Real `sentry-sdk` scenarios for crates/server/tests/it/clients.rs.

    sdk_scenarios.py SCENARIO [DSN]        (or DSN in SENTRY_DSN)

Scenarios:
    django-unhandled   Django view raises KeyError under DjangoIntegration (SQLite)
    django-traced-sql  traces_sample_rate=1.0; psycopg2 queries on PostgreSQL (SHOP_DB=postgres
                       and PGHOST/PGPORT/PGUSER/PGDATABASE), then a failing checkout
    logging            stdlib logging through the default LoggingIntegration
    wsgi               a plain WSGI app under SentryWsgiMiddleware, traced
    capture-message    capture_message with scope tags, a tags= argument and a user
    capture-exception  shop.cart.checkout([]) raises ZeroDivisionError; capture_exception

SDK_COMPRESSION=off sends uncompressed bodies; with `brotli` importable the SDK picks br by itself.
"""
import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sentry_sdk  # noqa: E402

import common  # noqa: E402

scenario = sys.argv[1] if len(sys.argv) > 1 else ""


def init(**extra):
    opts = dict(
        dsn=common.dsn(),
        release=common.RELEASE,
        environment=common.ENVIRONMENT,
        server_name=common.SERVER_NAME,
        send_default_pii=True,
        # debug lets failed deliveries reach our SendErrors handler; the debug lines only show
        # up in a test's output when it fails
        debug=True,
    )
    if os.environ.get("SDK_COMPRESSION") == "off":
        opts["_experiments"] = {"transport_compression_level": 0}
    opts.update(extra)
    sentry_sdk.init(**opts)
    return common.SendErrors("sentry_sdk.errors")


def django_unhandled():
    from sentry_sdk.integrations.django import DjangoIntegration

    errors = init(integrations=[DjangoIntegration()])
    common.setup_django("sdk")
    base, stop = common.serve_django()
    b = common.Browser(base)
    assert b.request("POST", "/login/", {"username": "alice", "password": "s3cret-pw"}) == 200
    code = b.request(
        "POST",
        "/orders/42/checkout/?coupon=SPRING24",
        {"sku": "SKU-999", "qty": "2", "password": "hunter2"},
        {"X-Forwarded-For": "203.0.113.9"},
    )
    assert code == 500, code
    stop()
    sentry_sdk.flush(timeout=10)
    return errors, dict(url=base + "/orders/42/checkout/")


def django_traced_sql():
    from sentry_sdk.integrations.django import DjangoIntegration

    os.environ["SHOP_DB"] = "postgres"
    errors = init(integrations=[DjangoIntegration()], traces_sample_rate=1.0)
    common.setup_django("sdk")
    from shop.views import RAW_SQL

    base, stop = common.serve_django()
    b = common.Browser(base)
    assert b.request("POST", "/login/", {"username": "alice", "password": "s3cret-pw"}) == 200
    assert b.request("GET", "/orders/?page=1") == 200
    assert b.request("POST", "/orders/7/checkout/", {"sku": "SKU-404", "qty": "1"}) == 500
    stop()
    sentry_sdk.flush(timeout=10)
    return errors, dict(url=base + "/orders/7/checkout/", raw_sql=RAW_SQL)


def logging_scenario():
    errors = init()  # LoggingIntegration is a default: breadcrumbs >= INFO, events >= ERROR
    logging.basicConfig(level=logging.INFO)
    log = logging.getLogger("billing.worker")
    log.info("worker started pid=%d", 4242)
    log.warning("retrying charge for order %s (attempt %d)", "A-17", 2)
    logging.error("Failed to charge order %s for customer %s", "A-17", "alice@example.com")
    logging.error("Failed to charge order %s for customer %s", "A-18", "bob@example.com")
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception("Payment gateway crashed for %s", "bob")
    sentry_sdk.flush(timeout=10)
    return errors, {}


def wsgi_scenario():
    from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware

    errors = init(traces_sample_rate=1.0)

    def app(environ, start_response):
        with sentry_sdk.start_span(op="app.render", name="render greeting"):
            time.sleep(0.01)
        if environ["PATH_INFO"] == "/boom":
            raise ValueError("boom from plain WSGI app")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]

    base, stop = common.serve_wsgi(SentryWsgiMiddleware(app))
    b = common.Browser(base)
    assert b.request("GET", "/hello?name=world") == 200
    assert b.request("POST", "/boom?x=1", {"field": "value"}) == 500
    stop()
    sentry_sdk.flush(timeout=10)
    return errors, dict(url=base + "/boom")


def capture_message():
    errors = init()
    sentry_sdk.set_tag("customer_tier", "gold")
    sentry_sdk.set_user({"id": "42", "email": "alice@example.com"})
    sentry_sdk.capture_message("hello world", level="warning")
    sentry_sdk.capture_message("hello world", level="warning", tags={"feature.flag": "new-cart"})
    sentry_sdk.flush(timeout=10)
    try:
        import brotli  # noqa: F401

        encoding = "br"
    except ImportError:
        encoding = "identity" if os.environ.get("SDK_COMPRESSION") == "off" else "gzip"
    return errors, dict(encoding=encoding)


def capture_exception():
    errors = init()
    from shop import cart

    try:
        cart.checkout([])
    except ZeroDivisionError:
        event_id = sentry_sdk.capture_exception()
    sentry_sdk.flush(timeout=10)
    return errors, dict(event_id=event_id)


SCENARIOS = {
    "django-unhandled": django_unhandled,
    "django-traced-sql": django_traced_sql,
    "logging": logging_scenario,
    "wsgi": wsgi_scenario,
    "capture-message": capture_message,
    "capture-exception": capture_exception,
}

if scenario not in SCENARIOS:
    sys.exit("usage: sdk_scenarios.py {%s} [DSN]" % ",".join(SCENARIOS))
errors, facts = SCENARIOS[scenario]()
facts["sdk_version"] = sentry_sdk.VERSION
common.finish(errors, **facts)
