#!/usr/bin/python3
"""Graceful shutdown under load: SIGTERM while h2load runs, and SIGTERM while
20 /1m responses are mid-body.  The server must exit 0 within the drain
timeout and never truncate a response it started."""
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ONE_MIB, ONE_MIB_SHA256, H2Client, Server, log, parse_h2load, sha256, spawn  # noqa: E402
from h2.errors import ErrorCodes  # noqa: E402

DRAIN = harness.DRAIN_TIMEOUT


class SigtermTest(unittest.TestCase):
    def test_sigterm_during_h2load(self):
        with tempfile.TemporaryFile() as out, \
                Server(shards=2, sets={"max-requests": 0}) as srv:
            url = "http://127.0.0.1:%d/" % srv.port
            with spawn(["h2load", "-n", "2000000", "-c", "16", "-m", "64", url],
                       stdout=out, stderr=subprocess.STDOUT) as load:
                time.sleep(1.0)
                self.assertIsNone(load.poll(), "h2load finished 2M requests within 1 s?")
                t0 = time.monotonic()
                srv.send_signal()
                rc, dt = srv.wait_exit(DRAIN + harness.STOP_MARGIN)
                log("server exited with status %s %.3f s after SIGTERM under load" % (rc, dt))
                self.assertEqual(rc, 0, "exit status %s\nstderr:\n%s" % (rc, srv.stderr_text()))
                self.assertLess(dt, DRAIN + 0.5, "drain took longer than drain-timeout")
                try:
                    load.wait(30)
                except subprocess.TimeoutExpired:
                    self.fail("h2load still running 30 s after the server exited")
                log("h2load ended %.3f s after SIGTERM (status %d)" % (time.monotonic() - t0,
                                                                     load.returncode))
            out.seek(0)
            text = out.read().decode("utf-8", "replace")
            r = parse_h2load(text)
            log("h2load: %d started, %d done, %d succeeded, %d failed, %d errored, %d timeout; "
                "%d 2xx %d 3xx %d 4xx %d 5xx" % (r["started"], r["done"], r["succeeded"], r["failed"],
                                                 r["errored"], r["timeout"], r["2xx"], r["3xx"],
                                                 r["4xx"], r["5xx"]))
            msg = "h2load output:\n" + text[-3000:]
            self.assertGreater(r["succeeded"], 0, msg)
            # Every response that arrived was a complete 2xx.
            self.assertEqual((r["3xx"], r["4xx"], r["5xx"]), (0, 0, 0), msg)
            self.assertEqual(r["2xx"], r["succeeded"], msg)
            self.assertEqual(r["timeout"], 0, msg)

    def test_sigterm_mid_body_never_truncates(self):
        with Server(shards=2) as srv:
            # auto_ack=False: the server can send only the first 64 KiB window
            # per connection until we acknowledge, so SIGTERM lands mid-body.
            conns = [H2Client(srv.port, auto_ack=False) for _ in range(2)]
            try:
                sids = [[c.request("GET", "/1m") for _ in range(10)] for c in conns]
                for c in conns:
                    c.wait(lambda: c.unacked >= 32768, 5, "the first response bytes")
                srv.send_signal()
                t0 = time.monotonic()
                # Keep not reading for a moment: the GOAWAY and the drain
                # begin while every response is unfinished.
                time.sleep(0.2)
                deadline = t0 + DRAIN + 2
                while time.monotonic() < deadline and not all(c.eof for c in conns):
                    for c in conns:
                        c.pump(0.05)
                        c.ack_pending()
                    if all(all(c.streams[s].done for s in c.streams) for c in conns) and \
                            all(c.goaways for c in conns):
                        # Everything answered; the server should now close.
                        for c in conns:
                            with _suppress_closed():
                                c.wait_eof(DRAIN)
                        break
                rc, dt = srv.wait_exit(DRAIN + harness.STOP_MARGIN)
                dt = time.monotonic() - t0
                log("server exited with status %s %.3f s after SIGTERM" % (rc, dt))
                self.assertEqual(rc, 0, srv.stderr_text())
                self.assertLess(dt, DRAIN + 0.5)
                for ci, c in enumerate(conns):
                    self.assertTrue(c.goaways, "connection %d: no GOAWAY" % ci)
                    for g in c.goaways:
                        self.assertEqual(g.error_code, ErrorCodes.NO_ERROR, c.goaways)
                    last = c.goaways[-1].last_stream_id
                    self.assertEqual(sorted(c.streams), sids[ci])
                    for sid, st in sorted(c.streams.items()):
                        what = "connection %d stream %d (last_stream_id %d)" % (ci, sid, last)
                        # Every request was sent (and partly answered on its
                        # connection) before SIGTERM: all are in flight, so
                        # all must be covered by the GOAWAY and finish whole.
                        # (No new stream after GOAWAY: RFC 9113 6.8 forbids it.)
                        self.assertLessEqual(sid, last, what + ": in-flight stream dropped")
                        self.check_complete_or_unanswered(st, sid <= last, what)
                    log("connection %d: GOAWAY %r; streams %s" % (
                        ci, [(g.last_stream_id, g.error_code) for g in c.goaways],
                        ", ".join("%d:%s" % (s, self.describe(st)) for s, st in sorted(c.streams.items()))))
            finally:
                for c in conns:
                    c.close()

    @staticmethod
    def describe(st):
        if st.reset is not None:
            return "RST(%s)" % ErrorCodes(st.reset).name if st.reset in iter(ErrorCodes) else st.reset
        if st.ended:
            return "%s/%dB" % (st.status, len(st.data))
        return "open(%s,%dB)" % (st.status, len(st.data))

    def check_complete_or_unanswered(self, st, accepted, what):
        if not accepted:
            # Above last_stream_id: the server must not have answered it.
            self.assertTrue(st.headers is None and not st.data,
                            what + ": answered although above last_stream_id")
            return
        # Covered by the GOAWAY: the whole response, never a truncated one.
        self.assertIsNotNone(st.headers, what + ": never answered (%r)" % st.events)
        self.assertIsNone(st.reset, what + ": response cut by RST_STREAM %r after %d bytes" % (
            st.reset, len(st.data)))
        self.assertTrue(st.ended, what + ": truncated body, %d bytes, no END_STREAM" % len(st.data))
        self.assertEqual(st.status, 200, what)
        self.assertEqual(len(st.data), ONE_MIB, what + ": body length")
        self.assertEqual(sha256(bytes(st.data)), ONE_MIB_SHA256, what + ": body content")


class _suppress_closed:
    """The connection may already be gone: that is checked afterwards."""

    def __enter__(self):
        return self

    def __exit__(self, t, e, tb):
        return t is not None and issubclass(t, (OSError, AssertionError))


if __name__ == "__main__":
    harness.main()
