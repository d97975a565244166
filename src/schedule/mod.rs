//! `idsync schedule`: runs profiles when their `[[schedule]]` rules say, one
//! run at a time, until asked to stop. The caller holds the run lock for the
//! whole life of the loop, so nothing else writes the store meanwhile.
//!
//! Each turn asks the store when each schedule's profile last started,
//! computes every schedule's next due time ([`When::next_due`]) and runs the
//! earliest one that is due; a run that outlasts other schedules' times makes
//! them wait, and when it ends each of them is owed one run, not one per
//! missed time. With nothing due it sleeps in short slices, so a stop request
//! is seen within [`SLICE`]. A stop requested during a run takes effect at the
//! run's next safe point (see `App::run_profile`); the loop then returns.

mod when;

pub use when::{Next, When, parse_interval, pick};

use crate::app::{App, AppError, ProfileReport, Result};
use crate::rules::Schedule;
use chrono::{DateTime, Utc};
use std::time::Duration;
use tracing::{info, warn};

/// How long the loop sleeps before looking at the stop flag again.
pub const SLICE: Duration = Duration::from_millis(200);

/// The scheduler's clock: the real one, or a test's.
pub trait Clock {
    fn now(&self) -> DateTime<Utc>;
    fn sleep(&self, d: Duration);
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Run what is due now (each schedule at most once), then return.
    pub once: bool,
    /// With `once`: run every selected schedule's profile, due or not.
    pub all_now: bool,
    /// Only the schedules of this profile.
    pub profile: Option<String>,
}

/// What a scheduler session did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub runs: usize,
    pub failed: usize,
    /// It ended because a stop was requested.
    pub stopped: bool,
}

/// The schedules `opts` selects, or why there are none.
pub fn select(app: &App, opts: &Options) -> Result<Vec<Schedule>> {
    let all = &app.rules.schedules;
    if all.is_empty() {
        return Err(AppError::Usage(format!(
            "no [[schedule]] in the rules under {}; see rules/README.md",
            app.rules.dir.display()
        )));
    }
    let Some(p) = &opts.profile else {
        return Ok(all.clone());
    };
    let chosen: Vec<Schedule> = all.iter().filter(|s| &s.profile == p).cloned().collect();
    if chosen.is_empty() {
        let scheduled: Vec<&str> = all.iter().map(|s| s.profile.as_str()).collect();
        let help = crate::rules::error::suggest(p, scheduled.iter().copied())
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        let what = if app.rules.profiles.contains_key(p) {
            format!("profile {p:?} has no schedule")
        } else {
            format!("no profile {p:?}")
        };
        return Err(AppError::Usage(format!(
            "{what}{help}; scheduled profiles are: {}",
            dedup(scheduled).join(", ")
        )));
    }
    Ok(chosen)
}

fn dedup(mut names: Vec<&str>) -> Vec<&str> {
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(*n));
    names
}

/// Runs the schedules `opts` selects until `stop()` (or, with `once`, until
/// nothing more is due). `on_run` sees each finished run.
pub fn run(
    app: &mut App,
    opts: &Options,
    clock: &dyn Clock,
    stop: &dyn Fn() -> bool,
    on_run: &mut dyn FnMut(&ProfileReport),
) -> Result<Summary> {
    let schedules = select(app, opts)?;
    let mut summary = Summary::default();
    if opts.once && opts.all_now {
        let profiles = dedup(schedules.iter().map(|s| s.profile.as_str()).collect());
        for p in profiles {
            if stop() {
                summary.stopped = true;
                break;
            }
            run_one(app, p, "--now", clock, &mut summary, on_run)?;
        }
        return Ok(summary);
    }
    if !opts.once {
        for s in &schedules {
            info!(profile = %s.profile, when = %s.when, at = %s.place, "Schedule.");
        }
    }
    // Under `once`, each schedule runs at most once, however short its interval.
    let mut done = vec![false; schedules.len()];
    let mut announced = None;
    loop {
        if stop() {
            summary.stopped = true;
            break;
        }
        let now = clock.now();
        let mut due = Vec::with_capacity(schedules.len());
        for (s, done) in schedules.iter().zip(&done) {
            due.push(if *done {
                None
            } else {
                s.when.next_due(last_start(app, &s.profile)?, now)
            });
        }
        match pick(&due, now) {
            Next::Run(i) => {
                let s = &schedules[i];
                let when = s.when.to_string();
                run_one(app, &s.profile, &when, clock, &mut summary, on_run)?;
                done[i] = opts.once;
            }
            Next::Wait(_) | Next::Never if opts.once => break,
            Next::Wait(at) => {
                if announced != Some(at) {
                    info!(at = %crate::app::stamp(at), "Waiting for the next scheduled run.");
                    announced = Some(at);
                }
                if !sleep_until(clock, Some(at), stop) {
                    summary.stopped = true;
                    break;
                }
            }
            Next::Never => {
                info!("No schedule will ever be due; waiting for a stop signal.");
                sleep_until(clock, None, stop);
                summary.stopped = true;
                break;
            }
        }
    }
    if summary.stopped {
        info!(
            runs = summary.runs,
            failed = summary.failed,
            "Scheduler stopped."
        );
    }
    Ok(summary)
}

