// LangGraph checkpoints (session_graph/integrations/langgraph.py, through
// session_graph/_async/checkpoints.py). A thread is an (:SGSession) of the tenant; its
// checkpoints, pending writes and channel values are nodes of their own:
//   (:SGCheckpoint {tenant, thread_id, gen, ns, id, seq, parent_id, step, source, run_id, ts,
//                   type, checkpoint, metadata_type, metadata, metadata_pairs, delta_channels,
//                   created_at})
//   (:SGCheckpointWrite {tenant, thread_id, gen, ns, checkpoint_id, task_id, idx, seq,
//                        channel, type, value, task_path})        pending writes
//   (:SGChannelValue {tenant, thread_id, gen, ns, channel, version, seq, type, value})
// with (checkpoint)-[:PARENT]->(parent checkpoint) (the tree of a thread's checkpoints, which
// crosses into the thread a copy was made from), (checkpoint)-[:VALUE]->(channel value) (a
// value that does not change between checkpoints is one node, shared), and
// (:SGSession)-[:HIDES {gen, at}]->(:SGCheckpoint) for what a thread pruned or deleted.
// Byte values (serialised by LangGraph's serde) are Neo4j byte arrays.
//
// Thread state lives on the session: `checkpoint_gen` (the generation: a new one after each
// delete_thread, so what was deleted never comes back), `checkpoint_seq` (counts the thread's
// writes; every checkpoint, write and value records the count it was made at) and its *view*,
// three parallel lists `checkpoint_threads`, `checkpoint_gens`, `checkpoint_uptos`: level 0 is
// the thread itself (upto: the largest integer), level 1 the thread it was copied from with
// the seq of the copy, and so on. A thread reads the checkpoints of each level's thread and
// generation made up to that level's seq and not hidden by a level at or above it (a HIDES
// of that level's generation made up to its seq). copy_thread is a store fork plus one
// statement that writes the new thread's view (and the copy point on the FORKED_FROM edge),
// so a copy costs the same at any history length and copies no checkpoint.
//
// Every statement takes its values in one map, $p (the store's tenant is $tenant; comments
// name the entries as $thread, $ns, ...): Neo4j keys its plan cache on the types and the size
// class of string and list parameters, so separate parameters made a plan per size mix (a
// fresh plan costs hundreds of milliseconds), one map keeps one plan per statement.
// Writes lock the thread's session first (`SET t.version = t.version`, as the store's own
// statements lock a session) and only then read its thread state, so concurrent first writes
// of a thread agree on its generation.

// name: checkpoint_threads_info
// The sessions $threads: whether each is a thread, its status, metadata (JSON text, which
// marks the sessions the saver creates), the session it was forked from and whether that fork
// is a copy (the copy point is recorded), and its tree root.
UNWIND $p.threads AS id
MATCH (t:SGSession {tenant: $tenant, id: id})
OPTIONAL MATCH (t)-[f:FORKED_FROM]->(source:SGSession)
RETURN t.id AS id, t.status AS status, t.checkpoint_gen IS NOT NULL AS thread,
       t.metadata AS metadata, source.id AS parent, f.checkpoint_upto IS NOT NULL AS copied,
       t.root AS root

// name: checkpoint_all_threads
// Every thread of the tenant, by id (list() without a thread).
MATCH (t:SGSession {tenant: $tenant})
WHERE t.checkpoint_gen IS NOT NULL
RETURN t.id AS id
ORDER BY id

