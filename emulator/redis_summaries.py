"""The Redis store's lists (`fal_emulator.summary`): sorted sets and sets written with each transition.

The keys, under the store's prefix, each written by the same atomic script as the request's own transition
(`redis_store.APPLY`), so they never disagree with it:

    summaries            HASH  request id -> its summary as JSON
    list                 ZSET  every request id, by submit sequence (newest first: `ZREVRANGE`)
    list:status:{S}      ZSET  the ids in status S, by sequence (one set per status)
    list:endpoint:{E}    ZSET  the ids submitted to endpoint E, by sequence; `endpoints` SET: every E
    list:outcome:{O}     ZSET  the COMPLETED ids with outcome O (`ok`, or the error type), by sequence;
                               `outcomes` SET: every O
    list:failed          ZSET  the COMPLETED ids with any error, by sequence
    queue_seconds        ZSET  id by seconds spent queued (once it left the queue); `run_seconds`: running
    succeeded:{G}        SET   the successes of group G (`[endpoint id, priced inputs]` as JSON);
                               `succeeded` SET: every G

A request's entries are written by one operation of that script (`SUMMARY`, in Lua: a few words sent, not a
command per key); every write is idempotent (`ZADD`, `ZREM`, `SADD`), so it needs no previous state, and it is
skipped when the stored summary is already the new one. A page is one script: the intersection of the filters'
sets (`ZINTERSTORE` into a scratch key it deletes; one filter reads its set directly), its size, a `ZREVRANGE`
and the page's summaries. The totals are another: the sets' sizes and the middle members of the two seconds
sets. Neither decodes a request.
"""

from __future__ import annotations

from typing import Any

from fal_emulator import jsontext
from fal_emulator.lifecycle import Status
from fal_emulator.summary import FAILED, Summary, SummaryQuery, Totals, ranked

Op = list[str]
STATUSES = [status.value for status in Status]
CHUNK = 1000  # summaries read per HMGET (Lua's unpack takes a few thousand values at most)

# Lua functions of the store's write script (`redis_store.APPLY`): the `SUMMARY` and `UNSUMMARY` operations.
# ARGV of SUMMARY: the key prefix, the request id, its sequence, status, endpoint id, outcome ('' before
# COMPLETED), seconds queued and running ('' when not yet), success group, summary JSON. Nothing is written
# when the stored summary is already this one (a poll counted, a log line shown).
SUMMARY_FUNCTIONS = """
local function file_summary(p, id, seq, status, endpoint, outcome, queued, running, group, json)
  if redis.call('HGET', p .. 'summaries', id) == json then return end
  redis.call('HSET', p .. 'summaries', id, json)
  redis.call('ZADD', p .. 'list', seq, id)
  for _, each in ipairs({'IN_QUEUE', 'IN_PROGRESS', 'COMPLETED'}) do
    if each == status then
      redis.call('ZADD', p .. 'list:status:' .. each, seq, id)
    else
      redis.call('ZREM', p .. 'list:status:' .. each, id)
    end
  end
  redis.call('ZADD', p .. 'list:endpoint:' .. endpoint, seq, id)
  redis.call('SADD', p .. 'endpoints', endpoint)
  if outcome ~= '' then
    redis.call('ZADD', p .. 'list:outcome:' .. outcome, seq, id)
    redis.call('SADD', p .. 'outcomes', outcome)
    if outcome == 'ok' then
      redis.call('SADD', p .. 'succeeded:' .. group, id)
      redis.call('SADD', p .. 'succeeded', group)
    else
      redis.call('ZADD', p .. 'list:failed', seq, id)
    end
  end
  if queued ~= '' then redis.call('ZADD', p .. 'queue_seconds', queued, id) end
  if running ~= '' then redis.call('ZADD', p .. 'run_seconds', running, id) end
end
local function unfile_summary(p, id, endpoint, outcome, group)
  redis.call('HDEL', p .. 'summaries', id)
  for _, key in ipairs({'list', 'list:failed', 'queue_seconds', 'run_seconds', 'list:endpoint:' .. endpoint,
                        'list:status:IN_QUEUE', 'list:status:IN_PROGRESS', 'list:status:COMPLETED'}) do
    redis.call('ZREM', p .. key, id)
  end
  if outcome ~= '' then
    redis.call('ZREM', p .. 'list:outcome:' .. outcome, id)
    redis.call('SREM', p .. 'succeeded:' .. group, id)
  end
end
"""
# KEYS: the sets to intersect (one or more), a scratch key, the summaries. ARGV: offset, count (-1: all).
# Answers {how many match, the page's ids, their summaries}.
PAGE = f"""
local n = #KEYS - 2
local source = KEYS[1]
if n > 1 then
  redis.call('ZINTERSTORE', KEYS[n + 1], n, unpack(KEYS, 1, n))
  source = KEYS[n + 1]
end
local total = redis.call('ZCARD', source)
local first, count = tonumber(ARGV[1]), tonumber(ARGV[2])
local last = -1
if count >= 0 then last = first + count - 1 end
local ids = {{}}
if count ~= 0 then ids = redis.call('ZREVRANGE', source, first, last) end
if n > 1 then redis.call('DEL', source) end
local rows = {{}}
for i = 1, #ids, {CHUNK} do
  local part = redis.call('HMGET', KEYS[n + 2], unpack(ids, i, math.min(i + {CHUNK} - 1, #ids)))
  for _, row in ipairs(part) do table.insert(rows, row) end
end
return {{total, ids, rows}}
"""
# ARGV: the key prefix, then the statuses. Answers {sizes of the status sets, {outcome, size, ...} of the errors,
# the middle one or two scores of queue_seconds, then of run_seconds, {group, size, ...}, the newest id}.
TOTALS = """
local p = ARGV[1]
local statuses = {}
for i = 2, #ARGV do table.insert(statuses, redis.call('ZCARD', p .. 'list:status:' .. ARGV[i])) end
local errors = {}
for _, outcome in ipairs(redis.call('SMEMBERS', p .. 'outcomes')) do
  if outcome ~= 'ok' then
    table.insert(errors, outcome)
    table.insert(errors, redis.call('ZCARD', p .. 'list:outcome:' .. outcome))
  end
end
local function middle(key)
  local n = redis.call('ZCARD', key)
  if n == 0 then return {} end
  local scores = {}
  local found = redis.call('ZRANGE', key, math.floor((n - 1) / 2), math.floor(n / 2), 'WITHSCORES')
  for i = 2, #found, 2 do table.insert(scores, found[i]) end
  return scores
end
local groups = {}
for _, group in ipairs(redis.call('SMEMBERS', p .. 'succeeded')) do
  table.insert(groups, group)
  table.insert(groups, redis.call('SCARD', p .. 'succeeded:' .. group))
end
return {statuses, errors, middle(p .. 'queue_seconds'), middle(p .. 'run_seconds'), groups,
        redis.call('ZREVRANGE', p .. 'list', 0, 0)}
"""