/// The profile's last start as the run history has it. A start that does
/// not read as a time (written by hand?) counts as none: the schedule is due.
fn last_start(app: &App, profile: &str) -> Result<Option<DateTime<Utc>>> {
    let Some(text) = app.store.last_run_start(profile)? else {
        return Ok(None);
    };
    match DateTime::parse_from_rfc3339(&text) {
        Ok(t) => Ok(Some(t.with_timezone(&Utc))),
        Err(e) => {
            warn!(profile, started_at = %text, error = %e, "Unreadable start time of the last run; treating the profile as never run.");
            Ok(None)
        }
    }
}

fn run_one(
    app: &mut App,
    profile: &str,
    why: &str,
    clock: &dyn Clock,
    summary: &mut Summary,
    on_run: &mut dyn FnMut(&ProfileReport),
) -> Result<()> {
    info!(profile, schedule = why, "Scheduled run starting.");
    let t0 = std::time::Instant::now();
    let report = app.run_profile(profile, &|| clock.now())?;
    let seconds = t0.elapsed().as_secs_f64();
    summary.runs += 1;
    match report.status.as_str() {
        "success" => info!(
            profile,
            run = report.run,
            seconds,
            "Scheduled run finished."
        ),
        "stopped" => info!(profile, run = report.run, seconds, "Scheduled run stopped."),
        _ => {
            summary.failed += 1;
            let failed = report.steps.iter().find(|s| s.status == "failed");
            warn!(
                profile,
                run = report.run,
                seconds,
                step = failed.map(|s| s.step.as_str()).unwrap_or(""),
                error = failed.and_then(|s| s.message.as_deref()).unwrap_or(""),
                "Scheduled run failed."
            );
        }
    }
    on_run(&report);
    Ok(())
}

/// Sleeps until `at` (forever with `None`) in slices of [`SLICE`]; false if
/// `stop()` cut it short.
fn sleep_until(clock: &dyn Clock, at: Option<DateTime<Utc>>, stop: &dyn Fn() -> bool) -> bool {
    loop {
        if stop() {
            return false;
        }
        let left = match at {
            Some(at) => match (at - clock.now()).to_std() {
                Ok(d) if !d.is_zero() => d,
                // Reached (or the clock jumped past it).
                _ => return true,
            },
            None => SLICE,
        };
        clock.sleep(left.min(SLICE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A clock that moves only when slept on.
    struct FakeClock(Cell<DateTime<Utc>>);

    impl Clock for FakeClock {
        fn now(&self) -> DateTime<Utc> {
            self.0.get()
        }
        fn sleep(&self, d: Duration) {
            let step = chrono::TimeDelta::from_std(d).unwrap_or_default();
            self.0.set(self.0.get() + step);
        }
    }

    #[test]
    fn sleeping_is_sliced_and_ends_at_the_due_time_or_on_a_stop() {
        let start = DateTime::<Utc>::UNIX_EPOCH;
        let clock = FakeClock(Cell::new(start));
        let at = start + chrono::TimeDelta::seconds(1);
        assert!(sleep_until(&clock, Some(at), &|| false));
        assert_eq!(clock.now(), at);
        // Stopped after the third slice.
        let slices = Cell::new(0);
        let stop = || {
            slices.set(slices.get() + 1);
            slices.get() > 3
        };
        assert!(!sleep_until(&clock, None, &stop));
        assert_eq!(clock.now(), at + chrono::TimeDelta::milliseconds(600));
        // A time already past needs no sleep.
        assert!(sleep_until(&clock, Some(start), &|| false));
        assert_eq!(clock.now(), at + chrono::TimeDelta::milliseconds(600));
    }
}
