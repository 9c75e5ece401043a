"""A request as JSON text, the form the durable stores keep (`sqlite_store`, `redis_store`): every field, the
status as its value, an input at any nesting the HTTP edge accepts (`fal_emulator.jsontext`). Fields are only
ever added with defaults, so text written by an older release still decodes, and fields a newer release added
are ignored.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fal_emulator import jsontext
from fal_emulator.lifecycle import Outcome, Policy, Request, Status


def encode(request: Request) -> str:
    """A request as JSON text (every field; the status as its value), at any nesting of its input."""
    fields = {field.name: getattr(request, field.name) for field in dataclasses.fields(request)}
    fields.update(
        status=request.status.value,
        policy=dataclasses.asdict(request.policy),
        outcome={"status_code": request.outcome.status_code, "body": request.outcome.body,
                 "headers": dict(request.outcome.headers)},
        script=[list(line) for line in request.script],
    )  # fmt: skip
    return jsontext.dumps(fields)


REQUEST_FIELDS = frozenset(field.name for field in dataclasses.fields(Request))


def decode(text: str) -> Request:
    """The request `encode` wrote (fields a newer release added are ignored). Raises ValueError, TypeError
    or KeyError for text that is not such a request."""
    fields: dict[str, Any] = jsontext.loads(text)
    fields = {name: value for name, value in fields.items() if name in REQUEST_FIELDS}
    fields.update(
        status=Status(fields["status"]),
        policy=Policy(**fields["policy"]),
        outcome=Outcome(**fields["outcome"]),
        script=tuple(tuple(line) for line in fields["script"]),
    )
    return Request(**fields)


UNREADABLE = (ValueError, TypeError, KeyError, RecursionError)
