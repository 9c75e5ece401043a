"""Replaying a cassette (`fal-emulator serve --replay FILE`): each recorded request becomes a `Recording`, and a
submit that matches one plays it back.

    replay = Replay.load(Path("veo.har"), match="input")
    played = replay.play("fal-ai/veo3.1/fast", arguments, base_url)   # a Playback, or None (no recording matches)
    replay.miss("fal-ai/veo3.1/fast", arguments)                       # the 404 text naming the nearest recording

A submit matches a recording of the same endpoint id whose input has the same canonical digest (SHA-256 of the
JSON with sorted keys); with `match="endpoint"`, any recording of that endpoint id when no input matches. Several
recordings of one key play in recorded order, then again from the first, so a replay is deterministic.

A `Playback` is what the queue needs: the recorded outcome (the output, with media URLs pointing at this server's
`/files/recorded/…`, or the stored error with its headers), a `timed` policy with the recorded queue and run
seconds (on the virtual clock, so `--time-scale` speeds it up), the recorded log lines at their recorded moments
in the run, and the recorded `metrics`. A recorded submit rejection (4xx/5xx) is played as that answer.

Timings come from what the recording observed, in seconds since the submit: the run starts when a poll or stream
event first saw IN_PROGRESS (or `COMPLETED` minus `metrics.inference_time`), lasts `inference_time` (or until
COMPLETED was first seen), and a log line appears at its `timestamp` (or when it was first seen). This module
imports no HTTP code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from fal_emulator.cassette import load_cassette
from fal_emulator.errors import FalError
from fal_emulator.queue import Outcome, Policy

MATCHES = ("input", "endpoint")
JSON = dict[str, Any]
KEPT_HEADERS = ("x-fal-",)  # the recorded answer headers a replay gives (not the request id: each request has its own)
MEDIA_PATH = "/files/recorded"
# Result answers that are not the request's outcome: not ready, credentials, unknown id, and transient gateway answers.
NOT_AN_OUTCOME = frozenset({400, 401, 403, 404, 405, 408, 409, 429})


def input_digest(arguments: Any) -> str:
    """The canonical digest of a submit's input: SHA-256 of its JSON with sorted keys and no spaces."""
    text = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Playback:
    """One replayed request: raise `rejection` at submit if set, else enqueue with the rest."""

    outcome: Outcome
    policy: Policy
    script: tuple[tuple[float, str, str, str], ...]
    metrics: JSON | None
    rejection: FalError | None = None


@dataclass
class Recording:
    """A recorded request: its endpoint, input and what fal answered, with the timings observed."""

    index: int
    endpoint_id: str
    arguments: Any
    rejection: tuple[int, Any, dict[str, str]] | None = None
    outcome: tuple[int, Any, dict[str, str]] | None = None
    queue_seconds: float = 0.0
    run_seconds: float = 0.0
    metrics: JSON | None = None
    logs: list[tuple[float, str, str, str]] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return input_digest(self.arguments)

    @property
    def label(self) -> str:
        return f"#{self.index} {self.endpoint_id} (input sha256 {self.digest[:12]})"


