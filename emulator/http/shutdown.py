"""End the answers still open when the server stops, cleanly, instead of letting uvicorn cancel them.

uvicorn's graceful shutdown waits for open answers (an SSE status stream, a synchronous `fal.run` call, a
slow video) and, after `timeout_graceful_shutdown`, cancels them and logs each as an "Exception in ASGI
application" with a long traceback. `EndOpenAnswers` is ASGI middleware that knows every answer in flight;
`end()` (called by the server when it stops) cancels them itself and closes each properly: a streamed
answer gets its final empty chunk (the client sees the stream end), an answer not started yet gets
`503 {"detail": "The emulator is shutting down"}`.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SHUTTING_DOWN = b'{"detail":"The emulator is shutting down"}'


class EndOpenAnswers:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.ending = False
        self._open: set[asyncio.Task[object]] = set()

    def end(self) -> None:
        """Cancel every answer in flight; each is then closed as described above."""
        self.ending = True
        for task in self._open:
            task.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        if scope["type"] != "http" or task is None:
            await self.app(scope, receive, send)
            return
        started = finished = False

        async def noting_send(message: Message) -> None:
            nonlocal started, finished
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            await send(message)

        self._open.add(task)
        try:
            await self.app(scope, receive, noting_send)
        except asyncio.CancelledError:
            if not self.ending:
                raise
            uncancel = getattr(task, "uncancel", None)  # Python 3.11+
            if uncancel is not None:
                uncancel()
            if not started:
                headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
                await send({"type": "http.response.start", "status": 503, "headers": headers})
                await send({"type": "http.response.body", "body": SHUTTING_DOWN})
            elif not finished:
                await send({"type": "http.response.body", "body": b""})
        finally:
            self._open.discard(task)
