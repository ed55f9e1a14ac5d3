"""Runs the Celery transport's tests (celery_tests/*_test.py) with unittest
and writes one JUnit <testcase> per test to $XML_OUTPUT_FILE (the writer of
tests/run.py), as tools/test_summary.py counts them.

    /usr/bin/python3 clients/python/celery_tests/run.py [-v] [PATTERN...]
"""

import faulthandler
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path.insert(0, os.path.dirname(HERE))

from run import XmlResult, write_xml  # noqa: E402  (tests/run.py)


def main(argv):
    faulthandler.dump_traceback_later(200, exit=True)
    verbosity = 2 if "-v" in argv else 1
    patterns = [a for a in argv if not a.startswith("-")]
    loader = unittest.TestLoader()
    if patterns:
        loader.testNamePatterns = [f"*{p}*" for p in patterns]
    suite = loader.discover(HERE, pattern="*_test.py", top_level_dir=HERE)
    runner = unittest.TextTestRunner(resultclass=XmlResult,
                                     verbosity=verbosity, stream=sys.stderr)
    start = time.monotonic()
    result = runner.run(suite)
    elapsed = time.monotonic() - start
    out = os.environ.get("XML_OUTPUT_FILE")
    if out:
        write_xml(out, result.cases, elapsed)
    passed = sum(c[2] == "pass" for c in result.cases)
    failed = sum(c[2] in ("failure", "error") for c in result.cases)
    print(f"celery transport tests: {passed} passed, {failed} failed in "
          f"{elapsed:.1f} s", file=sys.stderr)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
