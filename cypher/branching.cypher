// Forks and merges. A fork is a new session whose HEAD is its parent's message k and whose
// runs are the parent's cut at k: nothing is copied, so a fork costs the same at any length.

// name: fork
// Forks $parent at position $at (negative counts from the end; null: the newest message) or at
// message $at_id, creating the sessions $children ([{id, props, fork}]) in one statement.
// Locks the tree root (its tree_version counts forks) and then the parent. With $before the
// fork ends just before the resolved message (edit-as-branch; at index 0 an empty fork).
// At null on an empty session is an empty fork (position -1). Nothing is written
// unless the status is 'ok'; 'replay' means the children exist as this call ($op) or an
// identical earlier call made them. `made` holds the children as stored ('ok', 'replay').
MATCH (p:SGSession {tenant: $tenant, id: $parent})
MATCH (r:SGSession {tenant: $tenant, id: p.root})
SET r.tree_version = r.tree_version, p.version = p.version
WITH p, r
OPTIONAL MATCH (am:SGMessage {tenant: $tenant, id: $at_id})
WITH p, r, am, p.length AS n,
     reduce(acc = [0], i IN range(0, size(p.run_owner) - 1) |
            acc + [last(acc) + p.run_end[i] - p.run_start[i] + 1]) AS bounds
WITH p, r, n, bounds,
     CASE WHEN $at_id IS NOT NULL THEN
            CASE WHEN am IS NULL THEN null
                 ELSE head([i IN range(0, size(p.run_owner) - 1)
                            WHERE p.run_owner[i] = am.session_id
                              AND p.run_start[i] <= am.idx AND am.idx <= p.run_end[i]
                            | bounds[i] + am.idx - p.run_start[i]]) END
          WHEN $at IS NULL THEN n - 1
          WHEN $at < 0 THEN n + $at
          ELSE $at END AS k0
WITH p, r, n, bounds, k0, CASE WHEN $before THEN k0 - 1 ELSE k0 END AS k
WITH p, r, n, k0, k, [i IN range(0, size(p.run_owner) - 1) WHERE k IS NOT NULL AND bounds[i] <= k
                  | [p.run_owner[i], p.run_start[i],
                     CASE WHEN p.run_end[i] < p.run_start[i] + k - bounds[i] THEN p.run_end[i]
                          ELSE p.run_start[i] + k - bounds[i] END]] AS cut
OPTIONAL MATCH (atm:SGMessage {tenant: $tenant, session_id: last(cut)[0], idx: last(cut)[2]})
CALL (p, atm) {
  UNWIND $children AS c
  OPTIONAL MATCH (x:SGSession {tenant: $tenant, id: c.id})
  OPTIONAL MATCH (x)-[xf:FORKED_FROM]->(xp:SGSession)
  RETURN count(x) AS taken,
         count(CASE WHEN $op IN coalesce(x.ops, [])
                      OR (xp = p AND coalesce(xf.at, '') = coalesce(atm.id, '')) THEN 1 END) AS ours
}
WITH p, r, n, k0, k, cut, atm, taken, ours,
     CASE WHEN taken > 0 AND ours = size($children) THEN 'replay'
          WHEN taken > 0 THEN 'exists'
          WHEN p.status = 'deleted' THEN 'deleted'
          WHEN $at_id IS NOT NULL AND k0 IS NULL THEN 'message'
          WHEN k0 IS NULL OR k0 >= n OR (k0 < 0 AND $at IS NOT NULL) OR k < -1 THEN 'position'
          ELSE 'ok' END AS status
