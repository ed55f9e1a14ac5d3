"""The Celery app the transport's tests run in real worker processes
(celery_test.py). Configured by the environment:

  SIFT_BROKER_URL   sift://127.0.0.1:PORT
  SIFT_RESULT_DIR   where each task run appends a line to <key>.runs
  SIFT_ACK_WAIT     the transport's ack_wait in seconds (default 30)
  SIFT_PROGRESS_INTERVAL  its progress_interval (default ack_wait / 3)

Every run of a task appends one line "<phase> <unix time> <pid> <hostname>"
to <SIFT_RESULT_DIR>/<key>.runs (O_APPEND: whole lines from any process), so
the test counts runs per task.
"""

import os
import socket
import time

import sift.kombu_transport  # noqa: F401 pylint: disable=unused-import
from celery import Celery
from celery.signals import task_received, worker_ready

RESULT_DIR = os.environ.get("SIFT_RESULT_DIR", "/tmp")

app = Celery("sift_celery_tests",
             broker=os.environ.get("SIFT_BROKER_URL", "sift://127.0.0.1:7440"))
_options = {
    "ack_wait": float(os.environ.get("SIFT_ACK_WAIT", "30")),
    "max_deliver": 0,
    "backoff_initial": 0.05,
    "backoff_max": 1.0,
}
if os.environ.get("SIFT_PROGRESS_INTERVAL"):  # the tests' control case
    _options["progress_interval"] = float(
        os.environ["SIFT_PROGRESS_INTERVAL"])

app.conf.update(
    broker_transport_options=_options,
    task_acks_late=True,
    task_ignore_result=True,
    worker_enable_remote_control=False,
    worker_send_task_events=False,
    worker_prefetch_multiplier=int(os.environ.get("SIFT_PREFETCH", "4")),
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


def record(key: str, phase: str = "run") -> int:
    """Appends this run's line to <key>.runs; returns the lines now there."""
    path = os.path.join(RESULT_DIR, f"{key}.runs")
    line = f"{phase} {time.time():.3f} {os.getpid()} {socket.gethostname()}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    with open(path) as f:
        return sum(1 for ln in f if ln.startswith(phase + " "))


@worker_ready.connect
def _ready(sender=None, **kwargs):
    name = os.environ.get("SIFT_WORKER_NAME", str(os.getpid()))
    with open(os.path.join(RESULT_DIR, f"ready-{name}"), "w") as f:
        f.write(str(os.getpid()))


@task_received.connect
def _received(request=None, **kwargs):
    # In the worker's main process, when the broker hands it the task (the
    # ETA test checks this is not before the eta: it waited in the broker).
    try:
        key = request.args[0]
    except (AttributeError, IndexError, TypeError):
        return
    record(str(key), "received")


@app.task(name="t.touch")
def touch(key):
    record(key)


@app.task(name="t.slow")
def slow(key, seconds):
    record(key, "start")
    time.sleep(seconds)
    record(key, "done")


@app.task(name="t.flaky", autoretry_for=(ValueError,), retry_backoff=1,
          retry_backoff_max=8, retry_jitter=False, max_retries=5)
def flaky(key, fail_times):
    runs = record(key)
    if runs <= fail_times:
        raise ValueError(f"run {runs} fails on purpose")