// name: checkpoint_put
// Stores checkpoint $id of namespace $ns in thread $thread: $props (its serialised form, its
// parent_id and what Cypher readers see: step, source, run_id, ts), a PARENT edge to $parent
// as the thread sees it (the newest of that id at the nearest level of its view), and a VALUE
// edge per channel of $values ([{channel, version, new, link, type, value}]): a new version
// becomes a value node (MERGE: a retry or a repeated version makes none), an unchanged one
// links the node the thread's view holds. Checkpoints of the thread's view with the same id
// are hidden (a put replaces one). Locks the thread first. `ok` is false for a missing,
// deleted or non-thread session; $adopt makes a marked session a thread (generation $gen) on
// its first write.
OPTIONAL MATCH (t:SGSession {tenant: $tenant, id: $p.thread})
CALL (t) {
  WITH t WHERE t IS NOT NULL
  SET t.version = t.version
}
WITH t, t IS NOT NULL AND t.status <> 'deleted'
        AND (t.checkpoint_gen IS NOT NULL OR $p.adopt) AS ok
CALL (t, ok) {
  WITH t WHERE ok
  WITH t, coalesce(t.checkpoint_gen, $p.gen) AS gen
  SET t.checkpoint_seq = coalesce(t.checkpoint_seq, 0) + 1, t.checkpoint_gen = gen,
      t.checkpoint_threads = coalesce(t.checkpoint_threads, [t.id]),
      t.checkpoint_gens = coalesce(t.checkpoint_gens, [gen]),
      t.checkpoint_uptos = coalesce(t.checkpoint_uptos, [9223372036854775807])
  WITH t, gen, t.checkpoint_seq AS seq,
       [i IN range(0, size(t.checkpoint_threads) - 1) |
        [t.checkpoint_threads[i], t.checkpoint_gens[i], t.checkpoint_uptos[i]]] AS views
  CALL (t, gen, seq, views) {
    UNWIND range(0, size(views) - 1) AS i
    MATCH (old:SGCheckpoint {tenant: $tenant, thread_id: views[i][0], gen: views[i][1],
                             ns: $p.ns, id: $p.id})
    WHERE old.seq <= views[i][2]
    CREATE (t)-[:HIDES {gen: gen, at: seq}]->(old)
  }
  CREATE (c:SGCheckpoint {tenant: $tenant, thread_id: t.id, gen: gen, ns: $p.ns, id: $p.id,
                          seq: seq})
  SET c += $p.props, c.created_at = datetime.transaction()
  WITH t, gen, seq, views, c
  CALL (c, views) {
    UNWIND range(0, size(views) - 1) AS i
    MATCH (parent:SGCheckpoint {tenant: $tenant, thread_id: views[i][0], gen: views[i][1],
                                ns: $p.ns, id: $p.parent})
    WHERE parent <> c AND parent.seq <= views[i][2]
    WITH c, parent ORDER BY i, parent.seq DESC LIMIT 1
    CREATE (c)-[:PARENT]->(parent)
  }
  CALL (c, t, gen, seq, views) {
    UNWIND $p.values AS v
    WITH c, t, gen, seq, v,
         CASE WHEN v.new THEN null ELSE head(COLLECT {
           UNWIND range(0, size(views) - 1) AS i
           MATCH (b:SGChannelValue {tenant: $tenant, thread_id: views[i][0],
                                    gen: views[i][1], ns: $p.ns, channel: v.channel,
                                    version: v.version})
           WHERE b.seq <= views[i][2]
           RETURN b ORDER BY i
         }) END AS kept
    FOREACH (_ IN CASE WHEN v.new THEN [1] ELSE [] END |
      MERGE (b:SGChannelValue {tenant: $tenant, thread_id: t.id, gen: gen, ns: $p.ns,
                               channel: v.channel, version: v.version})
      ON CREATE SET b.type = v.type, b.value = v.value, b.seq = seq
      FOREACH (_ IN CASE WHEN v.link THEN [1] ELSE [] END | CREATE (c)-[:VALUE]->(b)))
    FOREACH (b IN CASE WHEN kept IS NULL THEN [] ELSE [kept] END | CREATE (c)-[:VALUE]->(b))
  }
}
RETURN ok, t IS NOT NULL AS found, t.status = 'deleted' AS deleted

