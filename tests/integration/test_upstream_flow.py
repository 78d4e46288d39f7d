#!/usr/bin/python3
"""spindle-proxy's upstream client, continued (issue 16): response
backpressure (a slow client holds the origin through the proxy, the proxy's
memory stays bounded, the body arrives intact), origins named by host name
(resolved off the shard; an unresolvable name is a 502, not a hang), and TLS
session resumption to the origin.

argv[1] is spindle-hello; spindle-proxy comes from $SPINDLE_PROXY (CTest
sets it), else from the build tree next to it (build/apps/proxy/)."""
import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HOST, H2Client, Server, log  # noqa: E402
import test_upstream  # noqa: E402  (its UpstreamTest is not collected here)
from test_upstream import ONE_MIB, Proxy, get, wait_port  # noqa: E402

MIB = 1 << 20


class NamedProxy(Proxy):
    """spindle-proxy with --upstream NAME:PORT as given."""

    def __init__(self, upstream, up_args=(), **kw):
        super().__init__(0, up_args, **kw)
        self.up = ["--upstream", upstream] + list(up_args)


@contextlib.contextmanager
def live_rss():
    """Under ASan (scripts/test.sh --asan) freed memory waits in a
    quarantine, so RSS would count every byte relayed; the processes started
    inside run without it, so that RSS is what is live."""
    old = os.environ.get("ASAN_OPTIONS")
    if old is not None or os.environ.get("SPINDLE_ASAN") == "1":
        os.environ["ASAN_OPTIONS"] = (old + ":" if old else "") + "quarantine_size_mb=0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("ASAN_OPTIONS", None)
        else:
            os.environ["ASAN_OPTIONS"] = old


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


