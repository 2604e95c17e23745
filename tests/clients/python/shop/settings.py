"""Django settings for the scenario shop.

Database: PostgreSQL through psycopg2 when SHOP_DB=postgres (connection from the libpq variables
PGHOST, PGPORT, PGUSER, PGDATABASE that the test harness's `Postgres` exports), else SQLite at
SHOP_SQLITE_PATH. With SHOP_CLIENT=raven, raven's Django app reports errors instead of sentry-sdk.
"""
import os

SECRET_KEY = "scenario-shop-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "shop.urls"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "shop",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
if os.environ.get("SHOP_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ["PGDATABASE"],
            "USER": os.environ["PGUSER"],
            "HOST": os.environ["PGHOST"],
            "PORT": os.environ["PGPORT"],
        }
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["SHOP_SQLITE_PATH"]}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
LOGGING = {"version": 1, "disable_existing_loggers": False}

if os.environ.get("SHOP_CLIENT") == "raven":
    # raven's docs say "raven.contrib.django.raven_compat", but on Django >= 3.2 that module has
    # no AppConfig (default_app_config is ignored), raven never initialises and sends nothing.
    # Naming the AppConfig works.
    INSTALLED_APPS.append("raven.contrib.django.apps.RavenConfig")
    RAVEN_CONFIG = {
        "dsn": os.environ["SENTRY_DSN"],
        "release": "shop@1.2.3",
        "environment": "production",
        "name": "web-1",
        # synchronous: the event is sent (and acknowledged) before the request returns
        "transport": "raven.transport.http.HTTPTransport",
    }
