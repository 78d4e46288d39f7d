#!/usr/bin/python3
"""Hostile-peer smoke over raw sockets (frames built by hand, parsed with
hyperframe, headers coded with hpack): the offender gets the right GOAWAY or
RST_STREAM and the server keeps serving everyone else."""
import os
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (DATA, END_HEADERS, END_STREAM, ERR, GOAWAY, HEADERS, HELLO,  # noqa: E402
                     RST_STREAM, H2Client, RawConn, Server, describe_frames, frame, log)

PROTOCOL_ERROR = 1


def get(path="/", authority="127.0.0.1"):
    return [(":method", "GET"), (":scheme", "http"), (":authority", authority), (":path", path)]


class HostileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(shards=1).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.shutdown()  # asserts exit status 0

    def tearDown(self):
        # After every offence: the server is up and serves a benign client.
        self.srv.assert_alive()
        with H2Client(self.srv.port, timeout=5) as c:
            st = c.get("/")
            self.assertEqual((st.status, bytes(st.data)), (200, HELLO))

    def assertGoaway(self, conn, code, what):
        g = conn.read_goaway(timeout=5)
        self.assertIsNotNone(g, "%s: connection closed without GOAWAY; frames %s" % (
            what, describe_frames(conn.frames)))
        log("%s -> GOAWAY(last=%d, %s, %r)" % (what, g.last_stream_id, ERR.get(g.error_code),
                                               bytes(g.additional_data)[:60]))
        self.assertEqual(g.error_code, code, "%s: GOAWAY %s, want %s" % (
            what, ERR.get(g.error_code, g.error_code), ERR[code]))
        self.assertTrue(conn.wait_eof(5), "%s: connection still open 5 s after GOAWAY" % what)
        return g

    def read_all(self, c):
        c.sock.settimeout(5)
        data = b""
        while True:
            chunk = c.sock.recv(65536)
            if not chunk:
                return data
            data += chunk

    def test_invalid_preface(self):
        with RawConn(self.srv.port, preface=False) as c:
            # An HTTP/1.1 request where the HTTP/2 preface would be: since
            # issue 13 the listener serves it as HTTP/1.1 (test_http1.py).
            c.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = self.read_all(c)
            self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:40])
            self.assertIn(HELLO, data)

    def test_invalid_preface_same_length(self):
        with RawConn(self.srv.port, preface=False) as c:
            bad = b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"
            self.assertEqual(len(bad), len(harness.PREFACE))
            c.send(bad + frame(harness.SETTINGS, 0, 0))
            # Not the preface: the HTTP/1.1 codec refuses it and closes.
            data = self.read_all(c)
            self.assertRegex(data[:13], rb"^HTTP/1\.1 (400|505) ", data[:60])
            self.assertIn(b"connection: close", data)

    def test_data_on_stream_0(self):
        with RawConn(self.srv.port) as c:
            c.send(frame(DATA, 0, 0, b"hello"))
            self.assertGoaway(c, PROTOCOL_ERROR, "DATA on stream 0")

    def test_even_stream_id(self):
        with RawConn(self.srv.port) as c:
            c.send_headers(2, get())
            g = self.assertGoaway(c, PROTOCOL_ERROR, "HEADERS on stream 2")
            self.assertEqual(g.last_stream_id, 0)

    def test_uppercase_header_name(self):
        with RawConn(self.srv.port) as c:
            c.send_headers(1, get() + [("X-Upper", "1")])
            c.send_headers(3, get())
            rst = None
            resp = None
            body = b""
            while rst is None or resp is None or not body.endswith(HELLO):
                f = c.read_until(lambda f: True, timeout=5)
                self.assertIsNotNone(f, "connection closed; frames %s" % describe_frames(c.frames))
                self.assertNotEqual(f.type, GOAWAY, "a malformed request is a stream error, "
                                    "not a connection error: %s" % describe_frames(c.frames))
                if f.type == RST_STREAM and f.stream_id == 1:
                    rst = f
                elif f.type == HEADERS and f.stream_id == 1:
                    self.fail("malformed request on stream 1 was answered: %r" % f.decoded)
                elif f.type == HEADERS and f.stream_id == 3:
                    resp = f
                elif f.type == DATA and f.stream_id == 3:
                    body += bytes(f.data)
            log("uppercase header -> %s" % describe_frames(c.frames))
            self.assertEqual(rst.error_code, PROTOCOL_ERROR, "RST_STREAM %s" % ERR.get(rst.error_code))
            self.assertEqual(resp.decoded.get(":status"), "200")
            self.assertEqual(body, HELLO)

    def test_frames_after_connection_error_ignored(self):
        # The offender's follow-up bytes must not revive the connection.
        with RawConn(self.srv.port) as c:
            c.send(frame(DATA, 0, 0, b"x") + frame(HEADERS, END_HEADERS | END_STREAM, 1,
                                                    c.headers_block(get())))
            self.assertGoaway(c, PROTOCOL_ERROR, "DATA on stream 0, then a request")
            answered = [f for f in c.frames if f.type == HEADERS]
            self.assertFalse(answered, "answered a request after its connection error")


if __name__ == "__main__":
    harness.main()
