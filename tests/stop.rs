//! A stop request (what SIGINT/SIGTERM set) ends a run between steps: the
//! run is recorded as `stopped`, no later step starts, and the scheduler
//! returns instead of starting another run. Its own test binary, because the
//! request is process-wide and would stop other tests' runs.

mod common;
use chrono::{DateTime, Utc};
use common::*;
use idsync::schedule::{self, Options, SystemClock};
use std::cell::Cell;

#[test]
fn a_stop_request_ends_the_run_between_steps_and_the_scheduler_returns() -> TestResult {
    let e = Env::new();
    copy_dir(&repo().join("rules/example"), &e.path("rules"));
    copy_dir(&repo().join("fixtures/hr"), &e.path("fixtures/hr"));
    for f in ["workday", "sap", "contractors"] {
        let p = e.path(&format!("rules/agents/{f}.toml"));
        let text = std::fs::read_to_string(&p)?;
        std::fs::write(&p, text.replace("../../../fixtures", "../../fixtures"))?;
    }
    let mut app = e.app();
    // The signal arrives while the first step runs: the run reads its clock
    // once when it begins and once as each step starts.
    let calls = Cell::new(0);
    let now = || -> DateTime<Utc> {
        calls.set(calls.get() + 1);
        if calls.get() == 2 {
            idsync::shutdown::request();
        }
        Utc::now()
    };
    let report = app.run_profile("nightly", &now)?;
    assert_eq!(report.status, "stopped");
    // The first step finished or was rolled back whole; no other began.
    assert!(report.steps.len() <= 1, "{report:?}");
    let message = report.message.clone().unwrap_or_default();
    assert!(message.starts_with("stopped by a signal"), "{message}");
    let run = app.store.run(report.run)?.map(|r| r.status);
    assert_eq!(run.as_deref(), Some("stopped"));
    let steps = app.store.steps(report.run)?;
    assert!(steps.len() <= 1);
    assert!(steps.iter().all(|s| s.status != "running"), "{steps:?}");

    // The scheduler sees the same request and starts nothing.
    let mut ran = 0;
    let s = schedule::run(
        &mut app,
        &Options::default(),
        &SystemClock,
        &idsync::shutdown::requested,
        &mut |_| ran += 1,
    )?;
    assert!(s.stopped);
    assert_eq!((s.runs, ran), (0, 0));
    Ok(())
}
