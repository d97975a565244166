//! Schedules and the run lock: one writer at a time, a crashed writer's lock
//! taken over, `idsync schedule` running profiles until SIGTERM, the
//! scheduler's decisions on a clock the test moves, and bad schedules
//! reported by `idsync check` with their place.

mod common;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use common::*;
use idsync::app::ProfileReport;
use idsync::schedule::{self, Clock, Options};
use idsync::store::{Store, hostname};
use std::cell::{Cell, RefCell};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The example with its schedules replaced.
fn example_with(schedules: &str) -> Env {
    let e = example_env();
    e.write(
        "rules/profiles.toml",
        &format!(
            "[[profile]]\nname = \"nightly\"\nsteps = [\"import workday\", \"import sap\", \"import contractors\", \"sync\"]\n\n\
             [[profile]]\nname = \"hr-only\"\nsteps = [\"import workday\", \"import sap\", \"sync\"]\n\n{schedules}"
        ),
    );
    e
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(out), stderr(out)))
}

fn runs(e: &Env) -> Vec<serde_json::Value> {
    json(&e.idsync(&["runs", "--json", "--limit", "1000"]))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A child process killed if the test ends without waiting for it (a
/// failed assertion must not leave a scheduler running).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits for a child to exit, killing it if it does not within a minute (a
/// hung scheduler fails the test instead of hanging it).
fn wait(child: &mut Child) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the child did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_writer_is_refused_at_once_with_the_holder_named() -> TestResult {
    let e = example_env();
    let mut store = Store::open(&e.store())?;
    let lock = store.acquire_lock("run nightly", Utc::now())?;
    let since = store
        .lock_holder()?
        .map(|h| h.acquired_at)
        .unwrap_or_default();
    let expected = format!(
        "error: store {} is busy: \"run nightly\" (pid {} on host {}) holds it since {since}",
        e.store().display(),
        std::process::id(),
        hostname()
    );
    for args in [
        &["run", "nightly"][..],
        &["import", "workday"],
        &["import", "--delta", "sap"],
        &["sync"],
        &["schedule", "--once"],
    ] {
        let out = e.idsync(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // Readers never take the lock.
    for args in [
        &["check"][..],
        &["status"],
        &["runs"],
        &["sync", "--dry-run"],
        &["search", "--mv", "sn = \"Doe\""],
    ] {
        let out = e.idsync(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
    let status = stdout(&e.idsync(&["status"]));
    assert!(
        status.contains("run lock: \"run nightly\" (pid"),
        "{status}"
    );
    assert!(runs(&e).is_empty(), "a refused writer recorded a run");

    drop(lock);
    let out = e.idsync(&["run", "nightly"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(store.lock_holder()?, None);
    Ok(())
}

#[test]
fn a_crashed_writers_lock_is_taken_over() -> TestResult {
    let e = example_env();
    // Aborted before its commit, as a kill would: no chance to release.
    let child = Command::new(env!("CARGO_BIN_EXE_idsync"))
        .args(["--rules", &e.rules().display().to_string()])
        .args(["--store", &e.store().display().to_string()])
        .args(["-q", "import", "workday"])
        .env("IDSYNC_FAULT", "import-before-commit")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = i64::from(child.id());
    let out = child.wait_with_output()?;
    assert!(!out.status.success());
    let left = Store::open(&e.store())?.lock_holder()?;
    assert_eq!(
        left.as_ref().map(|h| (h.holder.as_str(), h.pid)),
        Some(("import workday", pid))
    );

    let out = e.idsync(&["run", "nightly"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "Taking over a stale run lock: process {pid} no longer exists on {}.",
            hostname()
        )),
        "{err}"
    );
    assert_eq!(Store::open(&e.store())?.lock_holder()?, None);
    Ok(())
}

#[test]
fn schedule_runs_profiles_until_sigterm_and_leaves_the_store_consistent() -> TestResult {
    let e = example_with("[[schedule]]\nprofile = \"nightly\"\nevery = \"1s\"\n");
    let log = std::fs::File::create(e.path("schedule.log"))?;
    let mut child = Reaped(
        Command::new(env!("CARGO_BIN_EXE_idsync"))
            .args(["--rules", &e.rules().display().to_string()])
            .args(["--store", &e.store().display().to_string()])
            .args(["--json", "schedule"])
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()?,
    );
    let log = || std::fs::read_to_string(e.path("schedule.log")).unwrap_or_default();

    // The first run finishes at once: the profile never ran.
    let t0 = Instant::now();
    while !runs(&e).iter().any(|r| r["run"]["status"] == "success") {
        if let Some(status) = child.0.try_wait()? {
            panic!("the scheduler exited ({status}):\n{}", log());
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "no run:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Meanwhile nothing else writes.
    let out = e.idsync(&["run", "nightly"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("\"schedule\" (pid {} on host", child.0.id())),
        "{}",
        stderr(&out)
    );

    let pid = libc::pid_t::try_from(child.0.id())?;
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = wait(&mut child.0);
    assert_eq!(status.code(), Some(0), "{}", log());
    assert!(log().contains("Scheduler stopped."), "{}", log());

    // Every run ended (success, or stopped between steps), every step too,
    // and the lock is free.
    let all = runs(&e);
    assert!(!all.is_empty());
    for r in &all {
        let s = &r["run"]["status"];
        assert!(s == "success" || s == "stopped", "{r}");
        for step in r["steps"].as_array().into_iter().flatten() {
            assert_ne!(step["status"], "running", "{r}");
        }
    }
    // Each run's report went to stdout, one JSON object per line.
    let reported = log()
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["profile"] == "nightly")
        .count();
    assert_eq!(reported, all.len(), "{}", log());
    let status = json(&e.idsync(&["status", "--json"]));
    assert_eq!(status["run_lock"], serde_json::Value::Null);

    // The store is what a complete run leaves: the same as a fresh store's.
    let out = e.idsync(&["run", "nightly"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let fresh = example_env();
    assert!(fresh.idsync(&["run", "nightly"]).status.success());
    let summary = |e: &Env| {
        let s = json(&e.idsync(&["status", "--json"]));
        (s["connector_spaces"].clone(), s["metaverse"].clone())
    };
    assert_eq!(summary(&e), summary(&fresh));
    Ok(())
}

/// A clock that moves only when the test (or the scheduler's sleep) says.
struct TestClock(Cell<DateTime<Utc>>);

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.get()
    }
    fn sleep(&self, d: Duration) {
        self.0
            .set(self.0.get() + TimeDelta::from_std(d).unwrap_or_default());
    }
}

impl TestClock {
    fn set(&self, t: DateTime<Utc>) {
        self.0.set(t);
    }
}

fn at(d: u32, h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, h, m, s)
        .single()
        .expect("valid time")
}

#[test]
fn the_scheduler_runs_what_is_due_coalesces_missed_runs_and_stops() -> TestResult {
    let e = example_with(
        "[[schedule]]\nprofile = \"hr-only\"\nevery = \"15m\"\n\n\
         [[schedule]]\nprofile = \"nightly\"\ncron = \"0 2 * * *\"\n",
    );
    let mut app = e.app();
    let clock = TestClock(Cell::new(at(24, 1, 0, 0)));
    let once = Options {
        once: true,
        ..Options::default()
    };
    let profiles = RefCell::new(Vec::new());
    let pass = |app: &mut idsync::app::App, opts: &Options| {
        profiles.borrow_mut().clear();
        let mut seen = |r: &ProfileReport| profiles.borrow_mut().push(r.profile.clone());
        let s = schedule::run(app, opts, &clock, &|| false, &mut seen)?;
        assert_eq!(s.failed, 0);
        Ok::<_, idsync::app::AppError>(profiles.borrow().clone())
    };

    // Never ran: both are due at once, in the order written.
    assert_eq!(pass(&mut app, &once)?, ["hr-only", "nightly"]);
    // A minute later nothing is due.
    clock.set(at(24, 1, 1, 0));
    assert!(pass(&mut app, &once)?.is_empty());
    // Fifteen minutes after its start the delta is.
    clock.set(at(24, 1, 15, 0));
    assert_eq!(pass(&mut app, &once)?, ["hr-only"]);
    // Down for two days: each is owed one run, the one due earlier first
    // (the nightly since 02:00 on the 24th, hr-only since 01:30).
    clock.set(at(26, 9, 0, 0));
    assert_eq!(pass(&mut app, &once)?, ["hr-only", "nightly"]);
    clock.set(at(26, 9, 5, 0));
    assert!(pass(&mut app, &once)?.is_empty());
    // --now runs each scheduled profile, due or not; --profile restricts.
    let now = Options {
        once: true,
        all_now: true,
        profile: Some("nightly".into()),
    };
    assert_eq!(pass(&mut app, &now)?, ["nightly"]);

    // The long-running loop: a run every 15 minutes of the test's clock,
    // sleeping between them, until the stop after the third.
    clock.set(at(26, 9, 30, 0));
    let count = Cell::new(0);
    let stop = || count.get() >= 3;
    let mut seen = |r: &ProfileReport| {
        assert_eq!(
            (r.profile.as_str(), r.status.as_str()),
            ("hr-only", "success")
        );
        count.set(count.get() + 1);
    };
    let opts = Options {
        profile: Some("hr-only".into()),
        ..Options::default()
    };
    let s = schedule::run(&mut app, &opts, &clock, &stop, &mut seen)?;
    assert_eq!((s.runs, s.stopped), (3, true));
    assert_eq!(clock.now(), at(26, 10, 0, 0));
    let starts: Vec<String> = app
        .store
        .runs(3)?
        .into_iter()
        .map(|r| r.started_at)
        .collect();
    assert_eq!(
        starts,
        [
            "2026-11-26T10:00:00.000Z",
            "2026-11-26T09:45:00.000Z",
            "2026-11-26T09:30:00.000Z"
        ]
    );

    // A profile without a schedule, or no such profile, is a usage error.
    let bad = Options {
        profile: Some("nightlyy".into()),
        ..Options::default()
    };
    let err = schedule::run(&mut app, &bad, &clock, &|| false, &mut |_| {})
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("no profile \"nightlyy\" (did you mean \"nightly\"?)"),
        "{err}"
    );
    Ok(())
}

#[test]
fn check_reports_bad_schedules_with_their_place() {
    let e = example_env();
    e.write(
        "rules/schedules.toml",
        r#"[[schedule]]
profile = "nighty"
every = "15m"

[[schedule]]
profile = "nightly"
every = "15x"

[[schedule]]
profile = "nightly"
cron = "61 * * * *"

[[schedule]]
profile = "nightly"
every = "1h"
cron = "0 2 * * *"

[[schedule]]
profile = "nightly"
description = "no time given"
"#,
    );
    e.write(
        "rules/typo.toml",
        "[[schedule]]\nprofile = \"nightly\"\nevry = \"15m\"\n",
    );
    let out = e.idsync(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let f = e.rules().join("schedules.toml").display().to_string();
    let t = e.rules().join("typo.toml").display().to_string();
    let expected = [
        format!(
            "error: {f}:2:11: schedule: unknown profile \"nighty\" (did you mean \"nightly\"?)"
        ),
        format!(
            "error: {f}:7:9: schedule for \"nightly\": every \"15x\": unknown unit \"x\"; units are s, m, h and d"
        ),
        format!(
            "error: {f}:11:8: schedule for \"nightly\": cron \"61 * * * *\": Component error: Number out of bounds."
        ),
        format!("error: {f}:16:8: schedule for \"nightly\": give either every or cron, not both"),
        format!(
            "error: {f}:18:1: schedule for \"nightly\" needs every = \"15m\" (an interval) or cron = \"0 2 * * *\""
        ),
        format!(
            "error: {t}:3:1: unknown field `evry`, expected one of `profile`, `every`, `cron`, `description` (did you mean \"every\"?)"
        ),
    ];
    for line in &expected {
        assert!(err.contains(line.as_str()), "missing:\n{line}\nin:\n{err}");
    }
    assert!(err.contains("6 error(s) in rule files"), "{err}");
    // The caret sits under the culprit.
    assert!(
        err.contains("7 | every = \"15x\"\n  |         ^^^^^"),
        "{err}"
    );
}
