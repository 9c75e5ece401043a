"""The emulator's use cases, with no HTTP in them: submit, status, result, cancel, run.

`Emulator` joins the catalogue (what endpoints exist), validation (is the input acceptable), the clip
choice (which MP4 answers it) and the queue (when it completes). The HTTP layer parses a request,
calls one method here and renders what comes back.
"""

from __future__ import annotations

from typing import Any

from emulator.catalog import Catalog, Endpoint, app_id_of
from emulator.clock import VirtualClock
from emulator.errors import NotFound, RequestError, RequestNotFound
from emulator.ids import IdSource
from emulator.inputs import check_input_images
from emulator.media import MediaLibrary
from emulator.queue import Outcome, Policy, Queue, StatusView, Store
from emulator.settings import Settings
from emulator.store import MemoryStore
from emulator.validation import InputValidator, parse_json_body
from emulator.video import FPS, ClipSpec, clip_for


def run_script(endpoint: Endpoint, spec: ClipSpec) -> list[tuple[float, str]]:
    """The runner's log lines for one generation, as (fraction of the run, message)."""
    sound = " with audio" if spec.audio else ""
    return [
        (0.0, f"Loading {endpoint.app_id} model weights"),
        (0.1, "Preparing inputs"),
        (0.2, f"Generating {spec.width}x{spec.height} video, {spec.duration}s at {FPS} fps{sound}"),
        (0.5, "Generating video: 50%"),
        (0.8, "Generating video: 100%"),
        (0.9, "Encoding MP4 (H.264" + (", AAC" if spec.audio else "") + ")"),
    ]


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
        self.store: Store = store or MemoryStore()
        self.queue = Queue(self.store, self.clock, self.ids, settings.progression)
        self.media = MediaLibrary(settings.fixtures_dir)
        self._validators = {endpoint.endpoint_id: InputValidator(endpoint.input_schema) for endpoint in catalog}

    def reset(self, seed: int | None = None) -> None:
        self.store.reset()
        self.ids.reseed(self.settings.seed if seed is None else seed)

    def endpoint(self, endpoint_id: str) -> Endpoint:
        """The endpoint named `endpoint_id`. Raises NotFound (404) for an id not in `openapi/`."""
        endpoint = self.catalog.get(endpoint_id)
        if endpoint is None:
            raise NotFound(f"Endpoint '{endpoint_id}' not found")
        return endpoint

    def _outcome(
        self, endpoint: Endpoint, arguments: dict[str, Any], image: tuple[int, int] | None, base_url: str
    ) -> tuple[Outcome, ClipSpec]:
        spec = clip_for(endpoint, arguments, image)
        try:
            clip = self.media.clip(spec)
        except LookupError as exc:
            return Outcome.failure(RequestError("internal_error", str(exc), 500)), spec
        return Outcome.success({"video": self.media.file_object(clip, base_url)}), spec

    def submit(self, endpoint_id: str, body: bytes, base_url: str, *, policy: Policy | None = None) -> StatusView:
        """Validate and enqueue a request. Raises NotFound (unknown endpoint) or ModelError (422)."""
        endpoint = self.endpoint(endpoint_id)
        arguments = parse_json_body(body)
        self._validators[endpoint.endpoint_id].validate(arguments)
        image = check_input_images(arguments)
        outcome, spec = self._outcome(endpoint, arguments, image, self.settings.public_url or base_url)
        return self.queue.submit(
            endpoint.endpoint_id,
            endpoint.app_id,
            arguments,
            outcome,
            policy=policy,
            units=spec.duration,
            script=run_script(endpoint, spec),
        )

    def _owned(self, app_path: str, request_id: str) -> None:
        """Raises RequestNotFound unless `request_id` was submitted to the app `app_path` names."""
        request = self.store.get(request_id)
        if request is None or app_id_of(app_path.strip("/")) != request.app_id:
            raise RequestNotFound(request_id)

    def status(self, app_path: str, request_id: str, *, poll: bool = True) -> StatusView:
        self._owned(app_path, request_id)
        return self.queue.status(request_id, poll=poll)

    def result(self, app_path: str, request_id: str) -> Outcome:
        self._owned(app_path, request_id)
        return self.queue.result(request_id)

    def cancel(self, app_path: str, request_id: str) -> str:
        self._owned(app_path, request_id)
        return self.queue.cancel(request_id)
