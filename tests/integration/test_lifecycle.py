#!/usr/bin/python3
"""Connection lifecycle on the server side, over real sockets: the HTTP/2
keepalive PING (ping-interval, ping-timeout) on h2c and TLS, the lingering
close (responses a client has not read yet survive the server's close while
the client still sends), and a TLS client's close_notify treated as a
half-close (requests already sent are answered, then close_notify)."""
import contextlib
import http.client
import os
import re
import socket
import ssl
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


# -- lingering close ----------------------------------------------------------

CLOSE_REQ = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
JUNK = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 64  # 1,792 bytes


def small_rcvbuf_conn(port, rcvbuf=8192):
    """A client socket whose receive buffer is small: a large response waits
    in the server's send queue while the client does not read."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.connect((HOST, port))
    return s


def send_for(s, total, secs):
    """Send `total` bytes of junk over about `secs` seconds without reading
    (non-blocking: stops early if the server's window is full for long)."""
    s.setblocking(False)
    sent, t_end = 0, time.monotonic() + secs
    try:
        while sent < total and time.monotonic() < t_end + 5:
            try:
                sent += s.send(JUNK[:min(len(JUNK), total - sent)])
            except BlockingIOError:
                time.sleep(0.005)
                continue
            time.sleep(secs * len(JUNK) / total)
    finally:
        s.setblocking(True)
    return sent


def read_all(s, timeout=10):
    """Everything until EOF; (bytes, the error that ended it or None)."""
    s.settimeout(timeout)
    got = bytearray()
    try:
        while True:
            d = s.recv(1 << 20)
            if not d:
                return bytes(got), None
            got += d
    except OSError as e:
        return bytes(got), e


def reset_by_server(s, wait=0.2):
    """Probe a half-closed connection: a byte now, one after `wait`, one
    after 2 x `wait`.  A server that has closed answers a byte with RST, so
    a later send fails (EPIPE or ECONNRESET); one still lingering takes
    them all."""
    try:
        for _ in range(3):
            s.send(b"x")
            time.sleep(wait)
    except OSError:
        return True
    return False


class LingerTest(unittest.TestCase):
    def test_http11_close_keeps_unread_response(self):
        """connection: close on a 1 MiB response while the client, not
        reading (small receive buffer), sends 1 MB more: the whole body
        arrives (without lingering, the close with unread input resets the
        connection and drops the send queue: 12 KiB of 1 MiB arrived)."""
        with Server(shards=1) as srv:
            for _ in range(3):
                s = small_rcvbuf_conn(srv.port)
                try:
                    s.sendall(b"GET /1m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    sent = send_for(s, 1000000, 0.5)
                    got, err = read_all(s)
                finally:
                    s.close()
                head, _, body = got.partition(b"\r\n\r\n")
                log("sent %d bytes after the request; got %d body bytes, %r" % (sent, len(body), err))
                self.assertTrue(head.startswith(b"HTTP/1.1 200"), head[:100])
                self.assertIsNone(err)
                self.assertEqual(len(body), 1 << 20)

    def test_http11_413_keeps_unread_responses(self):
        """GET /1m, then a POST whose body is over h1-max-body, pipelined;
        the client sends the body (1 MB) without reading: the 1 MiB
        response and the 413 both arrive whole before the close."""
        with Server(shards=1, sets={"h1-max-body": 1000}) as srv:
            s = small_rcvbuf_conn(srv.port)
            try:
                s.sendall(b"GET /1m HTTP/1.1\r\nHost: x\r\n\r\n"
                          b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
                sent = send_for(s, 1000000, 0.5)
                got, err = read_all(s)
            finally:
                s.close()
            head, _, rest = got.partition(b"\r\n\r\n")
            log("sent %d body bytes; got %d bytes, %r" % (sent, len(got), err))
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head[:100])
            self.assertIsNone(err)
            self.assertGreaterEqual(len(rest), 1 << 20)
            self.assertTrue(rest[1 << 20:].startswith(b"HTTP/1.1 413"), rest[1 << 20:][:100])

    def test_h2_max_requests_keeps_unread_responses(self):
        """max-requests=2 over HTTP/2: two 1 MiB responses, while the client
        (not reading, windows open) keeps sending requests past the GOAWAY:
        both bodies arrive whole, then the close."""
        with Server(shards=1, sets={"max-requests": 2}) as srv:
            s = small_rcvbuf_conn(srv.port)
            try:
                enc = harness.hpack.Encoder()
                win = 1 << 30
                settings = harness.frame(harness.SETTINGS, 0, 0, bytes([0, 4]) + win.to_bytes(4, "big"))
                wu = harness.frame(harness.WINDOW_UPDATE, 0, 0, (win - 65535).to_bytes(4, "big"))
                s.sendall(harness.PREFACE + settings + wu)
                req = [(":method", "GET"), (":scheme", "http"), (":authority", "x"), (":path", "/1m")]
                for sid in (1, 3):
                    s.sendall(harness.frame(harness.HEADERS, 0x5, sid, enc.encode(req)))
                s.setblocking(False)
                sid, t_end, sent = 5, time.monotonic() + 0.5, 0
                while time.monotonic() < t_end and sent < 1000000:
                    try:
                        sent += s.send(harness.frame(harness.HEADERS, 0x5, sid, enc.encode(req)))
                        sid += 2
                    except BlockingIOError:
                        pass
                    time.sleep(0.002)
                s.setblocking(True)
                got, err = read_all(s)
            finally:
                s.close()
            body = {1: 0, 3: 0}
            goaway, off = None, 0
            while off + 9 <= len(got):
                n = int.from_bytes(got[off:off + 3], "big")
                t, sid_ = got[off + 3], int.from_bytes(got[off + 5:off + 9], "big") & 0x7fffffff
                if t == 0 and sid_ in body:
                    body[sid_] += n
                elif t == GOAWAY:
                    goaway = int.from_bytes(got[off + 9:off + 13], "big")
                off += 9 + n
            log("sent %d bytes of requests after the first two; bodies %r, GOAWAY last %r, %r" % (
                sent, body, goaway, err))
            self.assertEqual(goaway, 3)
            self.assertIsNone(err)
            self.assertEqual(body, {1: 1 << 20, 3: 1 << 20})

    def closed_conn(self, srv):
        """An HTTP/1.1 connection the server has answered and half-closed
        (its FIN read); the caller probes it."""
        s = socket.create_connection((HOST, srv.port))
        s.sendall(CLOSE_REQ)
        got, err = read_all(s, 5)
        self.assertTrue(got.startswith(b"HTTP/1.1 200"), got[:100])
        self.assertIsNone(err)
        return s, time.monotonic()

    def test_lingering_timeout(self):
        """A client that sends nothing more is closed lingering-timeout
        after the server's FIN, not before."""
        with Server(shards=1, sets={"lingering-timeout": 600}) as srv:
            s, _ = self.closed_conn(srv)
            with s:
                time.sleep(0.2)
                self.assertFalse(reset_by_server(s), "closed before lingering-timeout")
            s, _ = self.closed_conn(srv)
            with s:
                time.sleep(1.2)
                self.assertTrue(reset_by_server(s), "still lingering after lingering-timeout")

    def test_lingering_time(self):
        """A client that keeps trickling bytes (under lingering-timeout) is
        closed lingering-time after the server's FIN."""
        with Server(shards=1, sets={"lingering-time": 1000, "lingering-timeout": 800}) as srv:
            s, t0 = self.closed_conn(srv)
            with s:
                t = None
                while time.monotonic() - t0 < 6:
                    if reset_by_server(s, 0.1):
                        t = time.monotonic() - t0
                        break
                log("lingering-time=1000: RST %.3f s after the FIN" % (t or -1))
                self.assertIsNotNone(t, "a trickling client held the connection for 6 s")
                self.assertGreaterEqual(t, 0.9)
                self.assertLess(t, 4.0)

    def test_lingering_bytes(self):
        """Past lingering-bytes discarded the server closes at once."""
        with Server(shards=1, sets={"lingering-bytes": 100000}) as srv:
            s, _ = self.closed_conn(srv)
            with s:
                s.sendall(b"x" * 50000)
                self.assertFalse(reset_by_server(s), "closed under lingering-bytes")
            s, _ = self.closed_conn(srv)
            with s:
                with contextlib.suppress(OSError):
                    s.sendall(b"x" * 200000)
                self.assertTrue(reset_by_server(s), "still lingering past lingering-bytes")

    def test_lingering_off(self):
        """lingering-time=0: the server closes at once after its response."""
        with Server(shards=1, sets={"lingering-time": 0}) as srv:
            s, _ = self.closed_conn(srv)
            with s:
                self.assertTrue(reset_by_server(s), "lingering with lingering-time=0")

    def test_client_close_ends_lingering(self):
        """A client that closes after the response ends the lingering: the
        server's connection count drops at once, not after the timeout."""
        with Server(shards=1, sets={"metrics-path": "/metrics"}) as srv:
            s, _ = self.closed_conn(srv)
            s.close()
            deadline = time.monotonic() + 3
            while True:
                c = http.client.HTTPConnection(HOST, srv.port, timeout=5)
                c.request("GET", "/metrics")
                text = c.getresponse().read().decode()
                c.close()
                m = re.search(r'^spindle_connections_open\{shard="0"\} (\d+)$', text, re.M)
                self.assertIsNotNone(m, "no spindle_connections_open")
                if int(m.group(1)) <= 1 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            self.assertLessEqual(int(m.group(1)), 1, "the closed client's connection lingers on")


# -- TLS close_notify as a half-close -------------------------------------------

def tls_request_then_close_notify(port, ctx, request):
    """Over a real socket (ssl.MemoryBIO): the handshake, `request`, then
    our close_notify (SSLObject.unwrap) at once; then read.  Returns the
    plaintext that came back and whether the server's close_notify ended it
    (False: a TCP EOF or reset without it)."""
    sock, obj, inc, out = test_tls.bio_client(port, ctx)
    with sock:
        sock.settimeout(10)
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(out.read())
                d = sock.recv(65536)
                if not d:
                    raise AssertionError("EOF during the handshake")
                inc.write(d)
        obj.write(request)
        try:
            obj.unwrap()
        except ssl.SSLWantReadError:
            pass  # ours is out; the server's has not come yet
        sock.sendall(out.read())
        got = bytearray()
        while True:
            try:
                d = sock.recv(65536)
            except ConnectionResetError:
                return bytes(got), False
            if not d:
                return bytes(got), False
            inc.write(d)
            while True:
                try:
                    x = obj.read(65536)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:
                    return bytes(got), True
                if not x:
                    return bytes(got), True
                got += x


class CloseNotifyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.pki = test_tls.make_pki(cls.tmp.name)
        cls.srv = test_tls.TlsServer(cls.pki, shards=1).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.shutdown()
        cls.tmp.cleanup()

    def check(self, version):
        """Two pipelined HTTP/1.1 requests (one for 1 MiB), then the
        client's close_notify: both answered in full, in order, then the
        server's close_notify."""
        ctx = test_tls.client_ctx(self.pki["ca"], alpn=("http/1.1",))
        ctx.minimum_version = ctx.maximum_version = version
        req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /1m HTTP/1.1\r\nHost: x\r\n\r\n"
        got, notified = tls_request_then_close_notify(self.srv.tls_port, ctx, req)
        log("%s: %d bytes back, close_notify %s" % (version.name, len(got), notified))
        head1, _, rest = got.partition(b"\r\n\r\n")
        self.assertTrue(head1.startswith(b"HTTP/1.1 200"), got[:200])
        self.assertTrue(rest.startswith(HELLO), rest[:100])
        head2, _, body2 = rest[len(HELLO):].partition(b"\r\n\r\n")
        self.assertTrue(head2.startswith(b"HTTP/1.1 200"), head2[:200])
        self.assertEqual(len(body2), 1 << 20)
        self.assertTrue(notified, "no close_notify from the server after its responses")

    def test_tls13(self):
        self.check(ssl.TLSVersion.TLSv1_3)

    def test_tls12(self):
        self.check(ssl.TLSVersion.TLSv1_2)


if __name__ == "__main__":
    harness.main()
