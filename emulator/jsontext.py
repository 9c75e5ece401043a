"""JSON text for any value the HTTP edge accepted, whatever the call depth it is encoded or decoded at.

Python's `json` counts each nesting level against the interpreter's recursion limit, shared with the call
stack: a body nested 960 deep parses at the edge (a shallow stack) and then fails with `RecursionError`
when a store encodes it under twenty more frames. `dumps` and `loads` here retry such a value once on a
fresh thread, whose stack is empty, so every value the edge could parse can be stored, read back and
rendered (issue 14 B). Anything else `json` rejects raises as it would.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, TypeVar

Result = TypeVar("Result")


def dumps(value: Any) -> str:
    """Compact JSON text (`separators=(",", ":")`). Raises TypeError/ValueError as `json.dumps` does."""
    try:
        return json.dumps(value, separators=(",", ":"))
    except RecursionError:
        return _on_fresh_stack(lambda: json.dumps(value, separators=(",", ":")))


def loads(text: str | bytes) -> Any:
    """The value of JSON `text`. Raises ValueError (json.JSONDecodeError) as `json.loads` does."""
    try:
        return json.loads(text)
    except RecursionError:
        return _on_fresh_stack(lambda: json.loads(text))


def _on_fresh_stack(work: Callable[[], Result]) -> Result:
    """Run `work` on a new thread (an empty Python stack); re-raise what it raised."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, work()))
        except BaseException as exc:  # handed back to the caller's thread
            outcome.append((False, exc))

    thread = threading.Thread(target=run, name="fal-emulator-jsontext")
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]
