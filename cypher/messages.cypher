// Messages: immutable (:SGMessage) nodes. (m)-[:PREVIOUS]->(p) links each to its predecessor,
// so a history is HEAD-[:PREVIOUS*0..]->root. `session_id` names the session that appended
// it, `idx` its ordinal among that session's own messages, `pos` its 0-based place in every
// history that holds it. Only properties with a value are stored. Forks share messages.
// Rows come back as lists: [id, session_id, pos, role, content, content_enc,
// created_at (epoch ms), provider, model, input_tokens, output_tokens, cost, tool_name,
// tool_call_id, name, native_format, metadata, copied_from, kind, body, body_enc].
// `kind` is absent for plain chat messages ('message'); `tool_names` lists the tools an
// assistant message calls; `body` is JSON text of the structured parts, tool calls and the
// framework's native form (`body_enc` when content is encrypted).

// name: append
// Appends $rows (maps of message properties) to session $id as its newest messages, in one
// round trip. The session's write lock comes first (a same-value SET), so appends of one
// session form one chain while appends of other sessions never wait. $ts holds creation times
// in epoch ms (null: the transaction's time). Nothing is written unless the status is 'ok';
// 'replay' means the first row's id is stored in this session already (a retried call).
MATCH (s:SGSession {tenant: $tenant, id: $id})
SET s.version = s.version
WITH s
OPTIONAL MATCH (dup:SGMessage {tenant: $tenant, id: $rows[0].id})
WITH s, s.length AS base, s.next_idx AS first,
     CASE WHEN dup IS NOT NULL AND dup.session_id = s.id THEN 'replay'
          WHEN dup IS NOT NULL THEN 'conflict'
          WHEN s.status IN $closed THEN s.status
          ELSE 'ok' END AS status
CALL (s, base, first, status) {
  WITH s, base, first WHERE status = 'ok'
  OPTIONAL MATCH (s)-[old:HEAD]->(head:SGMessage)
  DELETE old
  WITH s, base, first, head
  CALL (s, base, first) {
    UNWIND range(0, size($rows) - 1) AS i
    CREATE (m:SGMessage)
    SET m = $rows[i], m.tenant = $tenant, m.session_id = $id, m.pos = base + i,
        m.idx = first + i,
        m.created_at = CASE WHEN $ts IS NULL OR $ts[i] IS NULL THEN datetime.transaction()
                            ELSE datetime({epochMillis: $ts[i]}) END
    RETURN collect(m) AS chain
  }
  WITH s, base, first, chain, CASE WHEN head IS NULL THEN chain ELSE [head] + chain END AS links
  CALL (links) {
    UNWIND range(1, size(links) - 1) AS i
    WITH links[i] AS m, links[i - 1] AS p
    CREATE (m)-[:PREVIOUS]->(p)
  }
  WITH s, base, first, last(chain) AS newest, size(chain) AS n,
       size(s.run_owner) > 0 AND last(s.run_owner) = s.id AND last(s.run_end) = first - 1
         AS extend
  CREATE (s)-[:HEAD]->(newest)
  SET s.run_owner = CASE WHEN extend THEN s.run_owner ELSE s.run_owner + [s.id] END,
      s.run_start = CASE WHEN extend THEN s.run_start ELSE s.run_start + [first] END,
      s.run_end = CASE WHEN extend THEN s.run_end[0..-1] + [first + n - 1]
                       ELSE s.run_end + [first + n - 1] END,
      s.length = base + n, s.next_idx = first + n, s.version = s.version + 1,
      s.updated_at = datetime.transaction()
}
RETURN status, base, datetime.transaction().epochMillis AS at

// name: append_one
// One message appended: the common case of every agent turn, as one linear statement (no
// subqueries, so the cheapest plan). The session's write lock comes first (a same-value SET).
// No row comes back when the session is missing or closed (the caller reads why); a message
// id stored already fails on the uniqueness constraint (the caller reads whether it was this
// same call, retried after a lost answer).
MATCH (s:SGSession {tenant: $tenant, id: $id})
SET s.version = s.version
WITH s WHERE NOT s.status IN $closed
OPTIONAL MATCH (s)-[old:HEAD]->(head:SGMessage)
WITH s, old, head, s.length AS base, s.next_idx AS first,
     size(s.run_owner) > 0 AND last(s.run_owner) = s.id AND last(s.run_end) = s.next_idx - 1
       AS extend
