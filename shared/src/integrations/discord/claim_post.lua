-- Claims the right to post one part of a job's output to Discord.
--
-- KEYS[1]: the part's marker, `{tenant}:posted:{job}:{part}` (built by KeySpace::data).
-- ARGV[1]: lease of the "pending" state in milliseconds (longer than one Discord call).
--
-- Values: `pending` while a run is posting (expires with the lease, so a run killed mid-call
-- frees the part), `done:<message id>` once posted (kept one day by the caller's SET).
--
-- Returns {"claimed"} when this run may post, {"done", id} when the part is already posted,
-- {"busy", pttl} when another run holds a live lease.
--
-- Atomic so that two runs of the same job (a stalled job reclaimed while its first worker still
-- runs) never both see the marker absent and both post.
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], 'pending', 'PX', ARGV[1])
  return {'claimed'}
end
if string.sub(v, 1, 5) == 'done:' then
  return {'done', string.sub(v, 6)}
end
return {'busy', tostring(redis.call('PTTL', KEYS[1]))}
