// Schema migrations, applied in order by `session-graph init` (SessionStore.setup()).
// Each block is one version; statements are separated by semicolons. Applied versions are
// recorded on (:SGSchemaMigration) nodes, so setup is repeatable.
// Other software may share the database, so every label (:SGSession, :SGMessage,
// :SGSchemaMigration) and every constraint and index name (session_graph_...) is ours alone,
// and every statement reaches our relationships from nodes matched by our labels. Releases
// before 0004 used :Session, :Message and :SchemaMigration and unprefixed names (session_key,
// message_key, tenant_key, migration_key, message_owner, session_created, session_user,
// session_status, change_seq, session_root): 0004_own_labels moves such a database over.

// name: 0001_constraints
// Ids are unique per tenant: composite uniqueness constraints (Community edition has them).
CREATE CONSTRAINT session_graph_session_key IF NOT EXISTS
FOR (s:SGSession) REQUIRE (s.tenant, s.id) IS UNIQUE;
CREATE CONSTRAINT session_graph_message_key IF NOT EXISTS
FOR (m:SGMessage) REQUIRE (m.tenant, m.id) IS UNIQUE;
CREATE CONSTRAINT session_graph_migration_key IF NOT EXISTS
FOR (v:SGSchemaMigration) REQUIRE v.version IS UNIQUE

// name: 0002_indexes
// What the queries filter on: a session's own messages in append order, listings.
CREATE INDEX session_graph_message_owner IF NOT EXISTS
FOR (m:SGMessage) ON (m.tenant, m.session_id, m.idx);
CREATE INDEX session_graph_session_created IF NOT EXISTS
FOR (s:SGSession) ON (s.tenant, s.created_at);
CREATE INDEX session_graph_session_user IF NOT EXISTS
FOR (s:SGSession) ON (s.tenant, s.user_id);
CREATE INDEX session_graph_session_status IF NOT EXISTS
FOR (s:SGSession) ON (s.tenant, s.status)

// name: 0003_runs
// Histories as runs on the session node (history windows by index, forks that copy a few
// integers), a tree per root (mirrors load one tree at a time), no tenant-wide change log.
// Sessions written before this version are converted by setup (legacy_sessions below).
CREATE INDEX session_graph_session_root IF NOT EXISTS
FOR (s:SGSession) ON (s.tenant, s.root)

// name: 0004_own_labels
// Labels and schema names of our own. On a database an older release wrote, 0001-0003 were
// applied in their old form, so the new constraints and indexes are made here (on a new
// database they exist already). Setup then moves our nodes to the new labels (relabel_* below,
// on every setup) and drops the old constraints and indexes it can prove are ours (same name,
// same label and properties, made by a migration an older release recorded).
CREATE CONSTRAINT session_graph_session_key IF NOT EXISTS
FOR (s:SGSession) REQUIRE (s.tenant, s.id) IS UNIQUE;
CREATE CONSTRAINT session_graph_message_key IF NOT EXISTS
FOR (m:SGMessage) REQUIRE (m.tenant, m.id) IS UNIQUE;
CREATE CONSTRAINT session_graph_migration_key IF NOT EXISTS
FOR (v:SGSchemaMigration) REQUIRE v.version IS UNIQUE;
CREATE INDEX session_graph_message_owner IF NOT EXISTS
FOR (m:SGMessage) ON (m.tenant, m.session_id, m.idx);
CREATE INDEX session_graph_session_created IF NOT EXISTS
FOR (s:SGSession) ON (s.tenant, s.created_at);
CREATE INDEX session_graph_session_user IF NOT EXISTS
FOR (s:SGSession) ON (s.tenant, s.user_id);
CREATE INDEX session_graph_session_status IF NOT EXISTS
FOR (s:SGSession) ON (s.tenant, s.status);
CREATE INDEX session_graph_session_root IF NOT EXISTS
FOR (s:SGSession) ON (s.tenant, s.root)

// name: 0005_rich_messages
// Messages gain structure of their own: `name`, `kind` (absent for chat messages),
// `tool_names` (the tools an assistant message calls, a list Cypher reads) and `body` (JSON
// text of content parts, tool calls and a framework's native form; `body_enc` when content is
// encrypted). Tool results are looked up by tool (tool usage on dashboards). Setup then lifts
// the tool calls earlier writers kept in metadata as `tool_calls` into first-class tool calls
// (tool_calls_in_metadata / lift_tool_calls below); the metadata itself is left as it was.
CREATE INDEX session_graph_message_tool IF NOT EXISTS
FOR (m:SGMessage) ON (m.tenant, m.tool_name)

