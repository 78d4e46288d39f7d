#!/usr/bin/python3
"""h2load: many multiplexed requests, and 1000 concurrent connections.

Both need the cores to themselves: CTest runs this file with RUN_SERIAL."""
import os
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Server, log, parse_h2load, raise_nofile, run  # noqa: E402


class H2loadTest(unittest.TestCase):
    def h2load(self, srv, args, timeout):
        url = "http://127.0.0.1:%d/" % srv.port
        rc, out, err = run(["h2load"] + args + [url], timeout)
        r = parse_h2load(out)
        log("h2load %s: %s req/s; %d succeeded, %d failed, %d errored, %d timeout; "
            "status %d 2xx %d 3xx %d 4xx %d 5xx" % (
                " ".join(args), r["req_per_s"], r["succeeded"], r["failed"], r["errored"],
                r["timeout"], r["2xx"], r["3xx"], r["4xx"], r["5xx"]))
        # The summary the final report quotes:
        print("h2load %s -> %.0f req/s" % (" ".join(args), r["req_per_s"] or 0), flush=True)
        self.assertEqual(rc, 0, "h2load exit %d\nstderr: %s" % (rc, err[-2000:]))
        return r, out

    def check_all_ok(self, r, n, out):
        msg = "h2load output:\n" + out[-3000:]
        self.assertEqual(r["failed"], 0, msg)
        self.assertEqual(r["errored"], 0, msg)
        self.assertEqual(r["timeout"], 0, msg)
        self.assertEqual(r["succeeded"], n, msg)
        self.assertEqual(r["2xx"], n, msg)

    def test_200k_requests_16_conns_64_streams(self):
        n = 200000
        # 12500 requests per connection: lift the per-connection request cap
        # (default 10000, then a graceful GOAWAY) so every stream is served.
        with Server(shards=2, sets={"max-requests": 0}) as srv:
            r, out = self.h2load(srv, ["-n", str(n), "-c", "16", "-m", "64"], timeout=120)
            self.check_all_ok(r, n, out)
            srv.assert_alive()

    def test_1000_connections(self):
        n, c = 20000, 1000
        nofile = raise_nofile()
        self.assertGreaterEqual(nofile, 2 * c + 100, "RLIMIT_NOFILE hard limit too low for %d conns" % c)
        with Server(shards=2, sets={"max-conns": 4096}) as srv:
            r, out = self.h2load(srv, ["-n", str(n), "-c", str(c), "-m", "1"], timeout=120)
            self.check_all_ok(r, n, out)
            srv.assert_alive()


if __name__ == "__main__":
    harness.main()
