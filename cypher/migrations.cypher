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
