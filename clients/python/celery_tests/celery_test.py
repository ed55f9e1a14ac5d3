"""End-to-end tests of sift.kombu_transport: a real siftd (tests/siftd.py)
and real Celery worker processes running celery_app.py.

Each test starts its own siftd on a free port, workers as
``/usr/bin/python3 -m celery -A celery_app worker ...`` in a session of their
own (stopped by pid: SIGTERM, then SIGKILL of the worker's process group),
and counts task runs in the per-task files celery_app.record() appends to.
Every wait is bounded.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.dirname(HERE)                      # clients/python
sys.path.insert(0, PKG)
sys.path.insert(0, os.path.join(PKG, "tests"))   # siftd.py
sys.path.insert(0, HERE)

from siftd import Siftd, wait_until  # noqa: E402

PYTHON = "/usr/bin/python3"


def read_lines(result_dir, key, phase=None):
    """[(phase, time, pid)] of <key>.runs, optionally of one phase."""
    try:
        with open(os.path.join(result_dir, f"{key}.runs")) as f:
            rows = [ln.split() for ln in f if ln.strip()]
    except FileNotFoundError:
        return []
    out = [(r[0], float(r[1]), int(r[2])) for r in rows]
    return [r for r in out if phase is None or r[0] == phase]


def child_pids(pid):
    """The pids whose parent is pid (Linux /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


class Worker:
    """One Celery worker process (its own session: pgid == pid)."""

    def __init__(self, test, name, pool="solo", concurrency=1, env=None):
        self.test = test
        self.name = name
        self.log_path = os.path.join(test.dir, f"worker-{name}.log")
        e = dict(os.environ)
        e.update(test.worker_env())
        e["SIFT_WORKER_NAME"] = name
        e.update(env or {})
        args = [PYTHON, "-m", "celery", "-A", "celery_app", "worker",
                f"--pool={pool}", "-c", str(concurrency), "-n",
                f"{name}@%h", "--without-heartbeat", "--without-gossip",
                "--without-mingle", "-l", os.environ.get("SIFT_TEST_LOGLEVEL", "info")]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, cwd=HERE, env=e,
                                     stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=log, start_new_session=True)
        log.close()

    @property
    def pid(self):
        return self.proc.pid

    def wait_ready(self, timeout=20.0):
        path = os.path.join(self.test.dir, f"ready-{self.name}")
        ok = wait_until(lambda: os.path.exists(path) or
                        self.proc.poll() is not None, timeout, 0.05)
        if not ok or self.proc.poll() is not None:
            raise AssertionError(f"worker {self.name} not ready in "
                                 f"{timeout} s:\n{self.log_tail()}")
        return self

    def kill(self):
        """SIGKILL to the worker and its pool processes: a crash."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)

    def stop(self, timeout=10.0):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of it (pool children) goes too.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(10)

    def log_tail(self, n=3000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""


class CeleryOnSiftTest(unittest.TestCase):
    """Each test: a fresh siftd, fresh workers, a fresh result directory."""

    app_module = None

    def setUp(self):
        base = os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()
        self.dir = tempfile.mkdtemp(prefix="celery-", dir=base)
        self.siftd = Siftd().start()
        self.workers = []
        self.ack_wait = "30"
        # The producer side runs in this process, with the same app.
        os.environ["SIFT_BROKER_URL"] = self.broker_url
        os.environ["SIFT_RESULT_DIR"] = self.dir
        import celery_app
        celery_app.app.conf.broker_url = self.broker_url
        celery_app.RESULT_DIR = self.dir
        self.app = celery_app

    def tearDown(self):
        for w in self.workers:
            w.stop()
        try:
            self.app.app.pool.force_close_all()
        except Exception:  # noqa: BLE001  (best effort)
            pass
        self.app.app._pool = None
        self.app.app.amqp._producer_pool = None
        self.siftd.stop()
        if not self._outcome_ok():
            print(f"\n--- {self.id()}: files kept in {self.dir}",
                  file=sys.stderr)
            for w in self.workers:
                print(f"--- worker {w.name}:\n{w.log_tail()}", file=sys.stderr)
            print(f"--- siftd:\n{self.siftd.log_tail()}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _outcome_ok(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return True
        errors = getattr(outcome, "errors", None)
        if errors is None:  # Python 3.11+
            result = getattr(outcome, "result", None)
            if result is None:
                return True
            return not any(t is self for t, _ in
                           result.failures + result.errors)
        return not any(exc for _, exc in errors)

    @property
    def broker_url(self):
        return f"sift://127.0.0.1:{self.siftd.port}"

    def worker_env(self):
        return {
            "SIFT_BROKER_URL": self.broker_url,
            "SIFT_RESULT_DIR": self.dir,
            "SIFT_ACK_WAIT": self.ack_wait,
            "PYTHONPATH": os.pathsep.join([PKG, HERE]),
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def start_workers(self, n, **kw):
        new = [Worker(self, f"w{len(self.workers) + i}", **kw)
               for i in range(n)]
        self.workers.extend(new)
        for w in new:
            w.wait_ready()
        return new

    def wait_for(self, predicate, timeout, what):
        if not wait_until(predicate, timeout, 0.05):
            self.fail(f"timed out after {timeout} s waiting for {what}")

    # ---- (a) ----

    def test_thousand_tasks_complete_exactly_once(self):
        self.start_workers(2, pool="prefork", concurrency=4)
        n = 1000
        t0 = time.monotonic()
        for i in range(n):
            self.app.touch.delay(f"a{i}")
        sent = time.monotonic() - t0

        pending = set(range(n))

        def done():
            for i in list(pending):
                if read_lines(self.dir, f"a{i}", "run"):
                    pending.discard(i)
            return not pending
        self.wait_for(done, 60, f"{n} tasks")
        took = time.monotonic() - t0
        time.sleep(1.0)  # anything running twice would show by now
        runs = [len(read_lines(self.dir, f"a{i}", "run")) for i in range(n)]
        redelivered = sum(1 for i in range(n)
                          if len(read_lines(self.dir, f"a{i}",
                                            "received")) > 1)
        self.assertEqual(sum(1 for r in runs if r == 1), n,
                         f"runs per task: {sorted(set(runs))}")
        print(f"\n(a) {n} tasks, 2 prefork workers x 4: each ran once; "
              f"duplicates 0, redeliveries {redelivered}; published in "
              f"{sent:.2f} s, all done in {took:.2f} s", file=sys.stderr)

    # ---- (b) ----

    def test_killed_worker_task_redelivered(self):
        a, b = self.start_workers(2)
        self.app.slow.delay("b", 2.0)
        self.wait_for(lambda: read_lines(self.dir, "b", "start"), 10,
                      "the task to start")
        first = read_lines(self.dir, "b", "start")[0][2]
        victim, other = (a, b) if first == a.pid else (b, a)
        self.assertEqual(first, victim.pid)
        killed_at = time.monotonic()
        victim.kill()
        self.wait_for(lambda: read_lines(self.dir, "b", "done"), 15,
                      "the other worker to finish it")
        took = time.monotonic() - killed_at
        starts = read_lines(self.dir, "b", "start")
        done = read_lines(self.dir, "b", "done")
        self.assertEqual([s[2] for s in starts], [victim.pid, other.pid])
        self.assertEqual([d[2] for d in done], [other.pid])
        print(f"\n(b) killed worker's task redelivered and done by the "
              f"other worker {took:.2f} s after the SIGKILL (of which 2 s "
              "running)", file=sys.stderr)

    # ---- (c) ----

    def test_task_longer_than_ack_wait_runs_once(self):
        self.ack_wait = "2"
        self.start_workers(2)
        self.app.slow.delay("c", 6.0)
        self.wait_for(lambda: read_lines(self.dir, "c", "done"), 15,
                      "the task to finish")
        time.sleep(2.5)  # past another ack wait: no redelivery comes
        self.assertEqual(len(read_lines(self.dir, "c", "start")), 1)
        self.assertEqual(len(read_lines(self.dir, "c", "done")), 1)
        self.assertEqual(len(read_lines(self.dir, "c", "received")), 1)
        print("\n(c) 6 s task with ack_wait 2 s, two workers: ran once",
              file=sys.stderr)

    def test_tasks_waiting_behind_a_busy_pool_run_once(self):
        # A prefork worker with one process: while it runs a long task,
        # Celery's consumer blocks handing the next prefetched task to the
        # pool (billiard's put lock), and the tasks after it wait in the
        # transport, not yet given to kombu. They wait three ack waits; the
        # heartbeat must renew them too, or the broker hands them out again
        # and they run twice (a defect a trial found after a SIGKILL).
        self.ack_wait = "1.5"
        self.start_workers(1, pool="prefork", concurrency=1)
        self.app.slow.delay("busy", 5.0)
        self.wait_for(lambda: read_lines(self.dir, "busy", "start"), 10,
                      "the long task to start")
        keys = [f"q{i}" for i in range(3)]
        for key in keys:
            self.app.slow.delay(key, 0.05)
        self.wait_for(lambda: all(read_lines(self.dir, k, "done")
                                  for k in keys), 20, "the waiting tasks")
        time.sleep(2.0)  # past another ack wait: no redelivery comes
        for key in ["busy"] + keys:
            self.assertEqual(len(read_lines(self.dir, key, "start")), 1, key)
        first_done = read_lines(self.dir, "busy", "done")[0][1]
        for key in keys:  # they did wait behind the long task
            self.assertGreaterEqual(read_lines(self.dir, key, "start")[0][1],
                                    first_done - 0.01, key)
        print("\n(c2) 3 tasks waited 5 s (3.3 ack waits) behind a busy "
              "one-process pool: each ran once", file=sys.stderr)

    def test_control_without_progress_the_ack_wait_redelivers(self):
        # The same task with the PROGRESS heartbeat slowed past the ack
        # wait: the broker redelivers it to the other worker while the
        # first still runs it. Shows that (c) passes because of PROGRESS.
        self.ack_wait = "1"
        self.start_workers(2, env={"SIFT_PROGRESS_INTERVAL": "60"})
        self.app.slow.delay("ctl", 3.0)
        self.wait_for(lambda: len(read_lines(self.dir, "ctl", "start")) >= 2,
                      10, "a redelivery after the ack wait")
        pids = {s[2] for s in read_lines(self.dir, "ctl", "start")}
        self.assertEqual(len(pids), 2)

    def test_warm_shutdown_finishes_running_task_once(self):
        # SIGTERM (warm shutdown) to the worker running a task: Celery
        # cancels its consumer, finishes the task and acks it; the broker
        # must not hand the running task to the other worker meanwhile.
        a, b = self.start_workers(2, pool="prefork", concurrency=1)
        self.app.slow.delay("f", 2.0)
        self.wait_for(lambda: read_lines(self.dir, "f", "start"), 10,
                      "the task to start")
        first = read_lines(self.dir, "f", "start")[0][1:]
        victim = a if read_lines(self.dir, "f", "start")[0][2] in (
            a.pid, *child_pids(a.pid)) else b
        os.kill(victim.pid, signal.SIGTERM)
        try:
            victim.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.fail("the worker did not stop within 15 s of SIGTERM")
        time.sleep(1.5)
        starts = read_lines(self.dir, "f", "start")
        done = read_lines(self.dir, "f", "done")
        self.assertEqual(len(starts), 1, starts)
        self.assertEqual(len(done), 1, done)
        self.assertEqual(done[0][2], starts[0][2])
        self.assertEqual(starts[0][1:], first)

    # ---- (d) ----

    def test_tasks_sent_before_any_worker_run_once(self):
        # The producer's publish declares the queue (kombu's queue_declare
        # -> DECLARE), so the broker holds the tasks until a worker comes.
        for i in range(5):
            self.app.touch.delay("early-%d" % i)
        time.sleep(0.5)
        self.start_workers(1)
        self.wait_for(lambda: all(read_lines(self.dir, "early-%d" % i, "run")
                                  for i in range(5)), 20, "the early tasks")
        time.sleep(0.5)
        for i in range(5):
            self.assertEqual(len(read_lines(self.dir, "early-%d" % i, "run")),
                             1)

    def test_eta_task_waits_in_broker(self):
        self.start_workers(1)
        eta = time.time() + 5.0
        self.app.touch.apply_async(("d",), countdown=5)
        self.wait_for(lambda: read_lines(self.dir, "d", "run"), 15,
                      "the ETA task")
        time.sleep(0.5)
        runs = read_lines(self.dir, "d", "run")
        received = read_lines(self.dir, "d", "received")
        self.assertEqual(len(runs), 1)
        self.assertEqual(len(received), 1)
        # The worker got it only when due (not held in its prefetch).
        self.assertGreaterEqual(received[0][1], eta - 0.01)
        self.assertGreaterEqual(runs[0][1], eta - 0.01)
        self.assertLess(runs[0][1], eta + 3.0)
        print(f"\n(d) ETA task: received {received[0][1] - eta:+.3f} s, ran "
              f"{runs[0][1] - eta:+.3f} s after its eta", file=sys.stderr)

    # ---- (e) ----

    def test_autoretry_with_backoff(self):
        self.start_workers(1)
        self.app.flaky.delay("e", 2)
        self.wait_for(lambda: len(read_lines(self.dir, "e", "run")) >= 3, 20,
                      "three runs")
        time.sleep(1.0)
        runs = read_lines(self.dir, "e", "run")
        self.assertEqual(len(runs), 3)
        d1 = runs[1][1] - runs[0][1]
        d2 = runs[2][1] - runs[1][1]
        # retry_backoff=1, no jitter: countdowns 1 s then 2 s.
        self.assertGreaterEqual(d1, 0.95)
        self.assertGreaterEqual(d2, 1.95)
        self.assertGreater(d2, d1)
        self.assertLess(d2, 4.0)
        print(f"\n(e) autoretry: 3 runs, delays {d1:.2f} s, {d2:.2f} s",
              file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