// name: checkpoint_put_writes
// Stores pending writes $writes ([{idx, channel, type, value}]) of task $task (path $path)
// against checkpoint $checkpoint of namespace $ns in thread $thread (the checkpoint need not be
// stored yet: LangGraph saves it in the background). A write whose (task, idx) is stored is
// kept, unless $upsert (special channels: errors, interrupts), which stores a newer version
// (readers take the newest, copies keep the one they saw). Locks the thread; `ok` as for
// checkpoint_put.
OPTIONAL MATCH (t:SGSession {tenant: $tenant, id: $p.thread})
CALL (t) {
  WITH t WHERE t IS NOT NULL
  SET t.version = t.version
}
WITH t, t IS NOT NULL AND t.status <> 'deleted'
        AND (t.checkpoint_gen IS NOT NULL OR $p.adopt) AS ok
CALL (t, ok) {
  WITH t WHERE ok
  WITH t, coalesce(t.checkpoint_gen, $p.gen) AS gen
  SET t.checkpoint_seq = coalesce(t.checkpoint_seq, 0) + 1, t.checkpoint_gen = gen,
      t.checkpoint_threads = coalesce(t.checkpoint_threads, [t.id]),
      t.checkpoint_gens = coalesce(t.checkpoint_gens, [gen]),
      t.checkpoint_uptos = coalesce(t.checkpoint_uptos, [9223372036854775807])
  WITH t, gen, t.checkpoint_seq AS seq
  UNWIND $p.writes AS w
  OPTIONAL MATCH (x:SGCheckpointWrite {tenant: $tenant, thread_id: t.id, gen: gen, ns: $p.ns,
                                       checkpoint_id: $p.checkpoint, task_id: $p.task,
                                       idx: w.idx})
  WITH t, gen, seq, w, count(x) AS stored
  WHERE stored = 0 OR $p.upsert
  CREATE (n:SGCheckpointWrite {tenant: $tenant, thread_id: t.id, gen: gen, ns: $p.ns,
                               checkpoint_id: $p.checkpoint, task_id: $p.task, idx: w.idx,
                               seq: seq})
  SET n.channel = w.channel, n.type = w.type, n.value = w.value, n.task_path = $p.path
}
RETURN ok, t IS NOT NULL AS found, t.status = 'deleted' AS deleted

// name: checkpoint_latest
// The newest checkpoint of namespace $ns that thread $thread sees (its own or, for a copy,
// one it was copied with), with its channel values and pending writes. Writes are
// [level, task_id, idx, seq, channel, type, value, task_path]: the thread's own and those of
// the threads between it and the checkpoint's, each up to its seq.
MATCH (t:SGSession {tenant: $tenant, id: $p.thread})
WHERE t.checkpoint_gen IS NOT NULL
WITH [i IN range(0, size(t.checkpoint_threads) - 1) |
      [t.checkpoint_threads[i], t.checkpoint_gens[i], t.checkpoint_uptos[i]]] AS views
CALL (views) {
  UNWIND range(0, size(views) - 1) AS i
  CALL (views, i) {
    MATCH (c:SGCheckpoint {tenant: $tenant, thread_id: views[i][0], gen: views[i][1],
                           ns: $p.ns})
    WHERE c.seq <= views[i][2]
      AND NOT EXISTS {
        MATCH (c)<-[h:HIDES]-(x:SGSession)
        WHERE any(j IN range(0, i) WHERE x.id = views[j][0] AND h.gen = views[j][1]
                                       AND h.at <= views[j][2])
      }
    RETURN c ORDER BY c.id DESC LIMIT 1
  }
  RETURN i, c ORDER BY c.id DESC, i LIMIT 1
}
RETURN c.thread_id AS owner, c.ns AS ns, c.id AS id, c.parent_id AS parent_id,
       c.type AS type, c.checkpoint AS checkpoint, c.metadata_type AS metadata_type,
       c.metadata AS metadata,
       COLLECT {
         MATCH (c)-[:VALUE]->(b:SGChannelValue) WHERE b.type <> 'empty'
         RETURN [b.channel, b.type, b.value]
       } AS channel_values,
       COLLECT {
         UNWIND range(0, i) AS j
         MATCH (w:SGCheckpointWrite {tenant: $tenant, thread_id: views[j][0],
                                     gen: views[j][1], ns: c.ns, checkpoint_id: c.id})
         WHERE w.seq <= views[j][2]
         RETURN [j, w.task_id, w.idx, w.seq, w.channel, w.type, w.value, w.task_path]
       } AS writes

