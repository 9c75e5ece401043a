"""The practical limit: a bare Starlette app on uvicorn.

    cd benchmarks && uvicorn baseline_app:app     # the baseline: the stock CLI (httptools + uvloop when installed)
    python benchmarks/baseline_app.py [--port 0]  # the same app started the way `fal-emulator serve` starts

Routes (nothing else: no middleware, no validation, no state):

    GET /status          a status-like JSON body (~200 bytes) with a custom `x-fal-request-id` header
    GET /files/{name}    Starlette's FileResponse of a fixture clip (honours Range), for the download figure

Run as a script, like `fal-emulator serve` it binds its socket itself (port 0 picks a free one, TCP_NODELAY as
the emulator sets it), runs `uvicorn.Server.serve` on the event loop the emulator runs (`fal_emulator.server.run`),
with uvicorn's defaults otherwise (httptools when installed, log level warning), and prints one
`baseline ready {json}` line with its port and pid once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
from collections.abc import Generator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

READY_PREFIX = "baseline ready "
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
BODY: dict[str, str | int] = {
    "status": "IN_QUEUE",
    "request_id": "0f5e3c2a-7a8e-4d0b-9d4e-2f1c6b9a1e11",
    "response_url": "http://127.0.0.1/fal-ai/veo3/requests/0f5e3c2a-7a8e-4d0b-9d4e-2f1c6b9a1e11",
    "queue_position": 0,
}


async def status(request: Request) -> Response:
    return JSONResponse(BODY, 202, headers={"x-fal-request-id": str(BODY["request_id"])})


async def files(request: Request) -> Response:
    name = request.path_params["file_name"]
    if "/" in name or not (FIXTURES / name).is_file():
        return JSONResponse({"detail": "not found"}, 404)
    return FileResponse(FIXTURES / name, media_type="video/mp4")


app = Starlette(routes=[Route("/status", status), Route("/files/{file_name}", files)])


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:port, made as `fal_emulator.server.bind` makes it (TCP_NODELAY)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    return sock


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve(port: int) -> None:
    sock = bind(port)
    server = _Server(uvicorn.Config(app, lifespan="off", log_level="warning", timeout_graceful_shutdown=1))

    def stop() -> None:
        server.should_exit = True

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    task = asyncio.create_task(server.serve([sock]))
    while not server.started:
        if task.done():
            await task
            raise SystemExit(1)
        await asyncio.sleep(0.005)
    print(READY_PREFIX + json.dumps({"port": sock.getsockname()[1], "pid": os.getpid()}), flush=True)
    await task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    from fal_emulator.server import run  # the emulator's event loop (not imported by `uvicorn baseline_app:app`)

    run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
