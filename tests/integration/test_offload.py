#!/usr/bin/python3
"""spindle_offload(): a handler that is not `blocking` hands single requests
to the shard's offload thread (spindle-hello's /sleep), and the shard goes
on serving everything else inline meanwhile.

The shard's statistics line ("N requests (M offloaded)", logged on SIGUSR1)
says how many requests went to the offload thread."""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HELLO, ONE_MIB_SHA256, H2Client, Server, log, offloaded, sha256  # noqa: E402


class OffloadOneRequestTest(unittest.TestCase):
    def test_offloaded_request_does_not_hold_the_shard(self):
        """/sleep?ms=1500 blocks the offload thread; /, /1m on the same
        connection are answered by the shard meanwhile."""
        with Server(shards=1) as srv:
            self.assertEqual(offloaded(srv), (0, 0), "no request, nothing offloaded")
            c = H2Client(srv.port)
            try:
                t0 = time.monotonic()
                slow = c.request("GET", "/sleep?ms=1500")
                fast = [c.request("GET", "/") for _ in range(3)] + [c.request("GET", "/1m")]
                for sid in fast:
                    c.wait_stream(sid, 10)
                t_fast = time.monotonic() - t0
                self.assertEqual([bytes(c.streams[s].data) for s in fast[:3]], [HELLO] * 3)
                self.assertEqual(sha256(bytes(c.streams[fast[3]].data)), ONE_MIB_SHA256)
                self.assertLess(t_fast, 1.0, "the shard waited for the offloaded request")
                r = c.wait_stream(slow, 10)
                t_slow = time.monotonic() - t0
                self.assertEqual((r.status, bytes(r.data)), (200, b"slept\n"))
                self.assertGreaterEqual(t_slow, 1.4)
                # A second spindle_offload() on the offload thread: SPINDLE_ESTATE.
                self.assertEqual(r.headers.get("x-offload-again"), "-2")
                log("inline streams done in %.0f ms, offloaded one in %.0f ms"
                    % (t_fast * 1000, t_slow * 1000))
            finally:
                c.close()
            self.assertEqual(offloaded(srv), (5, 1))

    def test_many_offloaded_resets_and_shutdown(self):
        """64 offloaded requests over two worker threads, a quarter of them
        reset by the client while their handler sleeps, inline requests in
        between; then SIGTERM while two sleep: they finish, the server exits
        cleanly (ASan, when built with it, checks for leaks)."""
        with Server(shards=1, sets={"offload-threads": 2}) as srv:
            c = H2Client(srv.port)
            try:
                sids = [c.request("GET", "/sleep?ms=20") for _ in range(64)]
                for sid in sids[::4]:
                    c.reset(sid)
                inline = [c.request("GET", "/") for _ in range(8)]
                for sid in inline:
                    self.assertEqual(bytes(c.wait_stream(sid, 10).data), HELLO)
                done = [c.wait_stream(sid, 20) for sid in sids if sid not in sids[::4]]
                self.assertEqual({(r.status, bytes(r.data)) for r in done}, {(200, b"slept\n")})
                log("%d offloaded answered, %d reset" % (len(done), len(sids[::4])))
                self.assertEqual(offloaded(srv), (72, 64))
                last = [c.request("GET", "/sleep?ms=600") for _ in range(2)]
                time.sleep(0.1)
                srv.send_signal(signal.SIGTERM)
                for sid in last:
                    r = c.wait_stream(sid, 10)
                    self.assertEqual((r.status, bytes(r.data)), (200, b"slept\n"))
            finally:
                c.close()
            rc, _ = srv.wait_exit(10)
            self.assertEqual(rc, 0, srv.stderr_text())


if __name__ == "__main__":
    harness.main()