// name: checkpoint_by_id
// Checkpoint $id of namespace $ns as thread $thread sees it (see checkpoint_latest).
MATCH (t:SGSession {tenant: $tenant, id: $p.thread})
WHERE t.checkpoint_gen IS NOT NULL
WITH [i IN range(0, size(t.checkpoint_threads) - 1) |
      [t.checkpoint_threads[i], t.checkpoint_gens[i], t.checkpoint_uptos[i]]] AS views
CALL (views) {
  UNWIND range(0, size(views) - 1) AS i
  MATCH (c:SGCheckpoint {tenant: $tenant, thread_id: views[i][0], gen: views[i][1],
                         ns: $p.ns, id: $p.id})
  WHERE c.seq <= views[i][2]
    AND NOT EXISTS {
      MATCH (c)<-[h:HIDES]-(x:SGSession)
      WHERE any(j IN range(0, i) WHERE x.id = views[j][0] AND h.gen = views[j][1]
                                     AND h.at <= views[j][2])
    }
  RETURN i, c ORDER BY i LIMIT 1
}
RETURN c.thread_id AS owner, c.ns AS ns, c.id AS id, c.parent_id AS parent_id,
       c.type AS type, c.checkpoint AS checkpoint, c.metadata_type AS metadata_type,
       c.metadata AS metadata,
       COLLECT {
         MATCH (c)-[:VALUE]->(b:SGChannelValue) WHERE b.type <> 'empty'
         RETURN [b.channel, b.type, b.value]
       } AS channel_values,
       COLLECT {
         UNWIND range(0, i) AS j
         MATCH (w:SGCheckpointWrite {tenant: $tenant, thread_id: views[j][0],
                                     gen: views[j][1], ns: c.ns, checkpoint_id: c.id})
         WHERE w.seq <= views[j][2]
         RETURN [j, w.task_id, w.idx, w.seq, w.channel, w.type, w.value, w.task_path]
       } AS writes

// name: checkpoint_list
// The checkpoints thread $thread sees, newest first (by id), at most $limit: of namespace $ns
// (null: every namespace), checkpoint $id (null: any), ids below $before (null: any), and
// metadata holding every pair of $pairs (canonical JSON of [key, value], as stored in
// metadata_pairs). Rows as in checkpoint_latest.
MATCH (t:SGSession {tenant: $tenant, id: $p.thread})
WHERE t.checkpoint_gen IS NOT NULL
WITH [i IN range(0, size(t.checkpoint_threads) - 1) |
      [t.checkpoint_threads[i], t.checkpoint_gens[i], t.checkpoint_uptos[i]]] AS views
CALL (views) {
  UNWIND range(0, size(views) - 1) AS i
  MATCH (c:SGCheckpoint {tenant: $tenant, thread_id: views[i][0], gen: views[i][1]})
  WHERE ($p.ns IS NULL OR c.ns = $p.ns) AND ($p.id IS NULL OR c.id = $p.id)
    AND ($p.before IS NULL OR c.id < $p.before) AND c.seq <= views[i][2]
    AND all(pair IN $p.pairs WHERE pair IN c.metadata_pairs)
    AND NOT EXISTS {
      MATCH (c)<-[h:HIDES]-(x:SGSession)
      WHERE any(j IN range(0, i) WHERE x.id = views[j][0] AND h.gen = views[j][1]
                                     AND h.at <= views[j][2])
    }
  RETURN i, c
}
WITH views, i, c ORDER BY c.id DESC, c.ns LIMIT $p.limit
RETURN c.thread_id AS owner, c.ns AS ns, c.id AS id, c.parent_id AS parent_id,
       c.type AS type, c.checkpoint AS checkpoint, c.metadata_type AS metadata_type,
       c.metadata AS metadata,
       COLLECT {
         MATCH (c)-[:VALUE]->(b:SGChannelValue) WHERE b.type <> 'empty'
         RETURN [b.channel, b.type, b.value]
       } AS channel_values,
       COLLECT {
         UNWIND range(0, i) AS j
         MATCH (w:SGCheckpointWrite {tenant: $tenant, thread_id: views[j][0],
                                     gen: views[j][1], ns: c.ns, checkpoint_id: c.id})
         WHERE w.seq <= views[j][2]
         RETURN [j, w.task_id, w.idx, w.seq, w.channel, w.type, w.value, w.task_path]
       } AS writes
