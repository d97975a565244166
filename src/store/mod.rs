//! The store: all persistent state (connector spaces, metaverse, links,
//! lineage, run history, audit log) in one SQLite database. This module is the only one
//! that issues SQL against it; everything above sees typed rows. Every step
//! writes through one [`Tx`], so a crash mid-step leaves the previous state.
//!
//! Pending imports are not flags on rows: each import stamps the rows it
//! changes with the agent's next import sequence number, and a sync records
//! the sequence it has seen. "Pending" is `seq > synced_seq`, so clearing a
//! million pending imports is one row update, not a million.
//!
//! One process writes at a time: writers hold the run lock (`lock.rs`).

mod audit;
mod cs;
mod decision;
mod export;
mod history;
mod lock;
mod migrate;
mod mv;
mod recon;
mod runs;
mod space;
mod stage;

pub use audit::{AuditQuery, AuditReader};
pub use cs::{CsRow, SourceMarks};
pub use decision::DecisionRow;
pub use export::{AccountRef, ExportCounts, ExportRow, TargetState};
pub use history::HistoryRow;
pub use lock::{HEARTBEAT_EVERY, LockGuard, LockHolder, STALE_AFTER_SECS, hostname, stale_reason};
pub use mv::{AmbiguousRow, KeyReader, LinkRow, MvRow, NewLink, SchemaOf};
pub use recon::{
    DriftRow, EnabledAccount, FailingExport, MissingAccount, NewDrift, OrphanRow, RunRange,
};
pub use runs::{ChangeRow, NewChange, RunRow, StepErrorRow, StepRow};
pub use stage::{ImportCounts, LoadedSpace, Printed, StageRefusal, Stager};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("store {path}: {message}")]
    Corrupt { path: String, message: String },
    /// Another live process holds the run lock.
    #[error("store {path} is busy: {holder}")]
    Busy {
        path: String,
        holder: Box<LockHolder>,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The most of the store's file a connection maps (SQLite maps no more
/// than its build allows, 2 GiB unless raised; past it, it reads).
const MAP_SIZE: u64 = 1 << 34;

pub struct Store {
    conn: Connection,
    path: PathBuf,
    checkpointer: Option<Checkpointer>,
}

/// Copies committed pages from the write-ahead log into the database on a
/// thread of its own, so that the step goes on while the disk takes them.
///
/// SQLite's own checkpoint runs inside the commit that crosses its
/// threshold and waits there for the database file's fsync: at a million
/// people that wait was a fifth of a delta sync. Here a commit only
/// signals; the thread runs a passive checkpoint (which never blocks the
/// writer) while the engine computes groups or the next step. Closing the
/// store waits for it, and SQLite's checkpoint on close copies whatever is
/// left, so a closed store is one file, as before.
struct Checkpointer {
    signal: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    fn start(path: &Path) -> rusqlite::Result<Checkpointer> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let (signal, commits) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || {
                // The copy can wait; the step's own threads cannot. At a
                // lower priority it takes what they leave of the cores, not
                // half of them (alternated runs at 1 M: a full run 26.5 s
                // against 27.7 s, median of four; `run delta`'s steps
                // 1.70 s against 1.80 s, median of eight). A failure leaves the
                // thread at its priority; nothing depends on it.
                // SAFETY: plain system calls on this thread's own id.
                unsafe {
                    let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                    libc::setpriority(libc::PRIO_PROCESS, tid, 10);
                }
                while commits.recv().is_ok() {
                    // Commits that came meanwhile are covered by this pass.
                    while commits.try_recv().is_ok() {}
                    let t = std::time::Instant::now();
                    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    }) {
                        Ok((log, copied)) => tracing::debug!(
                            log,
                            copied,
                            ms = t.elapsed().as_millis() as u64,
                            "Background checkpoint."
                        ),
                        // The next commit's pass, or the close, copies the pages.
                        Err(e) => tracing::debug!(error = %e, "Background checkpoint failed."),
                    }
                }
            })
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Checkpointer { signal, thread })
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(c) = self.checkpointer.take() {
            drop(c.signal);
            let _ = c.thread.join();
        }
    }
}

