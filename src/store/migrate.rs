//! Schema migrations: numbered, forward-only, one transaction each. The
//! database records the last one applied in `PRAGMA user_version`.

use rusqlite::{Connection, TransactionBehavior};

const MIGRATIONS: &[&str] = &[
    // 1: connector spaces, metaverse, links, runs.
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE agent_state(
        agent TEXT PRIMARY KEY,
        import_seq INTEGER NOT NULL DEFAULT 0,
        synced_seq INTEGER NOT NULL DEFAULT 0,
        schema TEXT
     );
     CREATE TABLE cs_object(
        id INTEGER PRIMARY KEY,
        agent TEXT NOT NULL,
        anchor TEXT NOT NULL,
        attrs TEXT NOT NULL,
        -- What the last sync saw, while an update is pending: per-attribute
        -- change detection (equal precedence) and change listings.
        prev_attrs TEXT,
        hash INTEGER NOT NULL,
        op TEXT NOT NULL,
        seq INTEGER NOT NULL,
        line INTEGER,
        UNIQUE(agent, anchor)
     );
     CREATE INDEX cs_pending ON cs_object(agent, seq);
     CREATE TABLE link(
        cs_id INTEGER PRIMARY KEY,
        mv_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        rule TEXT,
        run INTEGER NOT NULL,
        detail TEXT
     );
     CREATE INDEX link_mv ON link(mv_id);
     CREATE TABLE mv_object(
        id INTEGER PRIMARY KEY,
        object_type TEXT NOT NULL,
        attrs TEXT NOT NULL,
        lineage TEXT NOT NULL,
        created_run INTEGER NOT NULL,
        updated_run INTEGER NOT NULL
     );
     CREATE TABLE ambiguous_join(
        cs_id INTEGER PRIMARY KEY,
        agent TEXT NOT NULL,
        anchor TEXT NOT NULL,
        rule TEXT NOT NULL,
        candidates TEXT NOT NULL,
        run INTEGER NOT NULL
     );
     CREATE TABLE run(
        id INTEGER PRIMARY KEY,
        profile TEXT,
        command TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,
        rules_hash TEXT,
        threads INTEGER
     );
     CREATE TABLE step(
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL,
        ordinal INTEGER NOT NULL,
        name TEXT NOT NULL,
        agent TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,
        counters TEXT,
        message TEXT
     );
     CREATE INDEX step_run ON step(run);
     CREATE TABLE step_error(
        id INTEGER PRIMARY KEY,
        step INTEGER NOT NULL,
        kind TEXT NOT NULL,
        agent TEXT,
        anchor TEXT,
        source TEXT,
        line INTEGER,
        message TEXT NOT NULL
     );
     CREATE INDEX step_error_step ON step_error(step);",
    // 2: delta runs, the run lock, retained identities, per-object changes.
    "-- Delta import: the highest change a SQL source reported (its watermark),
     -- and the digest of the last file a delimited source delivered; both are
     -- written in the transaction of the batch they cover.
     ALTER TABLE agent_state ADD COLUMN watermark TEXT;
     ALTER TABLE agent_state ADD COLUMN source_digest TEXT;
     -- An identity whose last connector left, kept so a rehire gets it back.
     ALTER TABLE mv_object ADD COLUMN retained_since TEXT;
     -- Counting identities reads this small index, not the whole table.
     CREATE INDEX mv_type ON mv_object(object_type);
     -- Lookup keys of metaverse objects (join keys, unique values, reference
     -- targets and holders), each its kind and text hashed into 64 bits: a
     -- delta sync finds the identities a change reaches without loading the
     -- metaverse.
     CREATE TABLE mv_key(
        key INTEGER NOT NULL,
        mv_id INTEGER NOT NULL,
        PRIMARY KEY(key, mv_id)
     ) WITHOUT ROWID;
     -- Dates at which an identity must be looked at again though no source
     -- changed (a hire or termination date reached; a retention that ends).
     CREATE TABLE mv_due(
        mv_id INTEGER NOT NULL,
        due TEXT NOT NULL,
        PRIMARY KEY(mv_id, due)
     ) WITHOUT ROWID;
     CREATE INDEX mv_due_at ON mv_due(due);
     -- What each step changed, object by object.
     CREATE TABLE change(
        id INTEGER PRIMARY KEY,
        step INTEGER NOT NULL,
        kind TEXT NOT NULL,
        agent TEXT,
        -- The connector-space object, when the anchor is read from it.
        cs_id INTEGER,
        anchor TEXT,
        mv_id INTEGER,
        detail TEXT
     );
     CREATE INDEX change_step ON change(step);
     -- One writer at a time: who holds the store.
     CREATE TABLE run_lock(
        id INTEGER PRIMARY KEY CHECK (id = 1),
        holder TEXT NOT NULL,
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        acquired_at TEXT NOT NULL,
        heartbeat_at TEXT NOT NULL
     );",
    // 3: row fingerprints for delta imports of files.
    "-- The fingerprint of the raw source row (its bytes under the agent's
     -- column rules) an object was last imported from: a row whose bytes did
     -- not change is not converted again. NULL for sources without one.
     ALTER TABLE cs_object ADD COLUMN raw_hash INTEGER;
     -- Everything an import compares a connector space with, read from the
     -- index alone instead of from rows that carry the attributes.
     CREATE INDEX cs_compare ON cs_object(agent, anchor, hash, raw_hash, op);",
    // 4: targets: accounts, their pending exports, and each target's state.
    "-- One row per account idsync manages in a target, keyed by the identity
     -- it belongs to. `desired` is what the export flows want (JSON: name,
     -- attributes, references as identity ids, create-only values);
     -- `exported` what the target was last told or found to hold. The
     -- pending export is their difference, worked out when exporting.
     CREATE TABLE export_object(
        agent TEXT NOT NULL,
        mv_id INTEGER NOT NULL,
        -- create (not in the target yet), present, disabled, delete (to delete)
        state TEXT NOT NULL,
        remote_id TEXT,
        name TEXT,
        desired TEXT NOT NULL,
        exported TEXT,
        pending INTEGER NOT NULL,
        -- Attributes exported and not yet seen again by a confirming import.
        unconfirmed TEXT,
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_run INTEGER NOT NULL,
        updated_run INTEGER NOT NULL,
        PRIMARY KEY(agent, mv_id)
     ) WITHOUT ROWID;
     CREATE INDEX export_pending ON export_object(agent, mv_id) WHERE pending = 1;
     CREATE INDEX export_remote ON export_object(agent, remote_id);
     -- Which accounts refer to which identities' accounts (managers, group
     -- members): when an account is created or renamed, its referrers are
     -- exported again with the new name.
     CREATE TABLE export_ref(
        ref_agent TEXT NOT NULL,
        ref_mv INTEGER NOT NULL,
        agent TEXT NOT NULL,
        mv_id INTEGER NOT NULL,
        PRIMARY KEY(ref_agent, ref_mv, agent, mv_id)
     ) WITHOUT ROWID;
     CREATE INDEX export_ref_of ON export_ref(agent, mv_id);
     CREATE TABLE target_state(
        agent TEXT PRIMARY KEY,
        -- The target rules' digest when its identities were last evaluated.
        rules_hash TEXT,
        -- Identities changed after this run are evaluated at the next sync.
        provisioned_run INTEGER NOT NULL DEFAULT 0,
        quarantined TEXT,
        quarantined_run INTEGER
     );
     -- Provisioning reads the identities a sync changed.
     CREATE INDEX mv_updated ON mv_object(updated_run);
     -- Groups computed from identities: each member's group per rule, and
     -- the metaverse object holding each group.
     CREATE TABLE group_member(
        rule TEXT NOT NULL,
        mv_id INTEGER NOT NULL,
        key TEXT NOT NULL,
        PRIMARY KEY(rule, mv_id)
     ) WITHOUT ROWID;
     CREATE INDEX group_member_key ON group_member(rule, key, mv_id);
     CREATE TABLE group_object(
        rule TEXT NOT NULL,
        key TEXT NOT NULL,
        mv_id INTEGER NOT NULL,
        PRIMARY KEY(rule, key)
     ) WITHOUT ROWID;",
    // 5: reconciliation, history and the audit log.
    "-- History: the values an identity update changed, as JSON
     -- {attribute: [before, after]}; an identity's deletion keeps its last
     -- values here too. Read per identity, so indexed by it.
     ALTER TABLE change ADD COLUMN data TEXT;
     CREATE INDEX change_mv ON change(mv_id) WHERE mv_id IS NOT NULL;
     -- Drift: a value a target holds that differs from what idsync last
     -- exported there. Open while `outcome` is pending (a corrective export
     -- is queued) or reported; closed when rolled back, when the target
     -- agrees again (resolved), or when the rollback failed for good.
     CREATE TABLE drift(
        id INTEGER PRIMARY KEY,
        agent TEXT NOT NULL,
        mv_id INTEGER NOT NULL,
        account TEXT,
        attr TEXT NOT NULL,
        expected TEXT NOT NULL,
        found TEXT NOT NULL,
        policy TEXT NOT NULL,
        detected_run INTEGER NOT NULL,
        detected_at TEXT NOT NULL,
        last_run INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        outcome_run INTEGER,
        outcome_at TEXT,
        message TEXT
     );
     CREATE INDEX drift_open ON drift(agent, mv_id) WHERE outcome IN ('pending', 'reported');
     CREATE INDEX drift_run ON drift(last_run);
     -- Accounts a target holds that no identity owns. `action` is the
     -- target's orphan policy when found; `state` open (reported), pending
     -- (to disable or delete at the next export), disabled, deleted, failed,
     -- or gone (no longer in the target, or joined to an identity since).
     CREATE TABLE orphan(
        agent TEXT NOT NULL,
        remote_id TEXT NOT NULL,
        name TEXT NOT NULL,
        attrs TEXT,
        action TEXT NOT NULL,
        state TEXT NOT NULL,
        first_run INTEGER NOT NULL,
        first_at TEXT NOT NULL,
        last_run INTEGER NOT NULL,
        done_run INTEGER,
        error TEXT,
        PRIMARY KEY(agent, remote_id)
     ) WITHOUT ROWID;
     -- The audit log: append-only, each record's hash the SHA-256 of its
     -- canonical text and the previous record's hash.
     CREATE TABLE audit(
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        run INTEGER,
        actor TEXT NOT NULL,
        kind TEXT NOT NULL,
        target TEXT,
        subject TEXT,
        detail TEXT NOT NULL,
        prev TEXT NOT NULL,
        hash TEXT NOT NULL
     );
     -- The last record removed by retention: verification starts from it.
     CREATE TABLE audit_anchor(
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL,
        at TEXT NOT NULL
     );",
    // 6: decisions people made about connector-space objects.
    "-- An explicit connector (join: this object belongs to mv_id), an
     -- explicit projection (project: a new identity, whatever the join rules
     -- find) or an explicit disconnector (disconnect: joined to nothing).
     -- Every sync, full or delta, honours them before the rules, so they
     -- survive later runs and rule changes; `applied_run` is the sync that
     -- first applied one.
     CREATE TABLE decision(
        cs_id INTEGER PRIMARY KEY,
        agent TEXT NOT NULL,
        anchor TEXT NOT NULL,
        kind TEXT NOT NULL,
        mv_id INTEGER,
        actor TEXT NOT NULL,
        at TEXT NOT NULL,
        note TEXT,
        applied_run INTEGER
     );",
    // 7: a fuzzy join's scores of the candidates it sent to review.
    "-- JSON: per candidate, its score and each field's level and weight;
     -- null for an exact rule's ambiguous join.
     ALTER TABLE ambiguous_join ADD COLUMN scores TEXT;",
    // 8: values a target assigns that other targets read back.
    "-- JSON: attribute -> values of the attributes other targets' account
     -- flows read from this account (a mail address the target assigned),
     -- as the last confirming import found them; null until one has.
     ALTER TABLE export_object ADD COLUMN held TEXT;",
    // 9: what the last sync saw of an object with a pending update, out of
    // the object's row. Kept in the row, it grew a full page's rows by
    // half on their first update after a sync: the page split, and a 1 %
    // delta import wrote three pages per changed row instead of one.
    "-- Rows live from an object's first update after a sync to the next
     -- sync, which clears them.
     CREATE TABLE cs_prev(
        id INTEGER PRIMARY KEY,
        attrs TEXT NOT NULL
     );
     INSERT INTO cs_prev(id, attrs)
        SELECT c.id, c.prev_attrs FROM cs_object c JOIN agent_state s ON s.agent = c.agent
        WHERE c.seq > s.synced_seq AND c.op = 'update' AND c.prev_attrs IS NOT NULL;
     ALTER TABLE cs_object DROP COLUMN prev_attrs;",
    // 10: a computed group's members are read from group_member, not kept
    // in the group's row, which every change of membership wrote whole
    // (the group of everyone employed is 6.6 MB at a million people).
    "-- The group's member attribute, filled from group_member when the
     -- group is read; null for a group written before, whose row still
     -- holds its members until its next change.
     ALTER TABLE group_object ADD COLUMN member_attr TEXT;
     CREATE INDEX group_object_mv ON group_object(mv_id);",
    // 11: the identities each run wrote, as a log read from its end. The
    // index on mv_object(updated_run) that answered "written since run R"
    // moved an identity's entry on each write: a delete at a random page
    // (2,400 of a 1 % delta sync's 37,000 at a million people), and the
    // answer needed each row's type from the table.
    "-- One row per identity and run that inserted or updated it, appended
     -- in run order as identities are written (Tx::insert_mv, update_mv).
     -- Rows every provisioning and group pass has read are cut from the
     -- front (meta 'mv_touched_pruned': through which run).
     CREATE TABLE mv_touched(
        run INTEGER NOT NULL,
        object_type TEXT NOT NULL,
        mv_id INTEGER NOT NULL,
        PRIMARY KEY(run, object_type, mv_id)
     ) WITHOUT ROWID;
     INSERT INTO mv_touched(run, object_type, mv_id)
        SELECT updated_run, object_type, id FROM mv_object;
     DROP INDEX mv_updated;",
];

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version = |c: &Connection| c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0));
    if version(conn)? >= MIGRATIONS.len() as i64 {
        return Ok(());
    }
    // Two processes may open a new store at the same moment: each migration
    // takes the write lock first and reads the version again under it, so
    // the second process finds the work done instead of redoing it.
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = version(&tx)?;
        let Some(sql) = usize::try_from(current)
            .ok()
            .and_then(|i| MIGRATIONS.get(i))
        else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", current + 1))?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_record_their_version() -> rusqlite::Result<()> {
        let mut conn = Connection::open_in_memory()?;
        migrate(&mut conn)?;
        migrate(&mut conn)?;
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        assert_eq!(v, MIGRATIONS.len() as i64);
        let n: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'cs_object'",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(n, 1);
        Ok(())
    }

    #[test]
    fn two_processes_opening_a_new_store_migrate_it_once() -> rusqlite::Result<()> {
        use std::sync::{Arc, Barrier};
        for _ in 0..10 {
            let dir = tempfile::tempdir()
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            let path = dir.path().join("s.db");
            let start = Arc::new(Barrier::new(2));
            let openers: Vec<_> = (0..2)
                .map(|_| {
                    let (path, start) = (path.clone(), Arc::clone(&start));
                    std::thread::spawn(move || -> rusqlite::Result<i64> {
                        let mut conn = Connection::open(&path)?;
                        conn.busy_timeout(std::time::Duration::from_secs(5))?;
                        start.wait();
                        migrate(&mut conn)?;
                        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
                    })
                })
                .collect();
            for o in openers {
                let version = o.join().unwrap_or(Ok(-1))?;
                assert_eq!(version, MIGRATIONS.len() as i64);
            }
        }
        Ok(())
    }

    #[test]
    fn a_pending_update_keeps_its_previous_attributes_across_migration_9() -> rusqlite::Result<()> {
        let mut conn = Connection::open_in_memory()?;
        for sql in &MIGRATIONS[..8] {
            conn.execute_batch(sql)?;
        }
        conn.execute_batch(
            "PRAGMA user_version = 8;
             INSERT INTO agent_state(agent, import_seq, synced_seq) VALUES ('hr', 3, 2);
             INSERT INTO cs_object(id, agent, anchor, attrs, prev_attrs, hash, op, seq)
             VALUES (1, 'hr', 'a', '{\"n\":[\"new\"]}', '{\"n\":[\"old\"]}', 0, 'update', 3),
                    (2, 'hr', 'b', '{}', '{\"n\":[\"synced\"]}', 0, 'update', 2),
                    (3, 'hr', 'c', '{}', NULL, 0, 'add', 3);",
        )?;
        migrate(&mut conn)?;
        let kept: Vec<(i64, String)> = conn
            .prepare("SELECT id, attrs FROM cs_prev ORDER BY id")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        assert_eq!(kept, vec![(1, "{\"n\":[\"old\"]}".to_string())]);
        let columns: i64 = conn.query_row(
            "SELECT count(*) FROM pragma_table_info('cs_object') WHERE name = 'prev_attrs'",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(columns, 0);
        Ok(())
    }
}
