#!/usr/bin/python3
"""HTTP/1.1 on the same listener as HTTP/2 (issue 13): curl --http1.1
(keep-alive, chunked upload, -T, 100-continue), python http.client, wrk,
100 pipelined requests answered in order, the malformed/smuggling table of
tests/data/h1_bad_requests.txt sent raw (status, then close), slowloris,
and HTTP/1.1 and HTTP/2 clients at once on one port."""
import http.client
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (HELLO, HOST, ONE_MIB, ONE_MIB_SHA256, H2Client, Server, log, run,  # noqa: E402
                     sha256, sha256_file)

HERE = os.path.dirname(os.path.abspath(__file__))
BAD_TABLE = os.path.join(HERE, "..", "data", "h1_bad_requests.txt")
CURL = ["curl", "--http1.1", "-sS", "--no-progress-meter", "--max-time", "60"]
W = "%{http_code} %{http_version} %{size_download} %{num_connects}\n"


def decode_case(s):
    s = re.sub(r'\{\{(\d+)\*(.*?)\}\}', lambda m: m.group(2) * int(m.group(1)), s)
    return s.encode("latin-1").decode("unicode_escape").encode("latin-1")


def bad_cases():
    cases = []
    with open(BAD_TABLE, encoding="latin-1") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            status, close, name, req = line.split("\t", 3)
            cases.append((int(status), close, name, decode_case(req)))
    return cases


def read_until_close(sock, timeout=10.0):
    """Everything the server sends until it closes; (data, closed)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return data, False
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


class Responses:
    """A minimal HTTP/1.1 response reader over a raw socket (content-length
    and chunked bodies, 1xx skipped unless asked)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _fields(self):
        fields = []
        while True:
            line = self._line()
            if not line:
                return fields
            k, v = line.split(b":", 1)
            fields.append((k.strip().lower().decode(), v.strip().decode()))

    def next(self, head=False, keep_1xx=False):
        """(status, fields dict, body, trailers dict)."""
        while True:
            status = int(self._line().split(b" ")[1])
            fields = dict(self._fields())
            if 100 <= status < 200 and not keep_1xx:
                continue
            break
        body, trailers = b"", {}
        if head or status in (204, 304) or 100 <= status < 200:
            return status, fields, body, trailers
        if fields.get("transfer-encoding") == "chunked":
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    trailers = dict(self._fields())
                    break
                body += self._take(size)
                self._take(2)
        elif "content-length" in fields:
            body = self._take(int(fields["content-length"]))
        return status, fields, body, trailers