impl Store {
    /// Tells the checkpointer a write outside [`Tx`] was committed.
    fn committed(&self) {
        if let Some(c) = &self.checkpointer {
            let _ = c.signal.send(());
        }
    }

    /// Opens (creating if needed) and migrates the store at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let display = path.display().to_string();
        let wrap = |source| StoreError::Sqlite {
            path: display.clone(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(wrap)?;
        // The page size must be chosen before the first table exists. 4 KiB
        // pages make a delta cycle's scattered updates (and the checkpoint
        // that copies them back) about a fifth cheaper than 16 KiB ones, for
        // a full run a few seconds slower at a million people; delta cycles
        // run many times a day (both measured, see the README); WAL with
        // synchronous=NORMAL is durable at each commit boundary we care about.
        // The busy timeout comes first: switching a new file to WAL needs a
        // lock another process opening it may hold.
        conn.execute_batch(
            "PRAGMA busy_timeout = 5000;
             PRAGMA page_size = 4096;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA cache_size = -32768;
             PRAGMA temp_store = MEMORY;",
        )
        .map_err(wrap)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            checkpointer: None,
        };
        migrate::migrate(&mut store.conn).map_err(|e| store.err(e))?;
        // Without the thread (it could not open its connection), SQLite's
        // own checkpoints stay on: slower commits, the same store.
        match Checkpointer::start(path) {
            Ok(c) => {
                store
                    .conn
                    .execute_batch("PRAGMA wal_autocheckpoint = 0;")
                    .map_err(|e| store.err(e))?;
                store.checkpointer = Some(c);
            }
            Err(e) => tracing::debug!(error = %e, "Checkpoints stay in the commits."),
        }
        Ok(store)
    }

    /// A second handle on the same store that only reads, for reads run on
    /// another thread beside this connection's. It sees what was committed
    /// when each of its statements starts; the caller keeps writers away
    /// meanwhile (a step's reads happen before its transaction).
    pub fn reader(&self) -> Result<Store> {
        Ok(Store {
            conn: self.read_only_connection()?,
            path: self.path.clone(),
            checkpointer: None,
        })
    }