// name: 0006_checkpoints
// LangGraph checkpoints (cypher/checkpoints.cypher): a thread's checkpoints by generation,
// namespace and id (newest first), checkpoints by run (delete_for_runs), pending writes by
// checkpoint, and channel values, unique per thread, generation, namespace, channel and
// version (a value that does not change between checkpoints is stored once).
CREATE INDEX session_graph_checkpoint_lookup IF NOT EXISTS
FOR (c:SGCheckpoint) ON (c.tenant, c.thread_id, c.gen, c.ns, c.id);
CREATE INDEX session_graph_checkpoint_run IF NOT EXISTS
FOR (c:SGCheckpoint) ON (c.tenant, c.run_id);
CREATE INDEX session_graph_checkpoint_write_lookup IF NOT EXISTS
FOR (w:SGCheckpointWrite) ON (w.tenant, w.thread_id, w.gen, w.ns, w.checkpoint_id);
CREATE CONSTRAINT session_graph_channel_value_key IF NOT EXISTS
FOR (b:SGChannelValue) REQUIRE (b.tenant, b.thread_id, b.gen, b.ns, b.channel, b.version)
IS UNIQUE

// name: applied_migrations
// Versions already applied, oldest first; `adopted` when an older release applied it (its
// record was a (:SchemaMigration) node, see adopt_migrations).
MATCH (v:SGSchemaMigration)
RETURN v.version AS version, v.adopted_at IS NOT NULL AS adopted
ORDER BY version

// name: record_migration
MERGE (v:SGSchemaMigration {version: $version})
ON CREATE SET v.applied_at = datetime()

// name: adopt_migrations
// Records of the versions $versions that an older release kept on (:SchemaMigration) nodes
// become ours, before setup reads what is applied. Only nodes of exactly the shape it wrote
// ({version, applied_at}, that one label, no relationships) and only one per version.
MATCH (v:SchemaMigration)
WHERE v.version IN $versions AND v.applied_at IS :: ZONED DATETIME NOT NULL
  AND size(keys(v)) = 2 AND size(labels(v)) = 1 AND NOT EXISTS { MATCH (v)--() }
WITH v.version AS version, head(collect(v)) AS v
WHERE NOT EXISTS { MATCH (:SGSchemaMigration {version: version}) }
REMOVE v:SchemaMigration
SET v:SGSchemaMigration, v.adopted_at = datetime()
RETURN count(v) AS adopted

// name: schema_constraints
// The constraints named $names, as SHOW CONSTRAINTS describes them.
SHOW CONSTRAINTS YIELD name, type, entityType, labelsOrTypes, properties
WHERE name IN $names
RETURN name, type, entityType, labelsOrTypes, properties

// name: schema_indexes
// The indexes named $names (those that back a constraint too), as SHOW INDEXES describes them.
SHOW INDEXES YIELD name, type, entityType, labelsOrTypes, properties, owningConstraint
WHERE name IN $names
RETURN name, type, entityType, labelsOrTypes, properties, owningConstraint

// name: drop_constraint
// Drops constraint $name (setup passes only old names it has proved are ours).
DROP CONSTRAINT $name IF EXISTS

// name: drop_index
// Drops index $name (setup passes only old names it has proved are ours).
DROP INDEX $name IF EXISTS

// name: unlabelled_sessions
// A batch of sessions an older release wrote under the label :Session: provably ours (the
// properties every write since 0003 keeps: tenant, id, root and runs, with their types) and
// not shadowed by a session of the same tenant and id under our label (such a node stays).
MATCH (s:Session)
WHERE s.tenant IS :: STRING NOT NULL AND s.id IS :: STRING NOT NULL
  AND s.root IS :: STRING NOT NULL AND s.run_owner IS :: LIST<STRING> NOT NULL
  AND s.run_start IS :: LIST<INTEGER> NOT NULL AND s.run_end IS :: LIST<INTEGER> NOT NULL
  AND NOT EXISTS { MATCH (:SGSession {tenant: s.tenant, id: s.id}) }
RETURN elementId(s) AS element, s.tenant AS tenant, s.id AS id
LIMIT $batch

// name: relabel_messages
// Moves a batch of the messages the sessions $owners ([{tenant, id}], found by
// unlabelled_sessions) own to our label: (:Message) nodes of that tenant and session_id with
// an id, idx and pos, unless a message of that tenant and id has our label already.
UNWIND $owners AS owner
CALL (owner) {
  MATCH (m:Message {tenant: owner.tenant, session_id: owner.id})
  WHERE m.idx IS NOT NULL AND m.idx IS :: INTEGER AND m.id IS :: STRING NOT NULL
    AND m.pos IS :: INTEGER NOT NULL
    AND NOT EXISTS { MATCH (:SGMessage {tenant: m.tenant, id: m.id}) }
  RETURN m
}
WITH m LIMIT $batch
REMOVE m:Message
SET m:SGMessage
RETURN count(m) AS relabelled

// name: relabel_sessions
// Moves the sessions $rows ([{element, tenant, id}], found by unlabelled_sessions, their
// messages moved first) to our label, checking again that each is still the one found.
UNWIND $rows AS row
MATCH (s:Session)
WHERE elementId(s) = row.element AND s.tenant = row.tenant AND s.id = row.id
  AND s.run_owner IS NOT NULL
  AND NOT EXISTS { MATCH (:SGSession {tenant: s.tenant, id: s.id}) }
