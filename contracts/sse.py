"""Server-sent events, as fal's status stream sends them: `data: {json}` events and `: comment` lines.

    parse_events(b'data: {"status": "IN_QUEUE"}\\n\\n: keepalive\\n\\n')   # -> ['{"status": "IN_QUEUE"}']

Source: https://html.spec.whatwg.org/multipage/server-sent-events.html (event stream interpretation);
fal: https://fal.ai/docs/inference-api/queue/status-stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def iter_events(lines: Iterable[str]) -> Iterator[str]:
    """The `data` of each event in a stream of lines (without line endings); comments are skipped."""
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield "\n".join(data)
            data = []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            if field == "data":
                data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


def parse_events(content: bytes) -> list[str]:
    """The `data` of every event in a whole stream body."""
    text = content.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    return list(iter_events(text.split("\n")))