class Http1Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="spindle-it-http1-")
        cls.srv = Server(shards=2).start()
        cls.base = "http://%s:%d" % (HOST, cls.srv.port)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.tmp.cleanup()

    def connect(self):
        s = socket.create_connection((HOST, self.srv.port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    # -- curl -------------------------------------------------------------
    def test_curl_plain_and_keepalive(self):
        """Plain curl (no flag) gets HTTP/1.1; several URLs share one
        connection."""
        rc, out, err = run(["curl", "-sS", self.base + "/"], 30)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.encode(), HELLO)
        urls = [self.base + p for p in ("/", "/1m", "/nope", "/early-hints", "/")]
        out_path = os.path.join(self.tmp.name, "ka")
        cmd = CURL + ["-w", W]
        for u in urls:
            cmd += ["-o", out_path, u]
        rc, out, err = run(cmd, 60)
        self.assertEqual(rc, 0, err)
        lines = out.split("\n")[:len(urls)]
        codes = [ln.split()[0] for ln in lines]
        self.assertEqual(codes, ["200", "200", "404", "200", "200"])
        self.assertTrue(all(ln.split()[1] == "1.1" for ln in lines), out)
        self.assertEqual(lines[1].split()[2], str(ONE_MIB))
        connects = [int(ln.split()[3]) for ln in lines]
        self.assertEqual(connects, [1, 0, 0, 0, 0], "one connection for all: " + out)

    def test_curl_chunked_upload_and_put(self):
        data = os.urandom(3 * ONE_MIB + 17)
        src = os.path.join(self.tmp.name, "up")
        with open(src, "wb") as f:
            f.write(data)
        dst = os.path.join(self.tmp.name, "down")
        # chunked request body
        rc, out, err = run(CURL + ["-H", "Transfer-Encoding: chunked", "--data-binary", "@" + src,
                                   "-o", dst, "-w", W, self.base + "/echo"], 60)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.split()[0], "200")
        self.assertEqual(sha256_file(dst), sha256(data))
        # -T: PUT with content-length (curl adds Expect: 100-continue past 1 MiB)
        rc, out, err = run(CURL + ["-v", "-T", src, "-o", dst, "-w", W, self.base + "/echo"], 60)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.split()[0], "200")
        self.assertEqual(sha256_file(dst), sha256(data))
        self.assertIn("HTTP/1.1 100 Continue", err)

    def test_curl_expect_100_small(self):
        rc, out, err = run(CURL + ["-v", "-H", "Expect: 100-continue", "--data-binary", "abc",
                                   "-w", "\n" + W, self.base + "/echo"], 30)
        self.assertEqual(rc, 0, err)
        self.assertIn("HTTP/1.1 100 Continue", err)
        self.assertTrue(out.startswith("abc\n200 1.1"), out)

    def test_curl_h2c_upgrade(self):
        """curl --http2: Upgrade: h2c -> 101, the request is stream 1, the
        next URL goes over the same HTTP/2 connection."""
        out_path = os.path.join(self.tmp.name, "up")
        rc, out, err = run(["curl", "--http2", "-sS", "-v", "-o", out_path, self.base + "/"], 60)
        self.assertEqual(rc, 0, err)
        self.assertIn("HTTP/1.1 101 Switching Protocols", err)
        self.assertIn("HTTP/2 200", err)
        rc, out, err = run(["curl", "--http2", "-sS", "-w", W, "-o", out_path,
                            self.base + "/1m", "-o", out_path + "2", self.base + "/"], 60)
        self.assertEqual(rc, 0, err)
        lines = out.split("\n")
        self.assertEqual(lines[0].split()[:3], ["200", "2", str(ONE_MIB)], out)
        self.assertEqual(lines[1].split(), ["200", "2", str(len(HELLO)), "0"], out)
        self.assertEqual(sha256_file(out_path), ONE_MIB_SHA256)
        # The client preface in the same packet as the upgrade request: held
        # until the 101 is out, then HTTP/2 (stream 1 answered).
        with self.connect() as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                      b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
                      + harness.PREFACE + b"\0\0\0\4\0\0\0\0\0")
            data = b""
            s.settimeout(10)
            while HELLO not in data:
                chunk = s.recv(65536)
                self.assertTrue(chunk, data[:200])
                data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.1 101 "), data[:40])

    def test_curl_reset_closes(self):
        """spindle_reset() on an HTTP/1.1 request closes the connection
        (nothing was sent: curl reports an empty reply)."""
        rc, out, err = run(CURL + [self.base + "/reset"], 30)
        self.assertEqual(rc, 52, (rc, out, err))

    # -- python http.client -----------------------------------------------
    def test_http_client(self):
        c = http.client.HTTPConnection(HOST, self.srv.port, timeout=30)
        try:
            c.request("GET", "/")
            r = c.getresponse()
            self.assertEqual((r.status, r.read()), (200, HELLO))
            self.assertEqual(r.version, 11)
            self.assertTrue(r.getheader("date"))
            c.request("HEAD", "/")
            r = c.getresponse()
            self.assertEqual((r.status, r.read()), (200, b""))
            c.request("GET", "/1m")
            r = c.getresponse()
            self.assertEqual(sha256(r.read()), ONE_MIB_SHA256)
            body = os.urandom(100000)
            c.request("POST", "/echo", body=body)
            r = c.getresponse()
            self.assertEqual((r.status, r.read()), (200, body))
            c.request("GET", "/stall?ms=50")  # spindle_stream_after
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
            c.request("GET", "/sleep?ms=10")  # spindle_offload
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
            c.request("GET", "/")  # still the same connection
            r = c.getresponse()
            self.assertEqual(r.read(), HELLO)
        finally:
            c.close()

    def test_backpressure_big_and_echo(self):
        """/big (on_writable) and a 32 MiB echo (body pause/resume) over one
        HTTP/1.1 connection; buffers handed == released."""
        c = http.client.HTTPConnection(HOST, self.srv.port, timeout=60)
        try:
            c.request("GET", "/big?mib=64")
            r = c.getresponse()
            n = 0
            while True:
                b = r.read(1 << 20)
                if not b:
                    break
                n += len(b)
            self.assertEqual(n, 64 * ONE_MIB)
            # curl reads while it sends (http.client would not: it would
            # wait on the echo it does not read)
            body = os.urandom(32 * ONE_MIB)
            src = os.path.join(self.tmp.name, "echo32")
            dst = src + ".out"
            with open(src, "wb") as f:
                f.write(body)
            rc, out, err = run(CURL + ["--data-binary", "@" + src, "-o", dst, "-w", W,
                                       self.base + "/echo"], 60)
            self.assertEqual(rc, 0, err)
            self.assertEqual(sha256_file(dst), sha256(body))
            c.request("GET", "/counters")
            r = c.getresponse()
            m = re.match(rb"handed=(\d+) released=(\d+)", r.read())
            self.assertEqual(m.group(1), m.group(2))
        finally:
            c.close()

    # -- raw ----------------------------------------------------------------
    def test_1xx_and_trailers_raw(self):
        with self.connect() as s:
            s.sendall(b"GET /early-hints HTTP/1.1\r\nHost: a\r\n\r\n"
                      b"POST /echo HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n"
                      b"Content-Length: 5\r\n\r\nhello")
            rd = Responses(s)
            st, f, _, _ = rd.next(keep_1xx=True)
            self.assertEqual((st, f.get("link")), (103, "</style.css>; rel=preload"))
            st, _, body, _ = rd.next()
            self.assertEqual((st, body), (200, b"ok"))
            st, f, body, tr = rd.next()
            self.assertEqual((st, body, tr), (200, b"hello", {"x-echo-bytes": "5"}))

    def test_pipelined_100_in_order(self):
        reqs = b"".join(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\nreq-%03d"
                        % i for i in range(100))
        with self.connect() as s:
            s.sendall(reqs)
            rd = Responses(s)
            for i in range(100):
                st, _, body, _ = rd.next()
                self.assertEqual((st, body), (200, b"req-%03d" % i))

    def test_bad_requests_table(self):
        cases = bad_cases()
        self.assertGreaterEqual(len(cases), 40)
        failures = []
        for status, close, name, req in cases:
            # Body errors: the handler must not have answered before the
            # codec does, so those go to /stall (answers after 5 s).
            req = req.replace(b"POST / HTTP/1.1", b"POST /stall?ms=5000 HTTP/1.1", 1)
            with self.connect() as s:
                try:
                    s.sendall(req)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                data, closed = read_until_close(s)
            m = re.match(rb"HTTP/1\.1 (\d{3}) ", data)
            got = int(m.group(1)) if m else None
            if got != status or (close == "close" and not closed):
                failures.append("%s: want %d%s, got %r closed=%s" % (
                    name, status, " close" if close == "close" else "", data[:60], closed))
        self.assertEqual(failures, [], "\n".join(failures))
        self.srv.assert_alive()

    def test_websocket_handshake_and_bytes(self):
        """RFC 6455 over HTTP/1.1: the handler sees the RFC 8441 request
        (hello's /echo answers 200 and echoes its body); the client gets 101
        with the right Sec-WebSocket-Accept, then bytes both ways."""
        import base64
        import hashlib
        key = base64.b64encode(os.urandom(16))
        want = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                                .digest())
        with self.connect() as s:
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                      b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                      b"Sec-WebSocket-Key: " + key + b"\r\n\r\n" + b"frame-1")
            rd = Responses(s)
            st, f, _, _ = rd.next(keep_1xx=True)
            self.assertEqual(st, 101)
            self.assertEqual(f.get("upgrade", "").lower(), "websocket")
            self.assertEqual(f.get("sec-websocket-accept"), want.decode())
            got = rd.buf
            payload = os.urandom(200000)
            s.sendall(payload)
            want_bytes = b"frame-1" + payload
            while len(got) < len(want_bytes):
                chunk = s.recv(65536)
                self.assertTrue(chunk, "closed after %d bytes" % len(got))
                got += chunk
            self.assertEqual(got, want_bytes)
        # A handler that declines (hello's / answers CONNECT with 404): sent as is.
        with self.connect() as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                      b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                      b"Sec-WebSocket-Key: " + key + b"\r\n\r\n"
                      b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            rd = Responses(s)
            self.assertEqual(rd.next()[0], 404)
            st, _, body, _ = rd.next()
            self.assertEqual((st, body), (200, HELLO))

    def test_half_close_after_request(self):
        """A client that shuts down writing after its requests still gets
        every response, in order, then the close (RFC 9112 9.6, as nginx and
        h2o do); one whose request body is cut short by its EOF is closed."""
        with self.connect() as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            s.shutdown(socket.SHUT_WR)
            data, closed = read_until_close(s)
        self.assertTrue(closed, data[:80])
        self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:80])
        self.assertTrue(data.endswith(b"\r\n\r\n" + HELLO), data[-80:])
        # Pipelined, the first answered late (after the EOF has arrived).
        with self.connect() as s:
            s.sendall(b"GET /stall?ms=300 HTTP/1.1\r\nHost: a\r\n\r\n"
                      b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
                      b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            s.shutdown(socket.SHUT_WR)
            rd = Responses(s)
            self.assertEqual(rd.next()[::2], (200, b"stalled\n"))
            self.assertEqual(rd.next()[::2], (200, b"hello"))
            self.assertEqual(rd.next()[::2], (200, HELLO))
            data, closed = read_until_close(s)
            self.assertEqual((data, closed), (b"", True))
        # EOF in the middle of a body: the request cannot complete.
        with self.connect() as s:
            s.sendall(b"POST /stall?ms=5000 HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n"
                      b"0123456789")
            s.shutdown(socket.SHUT_WR)
            data, closed = read_until_close(s)
            self.assertTrue(closed)
            self.assertEqual(data, b"")
        self.srv.assert_alive()

    def test_h1_and_h2_same_port(self):
        """HTTP/1.1 and HTTP/2 clients at once on one port."""
        errors = []

        def h1_loop():
            try:
                c = http.client.HTTPConnection(HOST, self.srv.port, timeout=30)
                for _ in range(200):
                    c.request("GET", "/")
                    r = c.getresponse()
                    if r.read() != HELLO or r.version != 11:
                        errors.append("h1 body")
                c.close()
            except Exception as e:  # noqa: BLE001
                errors.append("h1: %r" % e)

        threads = [threading.Thread(target=h1_loop) for _ in range(4)]
        for t in threads:
            t.start()
        with H2Client(self.srv.port) as h2c:
            sids = [h2c.request("GET", "/") for _ in range(50)]
            for sid in sids:
                res = h2c.wait_stream(sid)
                self.assertEqual(res.status, 200)
                self.assertEqual(bytes(res.data), HELLO)
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])

    def test_wrk(self):
        if not shutil.which("wrk"):
            self.skipTest("wrk not installed (scripts/setup.sh test)")
        rc, out, err = run(["wrk", "-t", "1", "-c", "16", "-d", "1s", self.base + "/"], 60)
        self.assertEqual(rc, 0, err)
        m = re.search(r"(\d+) requests in", out)
        self.assertTrue(m, out)
        self.assertGreater(int(m.group(1)), 0)
        self.assertNotIn("Non-2xx", out)
        self.assertNotIn("Socket errors", out)


