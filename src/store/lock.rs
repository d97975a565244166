//! The run lock: one process writes the store at a time. Commands that write
//! (`import`, `sync`, `run`, `schedule`) take it before any work and release
//! it when done; a second writer is refused at once with who holds it, and
//! read-only commands never look at it.
//!
//! The lock is one row (`run_lock`, id 1) naming the holder's command, pid and
//! host. While it is held, a thread of the holder renews `heartbeat_at` every
//! [`HEARTBEAT_EVERY`] on a connection of its own, so it keeps beating while
//! the main connection is busy inside a long step. A row is stale, and is
//! taken over with a warning, when
//! - its pid no longer exists on this host (the holder crashed or was
//!   killed), or
//! - its heartbeat is older than [`STALE_AFTER_SECS`], whatever the host:
//!   the only test for a holder on another host (another container sharing
//!   the file), and the one that catches a pid reused by an unrelated
//!   process after a reboot.
//!
//! A holder whose row was taken over notices at its next heartbeat and says
//! so through [`LockGuard::lost`].

use super::{Result, Store, StoreError};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;
use tracing::{debug, error, warn};

/// How often a holder renews its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);

/// A heartbeat older than this (5 minutes, twenty missed beats) marks the
/// lock stale. Generous, because a step's long write transaction can hold
/// off the heartbeat's own write for a while.
pub const STALE_AFTER_SECS: i64 = 300;

/// Who holds the lock, as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LockHolder {
    /// The holder's command: `run nightly`, `import workday`, `schedule`.
    pub holder: String,
    pub pid: i64,
    pub host: String,
    pub acquired_at: String,
    pub heartbeat_at: String,
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} (pid {} on host {}) holds it since {}",
            self.holder, self.pid, self.host, self.acquired_at
        )
    }
}

/// Why a lock row no longer protects anything, or `None` while its holder
/// may still be working. `alive` answers whether a pid exists on this host.
pub fn stale_reason(
    lock: &LockHolder,
    host: &str,
    now: DateTime<Utc>,
    alive: &dyn Fn(i64) -> bool,
) -> Option<String> {
    if lock.host == host && !alive(lock.pid) {
        return Some(format!("process {} no longer exists on {host}", lock.pid));
    }
    let beat = DateTime::parse_from_rfc3339(&lock.heartbeat_at).ok()?;
    let silent = now.signed_duration_since(beat.with_timezone(&Utc));
    (silent > TimeDelta::seconds(STALE_AFTER_SECS)).then(|| {
        format!(
            "its last heartbeat was at {} (more than {STALE_AFTER_SECS} s ago)",
            lock.heartbeat_at
        )
    })
}

/// The lock, held. Dropping it stops the heartbeat and deletes the row, if
/// the row is still ours.
pub struct LockGuard {
    lost: Arc<AtomicBool>,
    stop: Option<mpsc::Sender<()>>,
    beater: Option<JoinHandle<rusqlite::Result<()>>>,
}

impl LockGuard {
    /// True once another process took the lock over (this one looked dead
    /// to it): work should stop at its next safe point.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Releases the lock now, reporting a failure to delete the row.
    pub fn release(mut self) -> std::result::Result<(), String> {
        self.finish()
    }

    fn finish(&mut self) -> std::result::Result<(), String> {
        self.stop.take();
        match self.beater.take().map(JoinHandle::join) {
            Some(Ok(Ok(()))) | None => Ok(()),
            Some(Ok(Err(e))) => Err(format!("releasing the run lock: {e}")),
            Some(Err(_)) => Err("the run lock's heartbeat thread panicked".into()),
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            warn!("{e}; the next writer will find the lock stale and take it over.");
        }
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("lost", &self.lost())
            .finish()
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn read(conn: &Connection) -> rusqlite::Result<Option<LockHolder>> {
    conn.query_row(
        "SELECT holder, pid, host, acquired_at, heartbeat_at FROM run_lock WHERE id = 1",
        [],
        |r| {
            Ok(LockHolder {
                holder: r.get(0)?,
                pid: r.get(1)?,
                host: r.get(2)?,
                acquired_at: r.get(3)?,
                heartbeat_at: r.get(4)?,
            })
        },
    )
    .optional()
}

/// Renews the heartbeat of our own row; false when the row is not ours.
fn beat(conn: &Connection, pid: i64, host: &str, now: DateTime<Utc>) -> rusqlite::Result<bool> {
    conn.execute(
        "UPDATE run_lock SET heartbeat_at = ?3 WHERE id = 1 AND pid = ?1 AND host = ?2",
        params![pid, host, stamp(now)],
    )
    .map(|n| n == 1)
}

/// Deletes our own row; another holder's row is left alone.
fn delete_own(conn: &Connection, pid: i64, host: &str) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM run_lock WHERE id = 1 AND pid = ?1 AND host = ?2",
        params![pid, host],
    )
    .map(|_| ())
}

