#!/usr/bin/python3
"""Liveness and readiness paths and the SIGTERM shutdown delay
(docs/deploy.md): readiness turns 503 at SIGTERM while spindle keeps serving
old and new connections for shutdown-delay ms, then the GOAWAY drain; a
second SIGTERM cuts the delay short; without the options nothing changes."""
import os
import signal
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import H2Client, Server, log, run  # noqa: E402

PATHS = {"health-path": "/healthz", "ready-path": "/readyz"}


def curl(port, path, head=False):
    """(status, body) with curl --http2-prior-knowledge."""
    cmd = ["curl", "-sS", "--http2-prior-knowledge", "--max-time", "5", "-o", "-",
           "-w", "\n%{http_code} %{http_version}"]
    if head:
        cmd.append("-I")
    rc, out, err = run(cmd + ["http://127.0.0.1:%d%s" % (port, path)], 10)
    if rc != 0:
        raise AssertionError("curl %s: exit %d: %s" % (path, rc, err))
    body, _, tail = out.rpartition("\n")
    code, version = tail.split()
    if version != "2":
        raise AssertionError("curl spoke HTTP/%s" % version)
    return int(code), body


class HealthTest(unittest.TestCase):
    def test_paths_answered_before_the_handler(self):
        with Server(shards=2, sets=PATHS) as srv:
            self.assertEqual(curl(srv.port, "/healthz"), (200, "ok\n"))
            self.assertEqual(curl(srv.port, "/readyz"), (200, "ready\n"))
            self.assertEqual(curl(srv.port, "/readyz?probe=1"), (200, "ready\n"))
            code, head = curl(srv.port, "/readyz", head=True)
            self.assertEqual(code, 200)
            self.assertIn("cache-control: no-store", head.lower())
            self.assertEqual(curl(srv.port, "/"), (200, "Hello, World!"))
            # Other methods and other paths are the application's (404 here).
            with H2Client(srv.port) as c:
                r = c.wait_stream(c.request("POST", "/readyz", body=b"x"))
                self.assertEqual(r.status, 404)
                self.assertEqual(c.get("/healthz/x").status, 404)

    def test_off_by_default(self):
        with Server(shards=1) as srv:
            self.assertEqual(curl(srv.port, "/readyz")[0], 404)
            self.assertEqual(curl(srv.port, "/healthz")[0], 404)

    def test_bad_values_refused(self):
        for k, v in (("ready-path", "readyz"), ("shutdown-delay", "-1"),
                     ("socket-activation", "2"), ("upgrade-socket", "")):
            rc, _, err = run([harness.binary(), "--port", "0", "--set", "%s=%s" % (k, v)], 10)
            self.assertEqual(rc, 2, "%s=%s accepted: %s" % (k, v, err))

    def test_sigterm_readiness_then_delay_then_drain(self):
        delay = 2.0
        sets = dict(PATHS, **{"shutdown-delay": int(delay * 1000)})
        with Server(shards=2, sets=sets) as srv:
            old = H2Client(srv.port)
            try:
                self.assertEqual(old.get("/readyz").status, 200)
                t0 = time.monotonic()
                srv.send_signal(signal.SIGTERM)
                # Readiness turns 503 at once, on the connection opened before.
                deadline = t0 + 1.0
                while True:
                    r = old.get("/readyz")
                    if r.status == 503 or time.monotonic() > deadline:
                        break
                    time.sleep(0.02)
                self.assertEqual((r.status, bytes(r.data)), (503, b"draining\n"))
                # Both old and new connections are served during the delay,
                # and no GOAWAY has been sent yet.
                n = 0
                while time.monotonic() - t0 < delay - 0.5:
                    self.assertEqual(old.get("/").status, 200)
                    self.assertEqual(curl(srv.port, "/"), (200, "Hello, World!"))
                    self.assertEqual(curl(srv.port, "/healthz"), (200, "ok\n"))
                    self.assertEqual(curl(srv.port, "/readyz")[0], 503)
                    n += 1
                    time.sleep(0.1)
                self.assertFalse(old.goaways, "GOAWAY during the shutdown delay")
                self.assertTrue(srv.alive())
                log("%d rounds served during the delay" % n)
                # Then the drain: GOAWAY on the old connection, exit 0.
                old.wait(lambda: old.goaways, 5 + delay, "GOAWAY after the delay")
                t_goaway = time.monotonic() - t0
                rc, _ = srv.wait_exit(harness.DRAIN_TIMEOUT + delay + 5)
                self.assertEqual(rc, 0)
                log("GOAWAY %.2f s after SIGTERM (delay %.1f s)" % (t_goaway, delay))
                self.assertGreaterEqual(t_goaway, delay - 0.05)
                self.assertIn("readiness 503", srv.stderr_all())
            finally:
                old.close()

    def test_second_sigterm_cuts_the_delay(self):
        sets = dict(PATHS, **{"shutdown-delay": 60000})
        with Server(shards=1, sets=sets) as srv:
            t0 = time.monotonic()
            srv.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            self.assertTrue(srv.alive())
            self.assertEqual(curl(srv.port, "/readyz")[0], 503)
            srv.send_signal(signal.SIGTERM)
            rc, _ = srv.wait_exit(10)
            self.assertEqual(rc, 0)
            self.assertLess(time.monotonic() - t0, 30, "the 60 s delay was not cut short")
            self.assertIn("second stop signal", srv.stderr_all())


if __name__ == "__main__":
    harness.main()
