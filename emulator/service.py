"""The emulator's use cases, with no HTTP in them: submit, status, result, cancel, run.

`Emulator` joins the catalogue (what endpoints exist), validation (is the input acceptable), the clip
choice (which MP4 answers it) and the queue (when it completes). The HTTP layer parses a request,
calls one method here and renders what comes back.
"""

from __future__ import annotations

import random
from collections import OrderedDict, deque
from dataclasses import replace
from typing import Any

from fal_emulator.billing import load_price_list, units_headers
from fal_emulator.catalog import Catalog, Endpoint, app_id_of
from fal_emulator.clock import VirtualClock
from fal_emulator.errors import ConnectionDrop, FalError, NotFound, RequestError, RequestNotFound
from fal_emulator.failures import FAILURES
from fal_emulator.ids import IdSource
from fal_emulator.inputs import check_input_images
from fal_emulator.journal import Journal, redact_url
from fal_emulator.media import MediaLibrary
from fal_emulator.queue import Outcome, Policy, Queue, StatusView, Store
from fal_emulator.render.limits import check_input_video
from fal_emulator.render.renderer import Renderer
from fal_emulator.replay import Playback, Replay
from fal_emulator.scenarios import (
    GATEWAY_REJECTIONS,
    ROUTES,
    Scenario,
    ScenarioError,
    for_route,
    parse_scenario,
    queue_full,
    rejection_error,
    scenario_in_prompt,
)
from fal_emulator.settings import Settings
from fal_emulator.store import MemoryStore
from fal_emulator.submission import (
    Submission,
    SubmitOptions,
    make_store,
    refusal_policy,
    retry_script,
    run_script,
)
from fal_emulator.uploads import Uploads
from fal_emulator.validation import InputValidator, parse_json_body
from fal_emulator.video import SHORT_SIDE, ClipSpec, clip_for

ANY_ENDPOINT = "*"
RESOLUTION_OF_SHORT_SIDE = {pixels: name for name, pixels in SHORT_SIDE.items()}  # 720 -> "720p"
OUTPUT_CACHE_SIZE = 256  # (clip, base URL) pairs


