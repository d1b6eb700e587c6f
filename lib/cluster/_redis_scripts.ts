/**
 * The Lua scripts of the Redis engine: each a step that must be atomic (a lease and its membership entry, a
 * route change and its ctl event, a retained write and its ctl event, an ownership change and its epoch, a
 * session write and its fencing check). `ARGV[...]` names are listed above each script. Scripts that touch other
 * nodes' keys build their names from the prefix: fine on one Redis, not in Redis Cluster.
 *
 * @module
 */

/** A script with the number of KEYS it takes. */
export interface RedisScript {
  readonly keys: number;
  readonly lua: string;
}

const NOW_MS = "local now = redis.call('TIME'); now = now[1] * 1000 + math.floor(now[2] / 1000)";
/**
 * Appends to the control stream with the next sequence number (`q`): numbers without holes, so a reader sees at
 * once when entries it had not read were trimmed away.
 */
const CTL = `local function ctl(key, maxlen, ...)
  return redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', 'q', redis.call('INCR', key .. ':seq'), ...)
end`;
const LIVE = `local function live(prefix, n)
  return redis.call('EXISTS', prefix .. 'node:' .. n) == 1 and redis.call('EXISTS', prefix .. 'dead:' .. n) == 0
end`;

/** KEYS cluster, nodes, lease, dead, ctl; ARGV me, ttl, cluster id to set if none, ctl maxlen. */
const join: RedisScript = {
  keys: 5,
  lua: `${CTL}
${NOW_MS}
if redis.call('EXISTS', KEYS[4]) == 1 then return {'fenced'} end
redis.call('SET', KEYS[1], ARGV[3], 'NX')
redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[1])
ctl(KEYS[5], ARGV[4], 'k', 'node', 'n', ARGV[1], 's', 'joined')
return {'ok', redis.call('GET', KEYS[1])}`,
};

/**
 * KEYS cluster, nodes, lease, dead, ctl; ARGV me, ttl, cluster id. Answers `reset` (the data is gone),
 * `fenced` (declared dead) or `ok`.
 */
const renew: RedisScript = {
  keys: 5,
  lua: `${NOW_MS}
if redis.call('GET', KEYS[1]) ~= ARGV[3] then return {'reset'} end
if redis.call('EXISTS', KEYS[4]) == 1 then return {'fenced'} end
redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[1])
return {'ok'}`,
};

/** KEYS sweeper, nodes, ctl; ARGV me, ttl, prefix, ctl maxlen, tombstone ttl. Answers the nodes declared dead. */
const sweep: RedisScript = {
  keys: 3,
  lua: `${CTL}
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return {} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local dead = {}
for _, n in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if redis.call('EXISTS', ARGV[3] .. 'node:' .. n) == 0 then
    redis.call('SET', ARGV[3] .. 'dead:' .. n, '1', 'PX', ARGV[5])
    redis.call('ZREM', KEYS[2], n)
    ctl(KEYS[3], ARGV[4], 'k', 'node', 'n', n, 's', 'dead')
    dead[#dead + 1] = n
  end
end
return dead`,
};

/** KEYS lease, dead, nodes, ctl; ARGV me, ctl maxlen, tombstone ttl. */
const leave: RedisScript = {
  keys: 4,
  lua: `${CTL}
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[1])
ctl(KEYS[4], ARGV[2], 'k', 'node', 'n', ARGV[1], 's', 'dead')
return 1`,
};

/** KEYS nodes; ARGV prefix. Answers the live incarnations. */
const liveNodes: RedisScript = {
  keys: 1,
  lua: `${LIVE}
local out = {}
for _, n in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if live(ARGV[1], n) then out[#out + 1] = n end
end
return out`,
};

/** KEYS routes, route version, ctl; ARGV me, add|remove, ctl maxlen, filters…. Answers the route version. */
const routes: RedisScript = {
  keys: 3,
  lua: `${CTL}
for i = 4, #ARGV do
  local changed
  if ARGV[2] == 'add' then changed = redis.call('SADD', KEYS[1], ARGV[i])
  else changed = redis.call('SREM', KEYS[1], ARGV[i]) end
  if changed == 1 then
    local v = redis.call('INCR', KEYS[2])
    ctl(KEYS[3], ARGV[3], 'k', 'route', 'n', ARGV[1], 'o', ARGV[2], 'f', ARGV[i],
      'v', v)
  end
end
return tonumber(redis.call('GET', KEYS[2]) or '0')`,
};

/**
 * KEYS nodes, route version, ctl; ARGV prefix. Answers the last ctl id, the route version, the ctl sequence
 * number and, per live node, its name and filters: one consistent cut to read the ctl stream from.
 */
