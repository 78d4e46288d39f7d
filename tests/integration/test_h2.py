#!/usr/bin/python3
"""python-h2 client (h2c, prior knowledge): trailers both ways, 100-continue,
103 early hints, resets from either side, 64 x /1m on one connection, and
GOAWAY on shutdown."""
import os
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HELLO, ONE_MIB, ONE_MIB_BODY, ONE_MIB_SHA256, H2Client, Server, log, sha256  # noqa: E402
from h2.errors import ErrorCodes  # noqa: E402

POST_ECHO = ("POST", "/echo")


class H2Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(shards=2).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.shutdown()  # asserts exit status 0

    def setUp(self):
        self.srv.assert_alive()
        self.c = H2Client(self.srv.port)

    def tearDown(self):
        self.c.close()

    def assertNoGoaway(self, c=None):
        c = c or self.c
        self.assertFalse(c.goaways, "unexpected GOAWAY: %r" % c.goaways)
        self.assertFalse(c.eof, "connection closed unexpectedly")

    def assertEcho(self, st, body):
        self.assertEqual(st.status, 200, st.events)
        self.assertIsNone(st.reset, "stream reset with %r" % st.reset)
        self.assertTrue(st.ended)
        self.assertEqual(len(st.data), len(body))
        self.assertEqual(bytes(st.data), body)
        self.assertIsNotNone(st.trailers, "no response trailers; events: %r" % st.events)
        self.assertEqual(st.trailers.get("x-echo-bytes"), str(len(body)), st.trailers)
        self.assertNotIn("x-echo-bytes", st.headers)

    # -- basics ------------------------------------------------------------
    def test_get_root(self):
        st = self.c.get("/")
        self.assertEqual(st.status, 200)
        self.assertEqual(bytes(st.data), HELLO)
        self.assertTrue(st.headers.get("content-type", "").startswith("text/plain"), st.headers)
        if "content-length" in st.headers:
            self.assertEqual(st.headers["content-length"], "13")
        self.assertNoGoaway()

    def test_404(self):
        st = self.c.get("/does-not-exist")
        self.assertEqual(st.status, 404)
        self.assertTrue(st.ended)

    # -- trailers ----------------------------------------------------------
    def test_echo_response_trailers(self):
        body = bytes(range(256)) * 700         # 179200 bytes: several windows
        sid = self.c.request(*POST_ECHO, body=body)
        self.assertEcho(self.c.wait_stream(sid), body)

    def test_echo_request_trailers(self):
        body = b"request with trailers\n" * 100
        sid = self.c.request(*POST_ECHO, body=body,
                             trailers=[("x-checksum", sha256(body)), ("x-more", "yes")])
        st = self.c.wait_stream(sid)
        self.assertEcho(st, body)
        self.assertNoGoaway()

    def test_echo_empty_body_with_trailers(self):
        sid = self.c.request(*POST_ECHO, trailers=[("x-only", "trailers")])
        self.assertEcho(self.c.wait_stream(sid), b"")

    # -- informational responses -------------------------------------------
    def test_100_continue(self):
        body = b"sent only after 100 Continue" * 50
        sid = self.c.request(*POST_ECHO, headers=[("expect", "100-continue")], end_stream=False)
        st = self.c.streams[sid]
        self.c.wait(lambda: st.informational or st.done, 5, "the 100 (Continue) response")
        self.assertEqual([i[":status"] for i in st.informational], ["100"], st.events)
        # A final response may follow at once (RFC 9110 10.1.1 lets a server
        # answer before the body arrives; /echo streams); the 100 must lead.
        self.assertEqual(st.events[0], "InformationalResponseReceived", st.events)
        self.assertEqual(len(st.data), 0, "echoed data before any body was sent")
        self.c.send_body(sid, body, end_stream=True)
        st = self.c.wait_stream(sid)
        self.assertEcho(st, body)
        self.assertEqual(st.events[0], "InformationalResponseReceived", st.events)

    def test_103_early_hints(self):
        st = self.c.get("/early-hints")
        self.assertEqual(len(st.informational), 1, st.events)
        hint = st.informational[0]
        self.assertEqual(hint[":status"], "103")
        self.assertEqual(hint.get("link"), "</style.css>; rel=preload")
        self.assertEqual(st.events[0], "InformationalResponseReceived", st.events)
        self.assertEqual(st.status, 200)
        self.assertEqual(bytes(st.data), b"ok")

    # -- resets --------------------------------------------------------------
    def test_client_reset_mid_body(self):
        # Stream A: an echo whose request body is cut off by our RST_STREAM.
        a = self.c.request(*POST_ECHO, end_stream=False)
        self.c.send_body(a, b"x" * 40000)
        # Stream B opens while A is live and must not be affected.
        b = self.c.request("GET", "/1m")
        self.c.wait(lambda: self.c.streams[a].headers is not None or self.c.streams[a].done, 5,
                    "echo response headers on stream A")
        self.c.reset(a, ErrorCodes.CANCEL)
        sb = self.c.wait_stream(b)
        self.assertEqual(sb.status, 200)
        self.assertEqual(sha256(bytes(sb.data)), ONE_MIB_SHA256)
        # The connection keeps serving new streams after the reset.
        body = b"after the reset" * 1000
        sc = self.c.wait_stream(self.c.request(*POST_ECHO, body=body))
        self.assertEcho(sc, body)
        self.assertEqual(bytes(self.c.get("/").data), HELLO)
        self.assertNoGoaway()

    def test_server_reset(self):
        st = self.c.get("/reset")
        self.assertEqual(st.reset, ErrorCodes.CANCEL, "events: %r" % st.events)
        self.assertIsNone(st.headers, "response headers before the reset")
        self.assertEqual(bytes(self.c.get("/").data), HELLO)
        self.assertNoGoaway()

    # -- volume on one connection --------------------------------------------
    def test_64_x_1m_one_connection(self):
        c = H2Client(self.srv.port, window=1 << 24)
        try:
            sids = [c.request("GET", "/1m") for _ in range(64)]
            c.wait(lambda: all(c.streams[s].done for s in sids), 60, "64 x /1m")
            for s in sids:
                st = c.streams[s]
                self.assertEqual(st.status, 200)
                self.assertEqual(len(st.data), ONE_MIB, "stream %d" % s)
                self.assertEqual(sha256(bytes(st.data)), ONE_MIB_SHA256, "stream %d" % s)
            self.assertNoGoaway(c)
        finally:
            c.close()

    def test_echo_1m_interleaved(self):
        # Upload and echo run at the same time on several streams.
        bodies = [ONE_MIB_BODY[i:] + ONE_MIB_BODY[:i] for i in (1, 2, 3)]
        sids = [self.c.request(*POST_ECHO, end_stream=False) for _ in bodies]
        for sid, body in zip(sids, bodies):
            self.c.send_body(sid, body, end_stream=True)
        for sid, body in zip(sids, bodies):
            self.assertEcho(self.c.wait_stream(sid, 30), body)


