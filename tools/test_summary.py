#!/usr/bin/env python3
"""Counts the test cases of one `bazel test` run and prints "N passed, N failed".

Reads the run's build event protocol file (--build_event_json_file): which
test targets were configured, each one's test.xml and overall status. Cases
are the <testcase> elements of the test.xml files. A test target with no
cases to count (failed to build, crashed before writing its XML) counts as one
failed case. Exits 1 if anything failed.
"""
import json
import os
import sys
import xml.etree.ElementTree as ET


def read_events(bep_path):
    tests = set()  # labels of test rules in this run
    status = {}    # label -> overall status
    xmls = {}      # label -> [test.xml paths]
    with open(bep_path) as f:
        for line in f:
            event = json.loads(line)
            eid = event.get("id", {})
            if "targetConfigured" in eid:
                kind = event.get("configured", {}).get("targetKind", "")
                if kind.endswith("_test rule"):
                    tests.add(eid["targetConfigured"]["label"])
            elif "testResult" in eid:
                label = eid["testResult"]["label"]
                for out in event.get("testResult", {}).get("testActionOutput", []):
                    uri = out.get("uri", "")
                    if out.get("name") == "test.xml" and uri.startswith("file://"):
                        xmls.setdefault(label, []).append(uri[len("file://"):])
            elif "testSummary" in eid:
                label = eid["testSummary"]["label"]
                status[label] = event.get("testSummary", {}).get(
                    "overallStatus", "NO_STATUS")
            elif "targetCompleted" in eid:
                label = eid["targetCompleted"]["label"]
                failed = ("aborted" in event or
                          event.get("completed", {}).get("success") is False)
                if failed and label in tests:
                    status.setdefault(label, "FAILED_TO_BUILD")
    for label in tests:
        status.setdefault(label, "NO_STATUS")
    return status, xmls


def count_cases(paths):
    passed = failed = 0
    for path in sorted(set(paths)):
        if not os.path.exists(path):
            continue
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError:
            failed += 1
            continue
        for case in root.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
            elif case.get("status") != "notrun" and case.find("skipped") is None:
                passed += 1
    return passed, failed


def main():
    status, xmls = read_events(sys.argv[1])
    passed = failed = 0
    for label in sorted(status):
        p, f = count_cases(xmls.get(label, []))
        ok = status[label] in ("PASSED", "FLAKY")
        if not ok and f == 0:
            f = 1  # failed to build, timed out, or crashed outside a case
        if ok and p + f == 0:
            p = 1  # a test without case-level XML (e.g. sh_test)
        passed += p
        failed += f
        print(f"{label}: {status[label]} ({p} passed, {f} failed)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
