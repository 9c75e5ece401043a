"""The clip library: the real MP4s in `fixtures/`, described by `fixtures/manifest.json`.

library = MediaLibrary(FIXTURES_DIR)
clip = library.clip(ClipSpec(1280, 720, 8, True))   # -> Clip(path, file_size, sha256)
library.file_object(clip, "http://127.0.0.1:8470")  # -> fal's File: {url, content_type, file_name, file_size}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fal_emulator.video import ClipSpec

MEDIA_PREFIX = "/files/"


@dataclass(frozen=True)
class Clip:
    spec: ClipSpec
    path: Path
    file_size: int
    sha256: str


class MediaLibrary:
    """The clips listed in a fixtures folder's manifest, by spec and by file name."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        manifest = json.loads((folder / "manifest.json").read_text())
        self._by_name: dict[str, Clip] = {}
        for entry in manifest["clips"]:
            spec = ClipSpec(entry["width"], entry["height"], entry["duration"], entry["audio"])
            self._by_name[entry["file"]] = Clip(spec, folder / entry["file"], entry["file_size"], entry["sha256"])
        self._by_spec = {clip.spec: clip for clip in self._by_name.values()}

    def clip(self, spec: ClipSpec) -> Clip:
        """The clip for `spec`. Raises LookupError when the fixtures have none (regenerate them)."""
        try:
            return self._by_spec[spec]
        except KeyError:
            raise LookupError(f"no fixture clip {spec.file_name}; run fixtures/generate.py") from None

    def by_name(self, file_name: str) -> Clip | None:
        return self._by_name.get(file_name)

    def file_object(self, clip: Clip, base_url: str) -> dict[str, Any]:
        """fal's `File` for a clip served under `base_url` (field order as fal's: url, content_type, …)."""
        return {
            "url": f"{base_url.rstrip('/')}{MEDIA_PREFIX}{clip.path.name}",
            "content_type": "video/mp4",
            "file_name": clip.path.name,
            "file_size": clip.file_size,
        }
