#!/usr/bin/python3
"""nghttp (nghttp2's client): 100 concurrent streams on one connection."""
import collections
import os
import re
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ONE_MIB, Server, log, run  # noqa: E402

STATUS_RE = re.compile(r"recv \(stream_id=(\d+)\) :status: (\d+)")
SEND_HEADERS_RE = re.compile(r"\[\s*([\d.]+)\] send HEADERS frame <[^>]*stream_id=(\d+)>")
RECV_DATA_RE = re.compile(r"\[\s*([\d.]+)\] recv DATA frame <length=(\d+), flags=0x(\w+), stream_id=(\d+)>")
BAD_RE = re.compile(r"recv (RST_STREAM|GOAWAY) frame")


def parse(out):
    statuses = {int(s): int(c) for s, c in STATUS_RE.findall(out)}
    opened = [int(s) for _, s in SEND_HEADERS_RE.findall(out)]
    data = collections.Counter()
    ended = set()
    for _, length, flags, sid in RECV_DATA_RE.findall(out):
        data[int(sid)] += int(length)
        if int(flags, 16) & 0x1:
            ended.add(int(sid))
    return statuses, opened, data, ended


class NghttpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(shards=2).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.shutdown()  # asserts exit status 0

    def nghttp(self, path, n):
        self.srv.assert_alive()
        url = "http://127.0.0.1:%d%s" % (self.srv.port, path)
        rc, out, err = run(["nghttp", "-nv", "-m", str(n), "-t", "30", url], timeout=60)
        self.assertEqual(rc, 0, "nghttp exit %d\nstderr: %s\nstdout tail: %s" % (rc, err, out[-3000:]))
        self.assertEqual(out.count("] Connected"), 1, "expected exactly one connection")
        bad = BAD_RE.findall(out)
        self.assertFalse(bad, "server sent %s" % bad)
        return parse(out)

    def test_100_concurrent_streams_root(self):
        statuses, opened, data, ended = self.nghttp("/", 100)
        self.assertEqual(len(opened), 100, "nghttp opened %d streams" % len(opened))
        self.assertEqual(sorted(statuses), sorted(opened))
        self.assertEqual(set(statuses.values()), {200}, collections.Counter(statuses.values()))
        for sid in opened:
            self.assertEqual(data[sid], 13, "stream %d body length" % sid)
            self.assertIn(sid, ended)

    def test_100_concurrent_streams_1m(self):
        # 100 MiB on one connection: flow control across 100 streams.
        statuses, opened, data, ended = self.nghttp("/1m", 100)
        self.assertEqual(len(opened), 100)
        self.assertEqual(set(statuses.values()), {200})
        short = {sid: data[sid] for sid in opened if data[sid] != ONE_MIB or sid not in ended}
        self.assertFalse(short, "streams with a wrong body length: %r" % short)
        log("100 x /1m on one connection: %d bytes" % sum(data.values()))


if __name__ == "__main__":
    harness.main()
