"""TLS for the official Python client, which always speaks `https://` (fal_client 1.0.3 `auth.py`).

A throwaway certificate authority made with trustme lives in the state directory and is reused across
restarts; it signs a server certificate for localhost, 127.0.0.1 and ::1 (plus the listen host and
fal's own hostnames, for the HTTPS proxy).
`bundle.pem` holds certifi's CAs plus ours: point `SSL_CERT_FILE` at it and httpx (hence fal_client)
trusts the emulator and still trusts the real internet.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import certifi
import trustme


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    bundle: Path


def write_private(path: Path, data: bytes) -> None:
    """Write a file that holds a private key: mode 0600 from its creation on (an older file is narrowed first)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as stream:
        os.fchmod(stream.fileno(), 0o600)
        stream.write(data)


def ensure_tls(state_dir: Path, host: str = "127.0.0.1", names: Iterable[str] = ()) -> TlsFiles:
    """Create (or reuse) the CA in `state_dir/tls/` and issue a fresh server certificate.

    The certificate names localhost, 127.0.0.1, ::1, `host` and `names` (the server passes fal's own
    hostnames, which its HTTPS proxy tunnels to it: `fal_emulator.fal_hosts`).

    Returns the paths of the CA certificate, the server chain and key (PEM), and the client bundle.
    Raises OSError when the state directory cannot be written.
    """
    folder = state_dir / "tls"
    folder.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = folder / "ca.pem", folder / "ca-key.pem"
    if ca_cert.exists() and ca_key.exists():
        ca = trustme.CA.from_pem(ca_cert.read_bytes(), ca_key.read_bytes())
    else:
        ca = trustme.CA(organization_name="fal-emulator")
        ca.cert_pem.write_to_path(str(ca_cert))
        write_private(ca_key, ca.private_key_pem.bytes())
    local = sorted({"localhost", "127.0.0.1", "::1", host} - {"0.0.0.0", "::", ""})
    server = ca.issue_cert(*local, *names)
    files = TlsFiles(ca_cert, folder / "server.pem", folder / "server-key.pem", folder / "bundle.pem")
    write_private(files.server_cert, server.private_key_and_cert_chain_pem.bytes())  # it holds the key too
    write_private(files.server_key, server.private_key_pem.bytes())
    files.bundle.write_text(Path(certifi.where()).read_text() + "\n" + ca_cert.read_text())
    return files
