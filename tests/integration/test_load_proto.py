#!/usr/bin/python3
"""spindle-load over TLS (ALPN h2, and http/1.1 with --h1) and over HTTP/1.1
(--h1, keep-alive and pipelining), still a correct client: exact request
and byte counts against spindle-hello, h2o, nghttpd (TLS) and nginx
(HTTP/1.1), certificate verification on by default (a wrong CA, a wrong
name and no CA at all refuse to run), and a lying HTTP/1.1 server whose
short bodies, bad status lines and resets count as errors, never as
successes.

argv[1] is spindle-hello; spindle-load comes from $SPINDLE_LOAD (CTest sets
it), else from the build tree (test_load.load_binary)."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HOST, Server, free_port, log, run  # noqa: E402
from test_load import load_binary, spindle_load, wait_port  # noqa: E402
from test_tls import TlsServer, make_pki, openssl  # noqa: E402


class Peer:
    """h2o, nghttpd or nginx serving docroot on a free port; tls: with the
    test certificate (h2o and nghttpd; ALPN h2 and http/1.1 for h2o)."""

    def __init__(self, kind, docroot, work, pki=None, keepalive_requests=100000):
        self.kind, self.docroot, self.work, self.pki = kind, docroot, work, pki
        self.keepalive_requests = keepalive_requests
        self.port = free_port()
        self.proc = None

    def h2o(self):
        conf = os.path.join(self.work, "h2o.conf")
        ssl = ""
        if self.pki:
            ssl = ("  ssl:\n    certificate-file: %s\n    key-file: %s\n"
                   "    ocsp-update-interval: 0\n" % (self.pki["cert"], self.pki["key"]))
        with open(conf, "w") as f:
            f.write("user: root\nnum-threads: 1\npid-file: %s/h2o.pid\n"
                    "error-log: %s/h2o.err\nlisten:\n  host: 127.0.0.1\n  port: %d\n%s"
                    "hosts:\n  default:\n    paths:\n      /:\n        file.dir: %s\n"
                    % (self.work, self.work, self.port, ssl, self.docroot))
        return ["h2o", "-c", conf]

    def nginx(self):
        conf = os.path.join(self.work, "nginx.conf")
        with open(conf, "w") as f:
            f.write("user root;\nworker_processes 1;\ndaemon off;\npid %s/nginx.pid;\n"
                    "error_log %s/nginx.err;\nevents { worker_connections 1024; }\n"
                    "http {\n  access_log off;\n  keepalive_requests %d;\n"
                    "  client_body_temp_path %s;\n"
                    "  server {\n    listen 127.0.0.1:%d;\n    root %s;\n  }\n}\n"
                    % (self.work, self.work, self.keepalive_requests, self.work, self.port,
                       self.docroot))
        return ["nginx", "-p", self.work, "-c", conf, "-e", os.path.join(self.work, "nginx.err")]

    def __enter__(self):
        if self.kind == "h2o":
            cmd = self.h2o()
        elif self.kind == "nginx":
            cmd = self.nginx()
        elif self.pki:
            cmd = ["nghttpd", "-n", "1", "-d", self.docroot, str(self.port), self.pki["key"],
                   self.pki["cert"]]
        else:
            cmd = ["nghttpd", "--no-tls", "-n", "1", "-d", self.docroot, str(self.port)]
        log("start:", " ".join(cmd))
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_port(self.port, self.proc)
        except Exception:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()


class RawH1:
    """An HTTP/1.1 server that answers each request (one per head read)
    with answer(i) -> (bytes, close_after)."""

    def __init__(self, answer):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.count = 0
        self.lock = threading.Lock()
        self.threads = []
        self.t = threading.Thread(target=self.accept, daemon=True)
        self.t.start()

    def accept(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self.serve, args=(c,), daemon=True)
            t.start()
            self.threads.append(t)

    def serve(self, c):
        buf = b""
        c.settimeout(0.2)
        try:
            while not self.stop:
                try:
                    d = c.recv(65536)
                except socket.timeout:
                    continue
                if not d:
                    return
                buf += d
                while b"\r\n\r\n" in buf:
                    buf = buf.split(b"\r\n\r\n", 1)[1]
                    with self.lock:
                        i = self.count
                        self.count += 1
                    data, close = self.answer(i)
                    c.sendall(data)
                    if close:
                        self.linger(c)
                        return
        except OSError:
            pass
        finally:
            c.close()

    @staticmethod
    def linger(c):
        """Close as a server should: FIN first, then read what the client
        had pipelined until its FIN (or a second), so that the kernel does
        not answer unread requests with a RST that can destroy the response
        before the client has read it."""
        try:
            c.shutdown(socket.SHUT_WR)
            end = time.monotonic() + 1.0
            while time.monotonic() < end and c.recv(65536):
                pass
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop = True
        self.sock.close()
        self.t.join(2)
        for t in self.threads:
            t.join(2)


def exact(tc, r, n, body_each=None):
    tc.assertEqual(r["requests"]["started"], n + r["errors"]["refused_retried"], r)
    tc.assertEqual(r["requests"]["done"], n, r)
    tc.assertEqual(r["requests"]["succeeded"], n, r)
    tc.assertEqual(r["requests"]["failed"], 0, r)
    tc.assertEqual(r["status"]["2xx"], n, r)
    tc.assertGreater(r["latency_us"]["p50"], 0, r)
    if body_each is not None:
        tc.assertEqual(r["bytes"]["body"], n * body_each, r)
    tc.assertEqual(r["rc"], 0)


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="spindle-load-proto-")
        cls.docroot = os.path.join(cls.work, "www")
        os.mkdir(cls.docroot)
        cls.file = bytes((i * 7 + 3) & 0xff for i in range(1000))
        with open(os.path.join(cls.docroot, "f.bin"), "wb") as f:
            f.write(cls.file)
        cls.big = bytes((i * 13 + 1) & 0xff for i in range(200000))
        with open(os.path.join(cls.docroot, "big.bin"), "wb") as f:
            f.write(cls.big)
        cls.body = os.path.join(cls.work, "body.bin")
        with open(cls.body, "wb") as f:
            f.write(b"b" * 3000)
        pki_dir = os.path.join(cls.work, "pki")
        os.mkdir(pki_dir)
        cls.pki = make_pki(pki_dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def need(self, tool):
        if not shutil.which(tool):
            self.skipTest("%s is not installed (scripts/setup.sh bench)" % tool)

    def peer_dir(self):
        return tempfile.mkdtemp(dir=self.work)


class TlsTest(Base):
    def test_spindle_hello_tls(self):
        with TlsServer(self.pki, shards=1, sets={"max-requests": 700}) as srv:
            url = "https://127.0.0.1:%d" % srv.tls_port
            ca = ["--cacert", self.pki["ca"]]
            r = spindle_load(url + "/", "-n", "3000", "-c", "3", "-m", "10", *ca, expect_rc=0)
            exact(self, r, 3000, body_each=13)
            self.assertGreater(r["connects"], 3, "GOAWAY after 700 requests: reconnects")
            r = spindle_load(url + "/missing", "-n", "50", "-c", "1", "-m", "5", *ca,
                             expect_rc=1)
            self.assertEqual(r["status"]["4xx"], 50, r)
            r = spindle_load(url + "/echo", "-n", "200", "-c", "2", "-m", "4", "-d", self.body,
                             *ca, expect_rc=0)
            exact(self, r, 200, body_each=3000)
            # -k: no verification.  --h1: ALPN http/1.1, served HTTP/1.1.
            r = spindle_load(url + "/1m", "-n", "20", "-c", "2", "-m", "2", "-k", expect_rc=0)
            exact(self, r, 20, body_each=1 << 20)
            r = spindle_load(url + "/", "-n", "2000", "-c", "2", "-m", "4", "--h1", *ca,
                             expect_rc=0)
            exact(self, r, 2000, body_each=13)
            srv.assert_alive()

    def test_verification_refuses(self):
        d = tempfile.mkdtemp(dir=self.work)
        with open(os.path.join(d, "ext.cnf"), "w") as f:
            f.write("subjectAltName=DNS:other.example\nbasicConstraints=CA:FALSE\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", "w.key", "-out", "w.csr", "-subj", "/CN=other.example", cwd=d)
        openssl("x509", "-req", "-in", "w.csr", "-CA", self.pki["ca"], "-CAkey",
                os.path.join(os.path.dirname(self.pki["ca"]), "ca.key"), "-CAcreateserial",
                "-out", "w.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
        wrong = {"cert": os.path.join(d, "w.pem"), "key": os.path.join(d, "w.key")}
        with TlsServer(self.pki, shards=1) as srv:
            url = "https://127.0.0.1:%d/" % srv.tls_port
            # No CA given: the system's bundle does not know the test CA.
            rc, out, err = run([load_binary(), "-n", "10", url], 30)
            self.assertEqual(rc, 2, err)
            self.assertIn("verify", err)
            # Another CA.
            openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", "o.key", "-out", "other-ca.pem", "-days", "2",
                    "-subj", "/CN=another CA", cwd=d)
            rc, _, err = run([load_binary(), "-n", "10", "--cacert",
                              os.path.join(d, "other-ca.pem"), url], 30)
            self.assertEqual(rc, 2, err)
            self.assertIn("verify", err)
            rc, _, err = run([load_binary(), "-n", "10", "--cacert", "/nonexistent.pem", url],
                             30)
            self.assertEqual(rc, 2, err)
            self.assertIn("/nonexistent.pem", err)
        with TlsServer(wrong, shards=1) as srv:
            url = "https://127.0.0.1:%d/" % srv.tls_port
            rc, _, err = run([load_binary(), "-n", "10", "--cacert", self.pki["ca"], url], 30)
            self.assertEqual(rc, 2, err)
            self.assertIn("mismatch", err)
            r = spindle_load(url, "-n", "10", "-k", expect_rc=0)  # -k: the name is not checked
            exact(self, r, 10)

    def tls_peer(self, kind, h1):
        self.need(kind)
        with Peer(kind, self.docroot, self.peer_dir(), pki=self.pki) as p:
            url = "https://127.0.0.1:%d" % p.port
            args = ["--cacert", self.pki["ca"]] + (["--h1"] if h1 else [])
            r = spindle_load(url + "/f.bin", "-n", "2000", "-c", "2", "-m", "8", *args,
                             expect_rc=0)
            exact(self, r, 2000, body_each=len(self.file))
            r = spindle_load(url + "/big.bin", "-n", "40", "-c", "2", "-m", "4", *args,
                             expect_rc=0)
            exact(self, r, 40, body_each=len(self.big))
            r = spindle_load(url + "/none", "-n", "30", "-c", "1", "-m", "5", *args, expect_rc=1)
            self.assertEqual(r["status"]["4xx"], 30, r)

    def test_h2o_tls(self):
        self.tls_peer("h2o", False)

    def test_h2o_tls_h1(self):
        self.tls_peer("h2o", True)

    def test_nghttpd_tls(self):
        self.tls_peer("nghttpd", False)

    def test_nghttpd_tls_refuses_h1(self):
        # nghttpd speaks only h2: ALPN http/1.1 finds no protocol.
        self.need("nghttpd")
        with Peer("nghttpd", self.docroot, self.peer_dir(), pki=self.pki) as p:
            rc, _, err = run([load_binary(), "-n", "5", "--h1", "-k",
                              "https://127.0.0.1:%d/f.bin" % p.port], 30)
            self.assertEqual(rc, 2, err)
            self.assertIn("TLS", err)


class H1Test(Base):
    def test_spindle_hello_h1(self):
        with Server(shards=1, sets={"h1-max-requests": 700}) as srv:
            url = "http://127.0.0.1:%d" % srv.port
            for m in ("1", "8"):
                r = spindle_load(url + "/", "-n", "3000", "-c", "3", "-m", m, "--h1",
                                 expect_rc=0)
                exact(self, r, 3000, body_each=13)
                self.assertGreater(r["connects"], 3, "connection: close after 700: reconnects")
            r = spindle_load(url + "/missing", "-n", "100", "-c", "2", "-m", "4", "--h1",
                             expect_rc=1)
            self.assertEqual(r["status"]["4xx"], 100, r)
            self.assertEqual(r["requests"]["succeeded"], 0, r)
            r = spindle_load(url + "/echo", "-n", "300", "-c", "2", "-m", "4", "--h1",
                             "-d", self.body, expect_rc=0)
            exact(self, r, 300, body_each=3000)
            r = spindle_load(url + "/early-hints", "-n", "200", "-c", "2", "-m", "4", "--h1",
                             expect_rc=0)
            exact(self, r, 200, body_each=2)
            r = spindle_load(url + "/1m", "-n", "20", "-c", "2", "-m", "2", "--h1", expect_rc=0)
            exact(self, r, 20, body_each=1 << 20)
            r = spindle_load(url + "/", "-n", "500", "-c", "2", "-m", "4", "--h1",
                             "-H", ":method: HEAD", expect_rc=0)
            exact(self, r, 500, body_each=0)
            # Duration mode with a warm-up.
            r = spindle_load(url + "/", "-D", "1", "--warm-up", "0.3", "-c", "4", "-m", "4",
                             "-t", "2", "--h1", expect_rc=0)
            self.assertGreater(r["requests"]["done"], 0)
            self.assertEqual(r["requests"]["failed"], 0, r)
            self.assertEqual(r["requests"]["started"],
                             r["requests"]["done"] + r["errors"]["refused_retried"], r)
            srv.assert_alive()

    def peer_h1(self, kind, **kw):
        self.need(kind)
        with Peer(kind, self.docroot, self.peer_dir(), **kw) as p:
            url = "http://127.0.0.1:%d" % p.port
            for m in ("1", "10"):
                r = spindle_load(url + "/f.bin", "-n", "3000", "-c", "3", "-m", m, "--h1",
                                 expect_rc=0)
                exact(self, r, 3000, body_each=len(self.file))
            r = spindle_load(url + "/big.bin", "-n", "40", "-c", "2", "-m", "4", "--h1",
                             expect_rc=0)
            exact(self, r, 40, body_each=len(self.big))
            r = spindle_load(url + "/none", "-n", "100", "-c", "1", "-m", "10", "--h1",
                             expect_rc=1)
            self.assertEqual(r["status"]["4xx"], 100, r)
            self.assertEqual(r["requests"]["succeeded"], 0, r)
            return r

    def test_h2o_h1(self):
        self.peer_h1("h2o")

    def test_nginx_h1(self):
        self.peer_h1("nginx")

    def test_nginx_closes_every_100(self):
        # keepalive_requests 100: nginx ends each connection with
        # "connection: close"; pipelined requests behind it are retried.
        self.need("nginx")
        with Peer("nginx", self.docroot, self.peer_dir(), keepalive_requests=100) as p:
            r = spindle_load("http://127.0.0.1:%d/f.bin" % p.port, "-n", "3000", "-c", "2",
                             "-m", "8", "--h1", expect_rc=0)
            exact(self, r, 3000, body_each=len(self.file))
            self.assertGreaterEqual(r["connects"], 30, r)

    def lying(self, answer, n="20", **kw):
        with RawH1(answer) as s:
            return spindle_load("http://127.0.0.1:%d/" % s.port, "-n", n, "-c", "1", "-m", "4",
                                "--h1", timeout=30, **kw)

    def test_short_body_is_an_error(self):
        r = self.lying(lambda i: (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n12345", True),
                       n="5")
        self.assertEqual(r["requests"]["succeeded"], 0, r)
        self.assertGreaterEqual(r["errors"]["malformed"], 1, r)
        self.assertNotEqual(r["rc"], 0)
        # A chunked body cut short.
        r = self.lying(lambda i: (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                                  b"a\r\n12345", True), n="5")
        self.assertEqual(r["requests"]["succeeded"], 0, r)
        self.assertGreaterEqual(r["errors"]["malformed"], 1, r)

    def test_long_body_and_bad_status(self):
        # 3 bytes for a content-length of 2: the third is no response.
        r = self.lying(lambda i: (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nabc", False),
                       n="5")
        self.assertNotEqual(r["rc"], 0)
        self.assertLess(r["requests"]["succeeded"], 5, r)
        self.assertGreaterEqual(r["errors"]["conn_errors"], 1, r)
        r = self.lying(lambda i: (b"HTTP/1.1 2000 OK\r\ncontent-length: 0\r\n\r\n", False),
                       n="5")
        self.assertEqual(r["requests"]["succeeded"], 0, r)
        self.assertNotEqual(r["rc"], 0)

    def test_close_mid_pipeline_is_lost_not_success(self):
        # Every third response closes the connection without saying so:
        # the requests pipelined behind it are lost (connection errors).
        ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
        r = self.lying(lambda i: (ok, i % 3 == 2), n="60")
        self.assertEqual(r["requests"]["done"], 60, r)
        self.assertEqual(r["requests"]["succeeded"] + r["errors"]["lost"] +
                         r["errors"]["malformed"], 60, r)
        self.assertGreater(r["errors"]["lost"], 0, r)
        self.assertEqual(r["rc"], 1)
        # Said: "connection: close" -- nothing is lost, the rest is retried.
        close = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"
        r = self.lying(lambda i: (close if i % 3 == 2 else ok, i % 3 == 2), n="60")
        exact(self, r, 60, body_each=2)

    def test_usage(self):
        rc, _, err = run([load_binary(), "--h1", "-n", "5", "ftp://127.0.0.1:1/"], 10)
        self.assertEqual(rc, 2)


if __name__ == "__main__":
    harness.main()