class Emulator:
    """All state of one emulator instance; `reset()` forgets every request."""

    def __init__(self, settings: Settings, *, catalog: Catalog, store: Store | None = None) -> None:
        self.settings = settings
        self.catalog = catalog
        self.clock = VirtualClock(scale=settings.time_scale)
        self.ids = IdSource(settings.seed)
        # Ids for answers that belong to no request (401, 404, 422 at submit): a separate stream, so
        # they never shift the request ids a seed gives.
        self.answer_ids = IdSource(None if settings.seed is None else settings.seed + 1)
        self.random = random.Random(settings.seed)  # latency draws and other seeded faults
        self.store: Store = store or make_store(settings)
        self.queue = Queue(
            self.store, self.clock, self.ids, settings.progression,
            concurrency=settings.concurrency, retention=settings.result_retention,
        )  # fmt: skip
        self.media = MediaLibrary(settings.fixtures_dir)
        self.journal = Journal(self.clock)
        self.uploads = Uploads(settings.state_dir / "uploads", self.answer_ids)
        # Output MP4s rendered from the input image; the queue holds a request IN_PROGRESS until its file exists.
        self.renders = Renderer(
            settings, catalog=catalog, media=self.media, reader=self.uploads.read_url, clock=self.clock,
            inputs=self.runner_values,
        )  # fmt: skip
        self.queue.finish_gate = self.renders.finish_gate
        self.outcomes: dict[str, deque[Scenario]] = {}  # endpoint id (or "*") -> scripted scenarios, FIFO
        # (route, endpoint id | "*" | request id) -> what the next calls to that route meet, FIFO (not submit)
        self.route_outcomes: dict[tuple[str, str], deque[Scenario]] = {}
        self.policies: dict[str, Policy] = {}  # endpoint id -> progression policy
        self._validators = {
            endpoint.endpoint_id: InputValidator(endpoint.input_schema, endpoint.input_schema.get("title"))
            for endpoint in catalog
        }
        # (clip file, base URL) -> output; the base URL follows the client's Host: bounded, least recent out first
        self._output_cache: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self.prices = load_price_list()
        # a cassette to play back (`--replay`); raises CassetteError for an unreadable one
        self.replay = Replay.load(settings.replay, match=settings.replay_match) if settings.replay else None

    def reset(self, seed: int | None = None) -> None:
        """Forget every request, scripted outcome, policy override and journal entry; put back the default
        policy, the concurrency limit and the clock's scale (unfrozen); reseed if asked."""
        self.store.reset()
        self.journal.clear()
        self._output_cache.clear()
        self.uploads.reset()
        self.renders.reset()
        self.outcomes.clear()
        self.route_outcomes.clear()
        self.policies.clear()
        self.queue.policy = self.settings.progression
        self.queue.concurrency = self.settings.concurrency
        self.clock.unfreeze()
        self.clock.set_scale(self.settings.time_scale)
        self.reseed(self.settings.seed if seed is None else seed)
        if self.replay is not None:
            self.replay.rewind()

    def reseed(self, seed: int | None) -> None:
        self.ids.reseed(seed)
        self.answer_ids.reseed(None if seed is None else seed + 1)
        self.random.seed(seed)

    def endpoint(self, endpoint_id: str) -> Endpoint:
        """The endpoint named `endpoint_id`. Raises NotFound (404) for an id not in `openapi/`."""
        endpoint = self.catalog.get(endpoint_id)
        if endpoint is None:
            raise NotFound(f"Endpoint '{endpoint_id}' not found")
        return endpoint

    def script_outcomes(self, endpoint_id: str, tokens: list[str]) -> int:
        """Queue scenarios for the next submits to `endpoint_id` ("*": any endpoint); returns the queue length.

        Raises NotFound for an unknown endpoint and ScenarioError for a bad token.
        """
        if endpoint_id != ANY_ENDPOINT:
            endpoint_id = self.endpoint(endpoint_id).endpoint_id
        scripted = [parse_scenario(token) for token in tokens]
        queue = self.outcomes.setdefault(endpoint_id, deque())
        queue.extend(scripted)
        return len(queue)

    def script_route(
        self, route: str, tokens: list[str], *, endpoint_id: str = ANY_ENDPOINT, request_id: str | None = None
    ) -> int:
        """Queue what the next calls to `route` (`status`, `stream`, `result`, `cancel`; `submit`: see
        `script_outcomes`) meet, one scenario per call: for calls about `request_id`, else about requests
        submitted to `endpoint_id` (`"*"`: any). Returns that queue's length.

        Raises ScenarioError (a bad token or route, or a token that cannot meet that route), NotFound (an
        unknown endpoint) and RequestNotFound (an unknown request id).
        """
        if route == "submit":
            if request_id is not None:
                raise ScenarioError("a submit has no request id yet: script submits by endpoint_id")
            return self.script_outcomes(endpoint_id, tokens)
        scripted = [for_route(parse_scenario(token), route, token) for token in tokens]
        if request_id is not None:
            if self.store.get(request_id) is None:
                raise RequestNotFound(request_id)
            selector = request_id
        else:
            selector = endpoint_id if endpoint_id == ANY_ENDPOINT else self.endpoint(endpoint_id).endpoint_id
        if scripted:  # an empty script leaves no empty queue behind
            self.route_outcomes.setdefault((route, selector), deque()).extend(scripted)
        return len(self.route_outcomes.get((route, selector), ()))

    def scripted_counts(self) -> dict[str, int]:
        """Scripted scenarios waiting: `{endpoint id or "*": n}` for submits, `{"route:selector": n}` for the
        other routes (selector: an endpoint id, `"*"` or a request id)."""
        counts = {key: len(queue) for key, queue in self.outcomes.items() if queue}
        counts.update({f"{route}:{key}": len(queue) for (route, key), queue in self.route_outcomes.items() if queue})
        return counts

    def call_scenario(self, route: str, request_id: str, header: str | None) -> Scenario:
        """What one call to `route` about `request_id` meets: the `X-Fal-Emulator-Scenario` header's rejection
        (its latency and drop are the HTTP layer's; its error types and policies describe a request and act only
        at submit), else the next scripted scenario for that request, its endpoint or any endpoint. Raises
        ScenarioError for a bad header or route."""
        if route not in ROUTES or route == "submit":
            raise ScenarioError(f"unknown route {route!r}")
        if header:
            rejection = parse_scenario(header).rejection
            return Scenario(rejection=rejection if rejection in GATEWAY_REJECTIONS else None)
        found = self.store.get(request_id) if self.route_outcomes else None
        for selector in (request_id, found.endpoint_id if found else None, ANY_ENDPOINT):
            key = (route, selector or "")
            queue = self.route_outcomes.get(key) if selector else None
            if queue:
                scenario = queue.popleft()
                if not queue:  # an emptied script is forgotten: no entry per request id lingers until reset
                    del self.route_outcomes[key]
                return scenario
        return Scenario()

    def _scenario(self, endpoint: Endpoint, options: SubmitOptions) -> Scenario:
        if options.scenario:
            return parse_scenario(options.scenario)
        for key in (endpoint.endpoint_id, ANY_ENDPOINT):
            if self.outcomes.get(key):
                return self.outcomes[key].popleft()
        return Scenario()

    def _outcome(
        self, endpoint: Endpoint, arguments: dict[str, Any], image: tuple[int, int] | None, base_url: str,
        scenario: Scenario,
    ) -> tuple[Outcome, ClipSpec]:  # fmt: skip
        spec = clip_for(endpoint, arguments, image)
        if scenario.failure is not None:
            return Outcome.failure(scenario.failure.error()), spec
        faults = sorted(scenario.faults & {"truncate", "slow"})
        job = self.renders.plan(endpoint, arguments)
        if job is not None:  # rendered from the user's input while the request runs (Renderer.finish_gate)
            return self._billed(
                endpoint, job.spec, {"video": self.renders.pending_file(job, base_url, faults)}
            ), job.spec
        try:
            clip = self.media.clip(spec)
        except LookupError as exc:
            return Outcome.failure(RequestError("internal_error", str(exc), 500)), spec
        if faults:
            video = dict(self.media.file_object(clip, base_url))
            video["url"] += "?fault=" + ",".join(faults)
            return self._billed(endpoint, spec, {"video": video}), spec
        return self._billed(endpoint, spec, self._outputs(clip.path.name, base_url)), spec

    def _billed(self, endpoint: Endpoint, spec: ClipSpec, output: dict[str, Any]) -> Outcome:
        """The success outcome of `output`, with its `x-fal-billable-units` (see fal_emulator.billing)."""
        tier = RESOLUTION_OF_SHORT_SIDE.get(min(spec.width, spec.height), "")
        units = self.prices.units(endpoint.endpoint_id, resolution=tier, audio=spec.audio, seconds=spec.duration)
        return Outcome(200, output, units_headers(units))

    def _outputs(self, file_name: str, base_url: str) -> dict[str, Any]:
        """The output for a clip served under `base_url`: one shared, never-mutated dict per pair."""
        key = (file_name, base_url)
        output = self._output_cache.get(key)
        if output is None:
            clip = self.media.by_name(file_name)
            assert clip is not None
            output = self._output_cache[key] = {"video": self.media.file_object(clip, base_url)}
            if len(self._output_cache) > OUTPUT_CACHE_SIZE:
                self._output_cache.popitem(last=False)
        else:
            self._output_cache.move_to_end(key)
        return output

    @property
    def cached_outputs(self) -> int:
        """How many (clip, base URL) outputs are cached: at most OUTPUT_CACHE_SIZE, 0 after `reset()`."""
        return len(self._output_cache)

    def submit(self, endpoint_id: str, body: bytes, base_url: str, options: SubmitOptions | None = None) -> Submission:
        """Enqueue a request; returns its submit-time state and how long to delay the answer.

        As on fal, any JSON body is accepted: an input the runner refuses completes (after a short run) with
        the runner's 422. With `validate_at="submit"` that 422 is raised here instead.

        Raises NotFound (unknown endpoint), RequestValidationError (422: a body that is not JSON; any bad input
        with `validate_at="submit"`), ModelError (422: an unusable input image, with `validate_at="submit"`),
        ScenarioError (bad scenario),
        FalError (a scenario's 401/403/429, or 429 when `max_queue_length` requests already wait),
        GatewayError (an ingress scenario) and ConnectionDrop (a `drop` scenario: nothing is enqueued).
        """
        options = options or SubmitOptions()
        endpoint = self.endpoint(endpoint_id)
        scenario = self._scenario(endpoint, options)
        arguments = parse_json_body(body)
        if scenario.plain and self.settings.prompt_scenarios and isinstance(arguments, dict):
            tokens = scenario_in_prompt(arguments.get("prompt"))
            scenario = parse_scenario(tokens) if tokens else scenario
        delay = 0.0
        if not options.scenario:  # the header's latency and drop are applied by the HTTP layer, to any route
            if "drop" in scenario.faults:
                raise ConnectionDrop()
            if scenario.latency is not None:
                delay = scenario.latency.sample(self.random)
        if self.replay is not None and scenario.plain:
            played = self.replay.play(endpoint.endpoint_id, arguments, self.settings.public_url or base_url)
            if played is not None:
                return Submission(self._enqueue_played(endpoint, arguments, played, options), delay)
            if self.settings.replay_strict:
                raise NotFound(self.replay.miss(endpoint.endpoint_id, arguments))
        if scenario.rejection:
            raise rejection_error(scenario.rejection)
        if options.max_queue_length is not None and self.queue.queued_count(endpoint.app_id) > options.max_queue_length:
            raise queue_full(options.max_queue_length)
        attempts, last_fails = scenario.attempts(no_retry=options.no_retry)
        policy = scenario.policy or self.policies.get(endpoint.endpoint_id)
        script: tuple[tuple[float, str], ...] = ()  # no model log lines for an input the runner refuses
        try:
            values, image = self.runner_input(endpoint, arguments)
        except FalError as refused:  # FastAPI's 422, or a model error for an input image
            if self.settings.validate_at == "submit":
                raise
            outcome, units, attempts = Outcome.failure(refused), 0.0, 1  # the first runner answers it: no retry
            policy = refusal_policy(policy or self.queue.policy)
        else:
            planned = scenario if last_fails else replace(scenario, failure=None)  # retried into a success
            outcome, spec = self._outcome(endpoint, values, image, self.settings.public_url or base_url, planned)
            units = float(spec.duration)
            script = retry_script(scenario, attempts, options.no_retry) + run_script(endpoint.app_id, spec)
        view = self.queue.submit(
            endpoint.endpoint_id,
            endpoint.app_id,
            body if isinstance(self.store, MemoryStore) else arguments,  # text held: a third the size (Request.input)
            outcome,
            policy=policy,
            units=units,
            script=script,
            start_timeout=options.start_timeout,
            webhook_url=None if options.webhook_url is None else redact_url(options.webhook_url),  # without secrets
            scenario=scenario.describe() or None,
            priority=options.priority,
        )
        return Submission(view, delay, scenario, self.answer_ids.new() if attempts > 1 else None)

    def runner_values(self, endpoint: Endpoint, stored: Any) -> dict[str, Any]:
        """The values the runner uses for a stored input it accepted: validated and coerced (`"false"` is False),
        defaults filled in. Raises RequestValidationError for an input it refuses."""
        return self._validators[endpoint.endpoint_id].validate(stored)

    def runner_input(self, endpoint: Endpoint, arguments: Any) -> tuple[dict[str, Any], tuple[int, int] | None]:
        """What the endpoint's runner makes of a body before it generates anything.

        FastAPI validates it with the endpoint's pydantic model (lax mode), then the app reads the input images
        it can (`data:` URIs, uploads). Returns the validated values (coerced, defaults filled in: what the
        clip choice uses) and the first image's (width, height). Raises RequestValidationError (422, FastAPI's
        detail list) or ModelError (422 `image_load_error`, `file_too_large`, ...).
        """
        values = self.runner_values(endpoint, arguments)
        size = check_input_images(values, self.uploads.read_url)
        check_input_video(values, self.uploads.read_url)  # extend-video: fal's 8 s, 720p/1080p limits
        return values, size

    def _enqueue_played(
        self, endpoint: Endpoint, arguments: Any, played: Playback, options: SubmitOptions
    ) -> StatusView:
        """Enqueue a recorded request as it was recorded (fal_emulator.replay). Raises its recorded rejection."""
        if played.rejection is not None:
            raise played.rejection
        webhook_url = None if options.webhook_url is None else redact_url(options.webhook_url)  # without secrets
        return self.queue.submit(
            endpoint.endpoint_id, endpoint.app_id, arguments, played.outcome, policy=played.policy, units=0,
            script=played.script, start_timeout=options.start_timeout, webhook_url=webhook_url,
            closing_line=False, metrics=played.metrics,
        )  # fmt: skip

    def requests(self) -> list[Any]:
        """Every request the store holds, oldest first."""
        return self.store.all()

    def planned_outcome(self, request_id: str) -> Outcome:
        """What `request_id` will complete with unless it is cancelled or expires. Raises RequestNotFound."""
        request = self.store.get(request_id)
        if request is None:
            raise RequestNotFound(request_id)
        return request.outcome

    def status(self, app_path: str, request_id: str, *, poll: bool = True) -> StatusView:
        """The state of `request_id`, which must belong to the app `app_path` names. Raises RequestNotFound."""
        return self.queue.status(request_id, poll=poll, app_id=app_id_of(app_path.strip("/")))

    def result(self, app_path: str, request_id: str) -> Outcome:
        return self.queue.result(request_id, app_id=app_id_of(app_path.strip("/")))

    def cancel(self, app_path: str | None, request_id: str) -> str:
        """Cancel a request (`app_path`: the app it must belong to; None: any). A running request's render stops
        unless another request waits for the same file. Raises RequestNotFound."""
        app_id = app_id_of(app_path.strip("/")) if app_path is not None else None
        answer = self.queue.cancel(request_id, app_id=app_id)
        if answer == "CANCELLATION_REQUESTED":
            self.renders.forget(request_id)
        return answer

    def fail_now(self, request_id: str, error_type: str) -> StatusView:
        """Complete a request now with fal error `error_type` (its render stops). Raises KeyError for an unknown
        type."""
        view = self.queue.complete_now(request_id, Outcome.failure(FAILURES[error_type].error()))
        self.renders.forget(request_id)
        return view
