"""The attack tests' runner: the benign client (a separate process on its
own connection, this file run with --benign), the RSS and latency checks
around each attack, and the base class of the attack test classes
(test_attacks.py describes the checks)."""
import collections
import contextlib
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import H2Client, HELLO, Server, log  # noqa: E402

# TLS (test_18_*): the CA/certificate maker and the server that learns its TLS
# port from the "listening on https://" lines.  Importing test_tls also
# installs its socket.create_connection hook, which only acts in a thread that
# set test_tls._tls.ctx (its tls_h2()); nothing here does.  Only these names
# are imported, so unittest does not collect test_tls's test classes here.
from test_tls import TlsServer, client_ctx, make_pki  # noqa: E402
from attacks_util import (ENHANCE_YOUR_CALM, GET_ROOT_TLS, LAT_MAX, MIB, MIN_BENIGN,  # noqa: E402
                          RESULTS, RSS_MAX, RssSampler, TRIP_PING, TlsPeer,
                          expect_goaway, headers_frame, limit_hits, ping, proc_status,
                          rss, strict_eof)


# ---------------------------------------------------------------------------
# The benign client: a separate process on its own connection
# ---------------------------------------------------------------------------

def runq_wait(paths):
    """Seconds each of these schedstat files' tasks has waited runnable on a
    run queue (the second field); a task gone or unreadable: absent."""
    out = {}
    for p in paths:
        try:
            with open(p) as f:
                out[p] = int(f.read().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            pass
    return out


def benign_main(port, pace, server_pid):
    """Child process: one connection, GET / in a loop until stdin says stop;
    one JSON line per request: [t_start, latency, ok, error, wait]: wait is
    how long, during the request, the machine kept the server (its most
    delayed thread) and this client runnable but off a CPU (runq_wait)."""
    out = sys.stdout
    server_tasks = ["/proc/%d/task/%s/schedstat" % (server_pid, t)
                    for t in os.listdir("/proc/%d/task" % server_pid)]
    own = "/proc/thread-self/schedstat"
    c = H2Client(port, timeout=5)
    st = c.get("/")
    assert st.status == 200
    out.write("ready\n")
    out.flush()
    while True:
        r, _, _ = select.select([sys.stdin], [], [], 0)
        if r:
            break
        w0 = runq_wait(server_tasks + [own])
        t0 = time.monotonic()
        ok, err = False, None
        try:
            st = c.get("/", timeout=5)
            ok = st.status == 200 and bytes(st.data) == HELLO
            lat = st.latency if st.latency is not None else time.monotonic() - t0
            if not ok:
                err = "status %s body %r reset %s" % (st.status, bytes(st.data)[:40], st.reset)
        except Exception as e:  # noqa: BLE001 - reported to the parent
            lat = time.monotonic() - t0
            err = "%s: %s" % (type(e).__name__, str(e)[:200])
            c.close()
            with contextlib.suppress(Exception):
                c = H2Client(port, timeout=5)
        w1 = runq_wait(server_tasks + [own])
        d = {p: w1[p] - w0[p] for p in w1 if p in w0}
        wait = d.pop(own, 0.0) + max(d.values(), default=0.0)
        out.write(json.dumps([t0, lat, ok, err, wait]) + "\n")
        out.flush()
        time.sleep(pace)
    c.close()


class Benign:
    def __init__(self, port, server_pid, pace=0.005):
        self.port = port
        self.server_pid = server_pid
        self.pace = pace
        self.samples = []
        self._lock = threading.Lock()

    def start(self):
        cmd = [sys.executable, os.path.abspath(__file__), "--benign", str(self.port),
               str(self.pace), str(self.server_pid)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            err = self.proc.stderr.read().decode("utf-8", "replace") if self.proc.poll() else ""
            self.kill()
            raise AssertionError("benign client did not start: %r %s" % (line, err[-2000:]))
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        return self

    def _read(self):
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                s = json.loads(line)
                with self._lock:
                    self.samples.append(s)

    def count_since(self, t0):
        with self._lock:
            return sum(1 for s in self.samples if s[0] >= t0)

    def stop(self):
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.write(b"stop\n")
            self.proc.stdin.flush()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()
        self._t.join(5)
        self._close()
        return list(self.samples)

    def _close(self):
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError, ValueError):
                f.close()

    def kill(self):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, 9)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self._close()


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


