"""The media contract and the synchronous host: what a generated video must be, whoever serves it.

For each endpoint the suite asks the run host (`fal.run`; `{base}/run` on an emulator) for a few valid
inputs, then checks the answer and the video it points to:

- `run_answers_output`: 200 with the endpoint's output schema and `x-fal-request-id`;
- `media_download` / `file_size_matches`: `video.url` downloads whole, its length is `file_size`;
- `media_range`: `Range: bytes=100-199` gives 206 with that slice, a range past the end gives 416;
- `media_h264`, `media_dimensions`, `media_duration`, `media_audio`: PyAV opens it as an MP4 whose video is
  H.264 of the requested width x height, lasting the requested seconds, with audio exactly when asked.

It also sends an input without its required `prompt` (`run_rejects_invalid_input`: 422 in fal's shape),
which generates nothing and so runs against real fal by default. Generating checks run there only within
the budget (`fal_emulator.contracts.spend`).
"""

from __future__ import annotations

import io
import time
from typing import Any

import av
import httpx
from jsonschema import Draft7Validator

from fal_emulator.catalog import Endpoint
from fal_emulator.contracts import rules
from fal_emulator.contracts.documents import (
    cheapest_input,
    example_input,
    expected_video,
    invalid_input,
    required_input,
)
from fal_emulator.contracts.profiles import Profile
from fal_emulator.contracts.report import SuiteResult, Violation
from fal_emulator.contracts.spend import Budget
from fal_emulator.contracts.target import Target

SUITE = "media"
DURATION_TOLERANCE = 0.25  # seconds (one frame at 24 fps is 0.042 s; containers round)
RANGE = (100, 199)  # the byte range the suite asks for, inclusive


def media_inputs(endpoint: Endpoint, count: int) -> list[dict[str, Any]]:
    """Up to `count` distinct valid inputs: the cheapest, the document's example, then inputs that step
    through the endpoint's resolutions, aspect ratios, durations and audio together."""
    candidates = [cheapest_input(endpoint), example_input(endpoint)]
    choices = {name: endpoint.enum(name) for name in ("resolution", "aspect_ratio", "duration")}
    for index in range(count):
        varied = required_input(endpoint)
        for name, values in choices.items():
            if values:
                varied[name] = values[(index + 1) % len(values)]
        if "generate_audio" in endpoint.properties:
            varied["generate_audio"] = index % 2 == 0
        candidates.append(varied)
    distinct: list[dict[str, Any]] = []
    for candidate in candidates:
        if candidate not in distinct:
            distinct.append(candidate)
    return distinct[:count]


def check_video(client: httpx.Client, endpoint: Endpoint, arguments: dict[str, Any], output: Any) -> list[Violation]:
    """Download and inspect the video of one output. Returns one Violation per broken rule."""
    video = output.get("video") if isinstance(output, dict) else None
    if not isinstance(video, dict) or not isinstance(video.get("url"), str):
        return [_violation("run_answers_output", endpoint, "the output has no video.url", "", repr(output)[:300])]
    url, declared = video["url"], video.get("file_size")
    line = f"GET {url}"
    whole = client.get(url)
    if whole.status_code != 200:
        return [_violation("media_download", endpoint, f"the video answered {whole.status_code}", line)]
    found: list[Violation] = []
    data = whole.content
    length = whole.headers.get("content-length")
    if length is not None and int(length) != len(data):
        found.append(_violation("media_download", endpoint, f"Content-Length {length} but {len(data)} bytes", line))
    if declared != len(data):
        found.append(
            _violation("file_size_matches", endpoint, f"file_size is {declared!r}, {len(data)} bytes served", line)
        )
    found += _check_ranges(client, endpoint, url, data)
    found += check_container(endpoint, arguments, data, line)
    return found


def _check_ranges(client: httpx.Client, endpoint: Endpoint, url: str, data: bytes) -> list[Violation]:
    first, last = RANGE
    line = f"GET {url} (Range: bytes={first}-{last})"
    partial = client.get(url, headers={"Range": f"bytes={first}-{last}"})
    expected_range = f"bytes {first}-{last}/{len(data)}"
    if partial.status_code != 206:
        return [_violation("media_range", endpoint, f"a Range request answered {partial.status_code}, not 206", line)]
    if partial.content != data[first : last + 1] or partial.headers.get("content-range") != expected_range:
        message = (
            f"206 must carry bytes {first}-{last} and Content-Range {expected_range!r}, got "
            f"{len(partial.content)} bytes and {partial.headers.get('content-range')!r}"
        )
        return [_violation("media_range", endpoint, message, line)]
    past = client.get(url, headers={"Range": f"bytes={len(data) + 10}-"})
    if past.status_code != 416:
        message = f"a range past the end answered {past.status_code}, not 416"
        return [_violation("media_range", endpoint, message, f"GET {url} (Range: bytes={len(data) + 10}-)")]
    return []


