#!/usr/bin/python3
"""spindle-load (bench/load/) is a correct client: exact request counts and
byte counts against spindle-hello, h2o and nghttpd, and every kind of
failure counted as what it is (non-2xx, stream resets, short bodies,
connection errors), so that a false success cannot pass.

argv[1] is spindle-hello; spindle-load comes from $SPINDLE_LOAD (CTest sets
it), else from the build tree next to the server (build/bench/)."""
import json
import os
import shutil
import socket
import struct
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


def load_binary():
    p = os.environ.get("SPINDLE_LOAD")
    if not p:
        build = os.path.dirname(os.path.dirname(os.path.dirname(harness.binary())))
        p = os.path.join(build, "bench", "spindle-load")
    return p


def spindle_load(url, *args, timeout=60, expect_rc=None):
    rc, out, err = run([load_binary(), "--json"] + list(args) + [url], timeout)
    log("spindle-load %s %s -> rc %d: %s" % (" ".join(args), url, rc, out.strip()[:600]))
    try:
        r = json.loads(out)
    except ValueError:
        raise AssertionError("no JSON summary (rc %d)\nstdout: %s\nstderr: %s" % (
            rc, out[-2000:], err[-2000:]))
    if expect_rc is not None:
        assert rc == expect_rc, "exit %d, want %d\nstderr: %s" % (rc, expect_rc, err[-2000:])
    r["rc"] = rc
    return r


def wait_port(port, proc, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise AssertionError("server exited with %s" % proc.returncode)
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("port %d never listened" % port)


class External:
    """h2o or nghttpd serving docroot over h2c on a free port."""

    def __init__(self, kind, docroot, work):
        self.kind, self.docroot, self.work = kind, docroot, work
        self.port = free_port()
        self.proc = None

    def __enter__(self):
        if self.kind == "h2o":
            conf = os.path.join(self.work, "h2o.conf")
            with open(conf, "w") as f:
                f.write("user: root\nnum-threads: 1\npid-file: %s/h2o.pid\n"
                        "error-log: %s/h2o.err\nlisten:\n  host: 127.0.0.1\n  port: %d\n"
                        "hosts:\n  default:\n    paths:\n      /:\n        file.dir: %s\n"
                        % (self.work, self.work, self.port, self.docroot))
            cmd = ["h2o", "-c", conf]
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


# -- a hostile raw server ------------------------------------------------------

def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid) + payload


class RawServer:
    """Answers every request with `answer(sid, encoder) -> bytes`: a server
    that lies (short bodies) or breaks the protocol."""

    def __init__(self, answer):
        import hpack
        self.hpack = hpack
        self.answer = answer
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stop = False
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
        enc = self.hpack.Encoder()
        buf = b""
        c.settimeout(0.2)
        try:
            c.sendall(frame(4, 0, 0))
            while not self.stop:
                try:
                    d = c.recv(65536)
                except socket.timeout:
                    continue
                if not d:
                    return
                buf += d
                if buf.startswith(b"PRI "):
                    if len(buf) < 24:
                        continue
                    buf = buf[24:]
                while len(buf) >= 9:
                    n = int.from_bytes(buf[:3], "big")
                    if len(buf) < 9 + n:
                        break
                    ftype, flags = buf[3], buf[4]
                    sid = int.from_bytes(buf[5:9], "big") & 0x7fffffff
                    buf = buf[9 + n:]
                    if ftype == 4 and not flags & 1:
                        c.sendall(frame(4, 1, 0))
                    elif ftype == 1:
                        c.sendall(self.answer(sid, enc))
        except OSError:
            pass
        finally:
            c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop = True
        self.sock.close()
        self.t.join(2)
        for t in self.threads:
            t.join(2)


class LoadTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="spindle-load-")
        cls.docroot = os.path.join(cls.work, "www")
        os.mkdir(cls.docroot)
        cls.file = bytes((i * 7 + 3) & 0xff for i in range(1000))
        with open(os.path.join(cls.docroot, "f.bin"), "wb") as f:
            f.write(cls.file)
        cls.body = os.path.join(cls.work, "body.bin")
        with open(cls.body, "wb") as f:
            f.write(b"b" * 3000)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def exact(self, r, n, body_each=None):
        # Streams a GOAWAY refused were never processed: started again.
        self.assertEqual(r["requests"]["started"], n + r["errors"]["refused_retried"], r)
        self.assertEqual(r["requests"]["done"], n, r)
        self.assertEqual(r["requests"]["succeeded"], n, r)
        self.assertEqual(r["requests"]["failed"], 0, r)
        self.assertEqual(r["status"]["2xx"], n, r)
        self.assertEqual(r["latency_us"]["p50"] > 0, True, r)
        self.assertLessEqual(r["latency_us"]["p50"], r["latency_us"]["p99"])
        self.assertLessEqual(r["latency_us"]["p99_9"], r["latency_us"]["max"])
        if body_each is not None:
            self.assertEqual(r["bytes"]["body"], n * body_each, r)
        self.assertEqual(r["rc"], 0)

    # -- spindle-hello -------------------------------------------------------

    def test_spindle_hello_counts_and_errors(self):
        # max-requests 700: GOAWAYs mid-run; refused streams are retried and
        # the count stays exact.
        with Server(shards=1, sets={"max-requests": 700}) as srv:
            url = "http://127.0.0.1:%d" % srv.port
            r = spindle_load(url + "/", "-n", "5000", "-c", "4", "-m", "16", expect_rc=0)
            self.exact(r, 5000)
            self.assertGreater(r["connects"], 4, "GOAWAY after 700 requests: reconnects")
            # Resets are stream resets, not successes.
            r = spindle_load(url + "/reset", "-n", "300", "-c", "2", "-m", "8", expect_rc=1)
            self.assertEqual(r["requests"]["done"], 300, r)
            self.assertEqual(r["requests"]["succeeded"], 0, r)
            self.assertEqual(r["errors"]["stream_resets"], 300, r)
            # A 404 is a non-2xx, with its body.
            r = spindle_load(url + "/missing", "-n", "200", "-c", "2", "-m", "4", expect_rc=1)
            self.assertEqual(r["status"]["4xx"], 200, r)
            self.assertEqual(r["requests"]["succeeded"], 0, r)
            # A request body by reference: /echo sends it back.
            r = spindle_load(url + "/echo", "-n", "400", "-c", "2", "-m", "8", "-d", self.body,
                             expect_rc=0)
            self.exact(r, 400, body_each=3000)
            self.assertGreater(r["bytes"]["out"], 400 * 3000)
            # Duration mode with a warm-up; threads.
            r = spindle_load(url + "/", "-D", "1", "--warm-up", "0.3", "-c", "4", "-m", "8",
                             "-t", "2", expect_rc=0)
            self.assertGreater(r["requests"]["done"], 0)
            self.assertEqual(r["requests"]["failed"], 0, r)
            self.assertGreater(r["seconds"], 0.9)
            # Streams started in the warm-up are not counted when they end.
            self.assertEqual(r["requests"]["started"],
                             r["requests"]["done"] + r["errors"]["refused_retried"], r)
            # A count after a warm-up is still exact.
            r = spindle_load(url + "/", "-n", "3000", "--warm-up", "0.3", "-c", "4", "-m", "16",
                             expect_rc=0)
            self.exact(r, 3000)
            srv.assert_alive()

    def test_text_summary_and_progress(self):
        with Server(shards=1) as srv:
            rc, out, err = run([load_binary(), "-D", "2.2", "-c", "1", "-m", "4",
                                "http://127.0.0.1:%d/" % srv.port], 30)
            self.assertEqual(rc, 0, err)
            self.assertGreaterEqual(err.count(" req/s"), 2, "a progress line a second:\n" + err)
            for key in ("req/s", "status codes:", "errors:", "latency (us): min",
                        "p99.9", "client cpu:"):
                self.assertIn(key, out)

    def test_usage_errors(self):
        rc, _, err = run([load_binary(), "-k", "https://127.0.0.1:1/"], 10)
        self.assertEqual(rc, 2)  # TLS now (test_load_proto.py): nothing listens
        self.assertIn("connect", err)
        rc, _, _ = run([load_binary(), "-n", "5", "-D", "1", "http://127.0.0.1:1/"], 10)
        self.assertEqual(rc, 2)
        port = free_port()  # nothing listens
        rc, _, err = run([load_binary(), "-n", "5", "http://127.0.0.1:%d/" % port], 10)
        self.assertEqual(rc, 2, err)

    # -- other servers ---------------------------------------------------------

    def other_server(self, kind):
        if not shutil.which(kind):
            self.skipTest("%s is not installed (scripts/setup.sh bench)" % kind)
        work = tempfile.mkdtemp(dir=self.work)
        with External(kind, self.docroot, work) as s:
            url = "http://127.0.0.1:%d" % s.port
            r = spindle_load(url + "/f.bin", "-n", "3000", "-c", "3", "-m", "10", expect_rc=0)
            self.exact(r, 3000, body_each=len(self.file))
            r = spindle_load(url + "/none", "-n", "100", "-c", "1", "-m", "10", expect_rc=1)
            self.assertEqual(r["status"]["4xx"], 100, r)
            self.assertEqual(r["requests"]["succeeded"], 0, r)

    def test_h2o(self):
        self.other_server("h2o")

    def test_nghttpd(self):
        self.other_server("nghttpd")

    # -- a lying server ------------------------------------------------------------

    def test_short_body_and_broken_server(self):
        def short(sid, enc):
            h = enc.encode([(":status", "200"), ("content-length", "10")])
            return frame(1, 4, sid, h) + frame(0, 1, sid, b"12345")

        with RawServer(short) as s:
            r = spindle_load("http://127.0.0.1:%d/" % s.port, "-n", "50", "-c", "1", "-m", "5",
                             expect_rc=1)
            self.assertEqual(r["errors"]["malformed"], 50, r)
            self.assertEqual(r["requests"]["succeeded"], 0, r)

        def push(sid, enc):
            return frame(5, 4, sid, struct.pack(">I", 2) + enc.encode([(":method", "GET")]))

        with RawServer(push) as s:
            r = spindle_load("http://127.0.0.1:%d/" % s.port, "-n", "5", "-c", "1", "-m", "5",
                             timeout=30)
            self.assertGreaterEqual(r["errors"]["conn_errors"], 1, r)
            self.assertEqual(r["requests"]["succeeded"], 0, r)
            self.assertNotEqual(r["rc"], 0)


if __name__ == "__main__":
    harness.main()
