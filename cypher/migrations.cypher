// Schema migrations, applied in order by `session-graph init` (SessionStore.setup()).
// Each block is one version; statements are separated by semicolons. Applied versions are
// recorded on (:SchemaMigration) nodes, so setup is repeatable.

// name: 0001_constraints
// Ids are unique per tenant: composite uniqueness constraints (Community edition has them).
CREATE CONSTRAINT session_key IF NOT EXISTS
FOR (s:Session) REQUIRE (s.tenant, s.id) IS UNIQUE;
CREATE CONSTRAINT message_key IF NOT EXISTS
FOR (m:Message) REQUIRE (m.tenant, m.id) IS UNIQUE;
CREATE CONSTRAINT tenant_key IF NOT EXISTS
FOR (t:Tenant) REQUIRE t.id IS UNIQUE;
CREATE CONSTRAINT migration_key IF NOT EXISTS
FOR (v:SchemaMigration) REQUIRE v.version IS UNIQUE

// name: 0002_indexes
// What the queries filter on: a session's own messages in append order, listings, the change log.
CREATE INDEX message_owner IF NOT EXISTS
FOR (m:Message) ON (m.tenant, m.session_id, m.idx);
CREATE INDEX session_created IF NOT EXISTS
FOR (s:Session) ON (s.tenant, s.created_at);
CREATE INDEX session_user IF NOT EXISTS
FOR (s:Session) ON (s.tenant, s.user_id);
CREATE INDEX session_status IF NOT EXISTS
FOR (s:Session) ON (s.tenant, s.status);
CREATE INDEX change_seq IF NOT EXISTS
FOR (c:Change) ON (c.tenant, c.seq)

// name: applied_migrations
// Versions already applied, oldest first.
MATCH (v:SchemaMigration)
RETURN v.version AS version
ORDER BY version

// name: record_migration
MERGE (v:SchemaMigration {version: $version})
ON CREATE SET v.applied_at = datetime()

// name: 0003_runs
// Histories as runs on the session node (history windows by index, forks that copy a few
// integers), a tree per root (mirrors load one tree at a time), no tenant-wide change log.
// Sessions written before this version are converted by session_graph.migrate (setup runs it).
CREATE INDEX session_root IF NOT EXISTS
FOR (s:Session) ON (s.tenant, s.root);
DROP INDEX change_seq IF EXISTS;
DROP CONSTRAINT tenant_key IF EXISTS

// name: legacy_sessions
// A batch of sessions written before 0003 (no runs yet), with their root and history as
// [owner, idx] pairs, oldest first.
MATCH (s:Session)
WHERE s.tenant IS NOT NULL AND s.run_owner IS NULL
WITH s LIMIT $batch
OPTIONAL MATCH (s)-[:FORKED_FROM*0..]->(r:Session)
WHERE NOT EXISTS { MATCH (r)-[:FORKED_FROM]->(:Session) }
OPTIONAL MATCH (s)-[:HEAD]->(h:Message)
CALL (h) {
  OPTIONAL MATCH (h)-[:PREVIOUS*0..]->(m:Message)
  WITH m ORDER BY m.pos
  RETURN collect([m.session_id, m.idx]) AS chain
}
RETURN s.tenant AS tenant, s.id AS id, r.id AS root, chain

// name: convert_legacy_sessions
UNWIND $rows AS row
MATCH (s:Session {tenant: row.tenant, id: row.id})
SET s.root = row.root, s.run_owner = row.owner, s.run_start = row.start, s.run_end = row.end,
    s.version = coalesce(s.version, 1), s.tree_version = coalesce(s.tree_version, 0)

// name: drop_change_log
// The tenant-wide change log of versions before 0003, in batches.
MATCH (n)
WHERE n:Change OR n:Tenant
WITH n LIMIT $batch
DETACH DELETE n
RETURN count(*) AS deleted
