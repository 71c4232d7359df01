-- Releases a "pending" lease taken by claim_post.lua after a failed post, so a retry may claim
-- the part at once instead of waiting for the lease to expire.
--
-- KEYS[1]: the part's marker, `{tenant}:posted:{job}:{part}`.
--
-- Atomic (compare then delete) so that a `done:<id>` marker written in between is never deleted.
if redis.call('GET', KEYS[1]) == 'pending' then
  return redis.call('DEL', KEYS[1])
end
return 0
