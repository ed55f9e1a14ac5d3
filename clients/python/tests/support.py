"""Shared pieces of the integration tests: one real siftd per test class,
clients closed after each test, unique topics per test."""

import itertools
import unittest

import sift
from siftd import Siftd, wait_until  # noqa: F401  (re-exported)

_counter = itertools.count(1)


class BrokerTestCase(unittest.TestCase):
    """Starts siftd (with ``siftd_flags``) once for the class."""

    siftd_flags: tuple = ("--log_level=warn",)

    @classmethod
    def setUpClass(cls) -> None:
        cls.siftd = Siftd(*cls.siftd_flags).start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.siftd.stop()

    def client(self, **options) -> sift.Client:
        options.setdefault("connect_timeout", 5.0)
        c = sift.Client(self.siftd.endpoint, **options)
        self.addCleanup(c.close, 1.0)
        return c

    def topic(self, suffix: str = "x") -> str:
        """A topic no other test uses: t<N>.<suffix>."""
        return f"t{next(_counter)}.{suffix}"


class AsyncBrokerTestCase(unittest.IsolatedAsyncioTestCase):
    """The same for asyncio tests."""

    siftd_flags: tuple = ("--log_level=warn",)

    @classmethod
    def setUpClass(cls) -> None:
        cls.siftd = Siftd(*cls.siftd_flags).start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.siftd.stop()

    async def client(self, **options) -> sift.AsyncClient:
        options.setdefault("connect_timeout", 5.0)
        c = await sift.AsyncClient.connect(self.siftd.endpoint, **options)
        self.addAsyncCleanup(c.close, 1.0)
        return c

    def topic(self, suffix: str = "x") -> str:
        return f"a{next(_counter)}.{suffix}"