CREATE (m:SGMessage)
SET m = $row, m.tenant = $tenant, m.session_id = $id, m.pos = base, m.idx = first,
    m.created_at = CASE WHEN $ts IS NULL THEN datetime.transaction()
                        ELSE datetime({epochMillis: $ts}) END
DELETE old
CREATE (s)-[:HEAD]->(m)
FOREACH (p IN CASE WHEN head IS NULL THEN [] ELSE [head] END | CREATE (m)-[:PREVIOUS]->(p))
SET s.run_owner = CASE WHEN extend THEN s.run_owner ELSE s.run_owner + [s.id] END,
    s.run_start = CASE WHEN extend THEN s.run_start ELSE s.run_start + [first] END,
    s.run_end = CASE WHEN extend THEN s.run_end[0..-1] + [first] ELSE s.run_end + [first] END,
    s.length = base + 1, s.next_idx = first + 1, s.version = s.version + 1,
    s.updated_at = datetime.transaction()
RETURN 'ok' AS status, base, datetime.transaction().epochMillis AS at

// name: history_window
// Messages $start..$stop-1 of a session's history (Python slice rules: negative counts from
// the end, null is open), oldest first. Each run of the history that overlaps the window is
// one range seek on the (tenant, session_id, idx) index, so the cost is what is returned.
MATCH (s:SGSession {tenant: $tenant, id: $id})
WITH s, s.length AS n
WITH s, n,
     CASE WHEN $start IS NULL THEN 0
          WHEN $start < 0 THEN CASE WHEN n + $start < 0 THEN 0 ELSE n + $start END
          WHEN $start > n THEN n ELSE $start END AS lo,
     CASE WHEN $stop IS NULL THEN n
          WHEN $stop < 0 THEN CASE WHEN n + $stop < 0 THEN 0 ELSE n + $stop END
          WHEN $stop > n THEN n ELSE $stop END AS hi,
     reduce(acc = [0], i IN range(0, size(s.run_owner) - 1) |
            acc + [last(acc) + s.run_end[i] - s.run_start[i] + 1]) AS bounds
CALL (s, lo, hi, bounds) {
  UNWIND range(0, size(s.run_owner) - 1) AS i
  WITH s, i, bounds[i] AS at,
       CASE WHEN lo > bounds[i] THEN lo ELSE bounds[i] END AS a,
       CASE WHEN hi < bounds[i + 1] THEN hi ELSE bounds[i + 1] END AS b
  WITH s.run_owner[i] AS owner, s.run_start[i] + a - at AS first, s.run_start[i] + b - 1 - at AS last
  WHERE first <= last
  MATCH (m:SGMessage {tenant: $tenant, session_id: owner})
  WHERE m.idx >= first AND m.idx <= last
  WITH m ORDER BY m.pos
  RETURN collect([m.id, m.session_id, m.pos, m.role, m.content, m.content_enc,
                  m.created_at.epochMillis, m.provider, m.model, m.input_tokens,
                  m.output_tokens, m.cost, m.tool_name, m.tool_call_id, m.name,
                  m.native_format, m.metadata, m.copied_from, m.kind, m.body,
                  m.body_enc]) AS rows
}
RETURN n AS length, s.version AS version, rows

// name: message_rows
// Messages by id (rows as above, in no particular order).
UNWIND $ids AS id
MATCH (m:SGMessage {tenant: $tenant, id: id})
RETURN [m.id, m.session_id, m.pos, m.role, m.content, m.content_enc,
        m.created_at.epochMillis, m.provider, m.model, m.input_tokens,
        m.output_tokens, m.cost, m.tool_name, m.tool_call_id, m.name,
        m.native_format, m.metadata, m.copied_from, m.kind, m.body, m.body_enc] AS row

// name: pop
// Removes a session's newest message from its history if it is still $expect (the caller read
// it first). Locks the tree root (forks and pops of a tree take turns) and the session. The
// message is deleted when it is the session's own and nothing else holds it (no other HEAD,
// no later message of another history); otherwise only the HEAD moves back.
MATCH (s:SGSession {tenant: $tenant, id: $id})
MATCH (r:SGSession {tenant: $tenant, id: s.root})
SET r.tree_version = r.tree_version, s.version = s.version
WITH s
OPTIONAL MATCH (s)-[hr:HEAD]->(h:SGMessage)
WITH s, hr, h,
     CASE WHEN $op IN coalesce(s.ops, []) THEN 'replay'
          WHEN s.status IN $closed THEN s.status
          WHEN h IS NULL THEN 'empty'
          WHEN h.id <> $expect THEN 'moved'
          ELSE 'ok' END AS status
