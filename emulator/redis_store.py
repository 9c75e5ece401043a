"""A request store in Redis, shared by emulator processes on any number of hosts (`--store redis`).

Same interface as `fal_emulator.store.MemoryStore`; selected with `--store redis --redis-url URL`
(redis-py). The keys, under the prefix `fal-emulator:`:

    requests        HASH   request id -> the request as JSON (`sqlite_store.encode`)
    queued:{app id} ZSET   request id by queue order (priority, then submit sequence): `ZRANK` is the position
    apps            SET    app ids that have a queue
    ready           ZSET   ready request ids by queue order, account-wide: the head starts next
    running         SET    IN_PROGRESS request ids: `SCARD` is the running count
    wakeups         ZSET   "kind|sequence|id" by due time (a member per request and kind)
    sequence        STRING submit sequence numbers (`INCR`): ids are a function of (seed, sequence), so
                           every host agrees on them; random UUIDs without a seed
    lock            STRING the store lock (a token, `SET NX PX`)
    summaries, list, list:*, ...   what lists show, kept by the same scripts (`fal_emulator.redis_summaries`);
                           `lists_version` says they exist (data from an older release gets them once)

Each queue operation holds the store lock, as SQLite's `BEGIN IMMEDIATE` does, so the hosts serialise;
it expires after `LOCK_MS` if its process dies. Writes are atomic Lua scripts (`APPLY`): an operation's
transitions (a request's new state and index entries, the wake-ups scheduled before it, the removal of the
wake-up that caused it) go to Redis together, fenced by the lock token, with the operation's next read or
with the lock's release, before the answer. A process killed at any point (`kill -9`) leaves every request
consistent with its indexes; a wake-up it consumed but did not act on is played again (the queue ignores
one that no longer applies). Not for Redis Cluster: the scripts touch keys they do not declare.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import redis

from fal_emulator.lifecycle import Request, Status, order_key
from fal_emulator.redis_summaries import PAGE, STATUSES, SUMMARY_FUNCTIONS, TOTALS, SummaryKeys
from fal_emulator.request_codec import UNREADABLE, decode, encode
from fal_emulator.store import WAKEUP_KINDS, WAKEUP_ORDER, Wakeup, WakeupKind
from fal_emulator.summary import Summary, SummaryQuery, Totals, summarize

log = logging.getLogger("fal_emulator.store")

PREFIX = "fal-emulator:"
LOCK_MS = 5000  # the lock outlives its holder by at most this long
LOCK_WAIT = 30.0  # seconds to wait for the lock before giving up
LISTS_VERSION = "1"  # `lists_version`: the layout of the list keys (`redis_summaries`) this release keeps

# KEYS: the lock, the wake-ups. ARGV: a new token, the lock's expiry (ms). Takes the lock if it is free and
# answers the time of the earliest wake-up ("inf" when there is none); nil when another process holds it.
BEGIN = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local head = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if head[2] then return head[2] end
  return 'inf'
end
return false
"""
# KEYS: the lock. ARGV: our token, milliseconds to keep the lock (0: release it), then each operation as its
# word count followed by its words. Applies them all, or nothing if the lock is no longer ours. The operations
# `SUMMARY ...` and `UNSUMMARY ...` file a request's summary in the list keys, or take it out (`redis_summaries`).
APPLY = (
    SUMMARY_FUNCTIONS
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('fal-emulator: the store lock was lost (held longer than its expiry)')
end
local i = 3
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  if ARGV[i + 1] == 'SUMMARY' then
    file_summary(unpack(ARGV, i + 2, i + n))
  elseif ARGV[i + 1] == 'UNSUMMARY' then
    unfile_summary(unpack(ARGV, i + 2, i + n))
  else
    redis.call(unpack(ARGV, i + 1, i + n))
  end
  i = i + n + 1
end
if ARGV[2] == '0' then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
"""
)
# KEYS: the wake-ups, the requests, the app's queue. ARGV: now, the request id. A read without the lock:
# the request and its rank in the app's queue (-1: not queued), or nil when it is unknown or a wake-up is due.
READ_IDLE = """
if redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)[1] then return false end
local data = redis.call('HGET', KEYS[2], ARGV[2])
if not data then return false end
return {data, redis.call('ZRANK', KEYS[3], ARGV[2]) or -1}
"""

Op = list[str]


def text(value: object) -> str:
    """A Redis reply as text (the client decodes replies; the types allow bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


class StoreUnavailable(OSError):
    """Redis cannot be reached (or the store lock cannot be had)."""


class RedisStore:
    """Requests in the Redis server at `url` (`redis://host:port/db`), shared by every process using it.

    Within a queue operation writes are buffered and sent with the next read (one pipelined round trip) or
    with the lock's release, so an operation costs a few round trips: a status poll of a finished request
    is three (take the lock and learn the earliest wake-up, read it, release).
    """

    def __init__(self, url: str, *, prefix: str = PREFIX) -> None:
        self.url = url
        self._redis = redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            raise StoreUnavailable(f"cannot reach Redis at {url}: {exc}") from exc
        self._begin = self._redis.register_script(BEGIN)
        self._apply = self._redis.register_script(APPLY)
        self._read_idle = self._redis.register_script(READ_IDLE)
        self._page = self._redis.register_script(PAGE)
        self._totals = self._redis.register_script(TOTALS)
        self._lists = SummaryKeys(prefix)
        self._keys = {name: prefix + name for name in ("requests", "apps", "ready", "running", "wakeups", "lock")}
        self._keys["sequence"] = prefix + "sequence"
        self._queued_prefix = prefix + "queued:"
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._token = ""
        self._buffer: list[Op] = []  # writes of this operation not sent yet
        self._earliest = -math.inf  # every wake-up is due at or after this (known while the lock is held)
        self._reported: set[str] = set()
        self._build_lists()

    def _build_lists(self) -> None:
        """Lists for requests stored by a release before them (no `lists_version`): built once, under the lock."""
        version = self._lists.version
        if self._redis.get(version) == LISTS_VERSION:
            return
        with self.transaction():
            if self._redis.get(version) == LISTS_VERSION:  # another host built them meanwhile
                return
            self._buffer += self._lists.reset(self._redis.smembers)
            for index, request in enumerate(self.all()):
                self._buffer += self._lists.save(summarize(request))
                if index % 500 == 499:
                    self._send(self._take())
            self._buffer.append(["SET", version, LISTS_VERSION])

    # -- the lock and the write buffer ------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the store lock (re-entrant) for one queue operation; other processes wait for it. Its writes
        reach Redis by the time it ends; an operation that fails writes nothing more."""
        with self._thread_lock:
            outermost = self._depth == 0
            if outermost:
                self._acquire()
            self._depth += 1
            try:
                yield
            except BaseException:
                if outermost:
                    self._buffer.clear()
                raise
            finally:
                self._depth -= 1
                if outermost:
                    self._earliest = -math.inf
                    self._send(self._take(), release=True)

    def _acquire(self) -> None:
        token, pause = uuid.uuid4().hex, 0.0002
        deadline = time.monotonic() + LOCK_WAIT
        keys = [self._keys["lock"], self._keys["wakeups"]]
        while (head := self._begin(keys=keys, args=[token, LOCK_MS])) is None:
            if time.monotonic() > deadline:
                raise StoreUnavailable(f"the Redis store lock at {self.url} was held for more than {LOCK_WAIT} s")
            time.sleep(pause)
            pause = min(pause * 2, 0.005)
        self._token = token
        self._earliest = float(head)

    def _take(self) -> list[Op]:
        ops, self._buffer = self._buffer, []
        return ops

    def _apply_args(self, ops: list[Op], release: bool) -> list[str]:
        args: list[str] = [self._token, "0" if release else str(LOCK_MS)]
        for op in ops:
            args += [str(len(op)), *op]
        return args

    def _send(self, ops: list[Op], *, release: bool = False) -> None:
        """Apply `ops` atomically under the lock (renewing it, or releasing it)."""
        self._apply(keys=[self._keys["lock"]], args=self._apply_args(ops, release))

    def _write(self, ops: list[Op]) -> None:
        """Buffer a transition (sent with the next read, or when the operation ends)."""
        if self._depth:
            self._buffer += ops
        else:
            with self.transaction():
                self._buffer += ops

    def _read(self, command: str, *args: Any, **kwargs: Any) -> Any:
        """Run a read command after the buffered writes, in one round trip."""
        if not self._buffer:
            return getattr(self._redis, command)(*args, **kwargs)
        pipe = self._redis.pipeline(transaction=False)
        self._apply(keys=[self._keys["lock"]], args=self._apply_args(self._take(), False), client=pipe)
        getattr(pipe, command)(*args, **kwargs)
        return pipe.execute()[-1]

    # -- requests -------------------------------------------------------------------------------

    def reset(self) -> None:
        with self.transaction():
            self._buffer.clear()
            queues = [["DEL", self._queued(text(app))] for app in self._redis.smembers(self._keys["apps"])]
            names = ("requests", "apps", "ready", "running", "wakeups", "sequence")
            self._buffer += [["DEL", self._keys[name]] for name in names] + queues
            self._buffer += self._lists.reset(self._redis.smembers)
        self._reported.clear()

    def next_sequence(self) -> int:
        return int(self._redis.incr(self._keys["sequence"]))

    def _queued(self, app_id: str) -> str:
        return self._queued_prefix + app_id

    def _decode(self, request_id: str, stored: Any) -> Request | None:
        if stored is None:
            return None
        try:
            return decode(text(stored))
        except UNREADABLE as exc:
            if request_id not in self._reported:
                self._reported.add(request_id)
                log.error("skipping request %s: its stored value is unreadable (%s: %.200s)",
                          request_id, type(exc).__name__, exc)  # fmt: skip
            return None

    def add(self, request: Request) -> None:
        self.save(request)

    def get(self, request_id: str) -> Request | None:
        return self._decode(request_id, self._read("hget", self._keys["requests"], request_id))

    def all(self) -> list[Request]:
        """Every readable request, oldest first."""
        stored = self._read("hgetall", self._keys["requests"])
        requests = [request for key, value in stored.items() if (request := self._decode(text(key), value)) is not None]
        return sorted(requests, key=lambda request: request.sequence)

    def save(self, request: Request) -> None:
        request_id, key = request.request_id, str(order_key(request))
        queued, keys = self._queued(request.app_id), self._keys
        ops: list[Op] = [["HSET", keys["requests"], request_id, encode(request)]]
        if request.status is Status.IN_QUEUE:
            ops += [["ZADD", queued, key, request_id], ["SADD", keys["apps"], request.app_id]]
            ready = ["ZADD", keys["ready"], key, request_id] if request.ready else ["ZREM", keys["ready"], request_id]
            ops.append(ready)
        else:
            ops += [["ZREM", queued, request_id], ["ZREM", keys["ready"], request_id]]
        running = request.status is Status.IN_PROGRESS
        ops.append(["SADD" if running else "SREM", keys["running"], request_id])
        self._write(ops + self._lists.save(summarize(request)))

    def delete(self, request: Request) -> None:
        request_id, keys = request.request_id, self._keys
        self._write([
            ["HDEL", keys["requests"], request_id], ["ZREM", self._queued(request.app_id), request_id],
            ["ZREM", keys["ready"], request_id], ["SREM", keys["running"], request_id],
            *self._lists.delete(summarize(request)),
        ])  # fmt: skip

    # -- the runners ------------------------------------------------------------------------------

    def schedule(self, request: Request, at: float, kind: WakeupKind) -> None:
        """Look at `request` again at `at`; written with the request's next transition."""
        member = f"{WAKEUP_ORDER[kind]}|{request.sequence:015d}|{request.request_id}"
        self._earliest = min(self._earliest, at)
        self._write([["ZADD", self._keys["wakeups"], repr(at), member]])

    def next_due(self, now: float) -> Wakeup | None:
        """The earliest event due at or before `now`; its removal is written with the transition it causes."""
        with self.transaction():
            if now < self._earliest:
                return None
            due = self._read("zrangebyscore", self._keys["wakeups"], "-inf", repr(now), start=0, num=1, withscores=True)
            if not due:
                self._earliest = math.nextafter(now, math.inf)
                return None
            member, at = text(due[0][0]), float(due[0][1])
            self._earliest = at
            kind, _, request_id = member.split("|", 2)
            self._buffer.append(["ZREM", self._keys["wakeups"], member])
            return Wakeup(at, WAKEUP_KINDS[int(kind)], self.get(request_id))

    def first_ready(self) -> Request | None:
        """The ready request first in queue order; one that cannot be read loses its place."""
        with self.transaction():
            while head := self._read("zrange", self._keys["ready"], 0, 0):
                request = self.get(text(head[0]))
                if request is not None:
                    return request
                self._write([["ZREM", self._keys["ready"], text(head[0])]])
            return None

    def running_count(self) -> int:
        return int(self._read("scard", self._keys["running"]))

    def queue_position(self, request: Request) -> int:
        """Requests of the same app ahead of `request` in queue order (`ZRANK`, O(log n))."""
        queued = self._queued(request.app_id)
        rank: Any = self._read("zrank", queued, request.request_id)
        if rank is None:  # not (or no longer) queued: count what is ahead of its place
            return int(self._read("zcount", queued, "-inf", f"({order_key(request)}"))
        return int(rank)

    def queued_count(self, app_id: str) -> int:
        return int(self._read("zcard", self._queued(app_id)))

    def read_idle(self, request_id: str, app_id: str, now: float) -> tuple[Request, int | None] | None:
        """The request and its queue position unless a wake-up is due by `now`: one script, no lock."""
        if self._depth:
            return None
        keys = [self._keys["wakeups"], self._keys["requests"], self._queued(app_id)]
        found = self._read_idle(keys=keys, args=[repr(now), request_id])
        request = self._decode(request_id, found[0]) if found else None
        if request is None or request.app_id != app_id:
            return None
        rank = int(found[1])
        if request.status is Status.IN_QUEUE:
            return (request, rank) if rank >= 0 else None
        return request, None

    # -- lists --------------------------------------------------------------------------------------

    def _flush(self) -> None:
        """Send this operation's buffered writes before a read that does not go through `_read`."""
        if self._buffer:
            self._send(self._take())

    def summaries(self, query: SummaryQuery, offset: int, limit: int | None) -> tuple[list[Summary], int]:
        """One page of summaries, newest first, and how many match: one script, no lock."""
        self._flush()
        answer = self._page(keys=self._lists.page_keys(query), args=[offset, -1 if limit is None else limit])
        return self._lists.page(answer)

    def totals(self) -> Totals:
        """Counts over every request, from the list keys' sizes: one script, no lock."""
        self._flush()
        return self._lists.totals(self._totals(keys=[], args=[self._lists.prefix, *STATUSES]))

    def close(self) -> None:
        self._redis.close()

    def __len__(self) -> int:
        return int(self._read("hlen", self._keys["requests"]))
