"""Shared pieces of the benchmark scripts under bench/ (Python 3 standard library only):
child processes in their own process groups, killed on exit; HTTP with an optional bearer
token; polling with a deadline; Prometheus text sums; tierkv-bench runs; release builds.

New scripts import it (`sys.path.insert(0, <bench dir>)`); older ones still carry their own
copies of some of these.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHILDREN = {}  # name -> Popen


def log(tag, msg):
    print(f"[{tag} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def spawn(name, argv, log_path, env):
    """Starts `argv` in a process group of its own, output appended to `log_path`."""
    with open(log_path, "ab") as f:
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env, process_group=0)
    CHILDREN[name] = p
    return p


def kill(name):
    p = CHILDREN.pop(name, None)
    if p is not None and p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def stop_all():
    for name in list(CHILDREN):
        kill(name)


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def install_cleanup():
    """Every child is killed on exit, failure and Ctrl-C included."""
    import atexit
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def http(url, method="GET", body=None, timeout=5, token=None):
    """(status, body bytes); status None when the server did not answer. JSON bodies: pass a
    dict. `token`: sent as `Authorization: Bearer`."""
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except Exception:
        return None, b""


def port_free(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except OSError:
        return True


def free_base(n):
    """A base port with `n` free ports after it."""
    for base in range(24000, 60000, 100):
        if all(port_free(base + i) for i in range(n)):
            return base
    sys.exit("no free ports")


def wait_until(pred, what, timeout, log_path=None, interval=0.1):
    """Polls `pred` until it is true; exits when a child died or the deadline passed."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for name, p in CHILDREN.items():
            if p.poll() is not None:
                sys.exit(f"{name} exited with {p.returncode}; log {log_path}")
        if pred():
            return
        time.sleep(interval)
    sys.exit(f"not {what} after {timeout}s; log {log_path}")


def metric(text, name):
    """Sum of a family's samples (all label sets) in a Prometheus text page, or None."""
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name):len(name) + 1] in (" ", "{")):
            try:
                total += float(line.rsplit(" ", 1)[1])
                seen = True
            except ValueError:
                pass
    return total if seen else None


def duration_secs(s):
    m = re.fullmatch(r"\s*([0-9.]+)\s*(ms|s|m|h)?\s*", s)
    if not m:
        raise ValueError(f"not a duration: {s!r}")
    v, unit = float(m.group(1)), m.group(2) or "s"
    return v * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def size_bytes(s):
    m = re.fullmatch(r"\s*([0-9.]+)\s*(B|KiB|MiB|GiB)?\s*", s)
    if not m:
        raise ValueError(f"not a size: {s!r}")
    return int(float(m.group(1)) * {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20,
                                    "GiB": 1 << 30}[m.group(2) or "B"])


def run_bench(bench_bin, endpoint, extra, tag):
    """One tierkv-bench run (JSON report); exits on failure."""
    argv = [bench_bin, "--target", "tierkv", "--endpoint", endpoint, "--json", "-q"] + extra
    log(tag, "tierkv-bench " + " ".join(extra))
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"tierkv-bench failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout)


def build_release(tag):
    """Builds the release `tierkv` and `tierkv-bench`; returns their paths."""
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    log(tag, f"cargo build --release (target dir {target})")
    subprocess.run(["cargo", "build", "--release", "-p", "tierkv", "--bin", "tierkv", "-p",
                    "tierkv-loadgen", "--bin", "tierkv-bench"], cwd=REPO, check=True)
    return {b: os.path.join(target, "release", b) for b in ("tierkv", "tierkv-bench")}


def copy_bins(bins, workdir):
    """Copies the binaries under `workdir` (a rebuild meanwhile cannot change them)."""
    out = {}
    for name, src in bins.items():
        dst = os.path.join(workdir, "bin", name)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)
        out[name] = dst
    return out
