"""fal-emulator: an offline emulator of fal.ai's queue API for the Google Veo models."""

from __future__ import annotations

__version__ = "0.1.0"
