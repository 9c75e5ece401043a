"""A render is byte-identical in every process for the same request: a user's golden-file test depends on it.

x264's macroblock tree (`mbtree`) read memory a previous encoder in the same process had left behind, so
the second render of a process differed from the first one's bytes; the renderer now encodes without it.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

CHILD = """
import io, sys
from PIL import Image
from fal_emulator.render.job import RenderJob, render_file
from fal_emulator.video import ClipSpec

def job(blue: int, size: tuple[int, int]) -> RenderJob:
    picture = Image.merge("RGB", (Image.linear_gradient("L").rotate(90).resize((640, 480)),
                                  Image.radial_gradient("L").resize((640, 480)), Image.new("L", (640, 480), blue)))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return RenderJob("image", ClipSpec(*size, 2, True), "push-in", images=(buffer.getvalue(),))

folder, warm = sys.argv[1], sys.argv[2] == "warm"
if warm:  # another request rendered earlier in this process (a server's history)
    for blue in (10, 200):
        render_file(job(blue, (320, 180)), folder + "/warm.mp4")
render_file(job(90, (320, 180)), folder + "/out.mp4")
"""


def render_in_child(folder: Path, warm: bool) -> bytes:
    folder.mkdir()
    subprocess.run([sys.executable, "-c", CHILD, str(folder), "warm" if warm else "cold"], check=True, timeout=120)
    return (folder / "out.mp4").read_bytes()


def test_the_same_request_renders_the_same_bytes_in_another_process(tmp_path: Path) -> None:
    cold = render_in_child(tmp_path / "cold", warm=False)
    warm = render_in_child(tmp_path / "warm", warm=True)
    assert hashlib.sha256(cold).hexdigest() == hashlib.sha256(warm).hexdigest()
    assert b"mp4a" in cold  # with its AAC track