    /// A connection of its own that only reads (see [`Store::reader`] and
    /// [`Store::key_reader`]). Its cache is small: such reads meet each
    /// leaf page about once while the interior pages they reuse fit, and a
    /// cache that grows takes fresh memory the kernel must zero, page by
    /// page (4 MiB instead of 16 or 32 made a delta sync's loading and
    /// planning faster, four runs alternated). It reads the file through a
    /// memory map: the scattered rows a delta sync loads cost a system call
    /// and a copy each otherwise (a delta sync's loading at a million
    /// people: 196-288 ms against 259-447, three runs alternated). The
    /// step's own connection maps only during delta steps
    /// ([`Store::map_reads`]).
    fn read_only_connection(&self) -> Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| self.err(e))?;
        conn.execute_batch(&format!(
            "PRAGMA busy_timeout = 5000; PRAGMA cache_size = -4096; PRAGMA mmap_size = {MAP_SIZE};"
        ))
        .map_err(|e| self.err(e))?;
        Ok(conn)
    }

    /// Whether this connection reads the file through a memory map, as
    /// the read-only ones always do. A delta step reads and rewrites pages
    /// scattered over the whole store, each a system call and a copy
    /// otherwise; a full step reads most of the file, which a map would
    /// count in the process's resident memory, so it reads without.
    pub fn map_reads(&self, on: bool) -> Result<()> {
        let size = if on { MAP_SIZE } else { 0 };
        self.conn
            .execute_batch(&format!("PRAGMA mmap_size = {size};"))
            .map_err(|e| self.err(e))
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.display().to_string(),
            source,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts the transaction a step writes through. It takes the write
    /// lock at once: the run lock's heartbeat writes from another
    /// connection, and a deferred transaction that read first could then not
    /// upgrade (SQLITE_BUSY_SNAPSHOT) instead of waiting its turn.
    pub fn begin(&mut self) -> Result<Tx<'_>> {
        let path = self.path.display().to_string();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|source| StoreError::Sqlite {
                path: path.clone(),
                source,
            })?;
        Ok(Tx {
            tx,
            path,
            checkpoint: self.checkpointer.as_ref().map(|c| c.signal.clone()),
            audit_head: std::cell::RefCell::new(None),
            log_writes: std::cell::Cell::new(true),
        })
    }

    /// The connector-space attribute names seen at the agent's last import.
    pub fn agent_schema(&self, agent: &str) -> Result<Option<Vec<String>>> {
        let text: Option<Option<String>> = self
            .conn
            .query_row(
                "SELECT schema FROM agent_state WHERE agent = ?1",
                params![agent],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(text.flatten().and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// The rules hash recorded by the last full sync.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }
}

/// One step's writes. Dropped without [`Tx::commit`], nothing happened.
pub struct Tx<'a> {
    tx: rusqlite::Transaction<'a>,
    path: String,
    /// Told of each commit (see [`Checkpointer`]).
    checkpoint: Option<std::sync::mpsc::Sender<()>>,
    /// The audit chain's last seq and hash once this transaction has read
    /// or written it (`audit.rs`).
    audit_head: std::cell::RefCell<Option<(i64, String)>>,
    /// Whether identities written are logged (`mv_touched`).
    log_writes: std::cell::Cell<bool>,
}

impl Tx<'_> {
    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    pub fn commit(self) -> Result<()> {
        let path = self.path.clone();
        self.tx
            .commit()
            .map_err(|source| StoreError::Sqlite { path, source })?;
        if let Some(c) = &self.checkpoint {
            let _ = c.send(());
        }
        Ok(())
    }

    /// Runs `head VALUES (?, ...), (?, ...) tail` over `rows`, `bind`
    /// giving each row's `N` values, [`MANY_ROWS`] rows per statement: a
    /// first sync writes millions of rows, and one statement per row costs
    /// more than the rows themselves. Rows are applied in order, as one
    /// statement each would be. Only one statement's rows are held at a
    /// time: the values of a million rows, gathered first, were 150 MB of
    /// fresh memory for the kernel to hand over. The rows short of a full
    /// statement go one to a statement: two statement texts for any count,
    /// where a text per count would crowd the statement cache.
    fn insert_rows<T, const N: usize>(
        &self,
        head: &str,
        tail: &str,
        rows: impl IntoIterator<Item = T>,
        bind: impl for<'r> Fn(&'r T) -> [&'r dyn rusqlite::ToSql; N],
    ) -> Result<()> {
        if N == 0 {
            return Ok(());
        }
        let sql = |n: usize| {
            let row = format!("({})", placeholders(N));
            format!("{head} VALUES {} {tail}", vec![row; n].join(", "))
        };
        let run = |chunk: &[T], text: &str| {
            let args: Vec<&dyn rusqlite::ToSql> = chunk.iter().flat_map(&bind).collect();
            self.tx
                .prepare_cached(text)
                .and_then(|mut st| st.execute(&args[..]))
                .map(|_| ())
                .map_err(|e| self.err(e))
        };
        let mut full = None;
        let mut chunk: Vec<T> = Vec::with_capacity(MANY_ROWS);
        for row in rows {
            chunk.push(row);
            if chunk.len() == MANY_ROWS {
                run(&chunk, full.get_or_insert_with(|| sql(MANY_ROWS)))?;
                chunk.clear();
            }
        }
        if !chunk.is_empty() {
            let one = sql(1);
            for row in chunk.chunks(1) {
                run(row, &one)?;
            }
        }
        Ok(())
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.tx
            .execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

/// Rows per statement of [`Tx::insert_rows`]. At 128, a full import's
/// statements (nine values a row) left a full run's peak 40 MB higher
/// (1,873-1,888 MB against 1,836-1,838 MB at a million people, two runs
/// each) for no time measured.
const MANY_ROWS: usize = 64;

/// Ids per `IN (...)` list when rows are read by id: few statements, and
/// the same few texts for the statement cache.
const IN_LIST: usize = 256;

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(",")
}

/// Test hook for crash-safety tests: `IDSYNC_FAULT=<point>` aborts the
/// process at that point, as a kill would, before the step commits.
pub fn fault_point(point: &str) {
    if std::env::var("IDSYNC_FAULT").is_ok_and(|v| v == point) {
        eprintln!("IDSYNC_FAULT: aborting at {point}");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MvId;

    #[test]
    fn keys_are_answered_alike_one_at_a_time_and_many_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        // Keys across the sign boundary (stored as signed 64 bits), more
        // of them than one statement asks, some held twice, some by no one.
        let keys: Vec<u64> = (0..600u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        assert!(keys.iter().any(|&k| k >= 1 << 63) && keys.iter().any(|&k| k < 1 << 63));
        let mut held: Vec<(u64, MvId)> = keys
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 0)
            .map(|(i, &k)| (k, i as MvId))
            .collect();
        held.extend(keys.iter().step_by(7).map(|&k| (k, 9999)));
        held.sort_unstable();
        held.dedup();
        let tx = store.begin().unwrap();
        tx.add_keys(&held).unwrap();
        tx.commit().unwrap();
        let reader = store.key_reader().unwrap();
        let many = reader.holders_many(&keys).unwrap();
        assert_eq!(many.len(), keys.len());
        for (key, mut holders) in many {
            let mut one = reader.holders(key).unwrap();
            one.sort_unstable();
            holders.sort_unstable();
            assert_eq!(holders, one, "key {key}");
        }
        assert!(held.iter().any(|&(k, _)| k >= 1 << 63));
    }

    #[test]
    fn many_row_statements_apply_their_rows_in_order_across_statements() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let tx = store.begin().unwrap();
        // More rows than one statement takes; the last link of object 5
        // comes in a later statement than its first, and wins.
        let mut links: Vec<NewLink> = (1..=300)
            .map(|cs| (cs, 1, "projected", None, None))
            .collect();
        links.push((5, 2, "joined", Some("by-id"), Some("W5")));
        tx.links(links, 7).unwrap();
        let changes: Vec<NewChange> = (0..300)
            .map(|i| NewChange {
                kind: "joined",
                agent: Some("workday"),
                cs_id: Some(i),
                anchor: None,
                mv_id: Some(1000 + i),
                detail: None,
            })
            .collect();
        tx.add_changes(3, changes).unwrap();
        tx.commit().unwrap();
        let q = |sql: &str| -> i64 { store.conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(q("SELECT count(*) FROM link"), 300);
        let five: (MvId, String, Option<String>, i64, Option<String>) = store
            .conn
            .query_row(
                "SELECT mv_id, kind, rule, run, detail FROM link WHERE cs_id = 5",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!(
            five,
            (
                2,
                "joined".into(),
                Some("by-id".into()),
                7,
                Some("W5".into())
            )
        );
        assert_eq!(
            q("SELECT count(*) FROM link WHERE mv_id = 1 AND run = 7"),
            299
        );
        let order: Vec<i64> = store
            .conn
            .prepare("SELECT cs_id FROM change WHERE step = 3 AND mv_id = cs_id + 1000 ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(order, (0..300).collect::<Vec<i64>>());
    }

    #[test]
    fn commits_reach_the_database_file_and_a_closed_store_is_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let wal = dir.path().join("s.db-wal");
        {
            let mut store = Store::open(&path).unwrap();
            for i in 0..50 {
                let tx = store.begin().unwrap();
                tx.set_meta(&format!("k{i}"), &"x".repeat(5000)).unwrap();
                tx.commit().unwrap();
            }
            assert!(wal.exists(), "an open store writes ahead");
        }
        assert!(!wal.exists(), "closing copies the log back and removes it");
        // The database file alone holds every commit.
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM meta WHERE key LIKE 'k%'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 50);
    }
}
