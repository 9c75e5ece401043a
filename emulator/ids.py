"""Request ids: UUID4-shaped strings drawn from one seeded source, so a seed gives the same ids."""

from __future__ import annotations

import os
import random
import uuid


class IdSource:
    """Seeded UUID4 generator. `IdSource(7).new()` is the same string on every run."""

    def __init__(self, seed: int | None = None) -> None:
        self.reseed(seed)

    def reseed(self, seed: int | None) -> None:
        self.seed = seed
        self._random = random.Random(int.from_bytes(os.urandom(8), "big") if seed is None else seed)

    def new(self) -> str:
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))

    def for_sequence(self, sequence: int) -> str:
        """The id of the `sequence`-th request: a function of (seed, sequence), so processes sharing one
        store agree on it; random when there is no seed."""
        if self.seed is None:
            return str(uuid.UUID(bytes=os.urandom(16), version=4))
        return str(uuid.UUID(int=random.Random(f"{self.seed}:{sequence}").getrandbits(128), version=4))
