"""Runs the Django Channels layer's tests (and the django_notify example's
end-to-end test) with unittest, writing one JUnit <testcase> per test to
$XML_OUTPUT_FILE as run.py does (its XmlResult and write_xml are reused).

    /usr/bin/python3 clients/python/tests/run_channels.py [-v] FILE.py... [-k PATTERN]

Each FILE is a test module (its directory goes on sys.path). Exit status 0
if every test passed.
"""

import faulthandler
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # clients/python: the sift package
sys.path.insert(0, HERE)                   # siftd.py, run.py

import run  # noqa: E402


def main(argv):
    faulthandler.dump_traceback_later(float(os.environ.get(
        "SIFT_TEST_WATCHDOG", "110")), exit=True)
    verbosity = 2 if "-v" in argv else 1
    patterns, files, it = [], [], iter(argv)
    for a in it:
        if a == "-k":
            patterns.append(f"*{next(it)}*")
        elif not a.startswith("-"):
            files.append(a)
    loader = unittest.TestLoader()
    if patterns:
        loader.testNamePatterns = patterns
    suite = unittest.TestSuite()
    for path in files:
        path = os.path.abspath(path)
        directory, name = os.path.split(path)
        if directory not in sys.path:
            sys.path.insert(0, directory)
        suite.addTests(loader.loadTestsFromName(name[:-3]))
    runner = unittest.TextTestRunner(resultclass=run.XmlResult,
                                     verbosity=verbosity, stream=sys.stderr)
    start = time.monotonic()
    result = runner.run(suite)
    elapsed = time.monotonic() - start
    out = os.environ.get("XML_OUTPUT_FILE")
    if out:
        run.write_xml(out, result.cases, elapsed)
    passed = sum(c[2] == "pass" for c in result.cases)
    failed = sum(c[2] in ("failure", "error") for c in result.cases)
    print(f"channels tests: {passed} passed, {failed} failed, "
          f"{len(result.cases) - passed - failed} skipped in "
          f"{elapsed:.1f} s", file=sys.stderr)
    return 0 if result.wasSuccessful() and result.cases else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
