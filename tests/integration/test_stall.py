#!/usr/bin/python3
"""A stalled handler blocks only its own stream: /stall?ms=2000 and then 50
requests to / on the same connection (and one on another connection to the
same shard) must all finish long before the stall does."""
import os
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HELLO, H2Client, Server, log  # noqa: E402

STALL_MS = 2000
N = 50
MAX_LATENCY = 0.5


class StallTest(unittest.TestCase):
    def test_stall_isolated(self):
        # One shard: the second connection lands on the stalled shard too.
        with Server(shards=1) as srv:
            with H2Client(srv.port) as c, H2Client(srv.port) as other:
                t0 = time.monotonic()
                stall = c.request("GET", "/stall?ms=%d" % STALL_MS)
                lat = []
                # Sequential: each waits for the previous one, so a blocked
                # connection or shard shows as one long latency.
                for _ in range(N):
                    st = c.get("/", timeout=5)
                    self.assertEqual(st.status, 200)
                    self.assertEqual(bytes(st.data), HELLO)
                    lat.append(st.latency)
                # A burst of N concurrent ones on the same connection, too.
                burst = [c.request("GET", "/") for _ in range(N)]
                c.wait(lambda: all(c.streams[s].done for s in burst), 5, "the burst")
                burst_lat = [c.streams[s].latency for s in burst]
                for s in burst:
                    self.assertEqual(c.streams[s].status, 200)
                o = other.get("/", timeout=5)
                self.assertEqual(o.status, 200)
                done_at = time.monotonic() - t0
                st = c.streams[stall]
                self.assertFalse(st.done, "the stalled stream finished after %.2f s, "
                                 "before the %d other requests" % (done_at, 2 * N))
                log("%d sequential requests: max %.1f ms, mean %.1f ms; burst of %d: max %.1f ms; "
                    "other connection %.1f ms; all done %.3f s after the stall started" % (
                        N, 1000 * max(lat), 1000 * sum(lat) / N, N, 1000 * max(burst_lat),
                        1000 * o.latency, done_at))
                self.assertLess(max(lat), MAX_LATENCY, "sequential latencies: %r" % lat)
                self.assertLess(max(burst_lat), MAX_LATENCY, "burst latencies: %r" % burst_lat)
                self.assertLess(o.latency, MAX_LATENCY)
                self.assertLess(done_at, STALL_MS / 1000 * 0.75)
                st = c.wait_stream(stall, timeout=STALL_MS / 1000 + 5)
                log("stalled stream finished after %.3f s" % st.latency)
                self.assertEqual(st.status, 200)
                self.assertGreaterEqual(st.latency, STALL_MS / 1000 * 0.95)
                self.assertLess(st.latency, STALL_MS / 1000 + 1.0)
                self.assertFalse(c.goaways or other.goaways)

    def test_many_stalls_concurrent(self):
        # 20 stalled streams on one connection run concurrently: ~1 s total,
        # not 20 s.
        with Server(shards=1) as srv, H2Client(srv.port) as c:
            t0 = time.monotonic()
            sids = [c.request("GET", "/stall?ms=1000") for _ in range(20)]
            self.assertEqual(bytes(c.get("/", timeout=5).data), HELLO)
            c.wait(lambda: all(c.streams[s].done for s in sids), 10, "20 stalls")
            dt = time.monotonic() - t0
            log("20 concurrent 1 s stalls finished in %.3f s" % dt)
            for s in sids:
                self.assertEqual(c.streams[s].status, 200)
            self.assertLess(dt, 2.0)


if __name__ == "__main__":
    harness.main()
