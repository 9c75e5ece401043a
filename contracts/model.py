"""The lifecycle machine's model: what it knows about each request it submitted, and how a broken rule is raised.

tracked = Tracked(request_id, endpoint, arguments)   # IN_QUEUE until observed otherwise
raise Broken("status_never_backwards", "went back from COMPLETED to IN_PROGRESS", "GET …/status", "HTTP 202 …")
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from fal_emulator.catalog import Endpoint
from fal_emulator.contracts.profiles import Profile
from fal_emulator.contracts.spend import Budget
from fal_emulator.contracts.target import Target


class Broken(AssertionError):
    """An answer broke `rule`; `request` is the request line and `response` what came back."""

    def __init__(self, rule: str, message: str, request: str = "", response: str = "") -> None:
        super().__init__(f"[{rule}] {message}")
        self.rule, self.message, self.request, self.response = rule, message, request, response


@dataclass
class Tracked:
    """What the model knows about one submitted request. `epoch` is the clock epoch of the last observation."""

    request_id: str
    endpoint: Endpoint
    arguments: dict[str, Any]
    status: str = "IN_QUEUE"
    position: int | None = None
    epoch: int = -1
    cancelled_while_queued: bool = False
    result_checked: bool = False

    @property
    def app_path(self) -> str:
        return f"{self.endpoint.app_id}/requests/{self.request_id}"


@dataclass
class MachineContext:
    """Everything the machine needs, shared by all its runs. `frozen`: the target's clock moves only when the
    machine advances it. `budget`: None for an emulator (free); a Budget for a remote target."""

    target: Target
    endpoints: list[Endpoint]
    client: httpx.Client
    profile: Profile
    frozen: bool = False
    budget: Budget | None = None
    requests_made: int = 0
    epoch: int = 0
    current_endpoint: str = ""  # the endpoint id the running rule is about, for the report
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # breaks of inferred rules against a non-emulator target
    outputs: list[tuple[Endpoint, dict[str, Any], dict[str, Any]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.target.base_url}/{path.lstrip('/')}"

    def stream_deadline(self) -> float:
        profile = self.profile
        return profile.stream_deadline if self.target.is_emulator else profile.remote_stream_deadline


def answer_of(response: httpx.Response) -> tuple[str, Any]:
    """(`METHOD url`, parsed JSON body or the text)."""
    line = f"{response.request.method} {response.request.url}"
    try:
        return line, response.json()
    except ValueError:
        return line, response.text[:300]


def show(response: httpx.Response, body: Any) -> str:
    return f"HTTP {response.status_code} {json.dumps(body)[:400] if not isinstance(body, str) else body}"