const snapshot: RedisScript = {
  keys: 3,
  lua: `${LIVE}
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
local out = {last[1] and last[1][1] or '0-0', tonumber(redis.call('GET', KEYS[2]) or '0'),
  tonumber(redis.call('GET', KEYS[3] .. ':seq') or '0')}
for _, n in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if live(ARGV[1], n) then
    out[#out + 1] = n
    out[#out + 1] = redis.call('SMEMBERS', ARGV[1] .. 'routes:' .. n)
  end
end
return out`,
};

/** KEYS retained, ctl; ARGV topic, encoded message ('' deletes), ctl maxlen. */
const retain: RedisScript = {
  keys: 2,
  lua: `${CTL}
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  ctl(KEYS[2], ARGV[3], 'k', 'ret', 't', ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  ctl(KEYS[2], ARGV[3], 'k', 'ret', 't', ARGV[1], 'm', ARGV[2])
end
return 1`,
};

/**
 * KEYS session, epoch, outgoing, incoming, will, ctl; ARGV me, prefix, mode, client id, dead owner, ctl maxlen,
 * the claiming CONNECT's will ('' none: the stored one stays; else it replaces it once read into the answer).
 * Takes the client id with the next epoch and answers `{epoch, session, outgoing, incoming[], will}`, the outgoing
 * entries joined by newlines (JSON has none): one string to parse instead of one per queued message. Modes:
 * `ask` first asks a live other holder to step down instead (answers `{its name, the session record or ''}`: the
 * claimer waits for its release, then claims with `take`): the live node whose claim is under way (field
 * `claimer`: it hands over once it has the id), else the live owner; the asker is the claimer from then on, so
 * the newest claim is served last; `adopt` takes only from that dead owner (answers nil when the adoption lost).
 */
const claim: RedisScript = {
  keys: 6,
  lua: `${CTL}
${LIVE}
if redis.call('EXISTS', ARGV[2] .. 'dead:' .. ARGV[1]) == 1 then
  return redis.error_reply('FENCED this node was declared dead')
end
local owner = redis.call('HGET', KEYS[1], 'owner')
local claimer = redis.call('HGET', KEYS[1], 'claimer')
if ARGV[3] == 'adopt' then
  if owner ~= ARGV[5] or live(ARGV[2], owner) then return false end
elseif ARGV[3] == 'ask' then
  local holder
  if claimer and claimer ~= ARGV[1] and live(ARGV[2], claimer) then holder = claimer
  elseif owner and owner ~= ARGV[1] and live(ARGV[2], owner) then holder = owner end
  if holder then
    redis.call('HSET', KEYS[1], 'claimer', ARGV[1])
    ctl(KEYS[6], ARGV[6], 'k', 'kick', 'c', ARGV[4], 'to', holder, 'by', ARGV[1])
    return {holder, redis.call('HGET', KEYS[1], 'session') or ''}
  end
end
if claimer == ARGV[1] then redis.call('HDEL', KEYS[1], 'claimer') end
if owner and owner ~= ARGV[1] then redis.call('SREM', ARGV[2] .. 'owned:' .. owner, ARGV[4]) end
local e = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
redis.call('SADD', ARGV[2] .. 'owned:' .. ARGV[1], ARGV[4])
local will = redis.call('GET', KEYS[5]) or ''
if ARGV[7] and ARGV[7] ~= '' then redis.call('SET', KEYS[5], ARGV[7]) end
return {e, redis.call('HGET', KEYS[1], 'session') or '', table.concat(redis.call('HVALS', KEYS[3]), '\\n'),
  redis.call('SMEMBERS', KEYS[4]), will}`,
};

/** KEYS session, epoch, ctl; ARGV me, epoch, client id, prefix, ctl maxlen. */
const release: RedisScript = {
  keys: 3,
  lua: `${CTL}
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], 'owner')
redis.call('SREM', ARGV[4] .. 'owned:' .. ARGV[1], ARGV[3])
ctl(KEYS[3], ARGV[5], 'k', 'rel', 'c', ARGV[3], 'n', ARGV[1])
return 1`,
};

/**
 * One group commit's session writes in one call. No KEYS: each client's five session keys are built from the
 * prefix as `RedisKeys.session` names them. ARGV me, prefix, then per client its epoch, client id, op count n and
 * n op triples (kind, a, b). Per client all of its ops, or none when this node is not its owner at that epoch
 * (or was declared dead). Answers 1 or 0 per client, in order. One command per batch instead of one per client:
 * the client library's cost per command (a timer, a promise, a reply) was most of a commit's CPU when a batch
 * holds many sessions (50 connects at a time in `bench/cluster_bench.ts connects`).
 */
