"""Runs the Python client's tests with unittest and writes a JUnit-style XML
report (one <testcase> per test) to $XML_OUTPUT_FILE when Bazel sets it, as
tools/test_summary.py counts them.

    /usr/bin/python3 clients/python/tests/run.py [-v] [TEST_NAME_PATTERN...]

Exit status 0 if every test passed. Python's unittest has no XML writer, so
this is a small TestResult that records each test's outcome and time.
"""

import faulthandler
import os
import sys
import time
import traceback
import unittest
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # clients/python: the sift package


class XmlResult(unittest.TextTestResult):
    """A TextTestResult that also keeps (test id, seconds, outcome, text)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cases = []
        self._started = {}

    def startTest(self, test):
        self._started[test.id()] = time.monotonic()
        super().startTest(test)

    def _record(self, test, kind, text=""):
        start = self._started.pop(test.id(), time.monotonic())
        self.cases.append((test.id(), time.monotonic() - start, kind, text))

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, "failure", self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._record(test, "error", self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skipped", reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._record(test, "pass")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._record(test, "failure", "unexpected success")


def write_xml(path, cases, total_seconds):
    suites = {}
    for test_id, seconds, kind, text in cases:
        # Errors in setUpClass and friends have ids without a method part.
        classname, _, name = test_id.rpartition(".")
        suites.setdefault(classname or "python", []).append(
            (name, seconds, kind, text))
    root = ET.Element("testsuites", {
        "name": "clients/python", "tests": str(len(cases)),
        "failures": str(sum(c[2] == "failure" for c in cases)),
        "errors": str(sum(c[2] == "error" for c in cases)),
        "time": f"{total_seconds:.3f}"})
    for classname, items in suites.items():
        suite = ET.SubElement(root, "testsuite", {
            "name": classname, "tests": str(len(items)),
            "failures": str(sum(i[2] == "failure" for i in items)),
            "errors": str(sum(i[2] == "error" for i in items)),
            "time": f"{sum(i[1] for i in items):.3f}"})
        for name, seconds, kind, text in items:
            case = ET.SubElement(suite, "testcase", {
                "name": name, "classname": classname,
                "time": f"{seconds:.3f}"})
            if kind in ("failure", "error"):
                el = ET.SubElement(case, kind, {
                    "message": text.strip().splitlines()[-1][:200]
                    if text.strip() else kind})
                el.text = text
            elif kind == "skipped":
                ET.SubElement(case, "skipped", {"message": text})
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def main(argv):
    # A hang anywhere shows every thread's stack and ends the run (Bazel's
    # timeout would only kill it).
    faulthandler.dump_traceback_later(240, exit=True)
    verbosity = 2 if "-v" in argv else 1
    patterns = [a for a in argv if not a.startswith("-")]
    loader = unittest.TestLoader()
    if patterns:
        loader.testNamePatterns = [f"*{p}*" for p in patterns]
    suite = loader.discover(HERE, pattern="*_test.py", top_level_dir=HERE)
    runner = unittest.TextTestRunner(resultclass=XmlResult,
                                     verbosity=verbosity, stream=sys.stderr)
    start = time.monotonic()
    try:
        result = runner.run(suite)
    except Exception:
        traceback.print_exc()
        return 1
    elapsed = time.monotonic() - start
    out = os.environ.get("XML_OUTPUT_FILE")
    if out:
        write_xml(out, result.cases, elapsed)
    passed = sum(c[2] == "pass" for c in result.cases)
    failed = sum(c[2] in ("failure", "error") for c in result.cases)
    print(f"python client tests: {passed} passed, {failed} failed, "
          f"{len(result.cases) - passed - failed} skipped in "
          f"{elapsed:.1f} s", file=sys.stderr)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
