#!/usr/bin/python3
"""apps/tfb (spindle-tfb) against a real PostgreSQL 15 that the test starts
with scripts/pg.sh in a temporary directory, in both modes: asynchronous
(the default: a pool of non-blocking libpq connections per shard, pipelined)
and --blocking (synchronous libpq on offload threads).  Every TechEmpower
endpoint through curl (h2c prior knowledge, and TLS) and python-h2, checked
against the rows read back with psql (fortunes HTML exact and escaped,
updates persisted, the queries parameter clamped), streams reset while their
queries run, then PostgreSQL stopped under h2load load and started again:
503 while it is down, 200 after, the server alive and answering throughout,
and no descriptor leaked.  Async only: a query that sleeps (pg_sleep, the
--test-endpoints /sleep) delays no other stream of its shard; a reset
stream's result is consumed and dropped and its connection reused (same
backends); the pool's size, depth and queue bounds (503 when full).  The
reset case again with the server under valgrind's memcheck, both modes
(skipped in an ASan build).

    /usr/bin/python3 tests/integration/test_tfb.py build/apps/tfb/spindle-tfb
"""
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import H2Client, Server, log, parse_h2load, run, spawn  # noqa: E402
from test_tls import make_pki  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PG_SH = os.path.join(ROOT, "scripts", "pg.sh")
PSQL = "/usr/lib/postgresql/15/bin/psql"
OFFLOAD_THREADS = 2   # --blocking: one PostgreSQL connection each
POOL = 3              # async: connections per shard
HTTPS_RE = re.compile(r"listening on https://(\S+):(\d+) \(shard (\d+)\)")
EXTRA = "Additional fortune added at request time."


def pg(*args, timeout=60):
    rc, out, err = run(["bash", PG_SH] + list(args), timeout)
    if rc != 0:
        raise AssertionError("pg.sh %s: exit %d\n%s%s" % (" ".join(args), rc, out, err))
    return out.strip()


def escape(s):
    """HTML escaping as the benchmark expects (apostrophe as &#39;)."""
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def settled_fd_count(pid, want=None, timeout=5.0):
    """The descriptor count once closes in flight are done: the same value
    five times in a row 0.1 s apart (or `want`, as soon as it is reached)."""
    deadline = time.monotonic() + timeout
    last, same = None, 0
    while time.monotonic() < deadline:
        n = fd_count(pid)
        if n == want:
            return n
        same = same + 1 if n == last else 0
        last = n
        if same >= 5 and want is None:
            return n
        time.sleep(0.1)
    return fd_count(pid)


def parse_curl(out):
    """(status, headers dict, body) from `curl -i` output."""
    head, _, body = out.partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


PG = {}   # the module's PostgreSQL: tmp, pgdir, conninfo, pki


def setUpModule():
    if not os.access(PSQL, os.X_OK):
        raise unittest.SkipTest("PostgreSQL 15 not installed (bash scripts/setup.sh test)")
    tmp = tempfile.mkdtemp(prefix="tfb-it-", dir="/tmp")
    os.chmod(tmp, 0o711)   # the postgres user must reach pg/ (pg.sh)
    PG.update(tmp=tmp, pgdir=os.path.join(tmp, "pg"))
    try:
        PG["pki"] = make_pki(tmp)
        PG["conninfo"] = pg("start", PG["pgdir"])
        log("postgres:", PG["conninfo"])
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    try:
        pg("stop", PG["pgdir"])
    finally:
        shutil.rmtree(PG["tmp"], ignore_errors=True)