const applyAll: RedisScript = {
  keys: 0,
  lua: `local me, prefix = ARGV[1], ARGV[2]
local dead = redis.call('EXISTS', prefix .. 'dead:' .. me) == 1
local out = {}
local a = 3
while a <= #ARGV do
  local epoch, cid, n = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  a = a + 3
  local tag = '{' .. cid .. '}'
  local s, o, w = prefix .. 's:' .. tag, prefix .. 'o:' .. tag, prefix .. 'w:' .. tag
  if not dead and redis.call('HGET', s, 'owner') == me and redis.call('GET', prefix .. 'e:' .. tag) == epoch then
    local i = prefix .. 'i:' .. tag
    for j = a, a + 3 * n - 1, 3 do
      local op, x, y = ARGV[j], ARGV[j + 1], ARGV[j + 2]
      if op == 'ps' then redis.call('HSET', s, 'session', x)
      elseif op == 'ds' then
        redis.call('DEL', s, o, i, w)
        redis.call('SREM', prefix .. 'owned:' .. me, cid)
      elseif op == 'po' then redis.call('HSET', o, x, y)
      elseif op == 'do' then redis.call('HDEL', o, x)
      elseif op == 'pi' then redis.call('SADD', i, x)
      elseif op == 'di' then redis.call('SREM', i, x)
      elseif op == 'pw' then redis.call('SET', w, x)
      elseif op == 'dw' then redis.call('DEL', w) end
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
  a = a + 3 * n
end
return out`,
};

/**
 * KEYS session, epoch, outgoing, incoming, will; ARGV me, epoch, prefix, client id, session ('' none),
 * will ('' none), outgoing count n, n pairs (seq, entry), incoming ids…. Writes back an owned session after
 * Redis lost its data, unless another node owns it by now.
 */
const reseedSession: RedisScript = {
  keys: 5,
  lua: `local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
redis.call('SADD', ARGV[3] .. 'owned:' .. ARGV[1], ARGV[4])
if tonumber(redis.call('GET', KEYS[2]) or '0') < tonumber(ARGV[2]) then redis.call('SET', KEYS[2], ARGV[2]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'session', ARGV[5]) end
if ARGV[6] ~= '' then redis.call('SET', KEYS[5], ARGV[6]) end
local n = tonumber(ARGV[7])
for j = 0, n - 1 do redis.call('HSET', KEYS[3], ARGV[8 + 2 * j], ARGV[9 + 2 * j]) end
for j = 8 + 2 * n, #ARGV do redis.call('SADD', KEYS[4], ARGV[j]) end
return 1`,
};

/**
 * KEYS lease, lossy inbox, durable inbox, cursor, routes, owned, stats, route version, ctl; ARGV node,
 * ctl maxlen. Forgets a node that is not live: its routes go with a ctl event each.
 */
const forget: RedisScript = {
  keys: 9,
  lua: `${CTL}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for _, f in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  local v = redis.call('INCR', KEYS[8])
  ctl(KEYS[9], ARGV[2], 'k', 'route', 'n', ARGV[1], 'o', 'remove', 'f', f, 'v', v)
end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[7])
if redis.call('SCARD', KEYS[6]) == 0 then redis.call('DEL', KEYS[6]) end
return 1`,
};

/**
 * KEYS ctl; ARGV ctl maxlen, client id, the claiming node, me, kind. A note to the claiming node from the node
 * it asked, on the control stream: `ack`, this node is stepping down (it opens no connection for the id itself
 * any more: the claimer may answer its CONNECT); `rel`, this node holds nothing for the id
 * (`ClusterEngine.decline`: the claimer goes on; ownership is not touched, the claimer's `take` decides it).
 */
const claimNote: RedisScript = {
  keys: 1,
  lua: `${CTL}
ctl(KEYS[1], ARGV[1], 'k', ARGV[5], 'c', ARGV[2], 'to', ARGV[3], 'n', ARGV[4])
return 1`,
};

/** Every script by the name it is defined under on the client. */
export const SCRIPTS = {
  mqJoin: join,
  mqRenew: renew,
  mqSweep: sweep,
  mqLeave: leave,
  mqLiveNodes: liveNodes,
  mqRoutes: routes,
  mqSnapshot: snapshot,
  mqRetain: retain,
  mqClaim: claim,
  mqRelease: release,
  mqClaimNote: claimNote,
  mqApplyAll: applyAll,
  mqReseedSession: reseedSession,
  mqForget: forget,
} as const satisfies Record<string, RedisScript>;

/** The name of one of {@linkcode SCRIPTS}. */
export type ScriptName = keyof typeof SCRIPTS;