class Replay:
    """The recordings of one cassette, and which one each submit gets."""

    def __init__(self, recordings: list[Recording], media: Mapping[str, tuple[Path, str]], *, match: str) -> None:
        if match not in MATCHES:
            raise ValueError(f"unknown replay match {match!r}: use {' or '.join(MATCHES)}")
        self.recordings = recordings
        self.match = match
        self.media = dict(media)  # sha256 -> (file, content type)
        self._urls: dict[str, str] = {}  # recorded media URL -> sha256
        self._cursors: dict[tuple[str, ...], int] = {}

    @classmethod
    def load(cls, path: Path, *, match: str = "input") -> Replay:
        """Read the cassette at `path`. Raises CassetteError (fal_emulator.cassette) and ValueError."""
        document = load_cassette(path)
        log = document["log"]
        media = {item["sha256"]: (path.parent / item["file"], item["content_type"]) for item in log["_fal"]["media"]}
        replay = cls(list(recordings_of(log["entries"])), media, match=match)
        replay._urls = {item["url"]: item["sha256"] for item in log["_fal"]["media"]}
        return replay

    def rewind(self) -> None:
        """Start every key's recordings from the first again (the emulator's reset)."""
        self._cursors.clear()

    def _pick(self, key: tuple[str, ...], candidates: list[Recording]) -> Recording | None:
        if not candidates:
            return None
        cursor = self._cursors.get(key, 0)
        self._cursors[key] = cursor + 1
        return candidates[cursor % len(candidates)]

    def find(self, endpoint_id: str, arguments: Any) -> Recording | None:
        """The recording a submit of `arguments` to `endpoint_id` plays (advancing that key's cursor), or None."""
        digest = input_digest(arguments)
        exact = [r for r in self.recordings if r.endpoint_id == endpoint_id and r.digest == digest]
        found = self._pick(("input", endpoint_id, digest), exact)
        if found is None and self.match == "endpoint":
            found = self._pick(("endpoint", endpoint_id), [r for r in self.recordings if r.endpoint_id == endpoint_id])
        return found

    def play(self, endpoint_id: str, arguments: Any, base_url: str) -> Playback | None:
        """The playback of the matching recording (media URLs under `base_url`), or None when none matches."""
        recording = self.find(endpoint_id, arguments)
        if recording is None:
            return None
        if recording.rejection is not None:
            status, body, headers = recording.rejection
            body = body if isinstance(body, dict) else {"detail": body}
            rejection = FalError(body, status_code=status, headers=headers)
            return Playback(Outcome(status, body, headers), Policy("immediate"), (), None, rejection)
        assert recording.outcome is not None
        status, body, headers = recording.outcome
        outcome = Outcome(status, self._media_urls(body, base_url), headers)
        policy = Policy("timed", queue_seconds=recording.queue_seconds, run_seconds=recording.run_seconds)
        return Playback(outcome, policy, tuple(recording.logs), recording.metrics)

    def miss(self, endpoint_id: str, arguments: Any) -> str:
        """Why a submit matched nothing, naming the nearest recording (for `--replay-strict`'s 404)."""
        digest = input_digest(arguments)
        head = f"No recorded request matches {endpoint_id} with input sha256 {digest[:12]} (--replay-strict)"
        if not self.recordings:
            return f"{head}; the cassette holds no replayable request."

        def distance(recording: Recording) -> tuple[int, int]:
            return (recording.endpoint_id != endpoint_id, len(_differing(recording.arguments, arguments)))

        nearest = min(self.recordings, key=distance)
        differing = ", ".join(sorted(_differing(nearest.arguments, arguments))) or "nothing"
        hint = "" if self.match == "endpoint" else "; --replay-match endpoint would match by endpoint id alone"
        return f"{head}; the nearest recorded request is {nearest.label}, whose input differs in: {differing}{hint}."

    def media_file(self, digest: str) -> tuple[Path, str] | None:
        """(file, content type) of the recorded media with SHA-256 `digest`, or None."""
        return self.media.get(digest)

    def _media_urls(self, body: Any, base_url: str) -> Any:
        if isinstance(body, dict):
            return {key: self._media_urls(value, base_url) for key, value in body.items()}
        if isinstance(body, list):
            return [self._media_urls(value, base_url) for value in body]
        if isinstance(body, str) and body in self._urls:
            name = PurePosixPath(body.split("?", 1)[0]).name or "media"
            return f"{base_url.rstrip('/')}{MEDIA_PATH}/{self._urls[body]}/{name}"
        return body


def _differing(left: Any, right: Any) -> set[str]:
    if not isinstance(left, dict) or not isinstance(right, dict):
        return set() if left == right else {"(the whole input)"}
    return {key for key in set(left) | set(right) if left.get(key) != right.get(key)}


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _kept_headers(har_headers: list[JSON]) -> dict[str, str]:
    """fal's own answer headers, named as fal documents them (`X-Fal-Error-Type`; HTTP/2 and uvicorn send them
    in lowercase)."""
    return {
        "-".join(part.capitalize() for part in h["name"].split("-")): h["value"]
        for h in har_headers
        if h["name"].lower().startswith(KEPT_HEADERS) and h["name"].lower() != "x-fal-request-id"
    }


