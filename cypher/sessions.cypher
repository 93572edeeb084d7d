// Sessions: one (:Session) node per conversation, scoped by `tenant`.
// (s)-[:HEAD]->(m) points at the newest message of its history (absent when empty);
// (child)-[:FORKED_FROM {at, position, reason}]->(parent) records where a fork left.

// name: session_rows
// Sessions by id, with head and fork point.
UNWIND $ids AS id
MATCH (s:Session {tenant: $tenant, id: id})
OPTIONAL MATCH (s)-[:HEAD]->(h:Message)
OPTIONAL MATCH (s)-[f:FORKED_FROM]->(p:Session)
RETURN s {.*} AS session,
       h.id AS head_id, h.session_id AS head_owner, h.idx AS head_idx,
       CASE WHEN p IS NULL THEN null ELSE f {.*, parent_id: p.id} END AS fork

// name: all_session_rows
// Every session of the tenant, as session_rows returns them (loads the mirror).
MATCH (s:Session {tenant: $tenant})
OPTIONAL MATCH (s)-[:HEAD]->(h:Message)
OPTIONAL MATCH (s)-[f:FORKED_FROM]->(p:Session)
RETURN s {.*} AS session,
       h.id AS head_id, h.session_id AS head_owner, h.idx AS head_idx,
       CASE WHEN p IS NULL THEN null ELSE f {.*, parent_id: p.id} END AS fork

// name: list_session_ids
// One page of a listing, oldest first, keyset-paginated on (created_at, id). Rows at the
// cursor's own created_at come back too: the caller drops ids up to the cursor's, because
// comparing strings with a parameter uses UTF-16 order while ORDER BY uses code points.
MATCH (s:Session {tenant: $tenant})
WHERE ($user_id IS NULL OR s.user_id = $user_id)
  AND ($status IS NULL OR s.status = $status)
  AND ($include_deleted OR s.status <> 'deleted')
  AND all(tag IN $tags WHERE tag IN s.tags)
  AND ($created_after IS NULL OR s.created_at >= $created_after)
  AND ($created_before IS NULL OR s.created_at < $created_before)
  AND ($after_created IS NULL OR s.created_at >= $after_created)
RETURN s.id AS id, s.created_at AS created_at
ORDER BY s.created_at, s.id
LIMIT $limit

// name: create_sessions
UNWIND $rows AS row
CREATE (s:Session)
SET s = row

// name: update_session
MATCH (s:Session {tenant: $tenant, id: $id})
SET s += $props

// name: set_head
// Moves a session's HEAD to $head_id (null = empty history) and records its length.
MATCH (s:Session {tenant: $tenant, id: $id})
OPTIONAL MATCH (s)-[old:HEAD]->()
DELETE old
WITH DISTINCT s
OPTIONAL MATCH (m:Message {tenant: $tenant, id: $head_id})
FOREACH (_ IN CASE WHEN m IS NULL THEN [] ELSE [1] END | CREATE (s)-[:HEAD]->(m))
SET s.length = $length, s.next_idx = $next_idx, s.updated_at = $now

// name: create_fork_edges
UNWIND $forks AS fork
MATCH (child:Session {tenant: $tenant, id: fork.child_id})
MATCH (parent:Session {tenant: $tenant, id: fork.parent_id})
CREATE (child)-[r:FORKED_FROM]->(parent)
SET r = fork.props

// name: create_merge_edge
MATCH (fork:Session {tenant: $tenant, id: $fork_id})
MATCH (into:Session {tenant: $tenant, id: $into_id})
CREATE (fork)-[r:MERGED_INTO]->(into)
SET r = $props

// name: delete_sessions
UNWIND $ids AS id
MATCH (s:Session {tenant: $tenant, id: id})
DETACH DELETE s
