#!/usr/bin/python3
"""The runtime's other modes, with real clients: zero-copy sends
(--set zc-threshold) and blocking handlers on offload threads (--blocking)."""
import os
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HELLO, ONE_MIB_SHA256, H2Client, Server, log, run, sha256, sha256_file  # noqa: E402

CURL = ["curl", "--http2-prior-knowledge", "-sS", "--no-progress-meter", "--max-time", "100"]


def curl_get_sha(port, path, tmp):
    out = os.path.join(tmp, "body")
    rc, _, err = run(CURL + ["-o", out, "http://127.0.0.1:%d%s" % (port, path)], timeout=120)
    if rc != 0:
        raise AssertionError("curl failed: %s" % err)
    return sha256_file(out)


def curl_echo_ok(port, size, tmp):
    src = os.path.join(tmp, "up")
    with open(src, "wb") as f:
        f.write(os.urandom(size))
    out = os.path.join(tmp, "down")
    rc, _, err = run(CURL + ["--data-binary", "@" + src, "-o", out,
                             "http://127.0.0.1:%d/echo" % port], timeout=120)
    if rc != 0:
        raise AssertionError("curl echo failed: %s" % err)
    return sha256_file(src) == sha256_file(out)


class ZeroCopyTest(unittest.TestCase):
    """Every send of 16 KiB or more goes out with SENDMSG_ZC: bodies must
    stay byte-exact (buffers are released only after the notification)."""

    def test_zc_bodies_byte_exact(self):
        with tempfile.TemporaryDirectory(prefix="spindle-it-zc-") as tmp, \
                Server(shards=2, sets={"zc-threshold": 16384, "max-requests": 0}) as srv:
            self.assertEqual(curl_get_sha(srv.port, "/1m", tmp), ONE_MIB_SHA256)
            self.assertTrue(curl_echo_ok(srv.port, 8 << 20, tmp), "8 MiB echo differs")
            c = H2Client(srv.port)
            try:
                sids = [c.request("GET", "/1m") for _ in range(16)]
                for sid in sids:
                    r = c.wait_stream(sid, 30)
                    self.assertEqual(r.status, 200)
                    self.assertEqual(sha256(bytes(r.data)), ONE_MIB_SHA256)
            finally:
                c.close()
            rc, out, err = run(["h2load", "-n", "400", "-c", "4", "-m", "4",
                                "http://127.0.0.1:%d/1m" % srv.port], timeout=120)
            res = harness.parse_h2load(out)
            log("zc h2load /1m:", res)
            self.assertEqual(res["succeeded"], 400, out)


class OffloadTest(unittest.TestCase):
    """--blocking: handlers run on offload threads, fed over SPSC queues."""

    def test_offload_serves_and_streams(self):
        with tempfile.TemporaryDirectory(prefix="spindle-it-off-") as tmp, \
                Server(shards=2, args=["--blocking"],
                       sets={"offload-threads": 2, "max-requests": 0}) as srv:
            c = H2Client(srv.port)
            try:
                r = c.get("/", 10)
                self.assertEqual((r.status, bytes(r.data)), (200, HELLO))
            finally:
                c.close()
            self.assertEqual(curl_get_sha(srv.port, "/1m", tmp), ONE_MIB_SHA256)
            self.assertTrue(curl_echo_ok(srv.port, 16 << 20, tmp), "16 MiB echo differs")
            rc, out, err = run(["h2load", "-n", "20000", "-c", "8", "-m", "16",
                                "http://127.0.0.1:%d/" % srv.port], timeout=120)
            res = harness.parse_h2load(out)
            log("offload h2load /:", res)
            self.assertEqual(res["succeeded"], 20000, out)

    def test_blocking_handler_is_really_off_the_shard(self):
        # One shard, two workers: a handler sleeping 1.5 s on one worker
        # must not delay requests served by the shard's other worker, nor
        # the shard itself (the 1 MiB body is sent while the worker sleeps).
        with Server(shards=1, args=["--blocking"], sets={"offload-threads": 2}) as srv:
            c = H2Client(srv.port)
            try:
                t0 = time.monotonic()
                slow = c.request("GET", "/sleep?ms=1500")   # stream 1 -> worker 0
                fast = [c.request("GET", "/") for _ in range(3)]  # 3, 5, 7: workers 1, 0, 1
                r3 = c.wait_stream(fast[0], 10)
                t_fast = time.monotonic() - t0
                self.assertEqual(r3.status, 200)
                self.assertLess(t_fast, 0.5, "a sleeping handler delayed another worker's stream")
                rs = c.wait_stream(slow, 10)
                self.assertEqual(bytes(rs.data), b"slept\n")
                self.assertGreaterEqual(time.monotonic() - t0, 1.4)
                for sid in fast:
                    self.assertEqual(c.wait_stream(sid, 10).status, 200)
                log("offload: other worker answered in %.1f ms while one slept" % (t_fast * 1000))
            finally:
                c.close()


if __name__ == "__main__":
    harness.main()