CALL (p, r, k, cut, atm, status) {
  WITH p, r, k, cut, atm WHERE status = 'ok'
  SET r.tree_version = r.tree_version + 1
  WITH p, r, k, cut, atm
  UNWIND $children AS c
  CREATE (x:SGSession)
  SET x += c.props, x.tenant = $tenant, x.id = c.id, x.root = r.id, x.version = 1,
      x.user_id = coalesce(c.props.user_id, p.user_id),
      x.length = k + 1, x.next_idx = 0, x.ops = [$op],
      x.run_owner = [run IN cut | run[0]], x.run_start = [run IN cut | run[1]],
      x.run_end = [run IN cut | run[2]],
      x.created_at = datetime.transaction(), x.updated_at = datetime.transaction()
  CREATE (x)-[f:FORKED_FROM]->(p)
  SET f += c.fork, f.at = atm.id, f.position = k, f.created_at = datetime.transaction()
  FOREACH (_ IN CASE WHEN atm IS NULL THEN [] ELSE [1] END | CREATE (x)-[:HEAD]->(atm))
}
CALL (status) {
  UNWIND $children AS c
  OPTIONAL MATCH (x:SGSession {tenant: $tenant, id: c.id})
  WHERE status IN ['ok', 'replay']
  OPTIONAL MATCH (x)-[:HEAD]->(h:SGMessage)
  OPTIONAL MATCH (x)-[f:FORKED_FROM]->(xp:SGSession)
  RETURN collect(CASE WHEN x IS NULL THEN null
                      ELSE [x {.*}, h.id, f {.*, parent_id: xp.id}] END) AS made
}
RETURN status, k AS position, atm.id AS at, r.tree_version AS tree_version, r.id AS root,
       datetime.transaction().epochMillis AS created_at, made

// name: lock_sessions
// Takes the write locks of the roots of sessions $ids and then of the sessions themselves
// (roots first, then ids in order, so two writers never wait on each other in a cycle), and
// returns them with their head and fork point. Used by the writes that read before they
// write (merge, clear_history, purge).
UNWIND $ids AS id
MATCH (s:SGSession {tenant: $tenant, id: id})
WITH s ORDER BY s.root, s.id
MATCH (r:SGSession {tenant: $tenant, id: s.root})
SET r.tree_version = r.tree_version
WITH s ORDER BY s.id
SET s.version = s.version
WITH s
OPTIONAL MATCH (s)-[:HEAD]->(h:SGMessage)
OPTIONAL MATCH (s)-[f:FORKED_FROM]->(p:SGSession)
RETURN s {.*} AS session, h.id AS head_id,
       CASE WHEN p IS NULL THEN null ELSE f {.*, parent_id: p.id} END AS fork

// name: bump_tree
// Counts a structural change of the tree rooted at $root; returns the new version.
MATCH (r:SGSession {tenant: $tenant, id: $root})
SET r.tree_version = r.tree_version + 1
RETURN r.tree_version AS version

// name: record_op
// Records write call $op (and what it returned, as text) on session $id.
MATCH (s:SGSession {tenant: $tenant, id: $id})
SET s.ops = ([$op] + coalesce(s.ops, []))[0..16],
    s.op_results = ([$result] + coalesce(s.op_results, []))[0..16],
    s.version = s.version + 1, s.updated_at = datetime.transaction()
WITH s
SET s += $props

// name: create_merge_edge
MATCH (fork:SGSession {tenant: $tenant, id: $fork_id})
MATCH (into:SGSession {tenant: $tenant, id: $into_id})
CREATE (fork)-[r:MERGED_INTO]->(into)
SET r = $props, r.created_at = datetime.transaction()

// name: tree_sessions
// Every session of the tree rooted at $root with its runs (what purge needs).
MATCH (s:SGSession {tenant: $tenant, root: $root})
RETURN s.id AS id, s.status AS status, s.run_owner AS owner, s.run_start AS start,
       s.run_end AS end, s.next_idx AS next_idx,
       EXISTS { MATCH (s)<-[:FORKED_FROM]-(:SGSession) } AS has_forks

// name: roots
// Roots of the tenant's trees, in pages by id (purge walks them).
MATCH (s:SGSession {tenant: $tenant})
WHERE s.root = s.id AND ($after IS NULL OR s.id > $after)
RETURN s.id AS id
ORDER BY id
LIMIT $limit

// name: unreached_messages
// Own messages of $session outside the idx ranges $keep ([[first, last], ...]).
MATCH (m:SGMessage {tenant: $tenant, session_id: $session})
WHERE NOT any(k IN $keep WHERE m.idx >= k[0] AND m.idx <= k[1])
RETURN m.id AS id, m.idx AS idx
