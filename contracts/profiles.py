"""How much the kit generates: named profiles (`--profile`), as Schemathesis and Hypothesis settings.

| profile    | meant for              | per operation | coverage phase | stateful scenarios | lifecycle runs x steps |
|------------|------------------------|---------------|----------------|--------------------|------------------------|
| `ci`       | a CI job               | 4             | no             | 3                  | 10 x 15                |
| `default`  | a developer run        | 12            | yes            | 8                  | 25 x 25                |
| `thorough` | before a release; slow | 60            | yes            | 30                 | 100 x 40               |

The coverage phase (Schemathesis' boundary values, enum values, missing and wrongly typed fields, undeclared
methods: `fal_emulator.contracts.coverage`) sends the same cases whatever the count: 146 requests for
`fal-ai/veo3.1/fast` (every option), 2,638 over the 18 endpoints, about 12 s in-process (Schemathesis 4.32.5;
4.0.0 sends 3,504). A whole in-process run (three suites, every endpoint) sends 1,392 requests in `ci` and 6,678
in `default` (4,040 of them without the phase).

`--max-examples N` overrides the per-operation count. The profile is also registered with Hypothesis as
`fal-contracts-<name>`, so `pytest --hypothesis-profile fal-contracts-ci` gives the lifecycle machine the
same settings when it is used from pytest.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hypothesis import settings


@dataclass(frozen=True)
class Profile:
    """`max_examples`: generated cases per operation and phase; `coverage`: run Schemathesis' coverage phase;
    `stateful_examples` x `stateful_steps`: Schemathesis' link-walking scenarios; `machine_examples` x
    `machine_steps`: lifecycle machine runs and rules per run; `request_timeout` and `stream_deadline` in
    seconds (a stream gets that long to reach COMPLETED and close on an emulator; real fal gets
    `remote_stream_deadline`)."""

    name: str
    max_examples: int
    stateful_examples: int
    stateful_steps: int
    machine_examples: int
    machine_steps: int
    request_timeout: float = 10.0
    stream_deadline: float = 10.0
    remote_stream_deadline: float = 900.0
    coverage: bool = False

    def with_max_examples(self, count: int | None) -> Profile:
        return self if count is None else dataclasses.replace(self, max_examples=count)

    def machine_settings(self, *, max_examples: int | None = None) -> settings:
        """Hypothesis settings for the lifecycle machine: no example database, no deadline, quiet."""
        from hypothesis import HealthCheck, Phase, Verbosity, settings

        return settings(
            max_examples=max_examples or self.machine_examples,
            stateful_step_count=self.machine_steps,
            deadline=None,
            database=None,
            derandomize=False,
            phases=[Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
            print_blob=False,
        )


PROFILES: dict[str, Profile] = {
    "ci": Profile("ci", max_examples=4, stateful_examples=3, stateful_steps=6, machine_examples=10, machine_steps=15),
    "default": Profile(
        "default",
        max_examples=12,
        stateful_examples=8,
        stateful_steps=8,
        machine_examples=25,
        machine_steps=25,
        coverage=True,
    ),
    "thorough": Profile(
        "thorough",
        max_examples=60,
        stateful_examples=30,
        stateful_steps=12,
        machine_examples=100,
        machine_steps=40,
        coverage=True,
    ),
}

# The profiles that run Schemathesis' coverage phase, as the summary names them ("default and thorough").
COVERAGE_PROFILES = " and ".join(name for name, profile in PROFILES.items() if profile.coverage)


def register_hypothesis_profiles() -> None:
    """Register each profile with Hypothesis as `fal-contracts-<name>` (idempotent)."""
    from hypothesis import settings

    for profile in PROFILES.values():
        settings.register_profile(f"fal-contracts-{profile.name}", profile.machine_settings())


def get_profile(name: str) -> Profile:
    """The profile `name` (`ci`, `default`, `thorough`, or `fal-contracts-<name>`). Raises KeyError naming them."""
    key = name.removeprefix("fal-contracts-")
    if key not in PROFILES:
        raise KeyError(f"unknown profile {name!r}; use one of {', '.join(PROFILES)}")
    return PROFILES[key]
