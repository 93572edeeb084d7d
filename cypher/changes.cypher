// The change log: every write transaction bumps its tenant's counter first (which also
// serialises writers of one tenant, so history order is commit order) and records which
// sessions it touched. Mirrors in other processes catch up by reading entries past their seq.

// name: bump_change
MERGE (t:Tenant {id: $tenant})
ON CREATE SET t.seq = 0
SET t.seq = t.seq + 1
WITH t
CALL (t) {
  UNWIND $changes AS change
  CREATE (:Change {tenant: $tenant, seq: t.seq, session_id: change.session_id,
                   kind: change.kind, at: datetime()})
}
RETURN t.seq AS seq

// name: record_changes
// More entries for the current transaction's seq (work that finds what it touched as it goes).
UNWIND $changes AS change
CREATE (:Change {tenant: $tenant, seq: $seq, session_id: change.session_id,
                 kind: change.kind, at: datetime()})

// name: current_seq
OPTIONAL MATCH (t:Tenant {id: $tenant})
RETURN coalesce(t.seq, 0) AS seq

// name: changes_since
// Entries after $seq, oldest first. Every seq has at least one entry, so a first entry
// other than $seq + 1 means the log was trimmed past $seq: the reader must reload.
OPTIONAL MATCH (t:Tenant {id: $tenant})
CALL () {
  MATCH (c:Change {tenant: $tenant})
  WHERE c.seq > $seq
  WITH c ORDER BY c.seq
  RETURN collect({seq: c.seq, session_id: c.session_id, kind: c.kind}) AS changes
}
RETURN coalesce(t.seq, 0) AS seq, changes

// name: trim_changes
// Drops entries older than the newest $keep sequence numbers.
MATCH (t:Tenant {id: $tenant})
MATCH (c:Change {tenant: $tenant})
WHERE c.seq <= t.seq - $keep
WITH c LIMIT $batch
DELETE c
RETURN count(*) AS deleted
