#!/usr/bin/python3
"""Answers from another thread (include/spindle.h "Waiting without blocking"):
spindle-hello's /async?ms=N keeps the stream's handle, lets a thread of its
own wait N ms, and answers through spindle_post_stream() on the stream's
shard.  Waiting streams block nothing else on the shard; a stream the peer
resets while it waits is never answered (the late answer finds NULL: the
shard's /async counter, its on_shard_start context, does not move), and the
server stays healthy."""
import os
import re
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HELLO, H2Client, Server, log  # noqa: E402

ANSWER = re.compile(rb"^async answer (\d+) from shard (\d+)\n$")


class AsyncTest(unittest.TestCase):
    def test_waiting_streams_block_nothing(self):
        with Server(shards=1) as srv, H2Client(srv.port) as c:
            waiting = [c.request("GET", "/async?ms=3000") for _ in range(20)]
            for _ in range(20):
                st = c.get("/", timeout=5)
                self.assertEqual(st.status, 200)
                self.assertEqual(bytes(st.data), HELLO)
            self.assertFalse(any(c.streams[s].done for s in waiting),
                             "the waiting streams were answered before the 20 quick ones")
            c.wait(lambda: all(c.streams[s].done for s in waiting), 15, "the 20 /async answers")
            numbers = set()
            for s in waiting:
                st = c.streams[s]
                self.assertEqual(st.status, 200)
                m = ANSWER.match(bytes(st.data))
                self.assertIsNotNone(m, bytes(st.data))
                self.assertEqual(m.group(2), b"0")
                numbers.add(int(m.group(1)))
            self.assertEqual(numbers, set(range(1, 21)), "each answered once, counted per shard")
            self.assertFalse(c.goaways)

    def test_reset_while_waiting_is_never_answered(self):
        with Server(shards=1) as srv, H2Client(srv.port) as c:
            gone = [c.request("GET", "/async?ms=300") for _ in range(5)]
            c.pump(0.05)
            for s in gone:
                c.reset(s)
            time.sleep(0.6)  # the five late answers were posted and dropped meanwhile
            st = c.get("/async?ms=10", timeout=5)
            self.assertEqual(st.status, 200)
            self.assertEqual(bytes(st.data), b"async answer 1 from shard 0\n",
                             "a reset stream was answered after all")
            for s in gone:
                self.assertIsNone(c.streams[s].status)
            self.assertEqual(bytes(c.get("/", timeout=5).data), HELLO)
            log("5 streams reset while waiting; the next /async is the shard's first answer")

    def test_many_connections_and_shards(self):
        with Server(shards=2) as srv:
            clients = [H2Client(srv.port) for _ in range(4)]
            try:
                sids = [(c, c.request("GET", "/async?ms=20")) for c in clients for _ in range(50)]
                for c in clients:
                    c.wait(lambda c=c: all(c.streams[s].done for cc, s in sids if cc is c), 20,
                           "50 /async answers")
                for c, s in sids:
                    self.assertEqual(c.streams[s].status, 200)
                    self.assertIsNotNone(ANSWER.match(bytes(c.streams[s].data)))
            finally:
                for c in clients:
                    c.close()


if __name__ == "__main__":
    harness.main()
