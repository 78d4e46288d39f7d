#!/usr/bin/python3
"""curl --http2-prior-knowledge against spindle-hello: small and large
bodies both ways, trailers, 404, and 64 x /1m multiplexed on one connection."""
import os
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HELLO, ONE_MIB, ONE_MIB_SHA256, Server, log, run, sha256_file  # noqa: E402

CURL = ["curl", "--http2-prior-knowledge", "-sS", "--no-progress-meter", "--max-time", "100"]
W = "%{http_code} %{http_version} %{size_download} %{num_connects}\n"


def headers_file(path):
    """curl -D output as a list of header blocks (each a list of lines)."""
    blocks, cur = [], []
    with open(path, "rb") as f:
        for raw in f.read().decode("latin-1").split("\r\n"):
            if raw == "":
                if cur:
                    blocks.append(cur)
                cur = []
            else:
                cur.append(raw)
    if cur:
        blocks.append(cur)
    return blocks


class CurlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="spindle-it-curl-")
        cls.srv = Server(shards=2).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.shutdown()  # asserts exit status 0
        finally:
            cls.tmp.cleanup()

    def setUp(self):
        self.srv.assert_alive()
        self.url = "http://127.0.0.1:%d" % self.srv.port

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def curl(self, *args, timeout=90):
        rc, out, err = run(CURL + list(args), timeout)
        self.assertEqual(rc, 0, "curl exit %d\nstdout: %s\nstderr: %s" % (rc, out, err))
        return out

    def test_get_root(self):
        body = self.path("root.body")
        hdr = self.path("root.hdr")
        out = self.curl("-o", body, "-D", hdr, "-w", W, self.url + "/")
        code, version, size, _ = out.split()
        self.assertEqual(code, "200")
        self.assertEqual(version, "2")
        with open(body, "rb") as f:
            self.assertEqual(f.read(), HELLO)
        first = headers_file(hdr)[0]
        self.assertEqual(first[0].strip(), "HTTP/2 200")
        fields = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in first[1:]}
        self.assertTrue(fields.get("content-type", "").startswith("text/plain"), fields)

    def test_get_1m(self):
        body = self.path("1m.body")
        out = self.curl("-o", body, "-w", W, self.url + "/1m")
        code, version, size, _ = out.split()
        self.assertEqual((code, version, int(size)), ("200", "2", ONE_MIB))
        self.assertEqual(sha256_file(body), ONE_MIB_SHA256)

    def test_404(self):
        out = self.curl("-o", os.devnull, "-w", W, self.url + "/no/such/thing")
        self.assertEqual(out.split()[:2], ["404", "2"])

    def _echo(self, name, data_file, size):
        body = self.path(name + ".body")
        hdr = self.path(name + ".hdr")
        out = self.curl("--data-binary", "@" + data_file, "-H", "content-type: application/octet-stream",
                        "-o", body, "-D", hdr, "-w", W, self.url + "/echo", timeout=120)
        code, version, dl, _ = out.split()
        self.assertEqual((code, version), ("200", "2"))
        self.assertEqual(int(dl), size)
        self.assertEqual(os.path.getsize(body), size)
        self.assertEqual(sha256_file(body), sha256_file(data_file))
        # curl 7.88 hands HTTP/2 trailers to the header callback: they are the
        # last block of -D's output, after the final response's headers.
        blocks = headers_file(hdr)
        finals = [i for i, b in enumerate(blocks) if b[0].startswith("HTTP/2 2")]
        self.assertTrue(finals, blocks)
        trailer_lines = [l for b in blocks[finals[-1] + 1:] for l in b] + \
            [l for l in blocks[finals[-1]][1:] if l.lower().startswith("x-echo-bytes")]
        trailers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in trailer_lines}
        self.assertEqual(trailers.get("x-echo-bytes"), str(size),
                         "trailer x-echo-bytes missing or wrong; header blocks: %r" % blocks)
        # And it must be a trailer, not a response header.
        self.assertNotIn("x-echo-bytes", [l.split(":", 1)[0].lower() for l in blocks[finals[-1]][1:]])

    def test_echo_small(self):
        data = self.path("small.in")
        with open(data, "wb") as f:
            f.write(b"spindle echo test \x00\x01\x02\xff\r\n" * 37)
        self._echo("small", data, os.path.getsize(data))

    def test_echo_64m(self):
        size = 64 << 20
        data = self.path("64m.in")
        with open(data, "wb") as f:
            # Incompressible and position-dependent, so reordering shows.
            seed = os.urandom(1 << 20)
            for i in range(64):
                f.write(bytes([i]) + seed[1:])
        self._echo("64m", data, size)
        log("64 MiB echo ok")

    def test_64_x_1m_parallel(self):
        # 64 MiB of downloads in one curl invocation, every body hashed.
        # curl 7.88.1 cannot reuse an --http2-prior-knowledge connection (a
        # second transfer on it fails with "(16) Error in the HTTP2 framing
        # layer": curl/curl#10634, fixed in 8.0 by #10643), so each transfer
        # gets its own connection (--parallel-immediate): 64 connections in
        # parallel.  64 x /1m multiplexed on ONE connection is checked with
        # python-h2 in test_h2.py.
        args = ["--parallel", "--parallel-max", "64", "--parallel-immediate", "-w", W]
        outs = []
        for i in range(64):
            outs.append(self.path("par%02d.body" % i))
            args += ["-o", outs[-1], self.url + "/1m"]
        out = self.curl(*args, timeout=120)
        lines = out.strip().splitlines()
        self.assertEqual(len(lines), 64, out)
        for line in lines:
            code, version, size, _ = line.split()
            self.assertEqual((code, version, int(size)), ("200", "2", ONE_MIB), line)
        for p in outs:
            self.assertEqual(sha256_file(p), ONE_MIB_SHA256, p)
            os.unlink(p)

if __name__ == "__main__":
    harness.main()
