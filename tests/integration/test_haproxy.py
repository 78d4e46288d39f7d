#!/usr/bin/python3
"""HAProxy 2.6 (deploy/haproxy.cfg) in front of spindle instances (h2c
backends, readiness checks over HTTP/1.1) under continuous load
(docs/deploy.md):

- three instances, h2load through the h2c and the TLS frontends, each
  instance restarted in turn (SIGTERM: readiness 503, which the HTTP/1.1
  check reports as L7STS 503, shutdown-delay 3 s > HAProxy's inter x fall,
  then the GOAWAY drain; started again): zero failed requests, zero non-2xx;
- two instances, wrk through the HTTP/1.1 frontend, both restarted in turn:
  zero non-2xx, zero socket errors;
- one instance SIGKILLed: HAProxy marks it DOWN within its check interval
  (inter x fall + one check) and the failed requests are bounded by the
  requests in flight (h2load's clients x streams);
- one instance answering RST_STREAM(REFUSED_STREAM): retry-on turns it into
  zero client errors; with retry-on none the client sees them."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HOST, free_port, log, parse_h2load, spawn  # noqa: E402
from haproxy_util import DELAY_S, FALL, INTER_S, HAProxy, start_instance, stop_all  # noqa: E402

NAMES = ("s1", "s2", "s3")


def served(srv):
    """Requests a stopped instance logged at exit ("stats: ... N requests")."""
    m = re.findall(r"(\d+) requests", srv.stderr_all())
    return sum(int(x) for x in m)


@unittest.skipUnless(shutil.which("haproxy"), "haproxy not installed (scripts/setup.sh test)")
class HAProxyTest(unittest.TestCase):
    def setUp(self):
        self.ports = [free_port() for _ in NAMES]
        self.servers = [start_instance(p) for p in self.ports]
        self.lb = HAProxy(self.ports).start()
        for n in NAMES:
            self.lb.wait_status(n, "UP", 10)

    def tearDown(self):
        self.lb.stop()
        stop_all(self.servers)

    def load(self, out, seconds, tls=False, clients=8, streams=4):
        url = ("https://%s:%d/" % (HOST, self.lb.tls_port) if tls
               else "http://%s:%d/" % (HOST, self.lb.h2c_port))
        return spawn(["h2load", "-D", str(seconds), "-c", str(clients), "-m", str(streams), url],
                     stdout=out, stderr=subprocess.STDOUT)

    def results(self, out, load, what):
        try:
            load.wait(60)
        except subprocess.TimeoutExpired:
            self.fail("h2load (%s) did not finish" % what)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
        r = parse_h2load(text)
        log("h2load %s: %d done, %d succeeded, %d failed, %d errored, %d timeout; %d 2xx %d 5xx, "
            "%.0f req/s" % (what, r["done"], r["succeeded"], r["failed"], r["errored"],
                            r["timeout"], r["2xx"], r["5xx"], r["req_per_s"] or 0))
        return r, text

    def assert_down_by_readiness(self, name, srv):
        """DOWN because the HTTP/1.1 check got 503 (not a refused connection),
        while the instance still runs (inside its shutdown-delay)."""
        row = self.lb.stats()[name]
        self.assertEqual((row["check_status"], row["check_code"]), ("L7STS", "503"), row)
        self.assertTrue(srv.alive(), "%s exited before HAProxy took it out" % name)

    def test_rolling_restart_under_load(self):
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as out_tls:
            with self.load(out, 22) as load, self.load(out_tls, 22, tls=True, clients=2) as tload:
                time.sleep(1.5)
                for i, name in enumerate(NAMES):
                    old = self.servers[i]
                    old.send_signal(signal.SIGTERM)
                    down = self.lb.wait_status(name, "DOWN", 5)
                    self.assert_down_by_readiness(name, old)
                    rc, dt = old.wait_exit(harness.DRAIN_TIMEOUT + 5)
                    self.assertEqual(rc, 0, old.stderr_text())
                    n = served(old)
                    old._close()
                    self.servers[i] = start_instance(self.ports[i])
                    up = self.lb.wait_status(name, "UP", 10)
                    log("%s: DOWN %.2f s after SIGTERM, exited after %.2f s having served %d "
                        "requests, UP again %.2f s after its start" % (name, down, dt, n, up))
                    self.assertGreater(n, 0, "%s served nothing" % name)
                    self.assertLess(down, DELAY_S, "HAProxy saw readiness fail after the delay")
                    self.assertTrue(load.poll() is None and tload.poll() is None,
                                    "h2load ended before restart %d (machine too slow?)" % (i + 1))
                r, text = self.results(out, load, "h2c frontend")
                rt, ttext = self.results(out_tls, tload, "TLS frontend")
        for res, txt in ((r, text), (rt, ttext)):
            self.assertGreater(res["succeeded"], 0, txt[-2000:])
            self.assertEqual((res["failed"], res["errored"], res["timeout"]), (0, 0, 0),
                             txt[-2000:])
            self.assertEqual(res["2xx"], res["succeeded"], txt[-2000:])

    def test_sigkill_stops_routing_within_the_check_interval(self):
        clients, streams = 8, 4
        with tempfile.TemporaryFile() as out:
            with self.load(out, 6, clients=clients, streams=streams) as load:
                time.sleep(2)
                victim = self.servers[1]
                before = self.lb.stats()["s2"]
                os.kill(victim.pid, signal.SIGKILL)
                down = self.lb.wait_status("s2", "DOWN", 10)
                victim.wait_exit(5)
                total_before = int(before["stot"])
                time.sleep(0.5)
                after = self.lb.stats()["s2"]
                r, text = self.results(out, load, "h2c frontend, s2 killed")
        routed_after = int(after["stot"]) - total_before
        non2xx = r["3xx"] + r["4xx"] + r["5xx"]
        log("s2 SIGKILLed: DOWN after %.2f s (inter %.1f s x fall %d); %d requests routed to s2 "
            "after the kill (retried: wretr=%s, redispatched: wredis=%s, eresp=%s); "
            "h2load failed %d errored %d, non-2xx %d; in flight at most %d"
            % (down, INTER_S, FALL, routed_after, after.get("wretr"), after.get("wredis"),
               after.get("eresp"), r["failed"], r["errored"], non2xx, clients * streams))
        # The check interval: fall checks of inter each, plus one check's
        # timeout (inter by default) and scheduling slack on a loaded machine.
        self.assertLess(down, INTER_S * FALL + INTER_S + 1.5)
        # Failures bounded by the requests in flight on the killed instance
        # (at most every stream h2load had open).
        self.assertLessEqual(r["failed"] + non2xx, clients * streams, text[-2000:])
        self.assertGreater(r["2xx"], 0)


    def refused_run(self, retry):
        """h2load through HAProxy on /reset?code=7&port=P1: s1 answers
        REFUSED_STREAM, s2 and s3 answer 200."""
        url = "http://%s:%d/reset?code=7&port=%d" % (HOST, self.lb.h2c_port, self.ports[0])
        rc, out, err = harness.run(["h2load", "-n", "600", "-c", "2", "-m", "2", url], 120)
        r = parse_h2load(out)
        st = self.lb.stats()
        log("REFUSED_STREAM from s1, retry-on %s: h2load %d succeeded, %d failed, %d 2xx; "
            "s1 stot=%s wretr=%s wredis=%s eresp=%s; s2+s3 stot=%d"
            % ("as deployed" if retry else "none", r["succeeded"], r["failed"], r["2xx"],
               st["s1"]["stot"], st["s1"]["wretr"], st["s1"]["wredis"], st["s1"]["eresp"],
               int(st["s2"]["stot"]) + int(st["s3"]["stot"])))
        return r, st, out

    def test_refused_stream_is_retried(self):
        r, st, out = self.refused_run(retry=True)
        self.assertEqual((r["succeeded"], r["failed"], r["2xx"]), (600, 0, 600), out[-2000:])
        self.assertGreater(int(st["s1"]["eresp"]), 0, "s1 refused nothing: not provoked")
        self.assertGreater(int(st["s1"]["wretr"]) + int(st["s1"]["wredis"]), 0)
        # The same traffic without retry-on: the refusals reach the client.
        self.lb.stop()
        self.lb = HAProxy(self.ports)
        cfg = os.path.join(self.lb.tmp, "no-retry.cfg")
        with open(self.lb.config) as f, open(cfg, "w") as o:
            text, n = re.subn(r"^\s*retry-on .*$", "    retry-on none", f.read(), flags=re.M)
            self.assertEqual(n, 1)
            o.write(text)
        self.lb.config = cfg
        self.lb.start()
        for n in NAMES:
            self.lb.wait_status(n, "UP", 10)
        r, st, out = self.refused_run(retry=False)
        self.assertGreater(r["failed"], 0, out[-2000:])
        self.assertEqual(r["failed"], int(st["s1"]["eresp"]), st["s1"])


@unittest.skipUnless(shutil.which("haproxy") and shutil.which("wrk"),
                     "haproxy or wrk not installed (scripts/setup.sh test)")
class Http1FrontTest(unittest.TestCase):
    """wrk (HTTP/1.1) through HAProxy's HTTP/1.1 frontend to two instances
    (h2c backends), both restarted in turn: zero non-2xx, zero errors."""

    def test_rolling_restart_under_wrk(self):
        ports = [free_port() for _ in range(2)]
        servers = [start_instance(p) for p in ports]
        lb = None
        try:
            lb = HAProxy(ports).start()
            for n in ("s1", "s2"):
                lb.wait_status(n, "UP", 10)
            self.assertEqual(lb.status("s3"), "MAINT")
            with tempfile.TemporaryFile() as out:
                with spawn(["wrk", "-t", "1", "-c", "8", "-d", "16s",
                            "http://%s:%d/" % (HOST, lb.h1_port)],
                           stdout=out, stderr=subprocess.STDOUT) as load:
                    time.sleep(1.5)
                    for i, name in enumerate(("s1", "s2")):
                        servers[i].send_signal(signal.SIGTERM)
                        down = lb.wait_status(name, "DOWN", 5)
                        row = lb.stats()[name]
                        self.assertEqual((row["check_status"], row["check_code"]),
                                         ("L7STS", "503"), row)
                        self.assertTrue(servers[i].alive())
                        rc, dt = servers[i].wait_exit(harness.DRAIN_TIMEOUT + 5)
                        self.assertEqual(rc, 0, servers[i].stderr_text())
                        n = served(servers[i])
                        servers[i]._close()
                        servers[i] = start_instance(ports[i])
                        up = lb.wait_status(name, "UP", 10)
                        log("%s: DOWN (L7STS 503) %.2f s after SIGTERM, exited after %.2f s "
                            "having served %d requests, UP %.2f s after its start"
                            % (name, down, dt, n, up))
                        self.assertGreater(n, 0)
                        self.assertIsNone(load.poll(), "wrk ended before restart %d" % (i + 1))
                    try:
                        load.wait(60)
                    except subprocess.TimeoutExpired:
                        self.fail("wrk did not finish")
                out.seek(0)
                text = out.read().decode("utf-8", "replace")
            m = re.search(r"(\d+) requests in", text)
            self.assertTrue(m, text)
            log("wrk through HAProxy's HTTP/1.1 frontend: %s requests; %s" % (
                m.group(1), "no non-2xx, no socket errors"
                if "Non-2xx" not in text and "Socket errors" not in text else text))
            self.assertGreater(int(m.group(1)), 0, text)
            self.assertNotIn("Non-2xx", text)
            self.assertNotIn("Socket errors", text)
        finally:
            if lb:
                lb.stop()
            stop_all(servers)


@unittest.skipUnless(shutil.which("haproxy"), "haproxy not installed (scripts/setup.sh test)")
class PassthroughTest(unittest.TestCase):
    """deploy/haproxy-tls-passthrough.cfg: TLS through HAProxy (mode tcp)
    to spindle's own TLS listeners (TLS 1.3, ALPN h2 negotiated with the
    client), readiness checked on their h2c ports by a tcp-check carrying
    one HTTP/2 request: UP on 200, DOWN on 503 (SIGTERM with a delay)."""

    def test_tls_passthrough(self):
        tmp = tempfile.mkdtemp(prefix="spindle-pt-")
        servers, lb = [], None
        try:
            from haproxy_util import make_pem
            make_pem(tmp)
            cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
            pairs = [(free_port(), free_port()) for _ in NAMES]
            servers = [start_instance(plain, args=["--cert", cert, "--key", key,
                                                   "--tls-port", str(tls)])
                       for tls, plain in pairs]
            lb = HAProxy([], passthrough=pairs).start()
            for n in ("t1", "t2", "t3"):
                lb.wait_status(n, "UP", 10)
            with tempfile.TemporaryFile() as out:
                with spawn(["h2load", "-n", "3000", "-c", "6", "-m", "4",
                            "https://%s:%d/" % (HOST, lb.tls_port)],
                           stdout=out, stderr=subprocess.STDOUT) as load:
                    load.wait(60)
                out.seek(0)
                text = out.read().decode("utf-8", "replace")
            r = parse_h2load(text)
            log("h2load through TLS pass-through: %d succeeded, %d failed" %
                (r["succeeded"], r["failed"]))
            self.assertEqual((r["succeeded"], r["failed"], r["2xx"]), (3000, 0, 3000),
                             text[-2000:])
            self.assertIn("TLSv1.3", text)
            # The h2c readiness check (a tcp-check) sees the 503: DOWN while
            # the instance still serves (shutdown-delay 2 s).
            servers[0].send_signal(signal.SIGTERM)
            down = lb.wait_status("t1", "DOWN", 5)
            log("t1 DOWN %.2f s after SIGTERM" % down)
            self.assertTrue(servers[0].alive())
            self.assertLess(down, DELAY_S)
            servers[0].wait_exit(harness.DRAIN_TIMEOUT + 5)
            # Each instance terminated TLS itself.
            for s in servers:
                s.stop()
                self.assertRegex(s.stderr_all(), r"\(\d+ TLS,")
                self.assertNotRegex(s.stderr_all(), r"\(0 TLS,")
        finally:
            if lb:
                lb.stop()
            stop_all(servers)
            for f in os.listdir(tmp):
                os.unlink(os.path.join(tmp, f))
            os.rmdir(tmp)


if __name__ == "__main__":
    harness.main()