impl Store {
    /// Who holds the run lock, stale or not.
    pub fn lock_holder(&self) -> Result<Option<LockHolder>> {
        read(&self.conn).map_err(|e| self.err(e))
    }

    /// Takes the run lock for `holder` (the command: `run nightly`,
    /// `schedule`), taking over a stale one with a warning. A live holder
    /// gives [`StoreError::Busy`] at once.
    pub fn acquire_lock(&mut self, holder: &str, now: DateTime<Utc>) -> Result<LockGuard> {
        let pid = i64::from(std::process::id());
        let host = hostname();
        // A live holder is reported without waiting: in WAL mode this read
        // never waits for the holder's writes, while the transaction below
        // would wait for them (up to the busy timeout).
        if let Some(current) = self.lock_holder()?
            && stale_reason(&current, &host, now, &pid_alive).is_none()
        {
            return Err(self.busy(current));
        }
        // The heartbeat's own connection (the main one is often deep in a
        // step's transaction when a beat is due), opened before the row is
        // written so that failing here leaves nothing behind.
        let side = open_side(&self.path).map_err(|e| self.err(e))?;
        let tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => {
                // Most likely a holder that appeared since the first look and
                // is writing; a side connection asks who (this one is borrowed).
                let now_held = open_side(&self.path).and_then(|c| read(&c));
                return Err(match now_held {
                    Ok(Some(current)) => StoreError::Busy {
                        path: self.path.display().to_string(),
                        holder: Box::new(current),
                    },
                    _ => StoreError::Sqlite {
                        path: self.path.display().to_string(),
                        source: e,
                    },
                });
            }
        };
        let path = self.path.display().to_string();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        // Read again inside the transaction: another process may have taken
        // the lock since the first look.
        if let Some(current) = read(&tx).map_err(sql)? {
            match stale_reason(&current, &host, now, &pid_alive) {
                None => {
                    return Err(StoreError::Busy {
                        path: path.clone(),
                        holder: Box::new(current),
                    });
                }
                Some(why) => warn!(
                    holder = %current.holder,
                    pid = current.pid,
                    host = %current.host,
                    since = %current.acquired_at,
                    "Taking over a stale run lock: {why}."
                ),
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO run_lock(id, holder, pid, host, acquired_at, heartbeat_at)
             VALUES (1, ?1, ?2, ?3, ?4, ?4)",
            params![holder, pid, host, stamp(now)],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        let lost = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = mpsc::channel::<()>();
        let flag = Arc::clone(&lost);
        let beater = std::thread::Builder::new()
            .name("run-lock-heartbeat".into())
            .spawn({
                let host = host.clone();
                move || heartbeat(side, pid, host, stopped, flag)
            })
            .map_err(|e| {
                // Without a heartbeat the lock would look stale to others
                // within minutes: give it back rather than hold it badly.
                let _ = delete_own(&self.conn, pid, &host);
                StoreError::Corrupt {
                    path: path.clone(),
                    message: format!("cannot start the run lock's heartbeat: {e}"),
                }
            })?;
        Ok(LockGuard {
            lost,
            stop: Some(stop),
            beater: Some(beater),
        })
    }

    fn busy(&self, holder: LockHolder) -> StoreError {
        StoreError::Busy {
            path: self.path.display().to_string(),
            holder: Box::new(holder),
        }
    }
}

fn open_side(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// The heartbeat thread: beats until the guard is dropped, then deletes the
/// row if it is still ours.
fn heartbeat(
    conn: Connection,
    pid: i64,
    host: String,
    stopped: mpsc::Receiver<()>,
    lost: Arc<AtomicBool>,
) -> rusqlite::Result<()> {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(HEARTBEAT_EVERY) {
        match beat(&conn, pid, &host, Utc::now()) {
            Ok(true) => {}
            Ok(false) => {
                if !lost.swap(true, Ordering::SeqCst) {
                    let by = read(&conn).ok().flatten();
                    error!(
                        by = by.map(|h| h.to_string()).unwrap_or_default(),
                        "Another process took the run lock over; stopping."
                    );
                }
            }
            // A write transaction elsewhere outlasted the busy timeout; the
            // next beat tries again, long before the lock could look stale.
            Err(e) => debug!(error = %e, "Run lock heartbeat skipped."),
        }
    }
    delete_own(&conn, pid, &host)
}

/// The name other processes see in the lock row.
pub fn hostname() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its whole length, and gethostname
        // writes at most that many bytes.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            return String::from_utf8_lossy(&buf[..end]).into_owned();
        }
        "unknown".into()
    }
    #[cfg(not(unix))]
    {
        std::env::var("COMPUTERNAME").unwrap_or_else(|_| "unknown".into())
    }
}

