// Messages: immutable (:Message) nodes. (m)-[:PREVIOUS]->(p) links each to its predecessor,
// so a history is HEAD-[:PREVIOUS*0..]->root. `session_id` names the session that appended
// it, `idx` its ordinal among that session's own messages, `pos` its 0-based place in every
// history that holds it. Forks share messages: nothing is copied.

// name: message_rows
UNWIND $ids AS id
MATCH (m:Message {tenant: $tenant, id: id})
RETURN m {.*} AS message

// name: message_owners
// Which of $ids exist, and who owns them (idempotent appends check this first).
UNWIND $ids AS id
MATCH (m:Message {tenant: $tenant, id: id})
RETURN m.id AS id, m.session_id AS session_id

// name: append_messages
// Creates $rows as a session's newest messages in one round trip: the first follows $head_id
// (the head before, null for an empty history), each next one follows the one before it,
// and HEAD moves to the last.
MATCH (s:Session {tenant: $tenant, id: $session_id})
OPTIONAL MATCH (s)-[old:HEAD]->()
DELETE old
WITH DISTINCT s
OPTIONAL MATCH (head:Message {tenant: $tenant, id: $head_id})
CALL () {
  UNWIND $rows AS row
  CREATE (m:Message)
  SET m = row
  RETURN collect(m) AS chain
}
WITH s, chain, CASE WHEN head IS NULL THEN chain ELSE [head] + chain END AS links
CALL (links) {
  UNWIND range(1, size(links) - 1) AS i
  WITH links[i] AS m, links[i - 1] AS p
  CREATE (m)-[:PREVIOUS]->(p)
}
WITH s, last(chain) AS newest
CREATE (s)-[:HEAD]->(newest)
SET s.length = $length, s.next_idx = $next_idx, s.updated_at = $now

// name: link_copies
UNWIND $links AS link
MATCH (c:Message {tenant: $tenant, id: link.id})
MATCH (o:Message {tenant: $tenant, id: link.original})
CREATE (c)-[:COPIED_FROM]->(o)

// name: delete_messages
UNWIND $ids AS id
MATCH (m:Message {tenant: $tenant, id: id})
DETACH DELETE m

// name: topology_messages
// Chain topology of every message of the tenant (no bodies), for the in-process mirror.
MATCH (m:Message {tenant: $tenant})
OPTIONAL MATCH (m)-[:PREVIOUS]->(p:Message)
RETURN m.session_id AS session_id, m.idx AS idx, m.id AS id,
       p.session_id AS prev_session, p.idx AS prev_idx

// name: topology_messages_from
// The same for some sessions, from an idx on (mirror catch-up after foreign appends).
UNWIND $wants AS want
MATCH (m:Message {tenant: $tenant, session_id: want.session_id})
WHERE m.idx >= want.from_idx
OPTIONAL MATCH (m)-[:PREVIOUS]->(p:Message)
RETURN m.session_id AS session_id, m.idx AS idx, m.id AS id,
       p.session_id AS prev_session, p.idx AS prev_idx

// name: search_messages
// Messages whose content contains $text (as typed, or case-insensitively), newest first.
MATCH (m:Message {tenant: $tenant})
WHERE m.content IS NOT NULL
  AND (m.content CONTAINS $text OR toLower(m.content) CONTAINS toLower($text))
RETURN m {.*} AS message
ORDER BY m.created_at DESC, m.id
LIMIT $limit
