"""What rendering from the user's image costs: render time per clip, and the time it adds to a subscribe.

    .venv/bin/python benchmarks/render.py              # about 3 minutes on 2 cores
    .venv/bin/python benchmarks/render.py --runs 1 --no-subscribe

1. Render time on one core (the process pinned to one CPU, as a render runs on one render thread):
   an image-to-video clip rendered from a detailed 1600x1200 picture (`fal_emulator.render`), for 720p
   and 1080p at 4 s and 8 s, beside the baseline: today's fixture path, `fixtures/generate.py` encoding
   the placeholder clip of the same size, length and audio. CPU and wall seconds (best of `--runs`), the
   ratio to the baseline, and the verdict on the budget: a 720p 8 s render under 3 s of one core.
2. Cost added to a subscribe: an unmodified fal_client `subscribe` against `fal-emulator serve` with the
   default policy (0.5 s queued, 1.5 s running), for each clip: the baseline (a plain image URL: the
   fixture clip), a first render (a data: URI never seen before) and the same request again (the render
   cache). Median seconds of `--runs`, interleaved, and the ratio to the baseline.

A script, not a test: nothing in the test suite times anything.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from fal_emulator.catalog import load_catalog
from fal_emulator.render.job import plan, render_file
from fal_emulator.testing import EmulatorProcess
from fal_emulator.video import ClipSpec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from fixtures.generate import encode_clip  # noqa: E402

ENDPOINT = "fal-ai/veo3.1/fast/image-to-video"
CLIPS = [("720p", 4), ("720p", 8), ("1080p", 4), ("1080p", 8)]
RENDER_ONLY_CLIPS = [("4k", 8)]  # render time only (a 4k subscribe costs minutes of this machine)
FOUR_K_ENDPOINT = "fal-ai/veo3.1/image-to-video"  # the fast image-to-video endpoint offers no 4k
BUDGET_CPU_SECONDS = 3.0  # a 720p 8 s render on one core


def picture(variant: int = 0) -> bytes:
    """A detailed 1600x1200 PNG (a Mandelbrot set per channel); `variant` changes one pixel (a new render key)."""
    image = Image.merge(
        "RGB", [Image.effect_mandelbrot((1600, 1200), (-2.0, -1.2, 1.0, 1.2), q) for q in (60, 100, 200)]
    )
    image.putpixel((0, 0), (variant % 256, variant // 256 % 256, 7))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def arguments(resolution: str, seconds: int, image_url: str) -> dict[str, Any]:
    return {"prompt": "The camera drifts over the scene", "image_url": image_url, "aspect_ratio": "16:9",
            "resolution": resolution, "duration": f"{seconds}s", "generate_audio": True}  # fmt: skip


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) that `action` takes."""
    cpu, wall = time.process_time(), time.perf_counter()
    action()
    return time.process_time() - cpu, time.perf_counter() - wall


def render_times(runs: int) -> list[dict[str, Any]]:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    catalog = load_catalog()
    image = data_uri(picture())
    rows = []
    with tempfile.TemporaryDirectory(prefix="fal-render-bench-") as scratch:
        for resolution, seconds in CLIPS + RENDER_ONLY_CLIPS:
            endpoint = catalog.get(FOUR_K_ENDPOINT if resolution == "4k" else ENDPOINT)
            assert endpoint is not None
            job = plan(endpoint, arguments(resolution, seconds, image))
            assert job is not None
            spec = ClipSpec(job.spec.width, job.spec.height, job.spec.duration, job.spec.audio)
            rendered, fixture = [], []
            for run in range(runs):  # interleaved: a burst of load from elsewhere costs both sides one sample
                rendered.append(timed(lambda job=job, run=run: render_file(job, f"{scratch}/render-{run}.mp4")))
                fixture.append(timed(lambda spec=spec: encode_clip(spec, Path(scratch) / "fixture.mp4")))
            render_cpu, render_wall = min(rendered)
            fixture_cpu, fixture_wall = min(fixture)
            rows.append({"clip": f"{resolution} {seconds} s ({spec.width}x{spec.height})", "seconds": seconds,
                         "render_cpu": render_cpu, "render_wall": render_wall, "fixture_cpu": fixture_cpu,
                         "fixture_wall": fixture_wall, "size": os.path.getsize(f"{scratch}/render-0.mp4"),
                         "budget": resolution == "720p" and seconds == 8})  # fmt: skip
    return rows


