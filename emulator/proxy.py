"""An HTTPS proxy (HTTP `CONNECT`, RFC 9110 §9.3.6) that tunnels fal's hostnames to the emulator, and nothing else.

With `HTTPS_PROXY=http://127.0.0.1:8472` and the emulator's CA in `SSL_CERT_FILE`, an unmodified client of
any release reaches `https://queue.fal.run`, `https://rest.fal.ai`, `https://v3.fal.media`, ... (see
`fal_emulator.fal_hosts`): each `CONNECT fal-host:443` is answered `200 Connection established` and its bytes
are piped to the emulator's own TLS listener, whose certificate names those hosts; the app then routes by
`Host`. It is never an open proxy: a `CONNECT` to any other host or port, a plain-HTTP proxy request
(`GET http://example.org/`) and anything else get `403 Forbidden` with a text body that says why, and no
connection to the named target is ever attempted. The request is parsed with h11.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import socket

import h11

from fal_emulator.fal_hosts import FAL_HOSTS, TLS_PORT, role_of

logger = logging.getLogger("fal_emulator.proxy")

HEADER_TIMEOUT = 10.0  # seconds a client has to send its request line and headers
MAX_HEADER_BYTES = 16 * 1024
CHUNK = 64 * 1024
HOSTS_TEXT = ", ".join(FAL_HOSTS)


def refusal(target: str, why: str) -> str:
    """The 403 body: what was refused, why, and how to reach that target anyway."""
    return (
        f"fal-emulator's HTTPS proxy refused {target}: {why}.\n"
        f"It tunnels only CONNECT to fal's hosts on port {TLS_PORT} ({HOSTS_TEXT}), to the emulator itself; "
        "it made no connection to anything else and is never an open proxy.\n"
        "Send other traffic around it: add the host to NO_PROXY, or unset HTTPS_PROXY in that shell.\n"
    )


class FalProxy:
    """The proxy listener: `start(sock)`, then `close()`. `upstream` is the emulator's TLS listener (host, port)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_server(self._serve, sock=sock, limit=CHUNK)

    async def close(self) -> None:
        """Stop listening and end every open tunnel."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._handle(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass  # the client went away or stalled: nothing to answer
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        try:
            request = await asyncio.wait_for(_read_request(conn, reader), HEADER_TIMEOUT)
        except h11.RemoteProtocolError as exc:
            await _answer(writer, conn, 400, f"fal-emulator's HTTPS proxy could not read the request: {exc}\n")
            return
        if request is None:
            return
        target = request.target.decode("latin-1")
        if request.method != b"CONNECT":
            why = "it is not a CONNECT request (plain-HTTP proxying is never done)"
            logger.warning("fal-emulator proxy: refused %s %s (not CONNECT)", request.method.decode("latin-1"), target)
            await _answer(writer, conn, 403, refusal(f"{request.method.decode('latin-1')} {target}", why))
            return
        if role_of(target) is None or not target.lower().endswith(f":{TLS_PORT}"):
            logger.warning("fal-emulator proxy: refused CONNECT %s (not one of fal's hosts on port 443)", target)
            await _answer(writer, conn, 403, refusal(f"CONNECT {target}", "it is not one of fal's hosts on port 443"))
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError as exc:
            await _answer(writer, conn, 502, f"fal-emulator's TLS listener did not accept the tunnel: {exc}\n")
            return
        writer.write(conn.send(h11.Response(status_code=200, headers=[], reason=b"Connection established")))
        leftover, _ = conn.trailing_data
        if leftover:
            up_writer.write(leftover)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await up_writer.wait_closed()


async def _read_request(conn: h11.Connection, reader: asyncio.StreamReader) -> h11.Request | None:
    """The request line and headers (h11 parses them); None when the client closes first."""
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Request):
            return event
        if event is h11.NEED_DATA:
            data = await reader.read(CHUNK)
            conn.receive_data(data)
            if not data and conn.their_state is h11.IDLE:
                return None
            continue
        if isinstance(event, h11.ConnectionClosed):
            return None


async def _answer(writer: asyncio.StreamWriter, conn: h11.Connection, status: int, text: str) -> None:
    body = text.encode()
    headers = [
        ("content-type", "text/plain; charset=utf-8"),
        ("content-length", str(len(body))),
        ("connection", "close"),
    ]
    if conn.our_state is h11.SEND_RESPONSE or conn.our_state is h11.IDLE:
        reason = http.HTTPStatus(status).phrase.encode()
        writer.write(conn.send(h11.Response(status_code=status, headers=headers, reason=reason)) or b"")
        writer.write(conn.send(h11.Data(data=body)) or b"")
        writer.write(conn.send(h11.EndOfMessage()) or b"")
    await writer.drain()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy bytes until end of file, then half-close the other side."""
    try:
        while data := await source.read(CHUNK):
            sink.write(data)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()
    except OSError:
        sink.close()
