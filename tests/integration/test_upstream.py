#!/usr/bin/python3
"""spindle-proxy (apps/proxy): a handler calling an upstream origin through
the upstream-call API and relaying its answer.  Real origins (spindle-hello
over h2c and over TLS, h2o, a python grpcio server), real clients
(python-h2, h2load, nghttp) through the proxy: heads, bodies, trailers,
GOAWAY churn (refused streams re-issued), the origin killed mid-run (502)
and back (reconnect), a time-out (504), certificate verification, and a
gRPC unary call whose grpc-status comes from the origin's trailers.

argv[1] is spindle-hello; spindle-proxy comes from $SPINDLE_PROXY (CTest
sets it), else from the build tree next to it (build/apps/proxy/)."""
import hashlib
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
from harness import HOST, H2Client, Server, free_port, log, parse_h2load, run  # noqa: E402

ONE_MIB = bytes(((i * 31 + 7) & 0xff) for i in range(1 << 20))


def proxy_binary():
    p = os.environ.get("SPINDLE_PROXY")
    if not p:
        build = os.path.dirname(os.path.dirname(os.path.dirname(harness.binary())))
        p = os.path.join(build, "apps", "proxy", "spindle-proxy")
    return p


class Proxy(Server):
    """spindle-proxy in front of 127.0.0.1:upstream_port (the harness's
    Server, with the proxy's command line)."""

    def __init__(self, upstream_port, up_args=(), **kw):
        self.up = ["--upstream", "%s:%d" % (HOST, upstream_port)] + list(up_args)
        super().__init__(**kw)

    def command(self):
        cmd = [proxy_binary(), "--address", self.address, "--port", str(self.requested_port)]
        if self.shards is not None:
            cmd += ["--shards", str(self.shards)]
        if self.log_level is not None:
            cmd += ["--log-level", str(self.log_level)]
        return cmd + self.up + self.extra