def child() -> None:
    """In a child process whose environment points fal_client at the server: subscribe to each body on stdin."""
    import fal_client

    results = []
    for body in json.loads(sys.stdin.read()):
        start = time.perf_counter()
        output = fal_client.subscribe(ENDPOINT, arguments=body, with_logs=True)
        results.append({"seconds": time.perf_counter() - start, "file": output["video"]["file_name"]})
    print(json.dumps(results))


def subscribe_times(runs: int) -> list[dict[str, Any]]:
    plain = "https://storage.googleapis.com/falserverless/example_inputs/veo3-i2v-input.png"
    bodies, labels = [], []
    variant = 0
    for _ in range(runs):
        for resolution, seconds in CLIPS:
            variant += 1
            fresh = data_uri(picture(variant))
            for label, url in (("fixture", plain), ("render", fresh), ("cached", fresh)):
                bodies.append(arguments(resolution, seconds, url))
                labels.append((resolution, seconds, label))
    with tempfile.TemporaryDirectory() as state, EmulatorProcess(Path(state)) as server:
        env = {**os.environ, **server.client_env()}
        done = subprocess.run([sys.executable, __file__, "--child"], input=json.dumps(bodies), env=env,
                              capture_output=True, text=True, check=True)  # fmt: skip
    results = json.loads(done.stdout)
    rows = []
    for resolution, seconds in CLIPS:
        times: dict[str, list[float]] = {"fixture": [], "render": [], "cached": []}
        for (res, sec, label), result in zip(labels, results, strict=True):
            if (res, sec) == (resolution, seconds):
                times[label].append(result["seconds"])
        rows.append({"clip": f"{resolution} {seconds} s", **{k: statistics.median(v) for k, v in times.items()}})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (default 3)")
    parser.add_argument("--no-subscribe", action="store_true", help="only the render times")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child()
        return 0

    print(f"## Render time on one core (best of {args.runs}); baseline: fixtures/generate.py encoding the same clip\n")
    print("| clip | render CPU s | render wall s | x real time | MP4 bytes | baseline CPU s | render / baseline |")
    print("|---|---|---|---|---|---|---|")
    verdict = True
    for row in render_times(args.runs):
        ratio, realtime = row["render_cpu"] / row["fixture_cpu"], row["render_cpu"] / row["seconds"]
        print(f"| {row['clip']} | {row['render_cpu']:.2f} | {row['render_wall']:.2f} | {realtime:.2f} "
              f"| {row['size']:,} | {row['fixture_cpu']:.2f} | {ratio:.2f} |")  # fmt: skip
        if row["budget"]:
            verdict = row["render_cpu"] < BUDGET_CPU_SECONDS
            budget = f"720p 8 s render: {row['render_cpu']:.2f} s of one core, budget {BUDGET_CPU_SECONDS:.0f} s"
    print(f"\nBudget: {budget}: {'PASS' if verdict else 'FAIL'}")

    if not args.no_subscribe:
        print(f"\n## fal_client.subscribe, default policy (median of {args.runs}); baseline: the fixture clip\n")
        print("| clip | baseline s | first render s | ratio | added s | same request again s | ratio |")
        print("|---|---|---|---|---|---|---|")
        for row in subscribe_times(args.runs):
            base = row["fixture"]
            print(f"| {row['clip']} | {base:.2f} | {row['render']:.2f} | {row['render'] / base:.2f} "
                  f"| {row['render'] - base:+.2f} | {row['cached']:.2f} | {row['cached'] / base:.2f} |")  # fmt: skip
    return 0 if verdict else 1


if __name__ == "__main__":
    raise SystemExit(main())
