"""Regenerate the README's "your image comes back as a video" pictures in docs/images/.

    .venv/bin/python docs/render_images.py

Draws an input picture (4:3, so the 16:9 output shows Veo's centre crop), submits it as a `data:` URI to
an in-process emulator (`fal-ai/veo3.1/fast/image-to-video`, 720p, 16:9, 4 s, instant policy), downloads
the rendered MP4, decodes it with PyAV and writes, 480 pixels wide: `render-input.png` (what was sent),
`render-first-frame.png` and `render-last-frame.png` (what came back).
"""

from __future__ import annotations

import base64
import io
import tempfile
from pathlib import Path

import av
from PIL import Image, ImageDraw
from starlette.testclient import TestClient

from fal_emulator.http.app import create_app
from fal_emulator.settings import Settings

OUT = Path(__file__).resolve().parent / "images"
WIDTH = 480  # of the PNGs in the README


def scene(size: tuple[int, int] = (1200, 900)) -> Image.Image:
    """A dusk landscape: sky gradient, sun, three mountain ridges and a lake."""
    width, height = size
    ramp = Image.linear_gradient("L").resize(size)
    image = Image.composite(Image.new("RGB", size, (250, 160, 90)), Image.new("RGB", size, (30, 40, 110)), ramp)
    draw = ImageDraw.Draw(image)
    draw.ellipse((width * 0.62, height * 0.38, width * 0.76, height * 0.56), fill=(255, 214, 140))
    ridges = [((70, 60, 110), 0.50, 0.08), ((50, 45, 85), 0.58, 0.11), ((32, 30, 58), 0.66, 0.09)]
    for colour, base, amplitude in ridges:
        points = [(0, height)]
        for step in range(13):
            x = width * step / 12
            y = height * (base - amplitude * ((step * 7 % 5) / 4 - 0.3))
            points.append((x, y))
        points.append((width, height))
        draw.polygon(points, fill=colour)
    lake_top = int(height * 0.78)
    draw.rectangle((0, lake_top, width, height), fill=(40, 60, 110))
    for row in range(lake_top + 6, height, 14):
        draw.line((width * 0.58, row, width * 0.80, row), fill=(220, 170, 120), width=3)
    draw.text((24, 20), "input: 1200 x 900 (4:3)", fill=(255, 255, 255), font_size=36)
    return image


def rgb_image(frame: av.VideoFrame) -> Image.Image:
    """A decoded frame as RGB (swscale, with the colour matrix the frame is tagged with: BT.709)."""
    plane = frame.reformat(format="rgb24").planes[0]
    return Image.frombytes("RGB", (frame.width, frame.height), bytes(plane), "raw", "RGB", plane.line_size)


def thumbnail(image: Image.Image) -> Image.Image:
    return image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.Resampling.LANCZOS)


def main() -> None:
    picture = scene()
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    body = {
        "prompt": "The camera drifts over a lake at dusk",
        "image_url": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(),
        "aspect_ratio": "16:9",
        "duration": "4s",
        "generate_audio": False,
        "seed": 2,
    }
    with tempfile.TemporaryDirectory() as state:
        app = create_app(Settings(state_dir=Path(state), policy="instant", seed=1))
        with TestClient(app) as client:
            headers = {"Authorization": "Key docs"}
            submitted = client.post("/fal-ai/veo3.1/fast/image-to-video", json=body, headers=headers).json()
            assert app.state.emulator.renders.wait(600)
            output = client.get(submitted["response_url"], headers=headers).json()
            video = client.get(output["video"]["url"]).content
    with av.open(io.BytesIO(video)) as container:
        frames = [rgb_image(frame) for frame in container.decode(video=0)]
    OUT.mkdir(parents=True, exist_ok=True)
    thumbnail(picture).save(OUT / "render-input.png", optimize=True)
    thumbnail(frames[0]).save(OUT / "render-first-frame.png", optimize=True)
    thumbnail(frames[-1]).save(OUT / "render-last-frame.png", optimize=True)
    print(f"{len(frames)} frames; wrote {', '.join(sorted(path.name for path in OUT.glob('render-*.png')))}")


if __name__ == "__main__":
    main()