REMOVE s:Session
SET s:SGSession
RETURN count(s) AS relabelled

// name: legacy_sessions
// A batch of sessions release 0.1 wrote (before 0003: no runs, no root yet), with their root
// and history as [owner, idx] pairs, oldest first. Only nodes of the shape 0.1 wrote: tenant,
// id, status, tags, metadata (JSON text), created_at, updated_at, length and next_idx.
MATCH (s:Session)
WHERE s.run_owner IS NULL AND s.root IS NULL
  AND s.tenant IS :: STRING NOT NULL AND s.id IS :: STRING NOT NULL
  AND s.status IS :: STRING NOT NULL AND s.tags IS :: LIST<STRING> NOT NULL
  AND s.metadata IS :: STRING NOT NULL
  AND s.created_at IS :: ZONED DATETIME NOT NULL AND s.updated_at IS :: ZONED DATETIME NOT NULL
  AND s.length IS :: INTEGER NOT NULL AND s.next_idx IS :: INTEGER NOT NULL
WITH s LIMIT $batch
OPTIONAL MATCH (s)-[:FORKED_FROM*0..]->(r:Session {tenant: s.tenant})
WHERE NOT EXISTS { MATCH (r)-[:FORKED_FROM]->(:Session) }
OPTIONAL MATCH (s)-[:HEAD]->(h:Message {tenant: s.tenant})
CALL (h) {
  OPTIONAL MATCH (h)-[:PREVIOUS*0..]->(m:Message)
  WITH m ORDER BY m.pos
  RETURN collect([m.session_id, m.idx]) AS chain
}
RETURN elementId(s) AS element, s.tenant AS tenant, s.id AS id, r.id AS root, chain

// name: convert_legacy_sessions
// Gives the sessions legacy_sessions found ($rows) their root and runs.
UNWIND $rows AS row
MATCH (s:Session)
WHERE elementId(s) = row.element AND s.tenant = row.tenant AND s.id = row.id
  AND s.run_owner IS NULL
SET s.root = row.root, s.run_owner = row.owner, s.run_start = row.start, s.run_end = row.end,
    s.version = coalesce(s.version, 1), s.tree_version = coalesce(s.tree_version, 0)
RETURN count(s) AS converted

// name: drop_change_counters
// Release 0.1's per-tenant change counters, in batches: (:Tenant {id, seq}) nodes of exactly
// that shape, with no relationships and with the latest entry of their log (every counter
// 0.1 wrote has it); anything else labelled :Tenant stays. Counters go before their entries.
MATCH (t:Tenant)
WHERE t.id IS :: STRING NOT NULL AND t.seq IS :: INTEGER NOT NULL
  AND size(keys(t)) = 2 AND size(labels(t)) = 1 AND NOT EXISTS { MATCH (t)--() }
  AND EXISTS {
    MATCH (c:Change {tenant: t.id, seq: t.seq})
    WHERE c.session_id IS :: STRING NOT NULL AND c.kind IN $kinds
      AND c.at IS :: ZONED DATETIME NOT NULL AND size(keys(c)) = 5 AND size(labels(c)) = 1
  }
WITH t LIMIT $batch
DELETE t
RETURN count(*) AS deleted

// name: drop_change_log
// Release 0.1's change-log entries, in batches: (:Change {tenant, seq, session_id, kind, at})
// nodes of exactly that shape with no relationships; anything else labelled :Change stays.
MATCH (c:Change)
WHERE c.tenant IS :: STRING NOT NULL AND c.seq IS :: INTEGER NOT NULL
  AND c.session_id IS :: STRING NOT NULL AND c.kind IN $kinds
  AND c.at IS :: ZONED DATETIME NOT NULL
  AND size(keys(c)) = 5 AND size(labels(c)) = 1 AND NOT EXISTS { MATCH (c)--() }
WITH c LIMIT $batch
DELETE c
RETURN count(*) AS deleted

// name: tool_calls_in_metadata
// A batch of messages, after element $after in element order, whose metadata JSON holds
// $key (the quoted key "tool_calls") and that have no body yet: for lift_tool_calls.
MATCH (m:SGMessage)
WHERE m.metadata CONTAINS $key AND m.body IS NULL AND m.body_enc IS NULL
  AND elementId(m) > $after
RETURN elementId(m) AS element, m.metadata AS metadata
ORDER BY element
LIMIT $batch

// name: lift_tool_calls
// Gives the messages $rows ([{element, body, tool_names}]) their first-class tool calls,
// unless a body was written meanwhile.
UNWIND $rows AS row
MATCH (m:SGMessage)
WHERE elementId(m) = row.element AND m.body IS NULL AND m.body_enc IS NULL
SET m.body = row.body, m.tool_names = row.tool_names
RETURN count(m) AS lifted
