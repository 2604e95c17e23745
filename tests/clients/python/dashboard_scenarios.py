"""Real `sentry-sdk` scenarios for the dashboard tests (crates/server/tests/it/browser.rs).

    dashboard_scenarios.py SCENARIO [DSN]        (or DSN in SENTRY_DSN)

Scenarios:
    checkout-error   a KeyError raised in app code (locals, a breadcrumb, the tag
                     customer=$CUSTOMER, default "acme"), captured and flushed
"""
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sentry_sdk  # noqa: E402

import common  # noqa: E402

scenario = sys.argv[1] if len(sys.argv) > 1 else ""


def apply_coupon(cart, code):
    discounts = {"WELCOME": 10}
    return cart["total"] - discounts[code]


def checkout_error():
    sentry_sdk.init(
        dsn=common.dsn(),
        release=common.RELEASE,
        environment=common.ENVIRONMENT,
        server_name=common.SERVER_NAME,
        send_default_pii=True,
        include_local_variables=True,
        # The scenario runs from another directory than its own: say which code is the app.
        in_app_include=["__main__"],
        debug=True,
    )
    errors = common.SendErrors("sentry_sdk.errors")
    sentry_sdk.set_tag("customer", os.environ.get("CUSTOMER", "acme"))
    sentry_sdk.add_breadcrumb(category="cart", message="coupon entered", level="info")
    event_id = None
    try:
        apply_coupon({"total": 42}, "SUMMER")
    except KeyError:
        event_id = sentry_sdk.capture_exception()
    sentry_sdk.flush(timeout=10)
    return errors, dict(event_id=event_id)


SCENARIOS = {"checkout-error": checkout_error}

if scenario not in SCENARIOS:
    sys.exit("usage: dashboard_scenarios.py {%s} [DSN]" % ",".join(SCENARIOS))
logging.basicConfig(level=logging.WARNING)
errors, facts = SCENARIOS[scenario]()
facts["sdk_version"] = sentry_sdk.VERSION
common.finish(errors, **facts)