ORDER BY id DESC, ns

// name: checkpoint_tree
// Every checkpoint thread $thread sees, without values: what the checkpoint tree (the CLI's
// `checkpoints`, exports) shows. `owner` is the thread that wrote it; `parent_id` is null for
// a thread's first checkpoint.
MATCH (t:SGSession {tenant: $tenant, id: $p.thread})
WHERE t.checkpoint_gen IS NOT NULL
WITH [i IN range(0, size(t.checkpoint_threads) - 1) |
      [t.checkpoint_threads[i], t.checkpoint_gens[i], t.checkpoint_uptos[i]]] AS views
UNWIND range(0, size(views) - 1) AS i
MATCH (c:SGCheckpoint {tenant: $tenant, thread_id: views[i][0], gen: views[i][1]})
WHERE c.seq <= views[i][2]
  AND NOT EXISTS {
    MATCH (c)<-[h:HIDES]-(x:SGSession)
    WHERE any(j IN range(0, i) WHERE x.id = views[j][0] AND h.gen = views[j][1]
                                   AND h.at <= views[j][2])
  }
RETURN c.thread_id AS owner, c.ns AS ns, c.id AS id, c.parent_id AS parent_id,
       c.step AS step, c.source AS source, c.run_id AS run_id, c.ts AS ts,
       c.created_at.epochMillis AS created_ms
ORDER BY ns, id

// name: checkpoint_visible
// The checkpoints thread $thread sees, for prune: each with its element id (valid inside the
// transaction), the element id of its parent, the delta channels its metadata counts, and
// the channels it holds a stored value of.
MATCH (t:SGSession {tenant: $tenant, id: $p.thread})
WHERE t.checkpoint_gen IS NOT NULL
WITH [i IN range(0, size(t.checkpoint_threads) - 1) |
      [t.checkpoint_threads[i], t.checkpoint_gens[i], t.checkpoint_uptos[i]]] AS views
UNWIND range(0, size(views) - 1) AS i
MATCH (c:SGCheckpoint {tenant: $tenant, thread_id: views[i][0], gen: views[i][1]})
WHERE c.seq <= views[i][2]
  AND NOT EXISTS {
    MATCH (c)<-[h:HIDES]-(x:SGSession)
    WHERE any(j IN range(0, i) WHERE x.id = views[j][0] AND h.gen = views[j][1]
                                   AND h.at <= views[j][2])
  }
RETURN elementId(c) AS element, c.ns AS ns, c.id AS id,
       COLLECT { MATCH (c)-[:PARENT]->(up:SGCheckpoint) RETURN elementId(up) } AS parents,
       coalesce(c.delta_channels, []) AS delta_channels,
       COLLECT {
         MATCH (c)-[:VALUE]->(b:SGChannelValue) WHERE b.type <> 'empty' RETURN b.channel
       } AS stored

