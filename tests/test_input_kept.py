"""What a client submits is the input the emulator keeps, on every store: the same keys in the same order, the same
unicode, the same numbers (an int stays an int, `1.0` a float, big ints exact). The memory store keeps an input as
the JSON text it came as (issue 12: a queued request in under 1.5 KB) and decodes it where it is read."""

from __future__ import annotations

import json

from tests.conftest import ClientFactory

ENDPOINT = "fal-ai/veo3/image-to-video"
AUTH = {"Authorization": "Key test"}
# Keys out of alphabetical order, unicode raw and escaped (a line separator, an astral character as a surrogate
# pair), numbers of each kind, nesting, and the whitespace of a hand-written body.
BODY = """{
  "prompt": "Ünïcödé 🎬 — 中文, \\u2028 \\ud83c\\udfac \\"quoted\\"",
  "image_url": "https://storage.googleapis.com/falserverless/example_inputs/veo3-i2v-input.png",
  "zeta": 1, "alpha": 1.0, "big": 123456789012345678901234567890, "tiny": 1e-7, "negative_zero": -0.0,
  "nested": {"b": [true, false, null, ""], "a": {}},
  "duration": "8s"
}"""


def as_text(value: object) -> str:
    """JSON text that tells apart what `==` does not: key order, `1` from `1.0`, `0.0` from `-0.0`."""
    return json.dumps(value, ensure_ascii=False)


def test_the_input_kept_is_the_input_submitted_in_order_unicode_and_numbers(make_client: ClientFactory) -> None:
    client = make_client()
    submitted = client.post(f"/{ENDPOINT}", content=BODY.encode(), headers={**AUTH, "content-type": "application/json"})
    assert submitted.status_code == 200, submitted.text
    request_id = submitted.json()["request_id"]
    expected = as_text(json.loads(BODY))

    def kept() -> str:
        detail = client.get(f"/_emulator/requests/{request_id}")
        assert detail.status_code == 200, detail.text
        return as_text(detail.json()["input"])

    assert kept() == expected  # queued
    status_url = f"/fal-ai/veo3/requests/{request_id}/status"
    while client.get(status_url, headers=AUTH).json()["status"] != "COMPLETED":
        pass  # polls:1: each poll moves it on
    result = client.get(f"/fal-ai/veo3/requests/{request_id}", headers=AUTH)
    assert result.status_code == 200, result.text  # the runner read the kept input and accepted it
    assert kept() == expected  # completed, after the runner read it
