"""Files uploaded through fal's storage API, kept on disk under `state_dir/uploads/`.

Two flows reach it (fal-protocol.md §5; fal_client 1.0.3 `client.py`, @fal-ai/client `storage.js`):
- initiate + PUT: `POST /storage/upload/initiate` -> `{upload_url, file_url}`, then `PUT upload_url`;
- CDN v3: `POST /storage/auth/token?storage_type=fal-cdn-v3` -> a token, then `POST /files/upload`
  with `Authorization: Bearer <token>` -> `{access_url}`.
An uploaded file is served at `/files/uploads/{id}/{name}` and can be used as an input URL.
"""

from __future__ import annotations

import json
import mimetypes
import re
import secrets
import shutil
import urllib.parse
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from fal_emulator.ids import IdSource
from fal_emulator.limits import media_type_problem

UPLOAD_PREFIX = "/files/uploads/"
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Upload:
    upload_id: str
    file_name: str
    content_type: str
    path: Path

    @property
    def url_path(self) -> str:
        return f"{UPLOAD_PREFIX}{self.upload_id}/{self.file_name}"


def safe_file_name(name: str | None, content_type: str | None = None) -> str:
    """A file name safe in a path and a URL: `../My photo.png` -> `My_photo.png`; none given -> `upload` plus
    the content type's extension (`upload.jpg` for `image/jpeg`, as fal's CDN names an unnamed upload by its
    type), else `upload.bin`."""
    cleaned = SAFE_NAME.sub("_", Path(name if isinstance(name, str) else "").name).strip("._")[:200]
    if cleaned:
        return cleaned
    extension = mimetypes.guess_extension((content_type or "").split(";")[0].strip()) if content_type else None
    return f"upload{extension or '.bin'}"


MAX_RESERVED = 4096  # initiated uploads whose bytes have not come yet; the oldest are forgotten first
MAX_TOKENS = 1024  # CDN tokens kept; the oldest stop working first
META = ".upload.json"  # beside each uploaded file: its name and content type, so uploads outlive the process


class Uploads:
    """Pending and finished uploads, on disk under `folder/{id}/` (so they survive restarts and are shared
    by processes using the same state dir); `reset()` deletes them."""

    def __init__(self, folder: Path, ids: IdSource) -> None:
        self.folder = folder
        self.ids = ids
        self._uploads: dict[str, Upload] = {}
        self._written: set[str] = set()
        self._reserved: OrderedDict[str, None] = OrderedDict()  # initiated, not yet written: bounded
        self._tokens: OrderedDict[str, None] = OrderedDict()

    def reset(self) -> None:
        self._uploads.clear()
        self._written.clear()
        self._reserved.clear()
        self._tokens.clear()
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def tokens(self) -> frozenset[str]:
        """The CDN tokens handed out and still valid (the latest MAX_TOKENS)."""
        return frozenset(self._tokens)

    def new_token(self) -> str:
        token = secrets.token_urlsafe(24)
        self._tokens[token] = None
        while len(self._tokens) > MAX_TOKENS:
            self._tokens.popitem(last=False)
        return token

    def initiate(self, file_name: str | None, content_type: str | None) -> Upload:
        """Reserve an upload; its bytes come with `write()`."""
        upload_id = self.ids.new().replace("-", "")
        name = safe_file_name(file_name, content_type)
        upload = Upload(upload_id, name, content_type or "application/octet-stream", self.folder / upload_id / name)
        self._uploads[upload_id] = upload
        self._reserved[upload_id] = None
        while len(self._reserved) > MAX_RESERVED:
            self._uploads.pop(self._reserved.popitem(last=False)[0], None)
        return upload

    def reserved(self, upload_id: str) -> Upload | None:
        """The upload initiated as `upload_id` (written or not), or None."""
        return self._uploads.get(upload_id)

    def write(self, upload_id: str, data: bytes) -> Upload | None:
        """Store the bytes of an initiated upload under its initiated name; None when the id is unknown."""
        upload = self._uploads.get(upload_id)
        if upload is None:
            return None
        self._reserved.pop(upload_id, None)
        upload.path.parent.mkdir(parents=True, exist_ok=True)
        upload.path.write_bytes(data)
        meta = {"file_name": upload.file_name, "content_type": upload.content_type}
        (upload.path.parent / META).write_text(json.dumps(meta))
        self._written.add(upload_id)
        return upload

    def get(self, upload_id: str, file_name: str) -> Upload | None:
        """A finished upload by its URL parts (written by this process, or found on disk)."""
        upload = self._uploads.get(upload_id)
        if upload is not None and upload_id in self._written:
            return upload if upload.file_name == file_name else None
        return self._from_disk(upload_id, file_name)

    def _from_disk(self, upload_id: str, file_name: str) -> Upload | None:
        if not upload_id.isalnum():
            return None
        try:
            meta = json.loads((self.folder / upload_id / META).read_text())
        except (OSError, ValueError):
            return None
        if meta.get("file_name") != file_name:
            return None
        content_type = meta.get("content_type")
        if not isinstance(content_type, str) or media_type_problem(content_type):
            content_type = "application/octet-stream"
        return Upload(upload_id, file_name, content_type, self.folder / upload_id / file_name)

    def read_url(self, url: str) -> tuple[str, bytes] | None:
        """(content type, bytes) of an uploaded file named by a URL of this emulator (any host); else None."""
        path = urllib.parse.urlsplit(url).path
        if not path.startswith(UPLOAD_PREFIX):
            return None
        upload_id, _, file_name = path[len(UPLOAD_PREFIX) :].partition("/")
        upload = self.get(upload_id, urllib.parse.unquote(file_name))
        return (upload.content_type, upload.path.read_bytes()) if upload else None