CALL (s, hr, h, status) {
  WITH s, hr, h WHERE status = 'ok'
  OPTIONAL MATCH (h)-[:PREVIOUS]->(prev:SGMessage)
  WITH s, hr, h, prev,
       h.session_id = s.id
       AND NOT EXISTS { MATCH (h)<-[:HEAD]-(o:SGSession) WHERE o <> s }
       AND NOT EXISTS { MATCH (h)<-[:PREVIOUS]-(:SGMessage) } AS drop
  DELETE hr
  FOREACH (_ IN CASE WHEN prev IS NULL THEN [] ELSE [1] END | CREATE (s)-[:HEAD]->(prev))
  WITH s, h, drop, last(s.run_end) = last(s.run_start) AS single
  SET s.run_owner = CASE WHEN single THEN s.run_owner[0..-1] ELSE s.run_owner END,
      s.run_start = CASE WHEN single THEN s.run_start[0..-1] ELSE s.run_start END,
      s.run_end = CASE WHEN single THEN s.run_end[0..-1]
                       ELSE s.run_end[0..-1] + [last(s.run_end) - 1] END,
      s.length = s.length - 1,
      s.next_idx = CASE WHEN drop AND h.idx = s.next_idx - 1 THEN h.idx ELSE s.next_idx END,
      s.version = s.version + 1, s.updated_at = datetime.transaction(),
      s.ops = ([$op] + coalesce(s.ops, []))[0..16]
  WITH h WHERE drop
  DETACH DELETE h
}
RETURN status

// name: message_holders
// Which of the messages $ids something outside $ids holds: another session's HEAD, or a
// later message that is not itself in $ids (decides what clear_history may delete).
UNWIND $ids AS id
MATCH (m:SGMessage {tenant: $tenant, id: id})
RETURN id,
       EXISTS { MATCH (m)<-[:HEAD]-(o:SGSession) WHERE o.id <> $session } OR
       EXISTS { MATCH (m)<-[:PREVIOUS]-(x:SGMessage) WHERE NOT x.id IN $ids } AS held

// name: own_ids
// Ids of the messages $session owns in idx ranges $ranges ([[first, last], ...]), by idx.
UNWIND $ranges AS range
MATCH (m:SGMessage {tenant: $tenant, session_id: $session})
WHERE m.idx >= range[0] AND m.idx <= range[1]
RETURN m.id AS id, m.idx AS idx
ORDER BY idx

// name: set_history
// Points a session's HEAD at $head_id (null: empty history) and stores its runs and length.
MATCH (s:SGSession {tenant: $tenant, id: $id})
OPTIONAL MATCH (s)-[old:HEAD]->(:SGMessage)
DELETE old
WITH DISTINCT s
OPTIONAL MATCH (m:SGMessage {tenant: $tenant, id: $head_id})
FOREACH (_ IN CASE WHEN m IS NULL THEN [] ELSE [1] END | CREATE (s)-[:HEAD]->(m))
SET s += $props, s.version = s.version + 1, s.updated_at = datetime.transaction()

// name: link_copies
UNWIND $links AS link
MATCH (c:SGMessage {tenant: $tenant, id: link.id})
MATCH (o:SGMessage {tenant: $tenant, id: link.original})
CREATE (c)-[:COPIED_FROM]->(o)

// name: delete_messages
UNWIND $ids AS id
MATCH (m:SGMessage {tenant: $tenant, id: id})
DETACH DELETE m

// name: search_messages
// Messages whose content contains $text (as typed, or case-insensitively), newest first;
// messages of deleted sessions only with $include_deleted.
MATCH (m:SGMessage {tenant: $tenant})
WHERE m.content IS NOT NULL
  AND (m.content CONTAINS $text OR toLower(m.content) CONTAINS toLower($text))
  AND ($include_deleted OR EXISTS {
    MATCH (s:SGSession {tenant: $tenant, id: m.session_id}) WHERE s.status <> 'deleted'
  })
WITH m ORDER BY m.created_at DESC, m.id
LIMIT $limit
RETURN [m.id, m.session_id, m.pos, m.role, m.content, m.content_enc,
        m.created_at.epochMillis, m.provider, m.model, m.input_tokens,
        m.output_tokens, m.cost, m.tool_name, m.tool_call_id, m.name,
        m.native_format, m.metadata, m.copied_from, m.kind, m.body, m.body_enc] AS row