# ---------------------------------------------------------------------------
# The runner: server, baseline, benign client, RSS sampler, attack, checks
# ---------------------------------------------------------------------------

class Case:
    """What an attack function gets: the server and a figures dict."""

    def __init__(self, srv):
        self.srv = srv
        self.fig = collections.OrderedDict()

    def note(self, key, value):
        self.fig[key] = value
        log("  %s = %s" % (key, value))


class AttackBase(unittest.TestCase):
    """The runner (run_case) and what the attack classes share; the tests
    are test_attacks.AttackTest's and test_attacks_tls.TlsAttackTest's."""

    _pki_dir = None
    _pki = None

    @classmethod
    def tls_pki(cls):
        """The test CA and server certificate (test_tls.make_pki), made once
        per class in a temporary directory."""
        if cls._pki is None:
            cls._pki_dir = tempfile.TemporaryDirectory(prefix="attacks-tls-")
            cls._pki = make_pki(cls._pki_dir.name)
        return cls._pki

    @classmethod
    def tls_ctx(cls, alpn=("h2",), version=None):
        ctx = strict_eof(client_ctx(cls.tls_pki()["ca"], alpn=alpn))
        if version is not None:
            ctx.minimum_version = ctx.maximum_version = version
        return ctx

    @classmethod
    def tearDownClass(cls):
        if cls._pki_dir is not None:
            cls._pki_dir.cleanup()
            cls._pki_dir = cls._pki = None
        if not RESULTS:
            return
        lines = ["", "attack figures (RSS in MiB; latency in ms; benign = requests "
                 "issued during the attack on another connection):"]
        for r in RESULTS:
            lines.append("  %-28s %-4s benign n=%-4d p50=%6.2f max=%7.2f (raw %7.2f)  "
                         "rss %6.1f/%6.1f/%6.1f  %s" % (
                             r["name"], "ok" if r["ok"] else "FAIL", r["n"], r["p50"], r["max"],
                             r["max_raw"], r["base"], r["peak"], r["after"],
                             "; ".join("%s=%s" % kv for kv in r["fig"].items())))
        log("\n".join(lines))

    def run_case(self, name, attack, sets=None, args=(), repeat=None,
                 min_benign=MIN_BENIGN, lat_max=LAT_MAX, rss_max=RSS_MAX, extra=15.0,
                 limits=(), tls=False):
        """Start a server, run `attack(case)` (asserting its reaction) while a
        benign client runs on another connection; `repeat(case)` (another
        round of the attack) runs until the benign client has issued
        `min_benign` requests inside the attack window (no `repeat`: the
        window is held open by sleeping, the attack's connections closed).
        `limits`: names (h2_limit_name) the shard's statistics, logged at
        exit, must count at least once.  `tls`: the server also serves TLS
        (test_tls.TlsServer: srv.tls_port) with the class's certificate; the
        benign client stays on h2c."""
        with self.subTest(case=name):
            return self._run_case(name, attack, sets, args, repeat, min_benign, lat_max,
                                  rss_max, extra, limits, tls)

    def _run_case(self, name, attack, sets, args, repeat, min_benign, lat_max, rss_max, extra,
                  limits, tls=False):
        log("=== %s (sets %s %s%s)" % (name, sets or {}, " ".join(args), " TLS" if tls else ""))
        failures = []
        if harness.sanitized():
            # ASan keeps freed memory in quarantine (up to 256 MiB) and adds
            # shadow memory: RSS says nothing there.  LeakSanitizer checks
            # leaks at exit instead; the reactions are asserted as usual.
            rss_max = float("inf")
        if tls:
            srv = TlsServer(self.tls_pki(), shards=1, sets=sets, args=args).start()
        else:
            srv = Server(shards=1, sets=sets, args=args).start()
        try:
            case = Case(srv)
            with H2Client(srv.port, timeout=5) as c:   # warm-up: first connection's allocations
                st = c.get("/")
                self.assertEqual((st.status, bytes(st.data)), (200, HELLO))
            if tls:
                # ... and the first TLS handshake's (wolfSSL's per-thread
                # FP_ECC cache, about 3 MiB: docs/tls.md), so the baseline
                # has them and the attack's growth is its own.
                with TlsPeer(srv.tls_port, self.tls_ctx()) as p:
                    p.send(headers_frame(1, GET_ROOT_TLS))
                    p.wait(lambda: 1 in p.ended, 5)
                    self.assertEqual(p.headers.get(1, {}).get(":status"), "200", p.describe())
            time.sleep(0.1)
            base = rss(srv.pid)
            hwm0 = proc_status(srv.pid, "VmHWM")
            sampler = RssSampler(srv.pid).start()
            benign = Benign(srv.port, srv.pid).start()
            t0 = time.monotonic()
            try:
                try:
                    attack(case)
                except Exception as e:  # noqa: BLE001 - reported with the figures
                    failures.append("reaction: %s%s" % (
                        "" if isinstance(e, AssertionError) else type(e).__name__ + ": ", e))
                    log(traceback.format_exc())
                    repeat = None
                while benign.count_since(t0) < min_benign and time.monotonic() - t0 < extra \
                        and srv.alive():
                    if not repeat:
                        time.sleep(0.05)
                        continue
                    try:
                        repeat(case)
                    except Exception as e:  # noqa: BLE001
                        failures.append("repeat round: %s%s" % (
                            "" if isinstance(e, AssertionError) else type(e).__name__ + ": ", e))
                        log(traceback.format_exc())
                        repeat = None
                t1 = time.monotonic()
                samples = benign.stop()
            finally:
                benign.kill()
            # The attack's sockets are closed by now: the server frees them.
            time.sleep(0.5)
            peak = sampler.stop()
            alive = srv.alive()
            if alive:
                peak = max(peak, rss(srv.pid))
                hwm1 = proc_status(srv.pid, "VmHWM")
                if hwm1 > hwm0:
                    peak = max(peak, hwm1)
                after = rss(srv.pid)
            else:
                after = float("nan")
                failures.insert(0, "SERVER DIED (%s) during the attack" % (
                    harness._describe_status(srv.proc.returncode)))
            window = [s for s in samples if t0 <= s[0] <= t1]
            raw = [s[1] for s in window]
            lats = [max(0.0, s[1] - s[4]) for s in window]  # run-queue wait not counted
            bad = [s for s in window if not s[2]]
            r = {"name": name, "n": len(window), "p50": pct(lats, 0.5) * 1e3,
                 "max": max(lats) * 1e3 if lats else float("nan"),
                 "max_raw": max(raw) * 1e3 if raw else float("nan"),
                 "base": base / MIB, "peak": peak / MIB, "after": after / MIB,
                 "fig": case.fig}
            log("%s: benign n=%d p50=%.2f ms max=%.2f ms (%.2f with run-queue wait); RSS base "
                "%.1f peak %.1f after %.1f MiB; %s" % (
                    name, r["n"], r["p50"], r["max"], r["max_raw"], r["base"], r["peak"],
                    r["after"], dict(case.fig)))
            if bad:
                failures.append("benign: %d of %d requests failed, first: %s" % (
                    len(bad), len(window), bad[0][3]))
            if len(window) < min_benign:
                failures.append("benign: only %d requests during the attack (%.1f s), want %d" % (
                    len(window), t1 - t0, min_benign))
            if lats and max(lats) >= lat_max:
                failures.append("benign: max latency %.1f ms >= %.0f ms (p50 %.2f ms; "
                                "run-queue wait not counted, %.1f ms with it)" % (
                                    max(lats) * 1e3, lat_max * 1e3, r["p50"], r["max_raw"]))
            if peak - base >= rss_max:
                failures.append("RSS peak %.1f MiB = baseline %.1f + %.1f MiB >= +%d MiB" % (
                    peak / MIB, base / MIB, (peak - base) / MIB, rss_max // MIB))
            if alive and after - base >= rss_max:
                failures.append("RSS after %.1f MiB = baseline %.1f + %.1f MiB >= +%d MiB" % (
                    after / MIB, base / MIB, (after - base) / MIB, rss_max // MIB))
            if alive:
                try:
                    srv.stop()      # SIGTERM: must exit 0
                except harness.ServerError as e:
                    failures.append("server stop: %s" % str(e)[:300])
                hits = limit_hits(srv.stderr_text())
                case.note("limits_hit", ",".join("%s=%d" % kv for kv in sorted(hits.items()))
                          or "none")
                for want in limits:
                    if not hits.get(want):
                        failures.append("statistics: no %r limit hit counted (%s)" % (
                            want, hits or "none"))
            r["ok"] = not failures
            RESULTS.append(r)
            if failures:
                log("%s FAILED:\n  %s\nserver stderr tail:\n%s" % (
                    name, "\n  ".join(failures), srv.stderr_text()[-1500:]))
        finally:
            srv.kill()
            srv._close()
        if failures:
            self.fail("%s: %s" % (name, " | ".join(failures)))
        return case

    # ======================================================================
    # Shared: counting how many offences a token bucket lets through
    # ======================================================================
    @staticmethod
    def trip(p, unit, budget, rate, what, step=10):
        """Send offences unit(0), unit(1), ... : all but the last ~2% of the
        burst at once (no GOAWAY may follow), then `step` at a time until the
        GOAWAY ENHANCE_YOUR_CALM.  Asserts that it came after `budget`
        offences (+ the bucket's refill over the elapsed time + one step in
        flight).  Returns (offences sent, GOAWAY and EOF seconds after the
        step that tripped it).

        Each step ends with a PING (not an offence) and the next step waits
        for its ACK: frames are handled in order, so the ACK says the server
        has judged the whole step, and no step goes out after the one that
        tripped the limit however slowly the server answers (ASan, a loaded
        2-core machine).  Waiting a fixed 5 ms instead counted steps sent
        while the GOAWAY was on its way as offences the server let through."""
        def sync(token, timeout=5.0):
            """Send PING `token`; wait for its ACK (True) or a GOAWAY/EOF
            (False)."""
            with contextlib.suppress(OSError):
                p.send(ping(token))
            p.wait(lambda: p.goaway is not None or token in p.ping_acks, timeout)
            if p.goaway is not None or p.eof:
                return False
            if token not in p.ping_acks:
                raise AssertionError("%s: no PING ACK within %.1f s, no GOAWAY either (%s)" % (
                    what, timeout, p.describe()))
            return True

        safe = budget - max(2 * step, budget // 50)
        t = time.monotonic()
        i = 0
        while i < safe:
            k = min(safe - i, 500)
            p.send(b"".join(unit(j) for j in range(i, i + k)))
            i += k
            p.pump(0)
        token = TRIP_PING
        if not sync(token):
            raise AssertionError("%s: GOAWAY after only %d of a budget of %d (%s)" % (
                what, i, budget, p.describe()))
        t_step = time.monotonic()
        while p.goaway is None and not p.eof and i < 3 * budget + 1000:
            t_step = time.monotonic()
            with contextlib.suppress(OSError):
                p.send(b"".join(unit(j) for j in range(i, i + step)))
            i += step
            token += 1
            sync(token)
        elapsed = time.monotonic() - t
        rt, ct = expect_goaway(p, ENHANCE_YOUR_CALM, t_step, 2, what)
        if not budget < i <= budget + rate * elapsed + 2 * step:
            raise AssertionError("%s: GOAWAY after %d offences in %.2f s; budget %d + %d/s" % (
                what, i, elapsed, budget, rate))
        return i, rt, ct


if __name__ == "__main__" and sys.argv[1:2] == ["--benign"]:
    # Benign.start runs this file as the benign client.
    benign_main(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
