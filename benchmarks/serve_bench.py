"""Latency and throughput of the scoring service on loopback: stored scores (GET /leads/{id}/score) and fresh
scores (POST /leads/score, features computed now by the mart's SQL), with 1 and 8 concurrent clients.

Starts `scorehouse serve` on a free port against the published warehouse (run `scorehouse run` first), sends
each scenario at most --requests requests or for at most --seconds seconds, whichever ends first, and prints p50,
p99 and mean latency and requests per second. Leads are drawn at random from the stored scores.

    python benchmarks/serve_bench.py [--requests 400] [--seconds 60] [--json out.json]

It is a script, not a test: figures vary with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx
import numpy as np

from core.config import Settings
from scorehouse.api import Scorehouse


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_server(port: int, token: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "SCOREHOUSE_API_TOKEN": token}
    # the service's log goes to a file: a pipe nobody reads would fill and stall it
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "scorehouse.cli", "serve", "--port", str(port)], env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the service stopped: " + log.read_text())
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the service did not answer /health within 120 s")


def _scenario(port: int, token: str, kind: str, leads: list[str], clients: int, requests: int,
              seconds: float) -> dict:
    """`requests` requests split over `clients` threads (each with its own connection), stopping at `seconds`."""
    latencies: list[float] = []
    failures = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds
    per_client = max(1, requests // clients)

    def client(seed: int) -> None:
        draw = random.Random(seed)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"},
                          timeout=30) as http:
            for _ in range(per_client):
                if time.perf_counter() > stop_at:
                    return
                lead = draw.choice(leads)
                started = time.perf_counter()
                response = (http.get(f"/leads/{lead}/score") if kind == "stored"
                            else http.post("/leads/score", json={"lead_ids": [lead]}))
                elapsed = time.perf_counter() - started
                with lock:
                    (latencies if response.status_code == 200 else failures).append(
                        elapsed if response.status_code == 200 else response.status_code)

    # one warm-up request per client's connection is not counted
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}) as http:
        http.get(f"/leads/{leads[0]}/score")
        http.post("/leads/score", json={"lead_ids": [leads[0]]}, timeout=30)
    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {"scenario": kind, "clients": clients, "requests": len(latencies), "failed": len(failures),
            "p50_ms": round(float(np.percentile(ms, 50)), 1) if len(ms) else None,
            "p99_ms": round(float(np.percentile(ms, 99)), 1) if len(ms) else None,
            "mean_ms": round(float(ms.mean()), 1) if len(ms) else None,
            "per_second": round(len(latencies) / wall, 1), "seconds": round(wall, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per scenario (at most)")
    parser.add_argument("--seconds", type=float, default=60, help="time per scenario (at most)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    house = Scorehouse(settings=Settings())
    leads = list(house.leads().lead_id)
    house.close()
    print(f"{len(leads):,} scored leads in {house.path}")
    token, port = secrets.token_urlsafe(32), _free_port()
    log = Path(tempfile.gettempdir()) / f"scorehouse-serve-bench-{port}.log"
    server = _start_server(port, token, log)
    try:
        results = [_scenario(port, token, kind, leads, clients, args.requests, args.seconds)
                   for kind in ("stored", "fresh") for clients in (1, 8)]
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    print(f"(the service's log: {log})")
    print(f"{'scenario':<8} {'clients':>7} {'requests':>8} {'non-200':>7} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
          f"{'req/s':>7}")
    for r in results:
        print(f"{r['scenario']:<8} {r['clients']:>7} {r['requests']:>8} {r['failed']:>7} {r['p50_ms']:>8} "
              f"{r['p99_ms']:>8} {r['mean_ms']:>8} {r['per_second']:>7}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
