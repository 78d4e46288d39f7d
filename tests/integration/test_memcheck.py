#!/usr/bin/python3
"""The server under valgrind's memcheck: a moderate mix of real clients,
then SIGTERM with a stream in flight.  valgrind exits 9 on any memory
error or definite/indirect leak, so the harness's exit-status-0 check is
the assertion.  (LeakSanitizer cannot follow Criterion's forked unit tests,
and ASan replaces jemalloc; this checks the real binary.)"""
import os
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HELLO, ONE_MIB_SHA256, H2Client, Server, log, run, sha256  # noqa: E402


class MemcheckTest(unittest.TestCase):
    def test_clean_under_memcheck(self):
        with harness.under_valgrind(self):
            self._run()

    def _run(self):
        with tempfile.TemporaryDirectory(prefix="spindle-it-vg-") as tmp, \
                Server(shards=2, start_timeout=60) as srv:
            c = H2Client(srv.port, timeout=60)
            try:
                r = c.get("/", 60)
                self.assertEqual(bytes(r.data), HELLO)
                sids = [c.request("GET", "/1m") for _ in range(4)]
                for sid in sids:
                    self.assertEqual(sha256(bytes(c.wait_stream(sid, 60).data)), ONE_MIB_SHA256)
                body = os.urandom(1 << 20)
                sid = c.request("POST", "/echo", body=body, trailers=[("x-t", "1")])
                r = c.wait_stream(sid, 60)
                self.assertEqual(bytes(r.data), body)
                self.assertIn("1048576", str(r.trailers))
                r = c.get("/reset", 60)
                self.assertIsNotNone(r.reset)
                r = c.get("/early-hints", 60)
                self.assertEqual(r.status, 200)
                # a client reset mid-upload
                sid = c.request("POST", "/echo", end_stream=False)
                c.send_body(sid, b"x" * 100000)
                c.reset(sid)
            finally:
                c.close()
            rc, out, err = run(["h2load", "-n", "2000", "-c", "4", "-m", "16",
                                "http://127.0.0.1:%d/" % srv.port], timeout=300)
            res = harness.parse_h2load(out)
            self.assertEqual(res["succeeded"], 2000, out)
            # SIGTERM with a stalled stream in flight: it must finish, and the
            # process must exit 0 (valgrind: no error, no leak).
            c = H2Client(srv.port, timeout=60)
            try:
                sid = c.request("GET", "/stall?ms=1500")
                time.sleep(0.5)
                t0 = time.monotonic()
                srv.stop(timeout=60)  # asserts exit status 0
                log("valgrind exit 0, %.1f s after SIGTERM" % (time.monotonic() - t0))
            finally:
                c.close()


if __name__ == "__main__":
    harness.main()
