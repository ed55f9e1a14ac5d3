"""End-to-end test of examples/django_notify: a real siftd, TWO Daphne
processes (Debian's /usr/bin/daphne) serving the example on free ports,
real WebSocket clients (python3-websockets) on both; a notification sent
through an HTTP request to one Daphne reaches the clients of both.

Every process is stopped by its pid; every wait is bounded. Run by
clients/python/tests/run_channels.py (Bazel:
//clients/python:django_notify_e2e_test), which puts clients/python/tests
(siftd.py) and clients/python (sift) on sys.path.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import websockets

from siftd import Siftd, free_port

EXAMPLE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DAPHNE = "/usr/bin/daphne"


class Daphne:
    """One daphne process serving the example on 127.0.0.1:<port>."""

    def __init__(self, sift_endpoint: str, prefix: str) -> None:
        self.port = free_port()
        tmp = os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()
        self.log_path = os.path.join(tmp, f"daphne-{self.port}.log")
        env = dict(os.environ)
        env["SIFT_ENDPOINT"] = sift_endpoint
        env["SIFT_CHANNELS_PREFIX"] = prefix
        env["DJANGO_SETTINGS_MODULE"] = "notify_project.settings"
        env["PYTHONPATH"] = os.pathsep.join([EXAMPLE] + [
            p for p in sys.path if p])
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [DAPHNE, "-b", "127.0.0.1", "-p", str(self.port),
                 "notify_project.asgi:application"],
                cwd=EXAMPLE, env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=log)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daphne exited: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url("/"), timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"daphne not ready in {timeout} s: "
                           f"{self.log_tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def log_tail(self, n: int = 3000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""


def http_get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


class TwoDaphnesTest(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(DAPHNE):
            raise unittest.SkipTest(f"{DAPHNE} missing (apt-get install "
                                    "daphne; tools/deps.sh)")
        cls.siftd = Siftd("--log_level=warn").start()
        prefix = f"e2e{os.getpid()}"
        cls.daphnes = []
        try:
            cls.daphnes = [Daphne(cls.siftd.endpoint, prefix)
                           for _ in range(2)]
            for d in cls.daphnes:
                d.wait_ready()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for d in cls.daphnes:
            d.stop()
        cls.siftd.stop()

    async def connect(self, daphne):
        ws = await asyncio.wait_for(websockets.connect(
            f"ws://127.0.0.1:{daphne.port}/ws/notifications",
            open_timeout=10, close_timeout=2), 15)
        self.addAsyncCleanup(ws.close)
        return ws

    async def notify(self, daphne, text):
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.run_in_executor(
            None, http_get, daphne.url(f"/notify?text={text}")), 15)

    async def test_notification_reaches_websockets_of_both_daphnes(self):
        a, b = self.daphnes
        clients = [(a, await self.connect(a)), (a, await self.connect(a)),
                   (b, await self.connect(b)), (b, await self.connect(b))]
        for source, text in ((a, "from-a"), (b, "from-b")):
            answer = await self.notify(source, text)
            self.assertEqual(answer["sent"], text)
            for daphne, ws in clients:
                got = json.loads(await asyncio.wait_for(ws.recv(), 10))
                print(f"daphne :{daphne.port} (pid {daphne.proc.pid}) "
                      f"websocket got {got} (sent via :{source.port}, "
                      f"pid {source.proc.pid})", file=sys.stderr)
                self.assertEqual(got["text"], text)
                self.assertEqual(got["from"], source.proc.pid)
                self.assertEqual(got["to"], daphne.proc.pid)
        # Nothing more: each client got each notification once.
        for _, ws in clients:
            with self.assertRaises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)

    async def test_disconnected_client_leaves_the_group(self):
        a, b = self.daphnes
        gone = await self.connect(b)
        stay = await self.connect(a)
        await gone.close()
        await asyncio.sleep(0.3)  # daphne runs disconnect: group_discard
        await self.notify(a, "after-close")
        got = json.loads(await asyncio.wait_for(stay.recv(), 10))
        self.assertEqual(got["text"], "after-close")


class ErrorLogTest(unittest.TestCase):
    """An HTTP 500 leaves its traceback in Daphne's log (the example's
    LOGGING once disabled Django's loggers, and a 500 logged nothing)."""

    def test_http_500_traceback_in_daphne_log(self):
        if not os.path.exists(DAPHNE):
            raise unittest.SkipTest(f"{DAPHNE} missing")
        # No broker there: /notify's group_send cannot connect (the layer's
        # connect_timeout, 5 s) and the view fails.
        nobody = f"tcp://127.0.0.1:{free_port()}"
        daphne = Daphne(nobody, f"e2e{os.getpid()}err")
        self.addCleanup(daphne.stop)
        daphne.wait_ready()  # "/" needs no broker
        with self.assertRaises(urllib.error.HTTPError) as cm:
            http_get(daphne.url("/notify?text=x"))
        self.assertEqual(cm.exception.code, 500)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            log = daphne.log_tail(20000)
            if "Internal Server Error: /notify" in log:
                break
            time.sleep(0.1)
        self.assertIn("Internal Server Error: /notify", log)
        self.assertIn("Traceback (most recent call last)", log)
        self.assertIn("sift.errors.Timeout", log)


if __name__ == "__main__":
    unittest.main()