class GoawayTest(unittest.TestCase):
    """A server of its own: SIGTERM must reach an idle client as a GOAWAY."""

    def test_goaway_on_sigterm(self):
        with Server(shards=1) as srv:
            with H2Client(srv.port) as c:
                self.assertEqual(bytes(c.get("/").data), HELLO)
                self.assertEqual(bytes(c.get("/").data), HELLO)
                t0 = time.monotonic()
                srv.send_signal()
                c.wait(lambda: c.goaways, 5, "GOAWAY after SIGTERM")
                log("first GOAWAY %.3f s after SIGTERM" % (time.monotonic() - t0))
                # A server may announce 2^31-1 first and the real last stream
                # id next (RFC 9113 6.8); the connection must then close.
                c.wait_eof(harness.DRAIN_TIMEOUT)
                log("GOAWAY frames: %r" % c.goaways)
                for g in c.goaways:
                    self.assertEqual(g.error_code, ErrorCodes.NO_ERROR, c.goaways)
                ids = [g.last_stream_id for g in c.goaways]
                self.assertEqual(ids, sorted(ids, reverse=True), "last_stream_id must not grow")
                self.assertEqual(ids[-1], 3, "both requests were processed")
            rc, dt = srv.wait_exit(harness.DRAIN_TIMEOUT + harness.STOP_MARGIN)
            self.assertEqual(rc, 0, srv.stderr_text())
            # Nothing in flight: the drain has nothing to wait for.
            self.assertLess(dt, 3.0, "idle server took %.1f s to exit" % dt)


if __name__ == "__main__":
    harness.main()
