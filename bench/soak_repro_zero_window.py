#!/usr/bin/python3
"""soak_repro_zero_window.py - what the soak's hold worker sees: a client that
reads everything but never opens the window of a download.

    /usr/bin/python3 bench/soak_repro_zero_window.py PORT [PATH]

Sends SETTINGS_INITIAL_WINDOW_SIZE=0 and GET PATH (default /1m), keeps reading
and prints every frame with its time until the server closes.  security.md
("no send progress (zero window, unread socket) 30 s: GOAWAY with the matching
code, then close") expects a GOAWAY ENHANCE_YOUR_CALM at ~30 s before the
close; exit status 0 if one came, 1 if the connection was closed without one.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from soak_chaos import Conn, Closed, ERR  # noqa: E402

NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING",
         "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"]


def main():
    port = int(sys.argv[1])
    path = sys.argv[2] if len(sys.argv) > 2 else "/1m"
    c = Conn(port, iws=0, auto_window=False)
    t0 = time.monotonic()
    orig = c.on_frame

    def show(ft, fl, sid, p):
        extra = ""
        if ft == 7:
            extra = " %s %r" % (ERR.get(int.from_bytes(p[4:8], "big")), p[8:])
        print("%6.2f s  %s flags=%#x stream=%d len=%d%s" % (
            time.monotonic() - t0, NAMES[ft] if ft < 10 else ft, fl, sid, len(p), extra),
            flush=True)
        orig(ft, fl, sid, p)

    c.on_frame = show
    c.request("GET", path)
    try:
        while time.monotonic() - t0 < 60:
            c.pump(1.0)
        print("still open after 60 s")
        return 1
    except Closed as e:
        print("%6.2f s  connection closed by the server (%s); GOAWAY: %s" % (
            time.monotonic() - t0, e, c.goaway))
    return 0 if c.goaway else 1


if __name__ == "__main__":
    sys.exit(main())