// name: checkpoint_ancestry
// The ancestors of checkpoint $id (namespace $ns) of thread $thread along PARENT edges, nearest
// first: each with its element id (valid inside the transaction), the level of the thread's
// view it is seen at (null: the thread does not see it) and which of $channels it holds a
// stored value of. For DeltaChannel histories.
MATCH (t:SGSession {tenant: $tenant, id: $p.thread})
WHERE t.checkpoint_gen IS NOT NULL
WITH [i IN range(0, size(t.checkpoint_threads) - 1) |
      [t.checkpoint_threads[i], t.checkpoint_gens[i], t.checkpoint_uptos[i]]] AS views
CALL (views) {
  UNWIND range(0, size(views) - 1) AS i
  MATCH (c:SGCheckpoint {tenant: $tenant, thread_id: views[i][0], gen: views[i][1],
                         ns: $p.ns, id: $p.id})
  WHERE c.seq <= views[i][2]
    AND NOT EXISTS {
      MATCH (c)<-[h:HIDES]-(x:SGSession)
      WHERE any(j IN range(0, i) WHERE x.id = views[j][0] AND h.gen = views[j][1]
                                     AND h.at <= views[j][2])
    }
  RETURN c ORDER BY i LIMIT 1
}
MATCH path = (c)-[:PARENT*]->(top:SGCheckpoint)
WHERE NOT EXISTS { MATCH (top)-[:PARENT]->(:SGCheckpoint) }
WITH views, tail(nodes(path)) AS ancestors
UNWIND range(0, size(ancestors) - 1) AS k
WITH views, k, ancestors[k] AS a
RETURN k, elementId(a) AS element,
       head([i IN range(0, size(views) - 1)
             WHERE a.thread_id = views[i][0] AND a.gen = views[i][1]
               AND a.seq <= views[i][2]
               AND NOT EXISTS {
                 MATCH (a)<-[h:HIDES]-(x:SGSession)
                 WHERE any(j IN range(0, i) WHERE x.id = views[j][0] AND h.gen = views[j][1]
                                                AND h.at <= views[j][2])
               }]) AS level,
       COLLECT {
         MATCH (a)-[:VALUE]->(b:SGChannelValue)
         WHERE b.channel IN $p.channels AND b.type <> 'empty'
         RETURN b.channel
       } AS stored
ORDER BY k

// name: checkpoint_history
// For the ancestors $wanted ([[element id, level, write channels, value channels]], found by
// checkpoint_ancestry in the same transaction) of thread $thread: their pending writes of the
// write channels (rows as in checkpoint_latest) and their stored values of the value channels.
MATCH (t:SGSession {tenant: $tenant, id: $p.thread})
WHERE t.checkpoint_gen IS NOT NULL
WITH [i IN range(0, size(t.checkpoint_threads) - 1) |
      [t.checkpoint_threads[i], t.checkpoint_gens[i], t.checkpoint_uptos[i]]] AS views
UNWIND $p.wanted AS want
MATCH (a:SGCheckpoint {tenant: $tenant})
WHERE elementId(a) = want[0]
RETURN want[0] AS element,
       COLLECT {
         UNWIND range(0, want[1]) AS j
         MATCH (w:SGCheckpointWrite {tenant: $tenant, thread_id: views[j][0],
                                     gen: views[j][1], ns: a.ns, checkpoint_id: a.id})
         WHERE w.seq <= views[j][2] AND w.channel IN want[2]
         RETURN [j, w.task_id, w.idx, w.seq, w.channel, w.type, w.value, w.task_path]
       } AS writes,
       COLLECT {
         MATCH (a)-[:VALUE]->(b:SGChannelValue)
         WHERE b.channel IN want[3] AND b.type <> 'empty'
         RETURN [b.channel, b.type, b.value]
       } AS channel_values

