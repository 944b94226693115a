"""Steady load for the resilience drills: N threads, each with its own keep-alive
connection, sending GET requests to one path for a fixed time and writing one line per
request (start offset, seconds taken, outcome) to a log, so a drill can say what happened
before, during and after what it did to the server.

    python3 steady_load.py BASE_URL PATH TOKEN SECONDS THREADS LOG

An outcome is the HTTP status, `refused` (a new connection was refused: the server was
not accepting, so no request was sent), `closed-idle` (a kept-alive connection was closed
by the server without a byte of answer, as a stopping server closes idle connections; an
HTTP client sends such a request again) or `dropped` (a request was sent and no complete
answer came back: what a drill must never see).
"""
import http.client
import sys
import threading
import time
import urllib.parse

base, path, token, seconds, threads, log_path = sys.argv[1:7]
seconds, threads = float(seconds), int(threads)
url = urllib.parse.urlsplit(base)
headers = {"Authorization": f"Bearer {token}"} if token != "-" else {}
t0 = time.monotonic()
lines, lock = [], threading.Lock()


def worker():
    conn = None
    while time.monotonic() - t0 < seconds:
        start = time.monotonic()
        reused = conn is not None
        if conn is None:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
            try:
                conn.connect()
            except OSError:
                conn = None
                outcome = "refused"
                with lock:
                    lines.append(f"{start - t0:.3f} {time.monotonic() - start:.4f} {outcome}")
                time.sleep(0.05)
                continue
        try:
            conn.request("GET", url.path.rstrip("/") + path, headers=headers)
            res = conn.getresponse()
            res.read()
            outcome = str(res.status)
            if res.getheader("connection", "").lower() == "close":
                conn.close()
                conn = None
        except http.client.RemoteDisconnected:
            # The server closed a kept-alive connection as the request went out, with
            # not a byte of answer: what a server does to idle connections as it
            # stops (HTTP clients send such a request again). Counted apart from a
            # request that was taken and then lost.
            outcome = "closed-idle" if reused else "dropped"
            conn.close()
            conn = None
        except (OSError, http.client.HTTPException):
            outcome = "dropped"
            conn.close()
            conn = None
        with lock:
            lines.append(f"{start - t0:.3f} {time.monotonic() - start:.4f} {outcome}")


pool = [threading.Thread(target=worker) for _ in range(threads)]
for t in pool:
    t.start()
for t in pool:
    t.join()
with open(log_path, "w") as f:
    f.write("\n".join(sorted(lines, key=lambda l: float(l.split()[0]))) + "\n")
