"""Settings of the django_notify example: no database, no middleware, one
channel layer on sift. The broker comes from $SIFT_ENDPOINT (default
tcp://127.0.0.1:7440)."""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-notify-example-only")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = ["notifications"]
MIDDLEWARE = []
ROOT_URLCONF = "notify_project.urls"
DATABASES = {}
USE_TZ = True

ASGI_APPLICATION = "notify_project.asgi.application"

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "sift.channels.SiftChannelLayer",
        "CONFIG": {
            "endpoint": os.environ.get("SIFT_ENDPOINT",
                                       "tcp://127.0.0.1:7440"),
            "prefix": os.environ.get("SIFT_CHANNELS_PREFIX", "notify"),
            "capacity": 100,
            "expiry": 60,
            "group_expiry": 86400,
        },
    },
}

# To stderr, which is Daphne's log. Django's loggers stay enabled (a
# dictConfig disables every logger configured before it unless told not to,
# and then an HTTP 500 left no traceback anywhere), and "django" writes to
# the console also with DEBUG off (Django's default then only mails the
# ADMINS): a 500's traceback comes from "django.request".
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO"},
        "sift": {"handlers": ["console"], "level": "INFO"},
    },
}