// name: checkpoint_copy
// Makes thread $target, just forked from thread $source by the store, a copy of it: its
// generation $gen and its view, the source's view with the source's current seq as the cut;
// the copy point (the source's generation and seq) is kept on the FORKED_FROM edge. Nothing
// else is written, whatever the source's history. Locks the source; a target that is a
// thread already is left as it is (no row).
MATCH (s:SGSession {tenant: $tenant, id: $p.source})
MATCH (t:SGSession {tenant: $tenant, id: $p.target})-[f:FORKED_FROM]->(s)
SET s.version = s.version, t.version = t.version
WITH s, t, f
WHERE s.checkpoint_gen IS NOT NULL AND t.checkpoint_gen IS NULL
SET t.checkpoint_gen = $p.gen, t.checkpoint_seq = 0,
    t.checkpoint_threads = [t.id] + s.checkpoint_threads,
    t.checkpoint_gens = [$p.gen] + s.checkpoint_gens,
    t.checkpoint_uptos = [9223372036854775807, s.checkpoint_seq] + tail(s.checkpoint_uptos),
    f.checkpoint_gen = s.checkpoint_gen, f.checkpoint_upto = s.checkpoint_seq
RETURN f.checkpoint_upto AS upto

// name: checkpoint_lock_thread
// Locks the threads of the fork tree holding session $thread (the root first, then by id, as
// the store's structural writes do), so deletes see one state of every view; returns whether
// the session is a thread and its tree's root (no row: no such session).
MATCH (t:SGSession {tenant: $tenant, id: $p.thread})
CALL (t) {
  MATCH (x:SGSession {tenant: $tenant, root: t.root})
  WHERE t.checkpoint_gen IS NOT NULL AND x.checkpoint_gen IS NOT NULL
  WITH x ORDER BY x.id <> x.root, x.id
  SET x.checkpoint_seq = x.checkpoint_seq
  RETURN count(x) AS locked
}
RETURN t.checkpoint_gen IS NOT NULL AS thread, coalesce(t.root, t.id) AS root

// name: checkpoint_lock_tree
// Locks the threads of the fork tree rooted at $root, as checkpoint_lock_thread does.
MATCH (x:SGSession {tenant: $tenant, root: $p.root})
WHERE x.checkpoint_gen IS NOT NULL
WITH x ORDER BY x.id <> x.root, x.id
SET x.checkpoint_seq = x.checkpoint_seq
RETURN count(x) AS locked

// name: checkpoint_new_generation
// delete_thread: thread $thread starts generation $gen and sees nothing (not even the thread it
// was copied from). What it saw stays for copies made from it; the rest is collected.
MATCH (t:SGSession {tenant: $tenant, id: $p.thread})
WHERE t.checkpoint_gen IS NOT NULL
SET t.checkpoint_seq = t.checkpoint_seq + 1, t.checkpoint_gen = $p.gen,
    t.checkpoint_threads = [t.id], t.checkpoint_gens = [$p.gen],
    t.checkpoint_uptos = [9223372036854775807]
RETURN t.checkpoint_seq AS seq

// name: checkpoint_hide
// Thread $thread stops seeing the checkpoints $elements (element ids from checkpoint_visible,
// same transaction): a HIDES edge each, at the thread's next seq. Copies made before keep
// seeing them.
MATCH (t:SGSession {tenant: $tenant, id: $p.thread})
SET t.checkpoint_seq = t.checkpoint_seq + 1
WITH t
UNWIND $p.elements AS element
MATCH (c:SGCheckpoint {tenant: $tenant})
WHERE elementId(c) = element
CREATE (t)-[:HIDES {gen: t.checkpoint_gen, at: t.checkpoint_seq}]->(c)
RETURN count(c) AS hidden

// name: checkpoint_run_roots
// The fork trees (their roots) holding checkpoints of the runs $runs.
UNWIND $p.runs AS run
MATCH (c:SGCheckpoint {tenant: $tenant, run_id: run})
MATCH (t:SGSession {tenant: $tenant, id: c.thread_id})
RETURN DISTINCT t.root AS root

