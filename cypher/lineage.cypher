// Saved lineage queries for dashboards (NeoDash, Neo4j Browser) and analysts.
// Each answers exactly what the in-process mirror answers; the test suite checks both agree.
// Parameters: $tenant, and $id for the session asked about.

// name: session_ancestors
// A session's ancestors, nearest first (parent, grandparent, ... root).
MATCH path = (s:SGSession {tenant: $tenant, id: $id})-[:FORKED_FROM*1..]->(a:SGSession)
RETURN a.id AS id, length(path) AS distance
ORDER BY distance

// name: session_subtree
// Every descendant of a session (forks of forks ...), nearest first.
MATCH path = (s:SGSession {tenant: $tenant, id: $id})<-[:FORKED_FROM*1..]-(d:SGSession)
RETURN d.id AS id, length(path) AS distance
ORDER BY distance, id

// name: session_siblings
// Other forks of the same parent.
MATCH (s:SGSession {tenant: $tenant, id: $id})-[:FORKED_FROM]->(p:SGSession)
MATCH (sibling:SGSession)-[:FORKED_FROM]->(p)
WHERE sibling <> s
RETURN sibling.id AS id
ORDER BY id

// name: fork_fanout
// How many direct forks each session of the tenant has, most first.
MATCH (s:SGSession {tenant: $tenant})
OPTIONAL MATCH (child:SGSession)-[:FORKED_FROM]->(s)
RETURN s.id AS id, count(child) AS forks
ORDER BY forks DESC, id

// name: session_history
// A session's whole history, oldest first (walks HEAD back over PREVIOUS).
MATCH (s:SGSession {tenant: $tenant, id: $id})-[:HEAD]->(head:SGMessage)
MATCH (head)-[:PREVIOUS*0..]->(m:SGMessage)
RETURN m.id AS id, m.pos AS position, m.role AS role, m.content AS content,
       m.session_id AS owner
ORDER BY position

// name: common_ancestor_message
// The newest message two sessions' histories share (none when they share nothing).
MATCH (:SGSession {tenant: $tenant, id: $a})-[:HEAD]->(ha:SGMessage)
MATCH (:SGSession {tenant: $tenant, id: $b})-[:HEAD]->(hb:SGMessage)
MATCH (ha)-[:PREVIOUS*0..]->(m:SGMessage)<-[:PREVIOUS*0..]-(hb)
RETURN m.id AS id, m.pos AS position
ORDER BY position DESC
LIMIT 1
