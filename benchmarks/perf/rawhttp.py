"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for sending many requests fast (filling the store).

httpx spends far more CPU per request than the servers under test do, so filling a store with 100,000
requests through it would take minutes; this sends pre-built request bytes and reads `Content-Length`
answers only (no chunked bodies), which is all the emulator's JSON answers need.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.parse
from collections.abc import Mapping
from typing import Any


class RawConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, base_url: str) -> RawConnection:
        url = urllib.parse.urlsplit(base_url)
        reader, writer = await asyncio.open_connection(url.hostname, url.port or 80)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send one complete request; returns (status, body). Raises ConnectionError on a closed connection."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
            elif name.strip().lower() == "transfer-encoding":
                raise ConnectionError("chunked answers are not supported here")
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def build_request(base_url: str, method: str, path: str, headers: Mapping[str, str], body: bytes = b"") -> bytes:
    url = urllib.parse.urlsplit(base_url)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {url.netloc}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def send_many(
    base_url: str,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    count: int,
    *,
    connections: int = 16,
    keep: bool = True,
) -> list[dict[str, Any]]:
    """Send the same request `count` times over `connections` keep-alive connections; returns the JSON answers
    (none unless `keep`).

    Raises RuntimeError on the first answer that is not 2xx.
    """
    raw = build_request(base_url, method, path, headers, body)
    answers: list[dict[str, Any]] = []
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        connection = await RawConnection.open(base_url)
        try:
            while remaining > 0:
                remaining -= 1
                status, answer = await connection.request(raw)
                if status >= 300:
                    raise RuntimeError(f"{method} {path} answered {status}: {answer[:300]!r}")
                if keep:
                    answers.append(json.loads(answer))
        finally:
            await connection.close()

    await asyncio.gather(*(worker() for _ in range(min(connections, max(1, count)))))
    return answers
