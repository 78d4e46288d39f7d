#!/usr/bin/python3
"""Connection lifecycle on the server side, over real sockets: the HTTP/2
keepalive PING (ping-interval, ping-timeout) on h2c and TLS, the lingering
close (responses a client has not read yet survive the server's close while
the client still sends), and a TLS client's close_notify treated as a
half-close (requests already sent are answered, then close_notify)."""
import http.client
import os
import re
import socket
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GOAWAY, HELLO, HOST, H2Client, RawConn, Server, describe_frames, log  # noqa: E402
import test_tls  # noqa: E402  (make_pki, TlsServer, client_ctx; its TLS-aware socket.create_connection)

import h2.events  # noqa: E402
from h2.errors import ErrorCodes  # noqa: E402

PING = 0x6


def limit_hits(port, name):
    """spindle_limit_hits_total{limit=name} from the metrics path (HTTP/1.1
    on the same port).  The shards publish their counters on their loop's
    tick, so callers poll."""
    c = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
    finally:
        c.close()
    m = re.search(r'^spindle_limit_hits_total\{limit="%s"\} (\d+)$' % re.escape(name), text, re.M)
    assert m, "no limit %r in the metrics" % name
    return int(m.group(1))


def wait_hits(port, name, want, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        n = limit_hits(port, name)
        if n == want or time.monotonic() > deadline:
            return n
        time.sleep(0.1)


def frames_for(c, secs):
    """Frames a RawConn reads in `secs` seconds (stops early at EOF)."""
    deadline = time.monotonic() + secs
    out = []
    while not c.eof:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            f = c.read_frame(left)
        except socket.timeout:
            break
        if f is not None:
            out.append(f)
    return out


class KeepaliveTest(unittest.TestCase):
    INTERVAL, TIMEOUT = 300, 400

    def sets(self, **more):
        s = {"ping-interval": self.INTERVAL, "ping-timeout": self.TIMEOUT,
             "metrics-path": "/metrics"}
        s.update(more)
        return s

    def check_unanswered(self, srv, c):
        """A client that never ACKs: a PING after ~interval, then GOAWAY
        NO_ERROR "ping timeout" ~timeout later, then the close."""
        t0 = time.monotonic()
        ping = c.read_until(lambda f: f.type == PING, timeout=5)
        self.assertIsNotNone(ping, describe_frames(c.frames))
        t_ping = time.monotonic() - t0
        self.assertNotIn("ACK", ping.flags)
        ga = c.read_until(lambda f: f.type == GOAWAY, timeout=5)
        t_goaway = time.monotonic() - t0
        self.assertIsNotNone(ga, describe_frames(c.frames))
        self.assertTrue(c.wait_eof(5), "not closed after the GOAWAY")
        t_eof = time.monotonic() - t0
        log("unanswered: PING after %.3f s, GOAWAY after %.3f s, closed after %.3f s" % (
            t_ping, t_goaway, t_eof))
        self.assertEqual(ga.error_code, ErrorCodes.NO_ERROR)
        self.assertEqual(bytes(ga.additional_data), b"ping timeout")
        # The server counts from its accept; the client from its preface.
        self.assertGreaterEqual(t_goaway, (self.INTERVAL + self.TIMEOUT) / 1000 - 0.1)
        self.assertGreaterEqual(t_goaway - t_ping, self.TIMEOUT / 1000 - 0.05)
        self.assertLess(t_goaway, 4.0)
        self.assertEqual(wait_hits(srv.port, "ping-timeout", 1), 1)

    def test_unanswered_h2c(self):
        with Server(shards=1, sets=self.sets()) as srv, RawConn(srv.port) as c:
            self.check_unanswered(srv, c)

    def test_unanswered_tls(self):
        with tempfile.TemporaryDirectory() as d:
            pki = test_tls.make_pki(d)
            with test_tls.TlsServer(pki, shards=1, sets=self.sets()) as srv:
                test_tls._tls.ctx = test_tls.client_ctx(pki["ca"])
                try:
                    c = RawConn(srv.tls_port)
                finally:
                    test_tls._tls.ctx = None
                with c:
                    self.check_unanswered(srv, c)

    def test_answered_stays_open_until_idle_timeout(self):
        """python-h2 answers every PING: the connection stays open, a PING
        per interval, and still closes at idle-timeout (answers are not
        activity)."""
        idle = 2000
        with Server(shards=1, sets=self.sets(**{"idle-timeout": idle})) as srv, \
                H2Client(srv.port) as c:
            self.assertEqual(bytes(c.get("/").data), HELLO)
            t0 = time.monotonic()
            pings = 0
            while not c.goaways and not c.eof and time.monotonic() - t0 < 10:
                pings += sum(isinstance(e, h2.events.PingReceived) for e in c.pump(0.05))
            t = time.monotonic() - t0
            log("answered: %d PINGs, GOAWAY %r after %.3f s" % (pings, c.goaways, t))
            self.assertTrue(c.goaways, "no GOAWAY at the idle timeout")
            self.assertEqual(c.goaways[-1].additional_data, b"idle timeout")
            self.assertGreaterEqual(t, idle / 1000 - 0.1)
            self.assertGreaterEqual(pings, 3)
            self.assertEqual(limit_hits(srv.port, "ping-timeout"), 0)

    def test_interval_0_sends_no_ping(self):
        with Server(shards=1, sets={"idle-timeout": 0}) as srv, RawConn(srv.port) as c:
            frames = frames_for(c, 1.5)
            self.assertFalse(c.eof)
            self.assertEqual([f for f in frames if f.type == PING], [], describe_frames(frames))


if __name__ == "__main__":
    harness.main()
