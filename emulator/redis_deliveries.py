"""Pending webhook deliveries in Redis (`--store redis`), shared by every host on that Redis
(`fal_emulator.deliveries`). The keys, beside the request store's:

    fal-emulator:deliveries          HASH  request id -> the delivery as JSON text
    fal-emulator:deliveries:due      ZSET  request id by its next attempt's time (emulator clock; 0: not attempted)
    fal-emulator:deliveries:claims   HASH  request id -> "holder lease-end" (wall-clock POSIX seconds)

Each step is one Lua script, so a claim is atomic: a delivery is taken only when no live claim holds it, and a
write by a holder whose claim expired (and was taken over) is refused. Lease ends are the hosts' wall clocks
(`time.time()`): keep them in step (NTP); a lease is tens of seconds, far above any skew NTP leaves.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

from fal_emulator.deliveries import MAX_DUE, Delivery, DeliveryCodec

PREFIX = "fal-emulator:deliveries"

# Shared by the scripts: is the claim held by someone other than ARGV's holder, and alive at `wall`?
HELD = """
local function held_by_other(claim, holder, wall)
  if not claim then return false end
  local who, till = string.match(claim, '^(%S+) (%S+)$')
  return who ~= holder and tonumber(till) >= tonumber(wall)
end
"""
# KEYS: deliveries, due, claims. ARGV: now, wall, limit. The due deliveries no live claim holds.
DUE = (
    HELD
    + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local found = {}
for _, id in ipairs(ids) do
  if not held_by_other(redis.call('HGET', KEYS[3], id), '', ARGV[2]) then
    local data = redis.call('HGET', KEYS[1], id)
    if data then table.insert(found, data) end
  end
end
return found
"""
)
# KEYS: deliveries, claims. ARGV: id, holder, wall, lease end. The delivery, now claimed; nil if held or gone.
CLAIM = (
    HELD
    + """
if held_by_other(redis.call('HGET', KEYS[2], ARGV[1]), '', ARGV[3]) then return false end
local data = redis.call('HGET', KEYS[1], ARGV[1])
if not data then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return false
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ' ' .. ARGV[4])
return data
"""
)
# KEYS: deliveries, due, claims. ARGV: id, holder, data, next time. Only while our claim holds it.
RELEASE = """
local claim = redis.call('HGET', KEYS[3], ARGV[1])
if not claim or string.match(claim, '^(%S+) ') ~= ARGV[2] or redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""
# KEYS: deliveries, due, claims. ARGV: id, holder, wall. Forget it, unless another holds a live claim.
FINISH = (
    HELD
    + """
if held_by_other(redis.call('HGET', KEYS[3], ARGV[1]), ARGV[2], ARGV[3]) then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""
)


class RedisBook:
    """Deliveries in the Redis server at `url` (`redis://host:port/db`), shared by every process using it."""

    def __init__(
        self, url: str, codec: DeliveryCodec, *, prefix: str = PREFIX, wall: Callable[[], float] | None = None
    ) -> None:
        self.codec = codec
        self.holder = uuid.uuid4().hex
        self._wall = wall or time.time
        self._redis = redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)
        self._keys = [prefix, f"{prefix}:due", f"{prefix}:claims"]
        self._due = self._redis.register_script(DUE)
        self._claim = self._redis.register_script(CLAIM)
        self._release = self._redis.register_script(RELEASE)
        self._finish = self._redis.register_script(FINISH)

    def add(self, delivery: Delivery) -> None:
        deliveries, due, claims = self._keys
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(deliveries, delivery.request_id, self.codec.encode(delivery))
        pipe.zadd(due, {delivery.request_id: delivery.next_at})
        pipe.hdel(claims, delivery.request_id)
        pipe.execute()

    def due(self, now: float) -> list[Delivery]:
        found: Any = self._due(keys=self._keys, args=[repr(now), repr(self._wall()), MAX_DUE])
        return [delivery for text in found if (delivery := self.codec.decode(text)) is not None]

    def claim(self, request_id: str, lease: float) -> Delivery | None:
        wall = self._wall()
        deliveries, _, claims = self._keys
        args = [request_id, self.holder, repr(wall), repr(wall + lease)]
        data: Any = self._claim(keys=[deliveries, claims], args=args)
        if data is None:
            return None
        delivery = self.codec.decode(data)
        if delivery is None:  # not ours to deliver (a URL sealed elsewhere): let it go at once
            self._redis.hdel(claims, request_id)
        return delivery

    def release(self, delivery: Delivery) -> None:
        args = [delivery.request_id, self.holder, self.codec.encode(delivery), repr(delivery.next_at)]
        self._release(keys=self._keys, args=args)

    def finish(self, request_id: str) -> None:
        self._finish(keys=self._keys, args=[request_id, self.holder, repr(self._wall())])

    def reset(self) -> None:
        self._redis.delete(*self._keys)

    def close(self) -> None:
        self._redis.close()

    def __len__(self) -> int:
        return int(self._redis.hlen(self._keys[0]))
