"""Wall time of one `fal_client.subscribe` against a real `fal-emulator serve`, per timing policy.

    python benchmarks/subscribe_wall_time.py [--runs 5]

For each policy it starts the server in a subprocess on free ports, runs an unmodified fal_client
in a child process whose environment points at it (fal_client reads its hosts at import), and
prints min / median / max seconds of `subscribe(..., with_logs=True, on_queue_update=...)` for the
seed request of fal-ai/veo3/image-to-video.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fal_emulator.testing import EmulatorProcess

ARGUMENTS = {
    "prompt": "A woman looks into the camera, breathes in, then exclaims energetically",
    "image_url": "https://storage.googleapis.com/falserverless/example_inputs/veo3-i2v-input.png",
    "aspect_ratio": "auto",
    "duration": "8s",
    "generate_audio": True,
    "resolution": "720p",
}


def child(runs: int) -> None:
    """Runs inside the child process: time `runs` subscribes, print seconds and states seen as JSON."""
    import fal_client

    results = []
    for _ in range(runs):
        seen: list[Any] = []
        start = time.perf_counter()
        fal_client.subscribe(
            "fal-ai/veo3/image-to-video", arguments=ARGUMENTS, with_logs=True, on_queue_update=seen.append
        )
        elapsed = time.perf_counter() - start
        results.append({"seconds": elapsed, "states": sorted({type(update).__name__ for update in seen})})
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.runs)
        return
    print(f"{'policy':<9} {'runs':>4} {'min s':>7} {'median s':>9} {'max s':>7}  states seen by on_queue_update")
    for policy in ("default", "instant"):
        with tempfile.TemporaryDirectory() as state, EmulatorProcess(Path(state), policy=policy) as server:
            env = {**os.environ, **server.client_env()}
            command = [sys.executable, __file__, "--child", "--runs", str(args.runs)]
            output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
        results = json.loads(output)
        times = [result["seconds"] for result in results]
        states = sorted({state for result in results for state in result["states"]})
        print(
            f"{policy:<9} {args.runs:>4} {min(times):>7.3f} {statistics.median(times):>9.3f} {max(times):>7.3f}"
            f"  {', '.join(states)}"
        )


if __name__ == "__main__":
    main()