class UpstreamFlowTest(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="spindle-upflow-")

    def tearDown(self):
        shutil.rmtree(self.work, ignore_errors=True)

    # -- backpressure -------------------------------------------------------------

    def test_slow_client_holds_the_origin(self):
        """A client that does not open its window: the proxy pauses the call
        (its queue reached max-stream-buffered), the origin is held by the
        upstream stream's window, and the proxy's memory does not grow with
        the 48 MiB body; when the client reads, every byte arrives."""
        mib = 48
        with live_rss(), Server(shards=1) as origin, Proxy(origin.port, shards=1) as px:
            # Warm the allocator with one relayed MiB, then the baseline.
            r = get(px.port, "/1m")
            self.assertEqual(len(r.data), MIB)
            base = rss_kib(px.proc.pid)
            with H2Client(px.port, timeout=60, auto_ack=False) as c:
                sid = c.request("GET", "/big?mib=%d" % mib)
                c.wait(lambda: c.streams[sid].headers is not None, 10, "the head")
                # Stalled: the client's 64 KiB stream window is spent and
                # never reopened.  Give the origin time to push whatever
                # the proxy would take.
                peak = 0
                for _ in range(12):
                    c.pump(0.25)
                    peak = max(peak, rss_kib(px.proc.pid))
                stalled = len(c.streams[sid].data)
                log("stalled at %d bytes received; proxy RSS %d KiB -> peak %d KiB"
                    % (stalled, base, peak))
                self.assertLess(stalled, 1 * MIB)
                # Bounded: the client's queue (256 KiB) and one stream window
                # held (256 KiB), far from the body.
                self.assertLess(peak - base, 12 * 1024,
                                "proxy RSS grew %d KiB while its client did not read"
                                % (peak - base))
                # Now read (slowly at first, then at full speed): all of it.
                deadline = time.monotonic() + 120
                while not c.streams[sid].done:
                    self.assertLess(time.monotonic(), deadline, "the body never completed")
                    c.pump(0.5)
                    c.ack_pending()
                    peak = max(peak, rss_kib(px.proc.pid))
                st = c.streams[sid]
                self.assertEqual(st.status, 200)
                self.assertIsNone(st.reset)
                self.assertEqual(len(st.data), mib * MIB)
                h = hashlib.sha256()
                for _ in range(mib):
                    h.update(ONE_MIB)
                self.assertEqual(hashlib.sha256(bytes(st.data)).digest(), h.digest())
                self.assertLess(peak - base, 12 * 1024, "peak while reading")
            # The pool is fine afterwards.
            self.assertEqual(get(px.port, "/").status, 200)

    def test_slow_http1_client(self):
        """The same over HTTP/1.1: curl reading at 16 MB/s a 32 MiB body the
        origin could send at once; on_writable resumes the call there too."""
        if not shutil.which("curl"):
            self.skipTest("curl not installed")
        mib = 32
        out = os.path.join(self.work, "body")
        with live_rss(), Server(shards=1) as origin, Proxy(origin.port, shards=1) as px:
            self.assertEqual(len(get(px.port, "/1m").data), MIB)
            base = rss_kib(px.proc.pid)
            curl = subprocess.Popen(
                ["curl", "-s", "--http1.1", "--limit-rate", "16M", "-o", out, "-w", "%{http_code}",
                 "http://%s:%d/big?mib=%d" % (HOST, px.port, mib)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            peak = base
            while curl.poll() is None:
                peak = max(peak, rss_kib(px.proc.pid))
                time.sleep(0.1)
            code = curl.communicate(timeout=60)[0].decode()
            log("HTTP/1.1 at 16 MB/s: proxy RSS %d KiB -> peak %d KiB" % (base, peak))
            self.assertEqual(code, "200")
            self.assertEqual(os.path.getsize(out), mib * MIB)
            with open(out, "rb") as f:
                for _ in range(mib):
                    self.assertEqual(f.read(MIB), ONE_MIB)
            self.assertLess(peak - base, 12 * 1024)

    # -- host names -----------------------------------------------------------------

    def test_origin_by_host_name(self):
        with Server(shards=1) as origin:
            with NamedProxy("localhost:%d" % origin.port, shards=2) as px:
                r = get(px.port, "/")
                self.assertEqual(r.status, 200, bytes(r.data))
                self.assertEqual(bytes(r.data), b"Hello, World!")
                r = get(px.port, "/echo", method="POST", body=b"by name")
                self.assertEqual(bytes(r.data), b"by name")
            # A name that never resolves (RFC 6761): 502 with the reason,
            # quickly (the lookup fails or the connect time-out ends it).
            with NamedProxy("no-such-host.invalid:%d" % origin.port, shards=1) as px:
                for _ in range(2):  # and again: no lookup left hanging
                    t0 = time.monotonic()
                    r = get(px.port, "/", timeout=20)
                    self.assertEqual(r.status, 502, bytes(r.data))
                    self.assertIn(b"upstream", bytes(r.data))
                    self.assertLess(time.monotonic() - t0, 15)

    # -- TLS to the origin: the name, and session resumption ------------------------------

    def test_tls_origin_by_name_resumes_sessions(self):
        """--upstream localhost:PORT over TLS: SNI and the certificate check
        use the name (no --upstream-name).  The origin closes every
        connection after one request, so each relayed request connects
        again; from the second on, the proxy offers the session ticket the
        previous connection got and the origin (spindle: io/tls_tickets.c)
        resumes it, as its debug log says."""
        p = test_upstream.UpstreamTest.pki(self)
        tls_port = harness.free_port()
        args = ["--tls-port", str(tls_port), "--cert", p["server"],
                "--key", os.path.join(self.work, "server.key")]
        with Server(shards=1, args=args, sets={"max-requests": 1}, log_level=3) as origin:
            wait_port(tls_port)
            up = ["--upstream-tls", "--upstream-ca", p["ca"], "--upstream-conns", "1"]
            with NamedProxy("localhost:%d" % tls_port, up, shards=1) as px:
                for i in range(4):
                    r = get(px.port, "/echo", method="POST", body=b"tls %d" % i)
                    self.assertEqual(r.status, 200, bytes(r.data))
                    self.assertEqual(bytes(r.data), b"tls %d" % i)
            err = origin.stderr_text()
            handshakes = [ln for ln in err.splitlines() if re.search(r"connection \d+: TLSv1", ln)]
            resumed = [ln for ln in handshakes if "(resumed)" in ln]
            log("origin: %d TLS handshakes, %d resumed" % (len(handshakes), len(resumed)))
            self.assertGreaterEqual(len(handshakes), 4, err[-2000:])
            self.assertGreaterEqual(len(resumed), 3, "\n".join(handshakes))
            self.assertNotIn("(resumed)", handshakes[0])
        # Another CA: refused, resumption or not.
        with Server(shards=1, args=args):
            wait_port(tls_port)
            bad = ["--upstream-tls", "--upstream-ca", p["other"]]
            with NamedProxy("localhost:%d" % tls_port, bad, shards=1) as px:
                self.assertEqual(get(px.port, "/").status, 502)


if __name__ == "__main__":
    harness.main()