def text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SummaryKeys:
    """The list keys under `prefix`, and the writes that keep them."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.summaries = prefix + "summaries"
        self.all = prefix + "list"
        self.failed = prefix + "list:failed"
        self.scratch = prefix + "list:scratch"
        self.seconds = {"queue": prefix + "queue_seconds", "run": prefix + "run_seconds"}
        self.names = {name: prefix + name for name in ("endpoints", "outcomes", "succeeded")}
        self.version = prefix + "lists_version"

    def status(self, status: str) -> str:
        return f"{self.prefix}list:status:{status}"

    def endpoint(self, endpoint_id: str) -> str:
        return f"{self.prefix}list:endpoint:{endpoint_id}"

    def outcome(self, outcome: str) -> str:
        return f"{self.prefix}list:outcome:{outcome}"

    def group(self, summary: Summary) -> str:
        return jsontext.dumps([summary.endpoint_id, dict(sorted((summary.priced or {}).items()))])

    def save(self, summary: Summary) -> list[Op]:
        """The write that files `summary` where it belongs now, and nowhere else it may have been (`SUMMARY`)."""
        return [["SUMMARY", self.prefix, summary.request_id, str(summary.sequence), summary.status.value,
                 summary.endpoint_id, summary.outcome or "", _number(summary.queue_seconds),
                 _number(summary.run_seconds), self.group(summary), summary.to_json()]]  # fmt: skip

    def delete(self, summary: Summary) -> list[Op]:
        """The write that forgets `summary` everywhere (`UNSUMMARY`)."""
        return [["UNSUMMARY", self.prefix, summary.request_id, summary.endpoint_id, summary.outcome or "",
                 self.group(summary)]]  # fmt: skip

    def reset(self, members: Any) -> list[Op]:
        """Deleting every list key; `members(key)` gives a set's members (the named endpoints, outcomes, groups)."""
        keys = [self.summaries, self.all, self.failed, *self.seconds.values(), *map(self.status, STATUSES)]
        keys += [self.endpoint(text(name)) for name in members(self.names["endpoints"])]
        keys += [self.outcome(text(name)) for name in members(self.names["outcomes"])]
        keys += [f"{self.names['succeeded']}:{text(name)}" for name in members(self.names["succeeded"])]
        return [["DEL", key] for key in [*keys, *self.names.values()]]

    def page_keys(self, query: SummaryQuery) -> list[str]:
        """The sets whose intersection `query` matches, then the scratch key and the summaries."""
        sets = []
        if query.endpoint_id is not None:
            sets.append(self.endpoint(query.endpoint_id))
        if query.status is not None:
            sets.append(self.status(query.status.value))
        if query.error_type is not None:
            sets.append(self.failed if query.error_type == FAILED else self.outcome(query.error_type))
        return [*(sets or [self.all]), self.scratch, self.summaries]

    def page(self, answer: Any) -> tuple[list[Summary], int]:
        """The PAGE script's answer as (summaries, how many match); a summary that cannot be read is left out."""
        total, _, rows = answer
        summaries = []
        for row in rows:
            if row is None:
                continue
            try:
                summaries.append(Summary.from_json(text(row)))
            except (ValueError, TypeError, KeyError):
                continue
        return summaries, int(total)

    def totals(self, answer: Any) -> Totals:
        """The TOTALS script's answer as Totals."""
        statuses, errors, queued, running, groups, newest = answer
        pairs = [(text(errors[i]), int(errors[i + 1])) for i in range(0, len(errors), 2)]
        succeeded = []
        for i in range(0, len(groups), 2):
            endpoint_id, priced = jsontext.loads(text(groups[i]))
            if int(groups[i + 1]):
                succeeded.append((str(endpoint_id), priced, int(groups[i + 1])))
        return Totals(
            by_status={status: int(count) for status, count in zip(STATUSES, statuses, strict=True)},
            by_error_type=ranked(pair for pair in pairs if pair[1]),
            median_seconds={Status.IN_QUEUE.value: _mean(queued), Status.IN_PROGRESS.value: _mean(running)},
            succeeded=succeeded,
            newest=text(newest[0]) if newest else None,
        )


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)


def _mean(scores: list[Any]) -> float | None:
    return sum(float(score) for score in scores) / len(scores) if scores else None
