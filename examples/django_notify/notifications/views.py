"""HTTP views: a page that opens the WebSocket, and /notify, which sends a
notification to every connected browser through the channel layer (in
every Daphne process: the layer's group is shared through sift)."""

import os

from channels.layers import get_channel_layer
from django.http import HttpResponse, JsonResponse

from notifications.consumers import GROUP

PAGE = """<!doctype html><title>notifications</title>
<ul id=feed></ul>
<script>
const ws = new WebSocket(`ws://${location.host}/ws/notifications`);
ws.onmessage = (e) => {
  const li = document.createElement("li");
  li.textContent = e.data;
  document.getElementById("feed").append(li);
};
</script>
"""


async def index(request):
    return HttpResponse(PAGE)


async def notify(request):
    """GET or POST /notify?text=...: group_send to "notifications"."""
    text = request.GET.get("text") or request.POST.get("text") or "hello"
    await get_channel_layer().group_send(
        GROUP, {"type": "notification", "text": text, "from": os.getpid()})
    return JsonResponse({"sent": text, "from": os.getpid()})