def _epoch(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def recordings_of(entries: list[JSON]) -> Iterator[Recording]:
    """The replayable requests of a cassette's entries, in recorded order: submits with their outcome (a submit
    rejection, or a result), and synchronous runs. A request whose result was never fetched is left out."""
    by_request: dict[str, list[JSON]] = {}
    for har_entry in entries:
        request_id = har_entry["_fal"].get("request_id")
        if request_id and har_entry["_fal"]["kind"] != "submit":
            by_request.setdefault(request_id, []).append(har_entry)
    index = 0
    for har_entry in entries:
        fal, response = har_entry["_fal"], har_entry["response"]
        if fal["kind"] not in {"submit", "run"} or "endpoint_id" not in fal:
            continue
        arguments = _json(har_entry["request"].get("postData", {}).get("text"))
        body = _json(response["content"].get("text"))
        recording = Recording(index + 1, fal["endpoint_id"], arguments)
        if fal["kind"] == "run":
            if not isinstance(body, dict):
                continue
            recording.outcome = (response["status"], body, _kept_headers(response["headers"]))
            recording.run_seconds = har_entry["time"] / 1000
        elif response["status"] != 200:
            recording.rejection = (response["status"], body, _kept_headers(response["headers"]))
        elif not _observe(recording, har_entry, by_request.get(str(fal.get("request_id")), [])):
            continue
        index += 1
        recording.index = index
        yield recording


def _observe(recording: Recording, submit: JSON, later: list[JSON]) -> bool:
    """Fill in the outcome, timings, logs and metrics from the exchanges after `submit`; False if no result."""
    observed: list[tuple[float, JSON]] = []  # (offset, status object)
    for har_entry in later:
        fal, response = har_entry["_fal"], har_entry["response"]
        offset = float(fal.get("offset", 0.0))
        body = _json(response["content"].get("text"))
        if fal["kind"] == "status" and isinstance(body, dict) and "status" in body:
            observed.append((offset, body))
        elif fal["kind"] == "stream":
            lines: list[Any] = []  # each event carries the lines new since the one before (fal's SSE deltas)
            for event in fal.get("events", []):
                data = _json(event["data"])
                if isinstance(data, dict) and "status" in data:
                    if isinstance(data.get("logs"), list):
                        lines = [*lines, *data["logs"]]
                        data = {**data, "logs": lines}
                    observed.append((float(event["offset"]), data))
        elif fal["kind"] == "result" and isinstance(body, dict) and response["status"] not in NOT_AN_OUTCOME:
            if recording.outcome is None:
                recording.outcome = (response["status"], body, _kept_headers(response["headers"]))
            observed.append((offset, {"status": "COMPLETED"}))
    if recording.outcome is None:
        return False
    observed.sort(key=lambda item: item[0])

    def first(status: str) -> float | None:
        return next((offset for offset, body in observed if body.get("status") == status), None)

    started, done = first("IN_PROGRESS"), first("COMPLETED")
    queued_until = max([0.0, *(offset for offset, body in observed if body.get("status") == "IN_QUEUE")])
    completed = [body for _, body in observed if body.get("status") == "COMPLETED" and "metrics" in body]
    metrics = completed[0]["metrics"] if completed and isinstance(completed[0]["metrics"], dict) else None
    inference = metrics.get("inference_time") if metrics else None
    done = done if done is not None else queued_until
    if isinstance(inference, (int, float)) and not isinstance(inference, bool):
        run = float(inference)
        queue = max(queued_until, min(started if started is not None else done, done - run))
    else:
        queue = started if started is not None else done
        run = max(done - queue, 0.0)
    recording.queue_seconds, recording.run_seconds, recording.metrics = max(queue, 0.0), max(run, 0.0), metrics
    recording.logs = _log_script(observed, _epoch(submit["startedDateTime"]), recording.queue_seconds, run)
    return True


def _log_script(
    observed: list[tuple[float, JSON]], submitted_at: float | None, queue: float, run: float
) -> list[tuple[float, str, str, str]]:
    """The longest log list observed, each line at its fraction of the run: from its timestamp when the
    timestamps fit the recording (same clock), else from when it was first seen."""
    lists = [(offset, body["logs"]) for offset, body in observed if isinstance(body.get("logs"), list)]
    if not lists:
        return []
    lines = max((logs for _, logs in lists), key=len)
    seen = [next((offset for offset, logs in lists if len(logs) > i), queue + run) for i in range(len(lines))]
    stamps = [_epoch(line.get("timestamp")) if isinstance(line, dict) else None for line in lines]
    end = max(offset for offset, _ in observed) + 5.0
    if submitted_at is not None and all(s is not None and -1.0 <= s - submitted_at <= end for s in stamps):
        offsets = [float(s) - submitted_at for s in stamps if s is not None]
    else:
        offsets = seen
    script = []
    fraction = 0.0
    for line, offset in zip(lines, offsets, strict=True):
        if not isinstance(line, dict):
            continue
        # never earlier than the line before: the queue reveals a script in order
        fraction = max(fraction, min(max((offset - queue) / run, 0.0), 1.0) if run > 0 else 1.0)
        script.append((fraction, str(line.get("message", "")), str(line.get("level", "INFO")),
                       str(line.get("source", "USER"))))  # fmt: skip
    return script
