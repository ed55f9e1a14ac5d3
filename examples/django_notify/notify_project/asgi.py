"""The ASGI application: Django for HTTP, the notification consumer for
WebSockets on /ws/notifications."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notify_project.settings")
django_asgi_app = get_asgi_application()  # sets Django up before imports

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from notifications.consumers import NotificationConsumer  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": URLRouter([
        path("ws/notifications", NotificationConsumer.as_asgi()),
    ]),
})