// name: encrypted_content
// Whether any message content of the tenant is encrypted at rest (search cannot read it).
MATCH (m:SGMessage {tenant: $tenant})
WHERE m.content_enc IS NOT NULL
RETURN true AS encrypted
LIMIT 1

// name: reserve_append
// First step of each chunk of a large append (written in chunks that become visible
// together): locks the session, reserves $count idx values and returns where the chunk goes.
// Records $op with the first idx reserved, so a retried step returns the same range
// ('reserved'; base and head are read again: a session that moved is refused at the finish).
// 'replay' when the first message id is stored in this session already (a retried call).
MATCH (s:SGSession {tenant: $tenant, id: $id})
SET s.version = s.version
WITH s
OPTIONAL MATCH (s)-[:HEAD]->(h:SGMessage)
OPTIONAL MATCH (dup:SGMessage {tenant: $tenant, id: $first_id})
WITH s, h, dup,
     [i IN range(0, size(coalesce(s.ops, [])) - 1) WHERE s.ops[i] = $op
      | toInteger(s.op_results[i])] AS prior
WITH s, h, prior,
     CASE WHEN size(prior) > 0 THEN 'reserved'
          WHEN dup IS NOT NULL AND dup.session_id = s.id THEN 'replay'
          WHEN dup IS NOT NULL THEN 'conflict'
          WHEN s.status IN $closed THEN s.status
          ELSE 'ok' END AS status
WITH s, h, status, coalesce(head(prior), s.next_idx) AS first
CALL (s, status, first) {
  WITH s WHERE status = 'ok'
  SET s.next_idx = s.next_idx + $count,
      s.ops = ([$op] + coalesce(s.ops, []))[0..16],
      s.op_results = ([toString(first)] + coalesce(s.op_results, []))[0..16]
}
RETURN status, first, s.length AS base, h.id AS head_id, s.run_owner AS owner,
       s.run_start AS start, s.run_end AS end

// name: write_chunk
// Writes one chunk of a large append, linked after $prev_id, not yet on any history (the
// session's HEAD moves only in finish_append). Returns the creation time (epoch ms); a chunk
// already written (a retried step) is left as it is and returns null.
OPTIONAL MATCH (dup:SGMessage {tenant: $tenant, id: $rows[0].id})
CALL (dup) {
  WITH dup WHERE dup IS NULL
  OPTIONAL MATCH (prev:SGMessage {tenant: $tenant, id: $prev_id})
  CALL () {
    UNWIND range(0, size($rows) - 1) AS i
    CREATE (m:SGMessage)
    SET m = $rows[i], m.tenant = $tenant, m.session_id = $id, m.pos = $base + i,
        m.idx = $first + i,
        m.created_at = CASE WHEN $ts IS NULL OR $ts[i] IS NULL THEN datetime.transaction()
                            ELSE datetime({epochMillis: $ts[i]}) END
    RETURN collect(m) AS chain
  }
  WITH CASE WHEN prev IS NULL THEN chain ELSE [prev] + chain END AS links
  CALL (links) {
    UNWIND range(1, size(links) - 1) AS i
    WITH links[i] AS m, links[i - 1] AS p
    CREATE (m)-[:PREVIOUS]->(p)
  }
}
RETURN CASE WHEN dup IS NULL THEN datetime.transaction().epochMillis END AS at

// name: finish_append
// Last step of a large append: moves HEAD to $last_id and stores the new runs, unless the
// session changed since reserve_append ('moved': the caller removes its chunks). 'replay':
// this call ($op) did it already (its answer was lost), whatever was appended since.
MATCH (s:SGSession {tenant: $tenant, id: $id})
SET s.version = s.version
WITH s
OPTIONAL MATCH (s)-[old:HEAD]->(h:SGMessage)
OPTIONAL MATCH (newest:SGMessage {tenant: $tenant, id: $last_id})
WITH s, old, newest,
     CASE WHEN $op IN coalesce(s.ops, []) THEN 'replay'
          WHEN s.status IN $closed THEN s.status
          WHEN s.length <> $base OR coalesce(h.id, '') <> coalesce($head_id, '') THEN 'moved'
          ELSE 'ok' END AS status
CALL (s, old, newest, status) {
  WITH s, old, newest WHERE status = 'ok'
  DELETE old
  CREATE (s)-[:HEAD]->(newest)
  SET s += $props, s.version = s.version + 1, s.updated_at = datetime.transaction(),
      s.ops = ([$op] + coalesce(s.ops, []))[0..16]
}
RETURN status