/// Whether a process with this pid exists on this host.
fn pid_alive(pid: i64) -> bool {
    #[cfg(unix)]
    {
        // 0 and negative pids address process groups, not a process.
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        if pid <= 0 {
            return false;
        }
        // SAFETY: signal 0 delivers nothing; it only checks that the
        // process exists and may be signalled.
        if unsafe { libc::kill(pid, 0) } == 0 {
            return true;
        }
        // EPERM: it exists, under another user.
        std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        // Without a way to ask, only the heartbeat can tell it is gone.
        let _ = pid;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(pid: i64, host: &str, beat: &str) -> LockHolder {
        LockHolder {
            holder: "run nightly".into(),
            pid,
            host: host.into(),
            acquired_at: "2026-11-24T02:00:00Z".into(),
            heartbeat_at: beat.into(),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T02:10:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn a_dead_pid_on_this_host_is_stale_a_live_one_is_not() {
        let alive = |p: i64| p == 4242;
        let fresh = "2026-11-24T02:09:50Z";
        assert_eq!(
            stale_reason(&lock(4242, "h1", fresh), "h1", now(), &alive),
            None
        );
        let why = stale_reason(&lock(4243, "h1", fresh), "h1", now(), &alive);
        assert_eq!(why.as_deref(), Some("process 4243 no longer exists on h1"));
    }

    #[test]
    fn another_hosts_lock_is_stale_only_when_its_heartbeat_is_old() {
        let dead = |_: i64| false;
        // Pids of another host mean nothing here.
        let recent = lock(1, "h2", "2026-11-24T02:06:00Z");
        assert_eq!(stale_reason(&recent, "h1", now(), &dead), None);
        let edge = lock(1, "h2", "2026-11-24T02:05:00Z");
        assert_eq!(stale_reason(&edge, "h1", now(), &dead), None);
        let old = lock(1, "h2", "2026-11-24T02:04:59Z");
        let why = stale_reason(&old, "h1", now(), &dead).unwrap_or_default();
        assert!(
            why.starts_with("its last heartbeat was at 2026-11-24T02:04:59Z"),
            "{why}"
        );
        // A live pid on this host with a silent heartbeat: a reused pid.
        let reused = lock(4242, "h1", "2026-11-24T01:00:00Z");
        assert!(stale_reason(&reused, "h1", now(), &|_| true).is_some());
        // An unreadable heartbeat proves nothing either way.
        assert_eq!(stale_reason(&lock(1, "h2", "?"), "h1", now(), &dead), None);
    }

    #[test]
    fn the_lock_is_taken_refused_released_and_taken_over() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Corrupt {
            path: "tempdir".into(),
            message: e.to_string(),
        })?;
        let path = dir.path().join("s.db");
        let mut a = Store::open(&path)?;
        let mut b = Store::open(&path)?;
        let t = Utc::now();
        let guard = a.acquire_lock("run nightly", t)?;
        let held = b.lock_holder()?.map(|h| (h.holder, h.pid, h.host));
        assert_eq!(
            held,
            Some((
                "run nightly".into(),
                i64::from(std::process::id()),
                hostname()
            ))
        );
        // Not reentrant: the same process asking again is refused too.
        match b.acquire_lock("sync", t) {
            Err(StoreError::Busy { holder, .. }) => assert_eq!(holder.holder, "run nightly"),
            other => panic!("expected busy, got {other:?}"),
        }
        assert!(!guard.lost());
        guard.release().map_err(|message| StoreError::Corrupt {
            path: "release".into(),
            message,
        })?;
        assert_eq!(b.lock_holder()?, None);

        // A crashed holder's row (a pid that cannot exist) is taken over.
        a.conn
            .execute(
                "INSERT INTO run_lock VALUES (1, 'import sap', ?1, ?2, '2026-01-01T00:00:00Z', ?3)",
                params![i64::from(i32::MAX), hostname(), stamp(t)],
            )
            .map_err(|e| a.err(e))?;
        let guard = b.acquire_lock("sync", t)?;
        assert_eq!(a.lock_holder()?.map(|h| h.holder).as_deref(), Some("sync"));
        drop(guard);
        assert_eq!(a.lock_holder()?, None);
        Ok(())
    }

    #[test]
    fn release_leaves_another_holders_row_alone() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Corrupt {
            path: "tempdir".into(),
            message: e.to_string(),
        })?;
        let mut s = Store::open(&dir.path().join("s.db"))?;
        let guard = s.acquire_lock("schedule", Utc::now())?;
        // Another process took it over (this one looked dead to it).
        s.conn
            .execute(
                "UPDATE run_lock SET pid = pid + 1, holder = 'run delta'",
                [],
            )
            .map_err(|e| s.err(e))?;
        assert!(
            !beat(
                &s.conn,
                i64::from(std::process::id()),
                &hostname(),
                Utc::now()
            )
            .map_err(|e| s.err(e))?
        );
        drop(guard);
        assert_eq!(
            s.lock_holder()?.map(|h| h.holder).as_deref(),
            Some("run delta")
        );
        Ok(())
    }
}
