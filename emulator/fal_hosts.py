"""fal's own hostnames, and which part of fal each one serves.

The official clients hard-code these names (fal_client `client.py`: `QUEUE_URL_FORMAT`, `RUN_URL_FORMAT`,
`REST_URL`, `CDN_URL`, `_BACKUP_DOMAINS`, `FAL_CDN_FALLBACK_URL`; @fal-ai/client `request.js` `buildUrl`,
`config.js` `getRestApiUrl`), so the emulator's HTTPS proxy tunnels exactly these to itself, its TLS
certificate names them, and the app routes a request by the one it was sent to:

| role    | hosts                                        | what the emulator serves there                   |
|---------|----------------------------------------------|--------------------------------------------------|
| `queue` | `queue.fal.run`, backup `queue.falrun.com`   | the queue API                                    |
| `run`   | `fal.run`, backup `falrun.com`               | the synchronous API (the `/run/` routes)         |
| `rest`  | `rest.fal.ai`, `rest.alpha.fal.ai` (*)       | storage: upload initiate + PUT, CDN tokens, JWKS |
| `media` | `v3.fal.media`, `v3b.fal.media`, `fal.media` | files: the videos and uploaded files             |

(*) fal_client before 0.13 and @fal-ai/client before 1.10 use `rest.alpha.fal.ai`.
"""

from __future__ import annotations

from typing import Literal

Role = Literal["queue", "run", "rest", "media"]

FAL_HOSTS: dict[str, Role] = {
    "queue.fal.run": "queue",
    "queue.falrun.com": "queue",
    "fal.run": "run",
    "falrun.com": "run",
    "rest.fal.ai": "rest",
    "rest.alpha.fal.ai": "rest",
    "v3.fal.media": "media",
    "v3b.fal.media": "media",
    "fal.media": "media",
}
TLS_PORT = 443
MEDIA_BASE = "https://v3.fal.media"  # where fal serves outputs and uploaded files


def role_of(authority: str | None) -> Role | None:
    """The role of a `Host` header or CONNECT target (`queue.fal.run`, `fal.run:443`, `FAL.RUN.`), or None.

    A port other than 443 is not fal's: None.
    """
    if not authority:
        return None
    host, _, port = authority.strip().lower().partition(":")
    if port and port != str(TLS_PORT):
        return None
    return FAL_HOSTS.get(host.rstrip("."))