def wait_port(port, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("port %d never listened" % port)


def get(port, path, method="GET", body=None, headers=(), trailers=None, timeout=10.0):
    with H2Client(port) as c:
        sid = c.request(method, path, headers=list(headers), body=body, trailers=trailers)
        return c.wait_stream(sid, timeout)


def h2load(url, *args, timeout=120):
    rc, out, err = run(["h2load"] + list(args) + [url], timeout)
    log("h2load %s %s -> rc %d" % (" ".join(args), url, rc))
    return parse_h2load(out), out


class UpstreamTest(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="spindle-upstream-")

    def tearDown(self):
        shutil.rmtree(self.work, ignore_errors=True)

    # -- relaying ---------------------------------------------------------------

    def test_relay_head_body_trailers(self):
        with Server(shards=1) as origin, Proxy(origin.port, shards=2) as px:
            r = get(px.port, "/")
            self.assertEqual(r.status, 200)
            self.assertEqual(bytes(r.data), b"Hello, World!")
            r = get(px.port, "/1m")
            self.assertEqual(hashlib.sha256(bytes(r.data)).digest(),
                             hashlib.sha256(ONE_MIB).digest())
            body = os.urandom(300 * 1024)
            r = get(px.port, "/echo", method="POST", body=body)
            self.assertEqual(r.status, 200)
            self.assertEqual(bytes(r.data), body)
            self.assertEqual(r.trailers.get("x-echo-bytes"), str(len(body)), r.trailers)
            r = get(px.port, "/early-hints")  # the 103 is not relayed; the 200 is
            self.assertEqual(r.status, 200)
            r = get(px.port, "/no-such-path")
            self.assertEqual(r.status, 404)
            s, out = h2load("http://%s:%d/" % (HOST, px.port), "-n", "4000", "-c", "4", "-m", "16")
            self.assertEqual(s["succeeded"], 4000, out)
            rc, out, err = run(["nghttp", "-n", "-s", "-m", "50",
                                "http://%s:%d/1m" % (HOST, px.port)], 60)
            self.assertEqual(rc, 0, err)

    def test_goaway_churn_is_invisible(self):
        # The origin closes each connection after 50 requests (GOAWAY): streams
        # it refused are re-issued on a new connection; the client sees 2xx only.
        with Server(shards=1, sets={"max-requests": 50}) as origin, \
                Proxy(origin.port, shards=1) as px:
            s, out = h2load("http://%s:%d/" % (HOST, px.port), "-n", "6000", "-c", "4",
                            "-m", "16")
            self.assertEqual(s["succeeded"], 6000, out)
            self.assertEqual(s["failed"], 0, out)

    def test_origin_killed_then_back(self):
        port = free_port()
        origin = Server(shards=1, port=port).start()
        try:
            # max-requests=0: h2load -D does not reconnect after the
            # proxy's GOAWAY at the default 10,000 requests a connection,
            # which a fast machine reaches before the origin goes away.
            with Proxy(port, shards=1, args=["--set", "max-requests=0"]) as px:
                self.assertEqual(get(px.port, "/").status, 200)
                # Mid-run: h2load for 3 s, the origin killed after 1 s and
                # back after 2 s.  Every answer is a 2xx or a 502 (or a reset).
                result = {}

                def load():
                    result["s"], result["out"] = h2load(
                        "http://%s:%d/" % (HOST, px.port), "-D", "3", "-c", "2", "-m", "4")
                t = threading.Thread(target=load)
                t.start()
                time.sleep(1.0)
                origin.kill()
                r = get(px.port, "/")
                self.assertEqual(r.status, 502, bytes(r.data))
                self.assertIn(b"upstream", bytes(r.data))
                time.sleep(1.0)
                origin = Server(shards=1, port=port).start()
                t.join(60)
                s, out = result["s"], result["out"]
                self.assertGreater(s["2xx"], 0, out)
                self.assertGreater(s["5xx"], 0, out)
                # A response whose head was relayed when the origin died is
                # reset (no status to change): at most the streams in flight.
                self.assertLessEqual(s["errored"], 2 * 4, out)
                self.assertEqual(s["2xx"] + s["5xx"] + s["errored"], s["done"], out)
                # Reconnected: answers again.
                r = get(px.port, "/")
                self.assertEqual(r.status, 200)
                self.assertEqual(bytes(r.data), b"Hello, World!")
        finally:
            origin.kill()

    def test_timeout_is_504(self):
        with Server(shards=1) as origin, \
                Proxy(origin.port, up_args=["--upstream-timeout", "300"], shards=1) as px:
            t0 = time.monotonic()
            r = get(px.port, "/stall?ms=5000")
            self.assertEqual(r.status, 504, bytes(r.data))
            self.assertLess(time.monotonic() - t0, 4.5)
            self.assertEqual(get(px.port, "/").status, 200)  # the pool is fine

    def test_h2o_origin(self):
        if not shutil.which("h2o"):
            self.skipTest("h2o not installed")
        docroot = os.path.join(self.work, "www")
        os.mkdir(docroot)
        data = os.urandom(777777)
        with open(os.path.join(docroot, "f.bin"), "wb") as f:
            f.write(data)
        port = free_port()
        conf = os.path.join(self.work, "h2o.conf")
        with open(conf, "w") as f:
            f.write("user: root\nnum-threads: 1\npid-file: %s/h2o.pid\n"
                    "error-log: %s/h2o.err\nlisten:\n  host: 127.0.0.1\n  port: %d\n"
                    "hosts:\n  default:\n    paths:\n      /:\n        file.dir: %s\n"
                    % (self.work, self.work, port, docroot))
        h2o = subprocess.Popen(["h2o", "-c", conf], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
        try:
            wait_port(port)
            with Proxy(port, shards=1) as px:
                r = get(px.port, "/f.bin")
                self.assertEqual(r.status, 200)
                self.assertEqual(bytes(r.data), data)
                self.assertEqual(get(px.port, "/missing").status, 404)
                s, out = h2load("http://%s:%d/f.bin" % (HOST, px.port), "-n", "200", "-c", "2",
                                "-m", "8")
                self.assertEqual(s["succeeded"], 200, out)
        finally:
            os.killpg(h2o.pid, 15)
            h2o.wait(10)

    # -- TLS to the origin ------------------------------------------------------------

    def pki(self):
        def openssl(*args):
            p = subprocess.run(["openssl"] + list(args), cwd=self.work, capture_output=True,
                               timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        for ca in ("ca", "other"):
            openssl("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".pem",
                    "-days", "2", "-subj", "/CN=spindle %s CA" % ca)
        openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr",
                "-subj", "/CN=localhost")
        with open(os.path.join(self.work, "ext.cnf"), "w") as f:
            f.write("subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
        return {k: os.path.join(self.work, k + ".pem") for k in ("ca", "other", "server")}

    def test_tls_origin_verified(self):
        p = self.pki()
        tls_port = free_port()
        args = ["--tls-port", str(tls_port), "--cert", p["server"],
                "--key", os.path.join(self.work, "server.key")]
        with Server(shards=1, args=args):
            wait_port(tls_port)
            ok = ["--upstream-tls", "--upstream-ca", p["ca"], "--upstream-name", "localhost"]
            with Proxy(tls_port, up_args=ok, shards=1) as px:
                r = get(px.port, "/echo", method="POST", body=b"over tls")
                self.assertEqual(r.status, 200)
                self.assertEqual(bytes(r.data), b"over tls")
                self.assertEqual(r.trailers.get("x-echo-bytes"), "8")
                s, out = h2load("http://%s:%d/1m" % (HOST, px.port), "-n", "50", "-c", "2",
                                "-m", "4")
                self.assertEqual(s["succeeded"], 50, out)
            # Another CA, or another name: the handshake fails -> 502.
            for bad in (["--upstream-ca", p["other"], "--upstream-name", "localhost"],
                        ["--upstream-ca", p["ca"], "--upstream-name", "example.com"]):
                with Proxy(tls_port, up_args=["--upstream-tls"] + bad, shards=1) as px:
                    self.assertEqual(get(px.port, "/").status, 502, bad)

    # -- gRPC ----------------------------------------------------------------------------

    def test_grpc_unary_call(self):
        try:
            import grpc  # noqa: F401
        except ImportError:
            self.skipTest("python3-grpcio not installed (scripts/setup.sh test)")
        port = free_port()
        server = subprocess.Popen([sys.executable, "-c", GRPC_SERVER, str(port)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, start_new_session=True)
        try:
            wait_port(port, 20)
            with Proxy(port, shards=1) as px:
                r = get(px.port, "/_grpc/test.Echo/Say", method="POST", body=b"abc")
                self.assertEqual(r.status, 200, bytes(r.data))
                self.assertEqual(r.headers.get("x-grpc-status"), "0", r.headers)
                self.assertEqual(bytes(r.data), b"reply:abc")
                r = get(px.port, "/_grpc/test.Echo/Fail", method="POST", body=b"x")
                self.assertEqual(r.headers.get("x-grpc-status"), "3", r.headers)  # INVALID_ARGUMENT
                self.assertEqual(r.headers.get("x-grpc-message"), "bad x")
                r = get(px.port, "/_grpc/test.Echo/Nope", method="POST", body=b"")
                self.assertEqual(r.headers.get("x-grpc-status"), "12", r.headers)  # UNIMPLEMENTED
        finally:
            os.killpg(server.pid, 15)
            out, err = server.communicate(timeout=10)
            log("grpc server: %s" % err.decode(errors="replace")[-1000:])


# A gRPC server with a generic handler on raw bytes (no protoc needed).
GRPC_SERVER = r'''
import sys, grpc
from concurrent import futures

def say(req, ctx):
    return b"reply:" + req

def fail(req, ctx):
    ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad " + req.decode())

class Handler(grpc.GenericRpcHandler):
    def service(self, details):
        fn = {"/test.Echo/Say": say, "/test.Echo/Fail": fail}.get(details.method)
        if fn is None:
            return None
        return grpc.unary_unary_rpc_method_handler(fn)

server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
server.add_generic_rpc_handlers((Handler(),))
server.add_insecure_port("127.0.0.1:" + sys.argv[1])
server.start()
server.wait_for_termination()
'''


if __name__ == "__main__":
    harness.main()