def check_container(endpoint: Endpoint, arguments: dict[str, Any], data: bytes, line: str) -> list[Violation]:
    """The media rules on one video's bytes (PyAV): H.264 in MP4, the size, duration and audio `arguments` ask for."""
    expected = expected_video(endpoint, arguments)
    found: list[Violation] = []
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if "mp4" not in container.format.name or not container.streams.video:
                return [_violation("media_h264", endpoint, f"not an MP4 with video: {container.format.name}", line)]
            stream = container.streams.video[0]
            codec, size = stream.codec_context.name, (stream.codec_context.width, stream.codec_context.height)
            seconds = (container.duration or 0) / 1_000_000
            audio = len(container.streams.audio) > 0
    except av.error.FFmpegError as exc:
        return [_violation("media_h264", endpoint, f"PyAV cannot open the video: {exc}", line)]
    asked = _asked(arguments)
    if codec != "h264":
        found.append(_violation("media_h264", endpoint, f"the video is {codec}, not H.264", line))
    if size not in expected.sizes:
        wanted = " or ".join(f"{w}x{h}" for w, h in sorted(expected.sizes))
        found.append(_violation("media_dimensions", endpoint, f"{size[0]}x{size[1]} for {asked}; want {wanted}", line))
    if abs(seconds - expected.seconds) > DURATION_TOLERANCE:
        found.append(
            _violation("media_duration", endpoint, f"{seconds:.2f} s for {asked}; want {expected.seconds} s", line)
        )
    if audio != expected.audio:
        state = "has" if audio else "lacks"
        found.append(_violation("media_audio", endpoint, f"the video {state} an audio track for {asked}", line))
    return found


def _asked(arguments: dict[str, Any]) -> str:
    keys = ("resolution", "aspect_ratio", "duration", "generate_audio")
    return "{" + ", ".join(f"{key}={arguments[key]!r}" for key in keys if key in arguments) + "}"


def _violation(rule: str, endpoint: Endpoint, message: str, request: str, response: str = "") -> Violation:
    return Violation(rule, message, SUITE, endpoint=endpoint.endpoint_id, request=request, response=response)


def run_media_suite(
    endpoints: list[Endpoint], target: Target, profile: Profile, *, budget: Budget | None = None
) -> SuiteResult:
    """Check the run host and the media of `endpoints` against `target`.

    `budget` None: the target is an emulator, every endpoint gets `profile`-many inputs. Otherwise only what
    the budget affords is generated (the cheapest input, endpoint by endpoint).
    """
    result = SuiteResult(SUITE)
    started = time.monotonic()
    per_endpoint = {"ci": 2, "default": 3}.get(profile.name, 6)
    timeout = profile.request_timeout if target.is_emulator else profile.remote_stream_deadline
    with target.client(timeout=timeout) as client:
        for endpoint in endpoints:
            result.violations += _check_rejection(client, target, endpoint)
            result.cases += 1
            inputs = media_inputs(endpoint, per_endpoint) if budget is None else [cheapest_input(endpoint)]
            for arguments in inputs:
                if budget is not None:
                    if not budget.can_afford(endpoint, arguments):
                        result.skipped.append(f"{endpoint.endpoint_id}: not generated (beyond the budget)")
                        continue
                    budget.charge(endpoint, arguments)
                response = client.post(f"{target.run_base_url}/{endpoint.endpoint_id}", json=arguments)
                result.cases += 4
                found = _check_run_answer(endpoint, response)
                if not found:
                    found = check_video(client, endpoint, arguments, response.json())
                result.violations += found
    result.seconds = time.monotonic() - started
    return result


def _check_run_answer(endpoint: Endpoint, response: httpx.Response) -> list[Violation]:
    line = f"POST {response.request.url}"
    shown = f"HTTP {response.status_code} {response.text[:300]}"
    problem = rules.request_id_header(response.headers)
    if problem:
        return [_violation("x_fal_request_id", endpoint, problem, line, shown)]
    if response.status_code != 200:
        return [
            _violation("run_answers_output", endpoint, f"a valid input answered {response.status_code}", line, shown)
        ]
    try:
        body = response.json()
    except ValueError:
        return [_violation("run_answers_output", endpoint, "the answer is not JSON", line, shown)]
    errors = sorted(Draft7Validator(endpoint.output_schema).iter_errors(body), key=str)
    if errors:
        return [
            _violation("run_answers_output", endpoint, f"not the endpoint's output: {errors[0].message}", line, shown)
        ]
    return []


def _check_rejection(client: httpx.Client, target: Target, endpoint: Endpoint) -> list[Violation]:
    response = client.post(f"{target.run_base_url}/{endpoint.endpoint_id}", json=invalid_input(endpoint))
    line = f"POST {response.request.url} (without prompt)"
    shown = f"HTTP {response.status_code} {response.text[:300]}"
    problem = rules.request_id_header(response.headers)
    if problem:
        return [_violation("x_fal_request_id", endpoint, problem, line, shown)]
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    if response.status_code != 422:
        return [
            _violation("run_rejects_invalid_input", endpoint, f"answered {response.status_code}, not 422", line, shown)
        ]
    problem = rules.error_shape(422, body)
    return [_violation("fal_error_shape", endpoint, problem, line, shown)] if problem else []
