"""tests/conformance/cases.json, run against the Python runner: one test per case.

The steps are interpreted the way the conformance harness reads them (see the file's "about").
A step kind this file does not know fails the test, so new cases cannot pass silently.
"""

import json
import os
import time
import unittest

from tests._harness import CASES, FIXTURES, HANG_GUARD, Worker, matches

KIND = "python"

with open(CASES, encoding="utf-8") as f:
    SUITE = json.load(f)


def _within(step):
    return step["within_ms"] / 1000.0 if "within_ms" in step else HANG_GUARD


def run_case(test, case):
    with Worker(env=case.get("env"), jobs_dir=FIXTURES) as w:
        for i, step in enumerate(case["steps"]):
            where = "%s, step %d %s" % (case["name"], i, json.dumps(step))
            if "expect" in step:
                frame = w.recv(_within(step))
                test.assertTrue(matches(step["expect"], frame), "%s: got %s" % (where, json.dumps(frame)))
            elif "expect_set" in step:
                wanted = list(step["expect_set"])
                end = time.monotonic() + _within(step)
                while wanted:
                    frame = w.recv(max(0.0, end - time.monotonic()))
                    hit = next((e for e in wanted if matches(e, frame)), None)
                    test.assertIsNotNone(hit, "%s: unexpected %s" % (where, json.dumps(frame)))
                    wanted.remove(hit)
            elif "send" in step:
                w.send(step["send"])
            elif "send_raw" in step:
                w.send_raw(step["send_raw"].encode("utf-8"))
            elif "send_raw_oversized" in step:
                n = step["send_raw_oversized"]
                w.send_raw(b'{"type":"run","id":"big","job":"echo","params":"' + b"x" * n + b'"}\n')
            elif "sleep_ms" in step:
                time.sleep(step["sleep_ms"] / 1000.0)
            elif "close" in step:
                w.close()
            elif "expect_exit" in step:
                code = w.wait(_within(step))
                want = step["expect_exit"]["code"]
                if want == "nonzero":
                    test.assertNotEqual(code, 0, where)
                elif want != "any":
                    test.assertEqual(code, want, "%s; stderr:\n%s" % (where, w.stderr_text()))
            elif "expect_stderr_contains" in step:
                test.assertIn(step["expect_stderr_contains"], w.stderr_text(), where)
            else:
                test.fail("%s: unknown step kind" % where)


class ConformanceTest(unittest.TestCase):
    def test_fixtures_exist(self):
        # Every fixture job a case run for this kind sends exists here (some fixtures, such as
        # one that blocks its thread, exist only for the Rust worker and its cases).
        used = {
            step["send"]["job"]
            for case in SUITE["cases"]
            if KIND not in case.get("skip", [])
            for step in case["steps"]
            if "send" in step and isinstance(step["send"].get("job"), str)
        }
        used &= set(SUITE["fixture_jobs"])  # others (e.g. "no-such-job") are meant to be missing
        self.assertTrue(used, "no case of this kind names a fixture job")
        for name in sorted(used):
            self.assertTrue(os.path.isfile(os.path.join(FIXTURES, name + ".py")), name)


def _make(case):
    def test(self):
        if KIND in case.get("skip", []):
            self.skipTest("skipped for %s in cases.json" % KIND)
        run_case(self, case)

    test.__doc__ = "conformance case %s" % case["name"]
    return test


for _case in SUITE["cases"]:
    setattr(ConformanceTest, "test_" + _case["name"], _make(_case))