// name: checkpoint_hide_runs
// delete_for_runs: every thread of the tree rooted at $root stops seeing its own checkpoints
// (current generation) of the runs $runs. Copies made before keep seeing them.
MATCH (t:SGSession {tenant: $tenant, root: $p.root})
WHERE t.checkpoint_gen IS NOT NULL
MATCH (c:SGCheckpoint {tenant: $tenant, thread_id: t.id, gen: t.checkpoint_gen})
WHERE c.run_id IN $p.runs
  AND NOT EXISTS { MATCH (c)<-[h:HIDES]-(t) WHERE h.gen = t.checkpoint_gen }
WITH t, collect(c) AS runs
SET t.checkpoint_seq = t.checkpoint_seq + 1
WITH t, runs
UNWIND runs AS c
CREATE (t)-[:HIDES {gen: t.checkpoint_gen, at: t.checkpoint_seq}]->(c)
RETURN count(c) AS hidden

// name: checkpoint_collect
// Removes the checkpoints of the threads of the tree rooted at $root that no thread of the
// tree sees any more (deleted, pruned, of an old generation, and needed by no copy), with
// their edges. Returns the element ids of the values they held and their [ns, id] pairs, for
// checkpoint_collect_rest in the same transaction.
MATCH (x:SGSession {tenant: $tenant, root: $p.root})
WHERE x.checkpoint_gen IS NOT NULL
WITH collect(x.id) AS owners,
     collect([i IN range(0, size(x.checkpoint_threads) - 1) |
              [x.checkpoint_threads[i], x.checkpoint_gens[i], x.checkpoint_uptos[i]]]) AS chains
UNWIND owners AS owner
MATCH (c:SGCheckpoint {tenant: $tenant, thread_id: owner})
WHERE NOT any(views IN chains WHERE any(i IN range(0, size(views) - 1)
        WHERE views[i][0] = owner AND views[i][1] = c.gen AND c.seq <= views[i][2]
          AND NOT EXISTS {
            MATCH (c)<-[h:HIDES]-(x:SGSession)
            WHERE any(j IN range(0, i) WHERE x.id = views[j][0] AND h.gen = views[j][1]
                                           AND h.at <= views[j][2])
          }))
WITH c, [c.ns, c.id] AS removed, COLLECT {
       MATCH (c)-[:VALUE]->(b:SGChannelValue) RETURN elementId(b)
     } AS values
DETACH DELETE c
WITH collect(removed) AS removed, collect(values) AS values
RETURN removed, reduce(acc = [], v IN values | acc + v) AS values

// name: checkpoint_collect_rest
// After checkpoint_collect (same transaction): removes the channel values $values that no
// checkpoint holds any more, and the pending writes of the threads of the tree rooted at $root
// that no thread sees: those of a generation and seq no view reaches, and those of the
// checkpoints $removed ([[ns, id]]) that no checkpoint of the tree has the id of any more.
CALL () {
  UNWIND $p.values AS element
  MATCH (b:SGChannelValue {tenant: $tenant})
  WHERE elementId(b) = element AND NOT EXISTS { MATCH (b)<-[:VALUE]-(:SGCheckpoint) }
  DELETE b
  RETURN count(b) AS values
}
MATCH (x:SGSession {tenant: $tenant, root: $p.root})
WHERE x.checkpoint_gen IS NOT NULL
WITH values, collect(x.id) AS owners,
     collect([i IN range(0, size(x.checkpoint_threads) - 1) |
              [x.checkpoint_threads[i], x.checkpoint_gens[i], x.checkpoint_uptos[i]]]) AS chains
UNWIND owners AS owner
OPTIONAL MATCH (w:SGCheckpointWrite {tenant: $tenant, thread_id: owner})
WHERE NOT any(views IN chains WHERE any(level IN views
        WHERE level[0] = owner AND level[1] = w.gen AND w.seq <= level[2]))
   OR ([w.ns, w.checkpoint_id] IN $p.removed
       AND NOT EXISTS {
         UNWIND owners AS other
         MATCH (c:SGCheckpoint {tenant: $tenant, thread_id: other, ns: w.ns,
                                id: w.checkpoint_id})
         RETURN c
       })
DELETE w
RETURN values, count(w) AS writes
