"""A WebSocket consumer that joins the "notifications" group and forwards
every group message to its browser as JSON."""

import os

from channels.generic.websocket import AsyncJsonWebsocketConsumer

GROUP = "notifications"


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        # Joined before accept(): once the browser's handshake completes,
        # every later group_send reaches it.
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def notification(self, event):
        """Handles group messages of type "notification"."""
        await self.send_json({"text": event["text"], "from": event["from"],
                              "to": os.getpid()})