class Http1LimitsTest(unittest.TestCase):
    def test_slowloris_and_stats(self):
        """A client trickling its head is answered 408 and closed at
        h1-header-timeout while a benign client keeps being served; the
        hit is counted in the shard's statistics line."""
        with Server(shards=1, sets={"h1-header-timeout": 1000}) as srv:
            slow = socket.create_connection((HOST, srv.port), timeout=10)
            t0 = time.monotonic()
            slow.sendall(b"GET / HTTP/1.1\r\n")
            closed_at = None
            c = http.client.HTTPConnection(HOST, srv.port, timeout=10)
            worst = 0.0
            slow.settimeout(0.05)
            data = b""
            while time.monotonic() - t0 < 8 and closed_at is None:
                try:
                    slow.sendall(b"X")
                except (BrokenPipeError, ConnectionResetError):
                    closed_at = time.monotonic() - t0
                    break
                try:
                    chunk = slow.recv(4096)
                    if not chunk:
                        closed_at = time.monotonic() - t0
                    data += chunk
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    closed_at = time.monotonic() - t0
                r0 = time.monotonic()
                c.request("GET", "/")
                self.assertEqual(c.getresponse().read(), HELLO)
                worst = max(worst, time.monotonic() - r0)
            slow.close()
            c.close()
            log("slowloris closed after %s s; benign worst %.3f s" % (closed_at, worst))
            self.assertIsNotNone(closed_at, "the slow client was never closed")
            self.assertGreaterEqual(closed_at, 0.9)
            self.assertLess(closed_at, 5.0)
            if data:
                self.assertTrue(data.startswith(b"HTTP/1.1 408 "), data[:40])
            self.assertLess(worst, 2.0)  # served throughout, not stuck behind it
            # a 414 and the statistics line
            with socket.create_connection((HOST, srv.port), timeout=10) as s:
                s.sendall(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
                data, _ = read_until_close(s)
                self.assertTrue(data.startswith(b"HTTP/1.1 414 "), data[:40])
            n0 = srv.stderr_all().count("info: stats:")
            srv.send_signal(harness.signal.SIGUSR1)
            deadline = time.monotonic() + 5
            line = None
            while time.monotonic() < deadline and line is None:
                lines = [ln for ln in srv.stderr_all().splitlines() if "info: stats:" in ln]
                if len(lines) > n0:
                    line = lines[-1]
                time.sleep(0.02)
            self.assertIsNotNone(line)
            self.assertIn("h1-request-line 1", line)
            self.assertIn("h1-header-timeout 1", line)

    def test_websocket_idle_timeout(self):
        """h1-ws-idle-timeout: a WebSocket with no byte either way is closed
        after it (and counted), one whose client keeps sending is not."""
        import base64

        def open_ws(port):
            s = socket.create_connection((HOST, port), timeout=10)
            key = base64.b64encode(os.urandom(16))
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                      b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                      b"Sec-WebSocket-Key: " + key + b"\r\n\r\n")
            rd = Responses(s)
            self.assertEqual(rd.next(keep_1xx=True)[0], 101)
            self.assertEqual(rd.buf, b"")
            return s

        # 1.5 s: the active client's ~0.2 s gaps stay far below it even on a
        # loaded machine; the idle one must be gone well before 6 s.
        with Server(shards=1, sets={"h1-ws-idle-timeout": 1500}) as srv:
            idle, active = open_ws(srv.port), open_ws(srv.port)
            t0 = time.monotonic()
            idle.settimeout(0.05)
            closed_at = None
            i = 0
            while time.monotonic() - t0 < 6.0 and (closed_at is None or time.monotonic() - t0 < 3.5):
                msg = b"ping-%03d" % i
                i += 1
                active.sendall(msg)  # every ~200 ms: never idle for 1.5 s
                got = b""
                while len(got) < len(msg):
                    chunk = active.recv(64)
                    self.assertTrue(chunk, "the active WebSocket was closed")
                    got += chunk
                self.assertEqual(got, msg)
                if closed_at is None:
                    try:
                        if idle.recv(64) == b"":
                            closed_at = time.monotonic() - t0
                    except socket.timeout:
                        pass
                    except ConnectionResetError:
                        closed_at = time.monotonic() - t0
                time.sleep(0.15)
            log("idle WebSocket closed after %s s; active one sent %d messages" % (closed_at, i))
            self.assertIsNotNone(closed_at, "the idle WebSocket was never closed")
            self.assertGreaterEqual(closed_at, 1.4)
            self.assertLess(closed_at, 6.0)
            idle.close()
            active.close()
            srv.send_signal(harness.signal.SIGUSR1)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and "h1-ws-idle-timeout 1" not in srv.stderr_all():
                time.sleep(0.02)
            self.assertIn("h1-ws-idle-timeout 1", srv.stderr_all())

    def test_h2c_upgrade_off(self):
        with Server(shards=1, sets={"h2c-upgrade": 0}) as srv:
            rc, out, err = run(["curl", "--http2", "-sS", "-v", "-w", " %{http_version}",
                                "http://%s:%d/" % (HOST, srv.port)], 30)
            self.assertEqual(rc, 0, err)
            self.assertNotIn(" 101 ", err)
            self.assertEqual(out, HELLO.decode() + " 1.1")

    def test_access_log_protocols(self):
        """HTTP/1.1, an h2c Upgrade and prior-knowledge h2c, each logged
        with its protocol and status (the access log of issue 20)."""
        with tempfile.TemporaryDirectory(prefix="h1-alog-") as d:
            path = os.path.join(d, "access.log")
            with Server(shards=1, sets={"access-log": path, "access-log-format": "json"}) as srv:
                url = "http://%s:%d/" % (HOST, srv.port)
                for flag in ("--http1.1", "--http2", "--http2-prior-knowledge"):
                    rc, out, err = run(["curl", flag, "-sS", url], 30)
                    self.assertEqual(rc, 0, err)
                    self.assertEqual(out, HELLO.decode())
            # The log is flushed at the graceful exit.
            with open(path) as f:
                lines = [json.loads(x) for x in f if x.strip()]
        self.assertEqual([x["protocol"] for x in lines], ["http/1.1", "h2c", "h2c"])
        self.assertEqual([x["status"] for x in lines], [200, 200, 200])

    def test_limits_by_name(self):
        with Server(shards=1, sets={"h1-max-request-line": 100, "h1-max-body": 10}) as srv:
            with socket.create_connection((HOST, srv.port), timeout=10) as s:
                s.sendall(b"GET /" + b"a" * 120 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
                data, closed = read_until_close(s)
                self.assertTrue(data.startswith(b"HTTP/1.1 414 "), data[:40])
                self.assertTrue(closed)
            with socket.create_connection((HOST, srv.port), timeout=10) as s:
                s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n")
                data, closed = read_until_close(s)
                self.assertTrue(data.startswith(b"HTTP/1.1 413 "), data[:40])


if __name__ == "__main__":
    harness.main()
