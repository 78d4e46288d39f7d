#!/usr/bin/python3
"""Configured limits seen from the wire (docs/security.md): concurrent
streams past the advertised maximum are refused, the per-connection request
cap ends with a graceful GOAWAY, an idle connection is closed with a GOAWAY,
and SIGINT drains like SIGTERM."""
import os
import signal
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (DATA, ERR, GOAWAY, HEADERS, HELLO, RST_STREAM, SETTINGS,  # noqa: E402
                     H2Client, RawConn, Server, describe_frames, log)
import h2.events  # noqa: E402
from h2.errors import ErrorCodes  # noqa: E402

MAX_CONCURRENT_STREAMS = 0x3


def ping_sync(c, timeout=5.0):
    """PING the server and wait for the ACK: frames are handled in order, so
    then it has handled everything sent before (a request has reached its
    handler).  Replaces a sleep that a loaded machine can outlast."""
    c.conn.ping(b"sync-req")
    c.flush()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not c.eof:
        if any(isinstance(ev, h2.events.PingAckReceived) for ev in c.pump(0.1)):
            return
    raise AssertionError("no PING ACK within %.1f s" % timeout)


def get(path):
    return [(":method", "GET"), (":scheme", "http"), (":authority", "127.0.0.1"), (":path", path)]


class LimitsTest(unittest.TestCase):
    def test_streams_past_max_concurrent_refused(self):
        with Server(shards=1, sets={"max-concurrent-streams": 5}) as srv, RawConn(srv.port) as c:
            s = c.read_until(lambda f: f.type == SETTINGS and "ACK" not in f.flags)
            self.assertIsNotNone(s)
            self.assertEqual(dict(s.settings).get(MAX_CONCURRENT_STREAMS), 5, s.settings)
            for sid in (1, 3, 5, 7, 9):
                c.send_headers(sid, get("/stall?ms=1000"))
            c.send_headers(11, get("/"))          # the sixth: over the limit
            rst = c.read_until(lambda f: f.type in (RST_STREAM, GOAWAY) or
                               (f.type == HEADERS and f.stream_id == 11), timeout=3)
            self.assertIsNotNone(rst, describe_frames(c.frames))
            self.assertEqual((rst.type, rst.stream_id), (RST_STREAM, 11), describe_frames(c.frames))
            self.assertEqual(rst.error_code, ErrorCodes.REFUSED_STREAM, ERR.get(rst.error_code))
            # The five admitted streams finish; then there is room again.
            ended = set()
            while len(ended) < 5:
                f = c.read_until(lambda f: f.type in (DATA, HEADERS, RST_STREAM, GOAWAY), timeout=5)
                self.assertIsNotNone(f, describe_frames(c.frames))
                self.assertNotIn(f.type, (RST_STREAM, GOAWAY), describe_frames(c.frames))
                if "END_STREAM" in f.flags:
                    ended.add(f.stream_id)
            self.assertEqual(ended, {1, 3, 5, 7, 9})
            c.send_headers(13, get("/"))
            f = c.read_until(lambda f: f.stream_id == 13, timeout=3)
            self.assertEqual((f.type, f.decoded.get(":status")), (HEADERS, "200"),
                             describe_frames(c.frames))

    def test_max_requests_graceful_goaway(self):
        with Server(shards=1, sets={"max-requests": 10}) as srv:
            with H2Client(srv.port) as c:
                # One write: the server reads all 12 before it answers and
                # closes (otherwise our later writes race its close: EPIPE).
                sids = [c.request("GET", "/", flush=False) for _ in range(12)]
                c.flush()
                c.wait_eof(5)
                log("max-requests=10, 12 sent: GOAWAY %r; %s" % (
                    [(g.last_stream_id, g.error_code) for g in c.goaways],
                    ["%d:%s" % (s, c.streams[s].status or c.streams[s].reset) for s in sids]))
                self.assertTrue(c.goaways, "no GOAWAY after the request cap")
                for g in c.goaways:
                    self.assertEqual(g.error_code, ErrorCodes.NO_ERROR)
                last = c.goaways[-1].last_stream_id
                served = [s for s in sids if c.streams[s].ended]
                self.assertEqual(len(served), 10, "served %r" % served)
                self.assertEqual(last, 19)
                for s in sids:
                    st = c.streams[s]
                    if s <= last:
                        self.assertEqual((st.status, bytes(st.data)), (200, HELLO), "stream %d" % s)
                    else:
                        self.assertIsNone(st.headers, "stream %d above last_stream_id answered" % s)
            with H2Client(srv.port) as c:                   # a new connection is fine
                self.assertEqual(bytes(c.get("/").data), HELLO)

    def test_idle_timeout(self):
        with Server(shards=1, sets={"idle-timeout": 500}) as srv, H2Client(srv.port) as c:
            self.assertEqual(bytes(c.get("/").data), HELLO)
            t0 = time.monotonic()
            c.wait(lambda: c.goaways or c.eof, 5, "the idle timeout")
            t_goaway = time.monotonic() - t0
            c.wait_eof(5)
            t_eof = time.monotonic() - t0
            log("idle-timeout=500: GOAWAY after %.3f s, closed after %.3f s: %r" % (
                t_goaway, t_eof, c.goaways))
            self.assertTrue(c.goaways, "idle connection closed without GOAWAY")
            self.assertEqual(c.goaways[-1].error_code, ErrorCodes.NO_ERROR)
            self.assertGreaterEqual(t_goaway, 0.4)
            self.assertLess(t_goaway, 1.5)
            self.assertLess(t_eof - t_goaway, 3.0)

    def test_sigint_is_graceful(self):
        with Server(shards=2) as srv, H2Client(srv.port) as c:
            sid = c.request("GET", "/stall?ms=500")
            ping_sync(c)    # the request is in flight, not still on its way
            srv.send_signal(signal.SIGINT)
            st = c.wait_stream(sid, 5)
            self.assertEqual(st.status, 200, "in-flight stream did not finish after SIGINT")
            self.assertTrue(c.goaways)
            rc, dt = srv.wait_exit(harness.DRAIN_TIMEOUT + harness.STOP_MARGIN)
            log("SIGINT: exit %s after %.3f s" % (rc, dt))
            self.assertEqual(rc, 0, srv.stderr_text())


if __name__ == "__main__":
    harness.main()