class TfbBase:
    """The tests both modes pass; a subclass sets ARGS, SETS, SHARDS and
    CONNS (the PostgreSQL connections the server holds once warm)."""
    ARGS, SETS, SHARDS, CONNS = [], {}, 1, 0

    @classmethod
    def setUpClass(cls):
        cls.tmp, cls.pgdir, cls.pki = PG["tmp"], PG["pgdir"], PG["pki"]
        cls.srv = Server(shards=cls.SHARDS, sets=dict(cls.SETS, **{"max-requests": 0}),
                         args=cls.ARGS + ["--db", PG["conninfo"], "--tls-port", "0",
                                          "--cert", cls.pki["cert"], "--key", cls.pki["key"]])
        try:
            cls.srv.start()
            cls.tls_port = cls.wait_tls_port()
        except BaseException:
            cls.srv.kill()
            raise

    @classmethod
    def wait_tls_port(cls):
        deadline = time.monotonic() + harness.START_TIMEOUT
        while time.monotonic() < deadline:
            for ln in list(cls.srv.stdout_lines):
                m = HTTPS_RE.search(ln)
                if m:
                    return int(m.group(2))
            time.sleep(0.05)
        raise AssertionError("no TLS listening line: %s" % cls.srv.stdout_lines)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()   # SIGTERM; asserts exit status 0 (ASan: no leak)

    def setUp(self):
        self.srv.assert_alive()

    # -- helpers ------------------------------------------------------------
    def url(self, path, tls=False):
        if tls:
            return "https://localhost:%d%s" % (self.tls_port, path)
        return "http://127.0.0.1:%d%s" % (self.srv.port, path)

    def curl(self, path, tls=False):
        cmd = ["curl", "-sS", "-i", "--max-time", "20"]
        cmd += ["--http2", "--cacert", self.pki["ca"]] if tls else ["--http2-prior-knowledge"]
        rc, out, err = run(cmd + [self.url(path, tls)], 30)
        self.assertEqual(rc, 0, err)
        return parse_curl(out)

    def backends(self):
        """The pids of the server's PostgreSQL connections (the async pool
        names itself spindle-tfb; the blocking mode's are psql-less too)."""
        rows = self.psql("SELECT pid FROM pg_stat_activity WHERE datname = 'hello_world' "
                         "AND usename = 'benchmarkdbuser' AND pid <> pg_backend_pid() "
                         "ORDER BY pid")
        return [int(r[0]) for r in rows]

    def wait_backends(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            pids = self.backends()
            if len(pids) == n or time.monotonic() > deadline:
                return pids
            time.sleep(0.1)

    def psql(self, sql):
        rc, out, err = run([PSQL, "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                            "-h", self.pgdir, "-U", "benchmarkdbuser", "-d", "hello_world",
                            "-c", sql], 30)
        self.assertEqual(rc, 0, err)
        return [ln.split("\t") for ln in out.splitlines() if ln]

    def world(self, ids):
        """{id: randomnumber} from psql."""
        ids = sorted(set(ids))
        rows = self.psql("SELECT id, randomnumber FROM world WHERE id IN (%s)" %
                         ",".join(map(str, ids)))
        return {int(a): int(b) for a, b in rows}

    def check_headers(self, headers, ctype, body_bytes):
        self.assertEqual(headers.get("server"), "spindle")
        datetime.datetime.strptime(headers["date"], "%a, %d %b %Y %H:%M:%S GMT")
        self.assertEqual(headers.get("content-type"), ctype)
        self.assertEqual(int(headers["content-length"]), len(body_bytes))

    def check_worlds(self, rows, n):
        self.assertIsInstance(rows, list)
        self.assertEqual(len(rows), n)
        for r in rows:
            self.assertEqual(set(r), {"id", "randomNumber"})
            self.assertTrue(1 <= r["id"] <= 10000, r)
            self.assertTrue(1 <= r["randomNumber"] <= 10000, r)

    def expected_fortunes(self):
        rows = [(int(i), m) for i, m in self.psql("SELECT id, message FROM fortune")]
        self.assertEqual(len(rows), 12)
        rows.append((0, EXTRA))
        rows.sort(key=lambda r: (r[1].encode(), r[0]))
        return ("<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
                "<tr><th>id</th><th>message</th></tr>" +
                "".join("<tr><td>%d</td><td>%s</td></tr>" % (i, escape(m)) for i, m in rows) +
                "</table></body></html>")

    # -- every endpoint with curl ----------------------------------------------
    def test_curl_every_endpoint_headers_and_shapes(self):
        for tls in (False, True):
            st, h, body = self.curl("/plaintext", tls)
            self.assertEqual((st, body), (200, "Hello, World!"))
            self.check_headers(h, "text/plain", b"Hello, World!")
            st, h, body = self.curl("/json", tls)
            self.assertEqual(st, 200)
            self.assertEqual(json.loads(body), {"message": "Hello, World!"})
            self.check_headers(h, "application/json", body.encode())
            st, h, body = self.curl("/db", tls)
            self.assertEqual(st, 200, body)
            row = json.loads(body)
            self.check_worlds([row], 1)
            self.check_headers(h, "application/json", body.encode())
            self.assertEqual(self.world([row["id"]])[row["id"]], row["randomNumber"])
            st, h, body = self.curl("/queries?queries=20", tls)
            self.assertEqual(st, 200, body)
            self.check_worlds(json.loads(body), 20)
            self.check_headers(h, "application/json", body.encode())
            st, h, body = self.curl("/fortunes", tls)
            self.assertEqual(st, 200, body)
            self.check_headers(h, "text/html; charset=utf-8", body.encode())
            self.assertEqual(body, self.expected_fortunes())
            st, h, body = self.curl("/updates?queries=5", tls)
            self.assertEqual(st, 200, body)
            self.check_worlds(json.loads(body), 5)
            self.check_headers(h, "application/json", body.encode())
            st, _, _ = self.curl("/nope", tls)
            self.assertEqual(st, 404)
            if "--test-endpoints" not in self.ARGS:
                st, _, _ = self.curl("/sleep?ms=1", tls)
                self.assertEqual(st, 404)

    def test_curl_date_changes(self):
        _, h1, _ = self.curl("/json")
        time.sleep(1.1)
        _, h2, _ = self.curl("/json")
        self.assertNotEqual(h1["date"], h2["date"])

    def test_fortunes_exact_and_escaped(self):
        st, _, body = self.curl("/fortunes")
        self.assertEqual(st, 200)
        self.assertEqual(body, self.expected_fortunes())
        self.assertNotIn("<script>", body)
        self.assertIn("&lt;script&gt;alert(&quot;This should not be displayed", body)
        self.assertIn("aren&#39;t broken", body)
        self.assertIn("<tr><td>12</td><td>フレームワークのベンチマーク</td></tr>", body)
        self.assertIn("<tr><td>0</td><td>%s</td></tr>" % EXTRA, body)
        # The extra row is added per request, never stored.
        self.assertEqual(self.psql("SELECT count(*) FROM fortune"), [["12"]])

    def test_queries_clamped(self):
        for arg, n in (("", 1), ("foo", 1), ("0", 1), ("-5", 1), ("1", 1), ("2", 2),
                       ("20", 20), ("500", 500), ("501", 500), ("100000", 500)):
            st, _, body = self.curl("/queries?queries=" + arg)
            self.assertEqual(st, 200, body)
            self.check_worlds(json.loads(body), n)
        st, _, body = self.curl("/queries")
        self.check_worlds(json.loads(body), 1)

    # -- python-h2: many streams, rows compared with psql -------------------------
    def test_h2_rows_match_psql(self):
        with H2Client(self.srv.port, timeout=30) as c:
            sids = [c.request("GET", "/db", flush=False) for _ in range(30)]
            sids += [c.request("GET", "/queries?queries=25", flush=False) for _ in range(4)]
            c.flush()
            rows = []
            for sid in sids:
                st = c.wait_stream(sid)
                self.assertEqual(st.status, 200, bytes(st.data))
                self.assertEqual(st.headers["server"], "spindle")
                self.assertEqual(int(st.headers["content-length"]), len(st.data))
                body = json.loads(bytes(st.data))
                rows += body if isinstance(body, list) else [body]
        self.check_worlds(rows, 30 + 4 * 25)
        # No /updates runs concurrently (unittest runs one test at a time).
        db = self.world(r["id"] for r in rows)
        for r in rows:
            self.assertEqual(db[r["id"]], r["randomNumber"], r)

    def test_h2_updates_persisted(self):
        with H2Client(self.srv.port, timeout=30) as c:
            for n in (1, 20, 500):
                st = c.get("/updates?queries=%d" % n)
                self.assertEqual(st.status, 200, bytes(st.data))
                rows = json.loads(bytes(st.data))
                self.check_worlds(rows, n)
                seen = {}
                for r in rows:
                    # A row drawn twice was updated once: one number.
                    self.assertEqual(seen.setdefault(r["id"], r["randomNumber"]),
                                     r["randomNumber"], r)
                db = self.world(seen)
                self.assertEqual(db, seen)
            # Several concurrent updates (rows overlap: one order of locks).
            sids = [c.request("GET", "/updates?queries=50", flush=False) for _ in range(8)]
            c.flush()
            for sid in sids:
                st = c.wait_stream(sid)
                self.assertEqual(st.status, 200, bytes(st.data))

    def test_x_h2_reset_while_query_in_flight(self):
        """Streams reset while their queries run: the late answers are
        dropped, the connection and the server go on, and (under ASan, at
        exit) nothing leaks.  Named to run after the tests that compare rows
        with psql: a reset /updates still commits, a little later."""
        with H2Client(self.srv.port, timeout=30) as c:
            sids = [c.request("GET", p, flush=False)
                    for p in ["/queries?queries=500", "/updates?queries=200", "/fortunes"] * 2]
            c.flush()
            time.sleep(0.05)
            for sid in sids:
                c.reset(sid)
            # The same connection still serves, after the offload threads
            # finished (and dropped) the reset requests' work.
            for _ in range(3):
                st = c.get("/queries?queries=50")
                self.assertEqual(st.status, 200, bytes(st.data))
                self.check_worlds(json.loads(bytes(st.data)), 50)
            for sid in sids:   # an answer that beat the reset is a good one
                if c.streams[sid].headers:
                    self.assertEqual(c.streams[sid].status, 200)
        self.srv.assert_alive()

    def test_h2_fortunes_over_tls_and_h2c_same(self):
        _, _, plain = self.curl("/fortunes")
        _, _, tls = self.curl("/fortunes", tls=True)
        self.assertEqual(plain, tls)

    # -- the database goes away and comes back ---------------------------------------
    def warm(self):
        """Concurrent requests, so every offload thread holds its connection."""
        with H2Client(self.srv.port, timeout=30) as c:
            sids = [c.request("GET", "/queries?queries=10", flush=False)
                    for _ in range(4 * self.CONNS)]
            c.flush()
            return [c.wait_stream(sid).status for sid in sids]

    def wait_db(self, want, timeout=15.0):
        """Poll /db until it answers `want`; returns the statuses seen."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st, _, _ = self.curl("/db")
            seen.append(st)
            if st == want:
                return seen
            time.sleep(0.1)
        raise AssertionError("/db never answered %d within %.0f s: %s" % (want, timeout, seen))

    def test_z_postgres_restart_under_load(self):
        self.assertEqual(self.warm(), [200] * (4 * self.CONNS))
        self.assertEqual(len(self.wait_backends(self.CONNS)), self.CONNS)
        fds_before = settled_fd_count(self.srv.pid)
        cmd = ["h2load", "-c", "4", "-m", "8", "-D", "8", self.url("/db")]
        with tempfile.TemporaryFile(dir=self.tmp) as out, \
                spawn(cmd, stdout=out, stderr=subprocess.STDOUT) as load:
            time.sleep(1.5)
            t0 = time.monotonic()
            pg("stop", self.pgdir)
            log("postgres stopped in %.2f s" % (time.monotonic() - t0))
            seen = self.wait_db(503)
            # Down: every database answer is 503, quickly; the rest still work.
            for _ in range(5):
                st, h, body = self.curl("/db")
                self.assertEqual(st, 503, body)
                self.assertEqual(int(h["content-length"]), len(body))
            st, _, body = self.curl("/fortunes")
            self.assertEqual(st, 503, body)
            st, _, body = self.curl("/json")
            self.assertEqual(st, 200, body)
            self.srv.assert_alive()
            pg("start", self.pgdir)
            seen += self.wait_db(200)
            log("statuses while stopping and starting:", seen)
            load.wait(30)
            out.seek(0)
            text = out.read().decode("utf-8", "replace")
        r = parse_h2load(text)
        log("h2load:", {k: r[k] for k in ("done", "succeeded", "errored", "timeout", "2xx",
                                          "5xx")})
        self.assertEqual((r["errored"], r["timeout"]), (0, 0), text)
        self.assertGreater(r["2xx"], 0, text)
        self.assertGreater(r["5xx"], 0, text)   # the load saw the database down
        self.assertEqual(r["2xx"] + r["5xx"], r["done"], text)
        self.srv.assert_alive()
        # Back: every connection is made again; the rows are there.
        self.assertEqual(self.warm(), [200] * (4 * self.CONNS))
        self.assertEqual(len(self.wait_backends(self.CONNS)), self.CONNS)
        st, _, body = self.curl("/fortunes")
        self.assertEqual((st, body), (200, self.expected_fortunes()))
        # Descriptors: the same count as before (h2load's sockets and the
        # dropped database connections closed, nothing leaked per attempt).
        fds_after = settled_fd_count(self.srv.pid, want=fds_before)
        self.assertEqual(fds_after, fds_before, os.listdir("/proc/%d/fd" % self.srv.pid))


class TfbAsyncTest(TfbBase, unittest.TestCase):
    SHARDS = 2
    ARGS = ["--pool", str(POOL), "--test-endpoints"]
    CONNS = 2 * POOL

    def test_pool_size(self):
        """Every shard opens its pool at start: shards x --pool backends."""
        self.assertEqual(len(self.wait_backends(self.CONNS)), self.CONNS)

    def test_sleep_does_not_delay_other_streams(self):
        """Two streams wait on pg_sleep(3 s); the same connection's (so the
        same shard's) other streams are answered meanwhile, each quickly
        (a bound generous for a loaded machine), and before the sleeps."""
        with H2Client(self.srv.port, timeout=30) as c:
            sleeps = [c.request("GET", "/sleep?ms=3000") for _ in range(2)]
            time.sleep(0.2)   # the sleeps are in flight on two connections
            lat = []
            for _ in range(5):
                st = c.get("/db")
                self.assertEqual(st.status, 200, bytes(st.data))
                lat.append(st.latency)
            log("/db latencies while two streams sleep: %s" %
                " ".join("%.1f ms" % (x * 1e3) for x in lat))
            self.assertLess(max(lat), 1.0, lat)
            self.assertFalse(any(c.streams[sid].done for sid in sleeps))
            for sid in sleeps:
                st = c.wait_stream(sid)
                self.assertEqual(st.status, 200, bytes(st.data))
                self.assertEqual(json.loads(bytes(st.data)), {"slept": 3000})
                self.assertGreaterEqual(st.latency, 2.9)

    def test_reset_sleeping_stream_connection_reused(self):
        """Streams reset while pg_sleep runs for them: their results are
        read and dropped (nothing answered, nothing leaked: ASan), the
        connections stay (the same backends), and serve the next requests."""
        before = self.wait_backends(self.CONNS)
        self.assertEqual(len(before), self.CONNS)
        with H2Client(self.srv.port, timeout=30) as c:
            sids = [c.request("GET", "/sleep?ms=800", flush=False) for _ in range(POOL)]
            sids += [c.request("GET", "/fortunes", flush=False) for _ in range(4)]
            c.flush()
            time.sleep(0.3)
            for sid in sids:
                c.reset(sid)
            time.sleep(1.0)   # the sleeps end; their results are consumed
            for _ in range(2 * POOL):
                st = c.get("/queries?queries=5")
                self.assertEqual(st.status, 200, bytes(st.data))
            for sid in sids[:POOL]:
                self.assertIsNone(c.streams[sid].headers)
        self.assertEqual(self.backends(), before)
        self.assertNotIn("connection lost", self.srv.stderr_text())

    def test_queue_bound_503(self):
        """One connection, one job in flight, two queued: the fourth
        request is answered 503 at once, the first three 200."""
        srv = Server(shards=1, sets={"max-requests": 0},
                     args=["--pool", "1", "--depth", "1", "--queue", "2", "--test-endpoints",
                           "--db", PG["conninfo"]])
        with srv:
            with H2Client(srv.port, timeout=30) as c:
                self.assertEqual(c.get("/db").status, 200)   # the connection is up
                sids = [c.request("GET", "/sleep?ms=700") for _ in range(3)]
                time.sleep(0.1)
                st = c.get("/db")
                self.assertEqual(st.status, 503, bytes(st.data))
                self.assertEqual(bytes(st.data), b"database busy\n")
                self.assertFalse(c.streams[sids[0]].done)
                for sid in sids:
                    self.assertEqual(c.wait_stream(sid).status, 200)
                self.assertEqual(c.get("/db").status, 200)
            srv.stop()


class TfbMemcheckTest(unittest.TestCase):
    """The reset case under valgrind's memcheck, in both modes: streams reset
    while their queries run (pipelined /queries, /updates, /fortunes, and
    pg_sleep ones whose results come back after the reset), then the same
    connection served again, then SIGTERM.  valgrind exits 9 on any memory
    error or definite/indirect leak, so Server.stop()'s exit-status-0 check
    is the assertion (as test_memcheck.py).  Skipped in an ASan build; about
    20 s a mode on an idle machine."""

    def run_resets(self, args):
        with harness.under_valgrind(self):
            srv = Server(shards=1, start_timeout=120, log_level=1,
                         sets={"max-requests": 0, "offload-threads": OFFLOAD_THREADS},
                         args=args + ["--test-endpoints", "--db", PG["conninfo"]])
            with srv:
                with H2Client(srv.port, timeout=120) as c:
                    self.assertEqual(c.get("/db", 120).status, 200)   # connections up
                    paths = ["/queries?queries=500", "/updates?queries=200", "/fortunes",
                             "/sleep?ms=1500", "/db"] * 2
                    sids = [c.request("GET", p, flush=False) for p in paths]
                    c.flush()
                    time.sleep(0.5)
                    for sid in sids:
                        c.reset(sid)
                    for _ in range(3):
                        st = c.get("/queries?queries=20", 120)
                        self.assertEqual(st.status, 200, bytes(st.data))
                    time.sleep(2.0)   # the sleeps end; their results are dropped
                    self.assertEqual(c.get("/fortunes", 120).status, 200)
                srv.stop(timeout=120)   # asserts exit status 0: memcheck clean

    def test_async_resets_clean_under_memcheck(self):
        self.run_resets(["--pool", "2"])

    def test_blocking_resets_clean_under_memcheck(self):
        self.run_resets(["--blocking"])


class TfbBlockingTest(TfbBase, unittest.TestCase):
    ARGS = ["--blocking"]
    SETS = {"offload-threads": OFFLOAD_THREADS}
    CONNS = OFFLOAD_THREADS


if __name__ == "__main__":
    harness.main()
