"""A mixed soak of `fal-emulator serve`: does memory come back after `reset`?

    .venv/bin/python benchmarks/soak.py                  # 60 s per store (memory, then SQLite)
    .venv/bin/python benchmarks/soak.py --seconds 20 --store memory

For each store it starts a server (free ports, its own state dir), measures its resident memory (RSS, from
/proc) once warm, then drives it for `--seconds` with 32 concurrent clients doing a seeded mix of what users
and attackers do: submits (some with distinct `Host` headers, some with webhooks to a local receiver), status
polls, results, SSE streams, uploads, MP4 ranges, journal reads, and bad input (too deep, too long a number,
malformed webhooks, bodies over the cap); plus slow clients trickling request heads. Then it calls
`POST /_emulator/reset` and measures RSS again. It prints the figures as ratios to the warm baseline. It is a
script, not a test: nothing in the test suite times anything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from fal_emulator.testing import EmulatorProcess

ENDPOINT = "fal-ai/veo3/image-to-video"
BODY = {"prompt": "a lego chef", "image_url": "https://example.com/chef.png"}
KEY = {"Authorization": "Key soak"}
CAP = 1024 * 1024  # --max-body-bytes for the soak: bodies over it are part of the mix
CLIENTS, SLOW_CLIENTS = 32, 50
WARM_UP = 5.0  # seconds of the same mix before the baseline: lazy imports, caches and code paths fill once


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Receiver:
    """A loopback webhook receiver that answers 200 and counts."""

    def __init__(self) -> None:
        self.count = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.count += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def bad_bodies() -> list[bytes]:
    deep = json.dumps(BODY)[:-1].encode() + b', "x": ' + b"[" * 960 + b"]" * 960 + b"}"
    long_number = json.dumps(BODY)[:-1].encode() + b', "seed": ' + b"9" * 5000 + b"}"
    too_big = json.dumps({**BODY, "prompt": "x" * (CAP + 1)}).encode()
    return [deep, long_number, too_big]


async def client(http: httpx.AsyncClient, rng: random.Random, until: float, ids: list[str], hook: str,
                 counts: dict[str, int]) -> None:  # fmt: skip
    bad = bad_bodies()
    while time.monotonic() < until:
        roll = rng.random()
        try:
            if roll < 0.30:
                headers = {**KEY, "Host": f"h{rng.randrange(100_000)}.soak:8470"} if rng.random() < 0.3 else KEY
                params = {"fal_webhook": hook} if rng.random() < 0.1 else None
                answer = await http.post(f"/{ENDPOINT}", json=BODY, headers=headers, params=params)
                if answer.status_code == 200:
                    ids.append(answer.json()["request_id"])
                    del ids[:-1000]
            elif roll < 0.55 and ids:
                await http.get(f"/fal-ai/veo3/requests/{rng.choice(ids)}/status", params={"logs": "1"}, headers=KEY)
            elif roll < 0.65 and ids:
                await http.get(f"/fal-ai/veo3/requests/{rng.choice(ids)}", headers=KEY)
            elif roll < 0.70 and ids:
                async with http.stream("GET", f"/fal-ai/veo3/requests/{rng.choice(ids)}/status/stream",
                                       headers=KEY) as stream:  # fmt: skip
                    async for _ in stream.aiter_bytes():
                        pass
            elif roll < 0.76:
                urls = (await http.post("/storage/upload/initiate", json={"file_name": "a.bin",
                                        "content_type": "application/octet-stream"}, headers=KEY)).json()  # fmt: skip
                await http.put(urls["upload_url"], content=rng.randbytes(64 * 1024))
            elif roll < 0.82:
                await http.get("/files/1280x720_8s_audio.mp4", headers={"Range": "bytes=0-65535"})
            elif roll < 0.84:
                await http.get("/_emulator/journal", params={"status": "404"})
            elif roll < 0.92:
                await http.post(f"/{ENDPOINT}", content=rng.choice(bad), headers=KEY)
            else:
                webhook = rng.choice(["http://[", "http://127.0.0.1:99999/", "http://127.0.0.1/%00"])
                await http.post(f"/{ENDPOINT}?fal_webhook={webhook}", json=BODY, headers=KEY)
            counts["requests"] += 1
        except httpx.HTTPError:
            counts["errors"] += 1


def slow_clients(port: int, until: float, stop: threading.Event) -> None:
    """Clients that trickle a request head, one byte a second (they are cut off by --read-timeout)."""
    socks: list[socket.socket] = []
    while time.monotonic() < until and not stop.is_set():
        while len(socks) < SLOW_CLIENTS:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"GET /_emulator/health HTTP/1.1\r\nHost: x\r\n")
            socks.append(sock)
        for sock in list(socks):
            try:
                sock.sendall(b"X")
            except OSError:
                socks.remove(sock)
                sock.close()
        stop.wait(1.0)
    for sock in socks:
        sock.close()


async def soak(base: str, port: int, seconds: float, receiver: Receiver) -> dict[str, int]:
    counts = {"requests": 0, "errors": 0}
    until = time.monotonic() + seconds
    stop = threading.Event()
    slow = threading.Thread(target=slow_clients, args=(port, until, stop), daemon=True)
    slow.start()
    ids: list[str] = []
    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits, trust_env=False) as http:
        await asyncio.gather(*(client(http, random.Random(seed), until, ids, receiver.url, counts)
                               for seed in range(CLIENTS)))  # fmt: skip
    stop.set()
    slow.join()
    return counts


def run_store(store: str, seconds: float, cycles: int) -> dict[str, Any]:
    """Warm up, then `cycles` times: soak for `seconds`, reset. RSS in KiB at each step."""
    receiver = Receiver()
    counts = {"requests": 0, "errors": 0}
    peaks, afters = [], []
    with tempfile.TemporaryDirectory(prefix="fal-emulator-soak-") as state:
        args = ("--store", store, "--max-body-bytes", str(CAP), "--read-timeout", "5")
        with EmulatorProcess(Path(state), policy="timed:0.2,0.3", extra_args=args) as server:
            assert server.listening is not None
            pid, base, port = server.listening.pid, server.listening.http_url, server.listening.http_port
            with httpx.Client(base_url=base, headers=KEY, trust_env=False) as http:
                start = rss_kib(pid)
                asyncio.run(soak(base, port, WARM_UP, receiver))  # every path runs once
                http.post("/_emulator/reset")
                time.sleep(2.0)
                baseline = rss_kib(pid)
                for _ in range(cycles):
                    for name, value in asyncio.run(soak(base, port, seconds, receiver)).items():
                        counts[name] += value
                    peaks.append(rss_kib(pid))
                    http.post("/_emulator/reset")
                    time.sleep(2.0)  # let the last streams and deliveries end
                    afters.append(rss_kib(pid))
                health = http.get("/_emulator/health").status_code
    receiver.server.shutdown()
    return {"store": store, "start": start, "baseline": baseline, "peaks": peaks, "afters": afters,
            "webhooks": receiver.count, "health": health, **counts}  # fmt: skip


def mib(kib: int, base: int) -> str:
    return f"{kib / 1024:.1f} MiB ({kib / base:.2f}x)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of load per cycle (default 60)")
    parser.add_argument("--cycles", type=int, default=2, help="soak-then-reset cycles per store (default 2)")
    parser.add_argument("--store", action="append", choices=["memory", "sqlite"])
    args = parser.parse_args(argv)
    rows = [run_store(store, args.seconds, args.cycles) for store in args.store or ["memory", "sqlite"]]
    print(f"Soak: {args.cycles} x {args.seconds:g} s per store, {CLIENTS} clients + {SLOW_CLIENTS} slow ones; "
          f"RSS as a ratio to the warm baseline\n")  # fmt: skip
    print("| store | cycle | requests (all cycles) | client errors | webhooks delivered | RSS at start "
          "| RSS warm (baseline) | RSS peak | RSS after reset |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        base = row["baseline"]
        for cycle, (peak, after) in enumerate(zip(row["peaks"], row["afters"], strict=True), start=1):
            totals = f"{row['requests']:,} | {row['errors']} | {row['webhooks']}" if cycle == 1 else "| |"
            print(f"| {row['store']} | {cycle} | {totals} | {row['start'] / 1024:.1f} MiB | {base / 1024:.1f} MiB "
                  f"| {mib(peak, base)} | {mib(after, base)} |")  # fmt: skip
    return 0 if all(row["health"] == 200 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
