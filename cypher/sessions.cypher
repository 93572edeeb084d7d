// Sessions: one (:SGSession) node per conversation, scoped by `tenant`.
// (s)-[:HEAD]->(m) points at the newest message of its history (absent when empty);
// (child)-[:FORKED_FROM {at, position, reason}]->(parent) records where a fork left.
// `root` names the tree's root session; the root's `tree_version` counts structural changes
// of its tree (forks, deletes, status changes, merges), which is what in-process mirrors check.
// `version` counts writes to the session. `run_owner`/`run_start`/`run_end` describe its
// history as runs of owners' messages (see session_graph/history.py). `ops` keeps the ids of
// the latest write calls, so a retried call finds its own earlier effect.

// name: session_rows
// Sessions by id, with their head message id and fork point.
UNWIND $ids AS id
MATCH (s:SGSession {tenant: $tenant, id: id})
OPTIONAL MATCH (s)-[:HEAD]->(h:SGMessage)
OPTIONAL MATCH (s)-[f:FORKED_FROM]->(p:SGSession)
RETURN s {.*} AS session, h.id AS head_id,
       CASE WHEN p IS NULL THEN null ELSE f {.*, parent_id: p.id} END AS fork

// name: create_session
// Creates session $props.id as the root of a new tree; MERGE on the unique (tenant, id) makes
// two concurrent creates of one id safe. `mine` is true when this call ($op) created it, now or
// in an attempt whose outcome was lost.
MERGE (s:SGSession {tenant: $tenant, id: $props.id})
ON CREATE SET s += $props, s.root = $props.id, s.tree_version = 0, s.version = 1,
              s.length = 0, s.next_idx = 0, s.run_owner = [], s.run_start = [], s.run_end = [],
              s.ops = [$op], s.created_at = datetime.transaction(),
              s.updated_at = datetime.transaction()
WITH s
OPTIONAL MATCH (s)-[:HEAD]->(h:SGMessage)
OPTIONAL MATCH (s)-[f:FORKED_FROM]->(p:SGSession)
RETURN s {.*} AS session, h.id AS head_id,
       CASE WHEN p IS NULL THEN null ELSE f {.*, parent_id: p.id} END AS fork,
       $op IN coalesce(s.ops, []) AS mine

// name: list_session_ids
// One page of a listing, oldest first, keyset-paginated on (created_at, id). Rows at the
// cursor's own created_at come back too: the caller drops ids up to the cursor's, because
// comparing strings with a parameter uses UTF-16 order while ORDER BY uses code points.
MATCH (s:SGSession {tenant: $tenant})
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

// name: update_session
// Sets $props on a session unless it is deleted. Takes the tree root's lock first (a status is
// part of what mirrors show), then the session's; bumps both counters; records $op.
MATCH (s:SGSession {tenant: $tenant, id: $id})
MATCH (r:SGSession {tenant: $tenant, id: s.root})
SET r.tree_version = r.tree_version, s.version = s.version
WITH s, r,
     CASE WHEN $op IN coalesce(s.ops, []) THEN 'replay'
          WHEN s.status = 'deleted' THEN 'deleted'
          ELSE 'ok' END AS status
CALL (s, r, status) {
  WITH s, r WHERE status = 'ok'
  SET s += $props, s.updated_at = datetime.transaction(), s.version = s.version + 1,
      s.ops = ([$op] + coalesce(s.ops, []))[0..16],
      r.tree_version = r.tree_version + 1
}
WITH s, r, status
OPTIONAL MATCH (s)-[:HEAD]->(h:SGMessage)
OPTIONAL MATCH (s)-[f:FORKED_FROM]->(p:SGSession)
RETURN status, r.tree_version AS tree_version, s {.*} AS session, h.id AS head_id,
       CASE WHEN p IS NULL THEN null ELSE f {.*, parent_id: p.id} END AS fork

// name: tree_of
// The fork tree holding session $id, for the in-process mirror: every session of the tree with
// its parent, creation time (epoch ms), status and fork position. The version is read first,
// so a tree that changes meanwhile looks stale at the next check, never fresh.
MATCH (s:SGSession {tenant: $tenant, id: $id})
MATCH (r:SGSession {tenant: $tenant, id: s.root})
WITH r, r.tree_version AS version
MATCH (x:SGSession {tenant: $tenant, root: r.id})
OPTIONAL MATCH (x)-[f:FORKED_FROM]->(p:SGSession)
RETURN r.id AS root, version,
       collect([x.id, p.id, x.created_at.epochMillis, x.status, f.position]) AS sessions

// name: tree_versions
// The current tree_version of each root in $roots (null for a root that is gone).
UNWIND $roots AS id
OPTIONAL MATCH (r:SGSession {tenant: $tenant, id: id})
RETURN id, r.tree_version AS version

// name: delete_sessions
// Sessions purge removes, with what a LangGraph thread of that id kept (checkpoints, pending
// writes, channel values; cypher/checkpoints.cypher): purge removes a session only when no
// fork (no thread copy) reads it, so nothing else can reach them, and a thread written again
// under that id must not find them. The existence checks let the composite indexes serve.
UNWIND $ids AS id
MATCH (s:SGSession {tenant: $tenant, id: id})
CALL (id) {
  MATCH (c:SGCheckpoint {tenant: $tenant, thread_id: id})
  WHERE c.gen IS NOT NULL AND c.ns IS NOT NULL AND c.id IS NOT NULL
  DETACH DELETE c
}
CALL (id) {
  MATCH (w:SGCheckpointWrite {tenant: $tenant, thread_id: id})
  WHERE w.gen IS NOT NULL AND w.ns IS NOT NULL AND w.checkpoint_id IS NOT NULL
  DETACH DELETE w
}
CALL (id) {
  MATCH (b:SGChannelValue {tenant: $tenant, thread_id: id})
  DETACH DELETE b
}
DETACH DELETE s

// name: sessions_matching
// Sessions whose id starts or ends with $part (short ids, as `tree` prints them), at most $limit.
MATCH (s:SGSession {tenant: $tenant})
WHERE s.id STARTS WITH $part OR s.id ENDS WITH $part
RETURN s.id AS id, s.title AS title, s.status AS status
ORDER BY id
LIMIT $limit
