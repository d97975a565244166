//! The command line: arguments (clap) and how each command's result is
//! printed, as text for people or JSON (`--json`) for scripts.

use crate::app::{App, AppError, ImportMode, ImportReport, ProfileReport, SyncMode, SyncReport};
use crate::audit::{AuditEntry, AuditKind};
use crate::model::{MvId, RunId};
use crate::rules::{self, AttrType};
use crate::store::{LockGuard, Store, StoreError};
use anyhow::{Context as _, Result, bail};
use chrono::Utc;
use clap::{Parser, Subcommand};
use serde_json::json;
use std::path::PathBuf;

#[path = "cli_audit.rs"]
mod audit;
#[path = "cli_fuzzy.rs"]
mod fuzzy_cmd;
#[path = "cli_review.rs"]
mod review;

#[derive(Debug, Parser)]
#[command(
    name = "idsync",
    version,
    about = "Identity synchronization engine: HR sources -> metaverse -> targets"
)]
pub struct Cli {
    /// The rule directory (every *.toml under it is read).
    #[arg(long, global = true, env = "IDSYNC_RULES", default_value = "rules")]
    pub rules: PathBuf,
    /// The store (an SQLite file, created if missing).
    #[arg(long, global = true, env = "IDSYNC_STORE", default_value = "idsync.db")]
    pub store: PathBuf,
    /// Print results as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// Only warnings and errors on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Run with the clock at this instant (`2026-12-01` or RFC 3339): rules
    /// comparing dates with Now() see it. For previews with --dry-run, and tests.
    /// With `history`: a run number or an instant, the identity's values then.
    #[arg(long, global = true, value_name = "DATE|RUN", value_parser = parse_as_of)]
    pub as_of: Option<AsOf>,
    /// Let a step delete or disconnect up to N objects, past the deletion
    /// guard's limits.
    #[arg(long, global = true, value_name = "N")]
    pub allow_deletes: Option<u64>,
    #[command(subcommand)]
    pub command: Command,
}

/// `--as-of`: an instant for the run's clock, or (for `history`) a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    Time(chrono::DateTime<Utc>),
    Run(RunId),
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate every rule file and run the rule tests; all errors at once.
    Check,
    /// Import one agent into its connector space (full unless --delta).
    Import {
        agent: String,
        /// Only what changed since the last import.
        #[arg(long)]
        delta: bool,
    },
    /// Sync: join, project and flow the connector spaces into the metaverse
    /// (full unless --delta).
    Sync {
        /// Compute and print the counts, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only pending imports and the identities they reach.
        #[arg(long)]
        delta: bool,
    },
    /// Apply a target's pending exports (create, update, rename, disable,
    /// delete accounts), or with --dry-run print them.
    Export {
        agent: String,
        /// Print what would be created, changed, renamed, disabled and
        /// deleted; connect to nothing, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Every target's pending exports, as `export --dry-run` prints them.
    Plan,
    /// Targets that stopped being exported to after too many errors.
    Quarantine {
        #[command(subcommand)]
        sub: QuarantineCommand,
    },
    /// Source objects waiting for a person's decision (ambiguous joins):
    /// list, show, accept a candidate, reject all.
    Review {
        #[command(subcommand)]
        sub: review::ReviewCommand,
    },
    /// Join a source object to an identity by hand (an explicit connector
    /// that every later sync keeps).
    Join {
        /// The source object, `agent:anchor`.
        object: String,
        /// The identity: a metaverse id, `agent:anchor`, an anchor or a value.
        #[arg(num_args = 1..=2, required = true)]
        identity: Vec<String>,
    },
    /// Disconnect a source object from its identity and keep it joined to
    /// nothing (an explicit disconnector).
    Disconnect {
        /// The source object, `agent:anchor`.
        object: String,
    },
    /// Estimate an agent's fuzzy join weights by EM over its unjoined
    /// objects (or all of them) against the identities it has no connector
    /// to, and write them into its rule file.
    TrainJoin {
        agent: String,
        /// Train on every object of the agent, joined or not, against the
        /// identities it has no connector to (the default when none is
        /// unjoined: a rule added after the agent's first syncs).
        #[arg(long)]
        all: bool,
    },
    /// The hash-chained audit log: verify, export, list, prune.
    Audit {
        #[command(subcommand)]
        sub: audit::AuditCommand,
    },
    /// Run a profile's steps (profiles are rule data).
    Run { profile: String },
    /// Run profiles on their [[schedule]] rules, one run at a time, until
    /// SIGINT or SIGTERM (which let the current step finish or roll back).
    Schedule {
        /// Run what is due now, then exit (for cron and scripts).
        #[arg(long)]
        once: bool,
        /// With --once: run every scheduled profile now, due or not.
        #[arg(long, requires = "once")]
        now: bool,
        /// Only the schedules of this profile.
        #[arg(long)]
        profile: Option<String>,
    },
    /// One identity: its values, where each came from, its connectors.
    Show {
        /// `[type] key`: a metaverse id, agent:anchor, an anchor, or an attribute value.
        #[arg(num_args = 1..=2, required = true)]
        args: Vec<String>,
    },
    /// Why an identity exists, why each connector joined, where each value
    /// came from, and why each target account exists or went.
    Explain {
        /// `[type] key`: a metaverse id, agent:anchor, an anchor, or an attribute value.
        #[arg(num_args = 1..=2, required = true)]
        args: Vec<String>,
    },
    /// An identity's changes over time, oldest first; with --as-of RUN (or
    /// a date), its values at the end of that run instead. Deleted
    /// identities are found by id.
    History {
        /// `[type] key`: a metaverse id, agent:anchor, an anchor, or an attribute value.
        #[arg(num_args = 1..=2, required = true)]
        args: Vec<String>,
        /// List the latest N changes.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Find metaverse objects: `attr = "value" [and attr = "value" ...]`.
    Search {
        #[arg(long)]
        mv: String,
        #[arg(long = "type")]
        object_type: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Run history; `runs show N` for one run's steps and errors.
    Runs {
        #[command(subcommand)]
        sub: Option<RunsCommand>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Connector space and metaverse sizes, ambiguous joins waiting.
    Status,
    /// Reports for auditors.
    Report {
        #[command(subcommand)]
        sub: ReportCommand,
    },
    /// Evaluate an expression over a staged object (or given attributes).
    Eval {
        /// The agent whose attributes the expression reads.
        #[arg(long)]
        agent: String,
        /// A staged object of the agent.
        #[arg(long)]
        anchor: Option<String>,
        /// Attribute values, `name=value` (repeat for several; overrides the staged object).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        expr: String,
    },
    /// Write seeded, realistic HR sources (the example's three formats) for N people.
    Generate {
        #[arg(long, default_value_t = 10_000)]
        people: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Files go to OUT/fixtures/hr/.
        #[arg(long)]
        out: PathBuf,
        /// Instead of the HR sources, write RECORDS unkeyed records
        /// (legacy.csv: no worker id; names and birth dates with typos,
        /// short forms, other spellings, swapped or missing dates) of the
        /// people these --people and --seed generate (3 in 4) and of new
        /// people, with the truth in legacy_truth.csv.
        #[arg(long, value_name = "RECORDS")]
        unkeyed: Option<usize>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// What each target holds against what it should: drift rolled back
    /// and reported, orphans, missing accounts, leavers still enabled,
    /// ambiguous joins, export errors, quarantined targets. Writes
    /// reconcile.html, reconcile.json and one CSV file per section.
    Reconcile {
        /// Drift and orphans of this run only.
        #[arg(long, conflicts_with = "since")]
        run: Option<RunId>,
        /// Drift and orphans of the runs started since (`2026-11-01` or RFC 3339).
        #[arg(long, value_name = "DATE", value_parser = parse_date)]
        since: Option<chrono::DateTime<Utc>>,
        /// The directory the files are written to.
        #[arg(long, default_value = "reconcile-report")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// Export to the target again from the next run on.
    Clear { agent: String },
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    Show {
        run: RunId,
        /// How many errors to list per step.
        #[arg(long, default_value_t = 50)]
        errors: usize,
        /// List what each step changed, object by object.
        #[arg(long)]
        changes: bool,
        /// How many changes to list per step (with --changes).
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// A result as JSON with `--json`, else as text.
fn emit<T: serde::Serialize>(cli: &Cli, report: &T, text: fn(&T)) -> Result<i32> {
    if cli.json {
        print_json(report)?;
    } else {
        text(report);
    }
    Ok(0)
}

/// Exit code: another process holds the store's run lock.
pub const EXIT_BUSY: i32 = 3;

/// The exit code for an error that ended a command: [`EXIT_BUSY`] when the
/// store is busy, 2 for anything else that kept the command from running.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    let busy = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<StoreError>(),
            Some(StoreError::Busy { .. })
        )
    });
    if busy { EXIT_BUSY } else { 2 }
}

/// Opens the rules and store for a command that writes, with the run lock
/// held by `holder` (the command, as other processes will see it) and
/// SIGINT/SIGTERM turned into a clean stop.
fn open_writer(cli: &Cli, holder: &str) -> Result<(App, LockGuard)> {
    crate::shutdown::install().context("installing the SIGINT/SIGTERM handlers")?;
    let mut app = open(cli)?;
    let lock = app.store.acquire_lock(holder, Utc::now())?;
    Ok((app, lock))
}

/// Runs a parsed command line; the exit code is the caller's.
pub fn run(cli: Cli) -> Result<i32> {
    if let Some(AsOf::Run(n)) = cli.as_of
        && !matches!(cli.command, Command::History { .. })
    {
        bail!(
            "--as-of {n}: a run number is for `history`; other commands take a date (2026-12-01) or an RFC 3339 time"
        );
    }
    match &cli.command {
        Command::Check => check(&cli),
        Command::Export { agent, dry_run } => {
            if *dry_run {
                let app = open(&cli)?;
                let report = app.plan_export(agent)?;
                return emit(&cli, &vec![report], print_plan);
            }
            let holder = format!("export {agent}");
            let (mut app, _lock) = open_writer(&cli, &holder)?;
            let report =
                app.one_step_run(&holder, |app, run| app.export(agent, run, 1, clock(&cli)))?;
            emit(&cli, &report, print_export)
        }
        Command::Plan => {
            let app = open(&cli)?;
            let mut reports = Vec::new();
            for t in &app.rules.targets {
                reports.push(app.plan_export(&t.name)?);
            }
            emit(&cli, &reports, print_plan)
        }
        Command::Quarantine {
            sub: QuarantineCommand::Clear { agent },
        } => {
            let (mut app, _lock) = open_writer(&cli, &format!("quarantine clear {agent}"))?;
            if app.rules.target(agent).is_none() {
                bail!("no target {agent:?}");
            }
            let was = app.store.target_state(agent)?.quarantined;
            let tx = app.store.begin()?;
            tx.set_quarantine(agent, None, 0)?;
            if let Some(reason) = &was {
                tx.audit(
                    &AuditEntry::now(AuditKind::QuarantineCleared, None)
                        .target(agent.as_str())
                        .detail(json!({"was": reason})),
                )?;
            }
            tx.commit()?;
            match was {
                Some(r) => println!("{agent}: quarantine cleared (was: {r})"),
                None => println!("{agent}: was not quarantined"),
            }
            Ok(0)
        }
        Command::Audit { sub } => audit::run(&cli, sub),
        Command::Review { sub } => review::run(&cli, sub),
        Command::Join { object, identity } => review::join(&cli, object, identity),
        Command::Disconnect { object } => review::disconnect(&cli, object),
        Command::TrainJoin { agent, all } => fuzzy_cmd::train_join(&cli, agent, *all),
        Command::Import { agent, delta } => {
            let (mode, verb) = if *delta {
                (ImportMode::Delta, "delta-import")
            } else {
                (ImportMode::Full, "import")
            };
            let holder = format!("{verb} {agent}");
            let (mut app, _lock) = open_writer(&cli, &holder)?;
            // A target's import is the confirming import.
            if mode == ImportMode::Full && app.rules.target(agent).is_some() {
                let report =
                    app.one_step_run(&holder, |app, run| app.confirm(agent, run, 1, clock(&cli)))?;
                return emit(&cli, &report, print_confirm);
            }
            let report = app.one_step_run(&holder, |app, run| {
                app.import(agent, mode, run, 1, clock(&cli))
            })?;
            emit(&cli, &report, print_import)
        }
        Command::Sync { dry_run, delta } => {
            if *dry_run {
                let app = open(&cli)?;
                let mode = if *delta {
                    SyncMode::Delta
                } else {
                    SyncMode::Full
                };
                let plan = app.plan_sync(mode, 0, clock(&cli))?;
                if cli.json {
                    print_json(&plan.counters)?;
                } else {
                    println!("dry run: nothing written");
                    print_sync_counters(&plan.counters);
                }
                return Ok(0);
            }
            let (mode, verb) = if *delta {
                (SyncMode::Delta, "delta-sync")
            } else {
                (SyncMode::Full, "sync")
            };
            let (mut app, _lock) = open_writer(&cli, verb)?;
            let report = app.one_step_run(verb, |app, run| app.sync(mode, run, 1, clock(&cli)))?;
            emit(&cli, &report, print_sync)
        }
        Command::Run { profile } => {
            let (mut app, _lock) = open_writer(&cli, &format!("run {profile}"))?;
            let report = app.run_profile(profile, &|| clock(&cli))?;
            if cli.json {
                print_json(&report)?;
            } else {
                print_profile(&report);
            }
            Ok(if report.status == "success" { 0 } else { 1 })
        }
        Command::Schedule { once, now, profile } => {
            let opts = crate::schedule::Options {
                once: *once,
                all_now: *now,
                profile: profile.clone(),
            };
            schedule(&cli, &opts)
        }
        Command::Show { args } => show(&cli, args),
        Command::Explain { args } => explain(&cli, args),
        Command::History { args, limit } => history(&cli, args, *limit),
        Command::Search {
            mv,
            object_type,
            limit,
        } => search(&cli, mv, object_type.as_deref(), *limit),
        Command::Runs { sub, limit } => runs(&cli, sub.as_ref(), *limit),
        Command::Status => status(&cli),
        Command::Report {
            sub: ReportCommand::Reconcile { run, since, out },
        } => report_reconcile(&cli, *run, *since, out),
        Command::Eval {
            agent,
            anchor,
            set,
            expr,
        } => eval(&cli, agent, anchor.as_deref(), set, expr),
        Command::Generate {
            people,
            seed,
            out,
            unkeyed: Some(records),
        } => {
            let s = crate::r#gen::write_unkeyed(out, *people, *seed, *records)
                .with_context(|| format!("writing to {}", out.display()))?;
            let dir = out.join("fixtures/hr");
            if cli.json {
                print_json(&json!({
                    "records": s.records,
                    "known": s.known,
                    "noisy": s.noisy,
                    "new": s.records - s.known,
                    "population": s.population,
                    "file": dir.join(crate::r#gen::UNKEYED_FILE),
                    "truth": dir.join(crate::r#gen::TRUTH_FILE),
                }))?;
            } else {
                println!(
                    "{} unkeyed records: {} of the {} people with an identity ({} with noise), {} new; in {}",
                    s.records,
                    s.known,
                    s.population,
                    s.noisy,
                    s.records - s.known,
                    dir.join(crate::r#gen::UNKEYED_FILE).display()
                );
            }
            Ok(0)
        }
        Command::Generate {
            people,
            seed,
            out,
            unkeyed: None,
        } => {
            let summary = crate::r#gen::generate(out, *people, *seed)
                .with_context(|| format!("writing to {}", out.display()))?;
            if cli.json {
                print_json(&json!({
                    "people": summary.people,
                    "workday_rows": summary.workday_rows,
                    "sap_rows": summary.sap_rows,
                    "contractor_rows": summary.contractor_rows,
                }))?;
            } else {
                println!(
                    "{} people: {} Workday, {} SAP, {} contractor rows in {}",
                    summary.people,
                    summary.workday_rows,
                    summary.sap_rows,
                    summary.contractor_rows,
                    out.join("fixtures/hr").display()
                );
            }
            Ok(0)
        }
    }
}

fn open(cli: &Cli) -> Result<App> {
    match App::open(&cli.rules, &cli.store) {
        Ok(mut app) => {
            app.allow_deletes = cli.allow_deletes;
            Ok(app)
        }
        Err(AppError::Rules(errors)) => {
            for e in &errors.0 {
                eprint!("{}", e.render());
            }
            bail!(
                "{} error(s) in rule files under {}",
                errors.0.len(),
                cli.rules.display()
            )
        }
        Err(e) => Err(e.into()),
    }
}

fn schedule(cli: &Cli, opts: &crate::schedule::Options) -> Result<i32> {
    let holder = if opts.once {
        "schedule --once"
    } else {
        "schedule"
    };
    let (mut app, lock) = open_writer(cli, holder)?;
    let stop = || crate::shutdown::requested() || lock.lost();
    let mut on_run = |r: &ProfileReport| {
        if cli.json {
            // One object per line: the stream of a long-running process.
            match serde_json::to_string(r) {
                Ok(line) => println!("{line}"),
                Err(e) => tracing::warn!(error = %e, "Cannot print a run report as JSON."),
            }
        } else {
            print_profile(r);
        }
    };
    let summary = crate::schedule::run(
        &mut app,
        opts,
        &crate::schedule::SystemClock,
        &stop,
        &mut on_run,
    )?;
    if lock.lost() {
        bail!("another process took the run lock over; stopped");
    }
    lock.release().map_err(anyhow::Error::msg)?;
    // A long-running scheduler logs failed runs and goes on; one pass
    // (--once) reports them in its exit code, as `run` does.
    Ok(if opts.once && summary.failed > 0 {
        1
    } else {
        0
    })
}

fn check(cli: &Cli) -> Result<i32> {
    // A store that exists lends remembered schemas; check never creates one.
    let store = if cli.store.exists() {
        Store::open(&cli.store).ok()
    } else {
        None
    };
    let hint = |agent: &str| {
        store
            .as_ref()
            .and_then(|s| s.agent_schema(agent).ok().flatten())
    };
    let rules = match rules::load(&cli.rules, &hint) {
        Ok(r) => r,
        Err(errors) => {
            for e in &errors.0 {
                eprint!("{}", e.render());
            }
            eprintln!(
                "{} error(s) in rule files under {}",
                errors.0.len(),
                cli.rules.display()
            );
            return Ok(1);
        }
    };
    let untrained: Vec<String> = rules
        .agents
        .iter()
        .filter_map(|a| {
            let f = a.fuzzy.as_ref()?;
            f.params.is_none().then(|| {
                format!(
                    "{}: fuzzy join rule {:?} has no weights; run `idsync train-join {}` (or write [fuzzy_join.weights] by hand)",
                    a.file.display(),
                    f.name,
                    a.name
                )
            })
        })
        .collect();
    for u in &untrained {
        eprintln!("{u}");
    }
    if !untrained.is_empty() {
        return Ok(1);
    }
    let estimates = match &store {
        Some(s) => fuzzy_cmd::estimates(s, &rules)?,
        None => Vec::new(),
    };
    let results = crate::ruletest::run_all(&rules, Utc::now());
    let failed: Vec<_> = results.iter().filter(|r| !r.passed).collect();
    for f in &failed {
        eprintln!("{}", f.message);
    }
    let mut warnings = Vec::new();
    if let Some(store) = &store
        && let Some(h) = store.meta("last_full_sync_rules_hash")?
        && h != rules.hash
    {
        warnings.push("rules changed since the last full sync; run a full sync to apply them to every identity".to_string());
    }
    if cli.json {
        print_json(&json!({
            "ok": failed.is_empty(),
            "agents": rules.agent_names(),
            "targets": rules.targets.iter().map(|t| &t.name).collect::<Vec<_>>(),
            "profiles": rules.profiles.keys().collect::<Vec<_>>(),
            "schedules": rules.schedules.iter().map(|s| json!({"profile": s.profile, "when": s.when.to_string()})).collect::<Vec<_>>(),
            "tests": results.len(),
            "failed_tests": failed.iter().map(|f| &f.message).collect::<Vec<_>>(),
            "warnings": warnings,
            "rules_hash": rules.hash,
            "fuzzy_blocking": estimates,
        }))?;
    } else {
        for w in &warnings {
            eprintln!("warning: {w}");
        }
        println!(
            "{}: {} agent(s) ({}), {} target(s) ({}), {} object type(s), {} profile(s), {} schedule(s), {} rule test(s), {} failed",
            cli.rules.display(),
            rules.agents.len(),
            rules.agent_names().join(", "),
            rules.targets.len(),
            rules
                .targets
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            rules.metaverse.types.len(),
            rules.profiles.len(),
            rules.schedules.len(),
            results.len(),
            failed.len()
        );
        fuzzy_cmd::print_estimates(&estimates);
    }
    Ok(if failed.is_empty() { 0 } else { 1 })
}

fn eval(cli: &Cli, agent: &str, anchor: Option<&str>, set: &[String], text: &str) -> Result<i32> {
    let app = open(cli)?;
    let Some(a) = app.rules.agent(agent) else {
        bail!(
            "no agent {agent:?}; agents are: {}",
            app.rules.agent_names().join(", ")
        );
    };
    struct Names<'s>(&'s crate::model::Schema);
    impl crate::expr::Scope for Names<'_> {
        fn resolve(&self, name: &str) -> Option<u32> {
            self.0.get(name)
        }
        fn names(&self) -> Vec<String> {
            self.0.names().to_vec()
        }
    }
    let expr = match crate::expr::Expr::compile(text, &Names(&a.schema)) {
        Ok(e) => e,
        Err(errors) => {
            for e in &errors {
                eprintln!("{}", crate::expr::render_error(text, e));
            }
            return Ok(1);
        }
    };
    let mut b = match anchor {
        Some(k) => match app.store.find_cs(agent, k, &a.schema)? {
            Some(row) => crate::model::RecordBuilder::from(&row.attrs),
            None => bail!("agent {agent:?} has no staged object {k:?} (import it first)"),
        },
        None => crate::model::RecordBuilder::default(),
    };
    for kv in set {
        let Some((name, value)) = kv.split_once('=') else {
            bail!("--set {kv:?}: expected NAME=VALUE");
        };
        let Some(attr) = a.schema.get(name) else {
            let help = rules::error::suggest(name, a.schema.names().iter().map(String::as_str))
                .unwrap_or_default();
            bail!("agent {agent:?} has no attribute {name:?} {help}");
        };
        b.remove(attr);
        b.push(attr, value);
    }
    let input = b.build();
    let key = format!("{agent}/{}", anchor.unwrap_or("eval"));
    let ctx = crate::expr::Context {
        now: Utc::now(),
        object_key: &key,
        unique: None,
    };
    match expr.eval(&input, &ctx) {
        Ok(v) => {
            let values = v.to_strings();
            if cli.json {
                print_json(&json!({"values": values}))?;
            } else if values.is_empty() {
                println!("null");
            } else {
                for v in values {
                    println!("{v}");
                }
            }
            Ok(0)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(1)
        }
    }
}

fn print_export(r: &crate::export::ExportReport) {
    println!(
        "export {}: created {}, joined {}, updated {}, renamed {}, disabled {}, deleted {}, failed {}, waiting {}",
        r.agent,
        r.created,
        r.joined,
        r.updated,
        r.renamed,
        r.disabled,
        r.deleted,
        r.failed,
        r.deferred
    );
    if r.rolled_back + r.orphans_disabled + r.orphans_deleted > 0 {
        println!(
            "  drift rolled back in {} accounts; orphans disabled {}, deleted {}",
            r.rolled_back, r.orphans_disabled, r.orphans_deleted
        );
    }
    if let Some(q) = &r.quarantined {
        println!("  quarantined: {q}");
    }
    for e in &r.errors {
        println!("  failed {e}");
    }
}

fn print_plan(reports: &Vec<crate::export::ExportReport>) {
    println!("dry run: nothing written");
    for r in reports {
        println!(
            "{}: create {}, update {}, rename {}, disable {}, delete {}",
            r.agent, r.created, r.updated, r.renamed, r.disabled, r.deleted
        );
        for op in &r.plan {
            let to = op
                .rename
                .as_ref()
                .map(|n| format!(" -> {n}"))
                .unwrap_or_default();
            let wait = if op.waits_for_reference {
                " (a reference waits for its account)"
            } else {
                ""
            };
            println!(
                "  {:7} {}{to} (identity {}){wait}",
                op.verb, op.name, op.mv_id
            );
            for c in &op.changes {
                println!("            {c}");
            }
        }
        for e in &r.errors {
            println!("  error: {e}");
        }
    }
}

fn print_confirm(r: &crate::reconcile::ConfirmReport) {
    println!(
        "import {} (confirming): read {}, confirmed {}, not re-imported {}, missing {}, orphans {} ({} new)",
        r.agent, r.read, r.confirmed, r.not_reimported, r.missing, r.orphans, r.orphans_new
    );
    println!(
        "  drift: {} new, {} open, {} accounts queued for rollback, {} resolved",
        r.drift_found, r.drift_open, r.rollbacks_queued, r.drift_resolved
    );
}

fn print_import(r: &ImportReport) {
    let c = &r.counts;
    let verb = match r.mode {
        ImportMode::Full => "import",
        ImportMode::Delta => "delta-import",
    };
    println!(
        "{verb} {} (run {}, {}): read {}, adds {}, updates {}, deletes {}, unchanged {}, rejected {}",
        r.agent,
        r.run,
        r.how.as_str(),
        c.read,
        c.adds,
        c.updates,
        c.deletes,
        c.unchanged,
        c.rejected
    );
    if let Some(note) = &r.note {
        println!("  {note}");
    }
    for e in r.rejected.iter().take(20) {
        println!(
            "  rejected {}:{}: {}",
            e.source.as_deref().unwrap_or("?"),
            e.line.unwrap_or(0),
            e.message
        );
    }
    if r.rejected.len() > 20 {
        println!(
            "  ... {} more (idsync runs show {})",
            r.rejected.len() - 20,
            r.run
        );
    }
}

fn print_sync_counters(c: &crate::engine::SyncCounters) {
    println!(
        "  processed {}, joins {}, projections {}, ambiguous {}, disconnects {}, out of scope {}, unjoined {}",
        c.processed, c.joins, c.projections, c.ambiguous, c.disconnects, c.out_of_scope, c.unjoined
    );
    println!(
        "  metaverse: adds {}, updates {}, deletes {}, unchanged {}; flow errors {}, reference errors {}",
        c.mv_adds, c.mv_updates, c.mv_deletes, c.mv_unchanged, c.flow_errors, c.reference_errors
    );
}

fn print_sync(r: &SyncReport) {
    println!("sync (run {}):", r.run);
    print_sync_counters(&r.counters);
    for (g, c) in &r.groups {
        if c.memberships_changed + c.groups_created + c.groups_updated + c.groups_deleted > 0 {
            println!(
                "  groups {g}: memberships changed {}, groups created {}, updated {}, deleted {}",
                c.memberships_changed, c.groups_created, c.groups_updated, c.groups_deleted
            );
        }
    }
    for (t, c) in &r.provision {
        if c.provisioned
            + c.updated
            + c.disabled
            + c.enabled
            + c.deprovisioned
            + c.forgotten
            + c.errors
            > 0
        {
            println!(
                "  {t}: provision {}, update {}, disable {}, enable {}, deprovision {}, forget {}, errors {}",
                c.provisioned,
                c.updated,
                c.disabled,
                c.enabled,
                c.deprovisioned,
                c.forgotten,
                c.errors
            );
        }
    }
    for e in r.errors.iter().take(20) {
        println!(
            "  {} {}{}: {}",
            e.kind,
            e.agent.as_deref().unwrap_or(""),
            e.anchor
                .as_deref()
                .map(|a| format!(" {a}"))
                .unwrap_or_default(),
            e.message
        );
    }
    if r.errors.len() > 20 {
        println!(
            "  ... {} more (idsync runs show {})",
            r.errors.len() - 20,
            r.run
        );
    }
}

fn print_profile(r: &ProfileReport) {
    let why = r
        .message
        .as_ref()
        .map(|m| format!(" ({m})"))
        .unwrap_or_default();
    println!(
        "run {} (profile {}): {} in {:.2} s{why}",
        r.run,
        r.profile,
        r.status,
        r.ms as f64 / 1000.0
    );
    for s in &r.steps {
        if let Some(i) = &s.import {
            print_import(i);
        } else if let Some(sy) = &s.sync {
            print_sync(sy);
        } else if let Some(e) = &s.export {
            print_export(e);
        } else if let Some(c) = &s.confirm {
            print_confirm(c);
        } else {
            println!(
                "{}: {} {}",
                s.step,
                s.status,
                s.message.as_deref().unwrap_or("")
            );
        }
    }
}

/// A short label for a referenced identity.
fn label(app: &App, id: MvId) -> String {
    crate::explain::label(app, id)
}

/// The one identity `[type] key` names for `explain` and `history`
/// (deleted ones too); None, said on stderr, when there is not exactly one.
fn one_identity(app: &App, args: &[String]) -> Result<Option<MvId>> {
    let ids = crate::explain::resolve(app, args, true)?;
    let key = args.last().map(String::as_str).unwrap_or("");
    match ids.as_slice() {
        [id] => Ok(Some(*id)),
        [] => {
            eprintln!("no identity found for {key:?}");
            Ok(None)
        }
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|id| format!("{id} ({})", label(app, *id)))
                .collect();
            eprintln!(
                "{key:?} names {} identities: {}; name one by its id",
                many.len(),
                list.join(", ")
            );
            Ok(None)
        }
    }
}

fn explain(cli: &Cli, args: &[String]) -> Result<i32> {
    let app = open(cli)?;
    let Some(id) = one_identity(&app, args)? else {
        return Ok(1);
    };
    let e = crate::explain::explain(&app, id, clock(cli))?;
    if cli.json {
        print_json(&e)?;
    } else {
        print!("{}", crate::explain::text::explanation(&e));
    }
    Ok(0)
}

fn history(cli: &Cli, args: &[String], limit: usize) -> Result<i32> {
    let app = open(cli)?;
    let Some(id) = one_identity(&app, args)? else {
        return Ok(1);
    };
    let cutoff = match cli.as_of {
        None => None,
        Some(AsOf::Run(n)) => Some(crate::history::Cutoff::Run(n)),
        Some(AsOf::Time(t)) => Some(crate::history::Cutoff::Time(crate::app::stamp(t))),
    };
    match cutoff {
        Some(c) => {
            let v = crate::explain::as_of(&app, id, c)?;
            if cli.json {
                print_json(&v)?;
            } else {
                print!("{}", crate::explain::text::as_of(&v));
            }
        }
        None => {
            let h = crate::explain::history(&app, id, limit)?;
            if cli.json {
                print_json(&h)?;
            } else {
                print!("{}", crate::explain::text::history(&h));
            }
        }
    }
    Ok(0)
}

fn show(cli: &Cli, args: &[String]) -> Result<i32> {
    let app = open(cli)?;
    let ids = crate::explain::resolve(&app, args, false)?;
    if ids.is_empty() {
        eprintln!(
            "no identity found for {:?}",
            args.last().map(String::as_str).unwrap_or("")
        );
        return Ok(1);
    }
    let schema_of = |t: &str| app.rules.metaverse.get(t).map(|t| &t.schema);
    let mut out = Vec::new();
    for id in ids {
        let Some(row) = app.store.get_mv(id, &schema_of)? else {
            continue;
        };
        let Some(t) = app.rules.metaverse.get(&row.object_type) else {
            continue;
        };
        let links = app.store.links_of(id)?;
        let lineage = row.lineage();
        let mut attrs = Vec::new();
        for (ai, attr) in t.attrs.iter().enumerate() {
            let values: Vec<String> = row.attrs.values(ai as u32).map(str::to_string).collect();
            if values.is_empty() {
                continue;
            }
            let shown: Vec<String> = if attr.kind == AttrType::Reference {
                values
                    .iter()
                    .map(|v| match v.parse::<MvId>() {
                        Ok(rid) => format!("{rid} ({})", label(&app, rid)),
                        Err(_) => v.clone(),
                    })
                    .collect()
            } else {
                values.clone()
            };
            let origins = lineage.get(&attr.name).cloned().unwrap_or_default();
            attrs.push(json!({
                "attribute": attr.name,
                "values": values,
                "shown": shown,
                "from": origins.iter().map(|o| json!({"agent": o.agent(), "anchor": o.anchor(), "run": o.run()})).collect::<Vec<_>>(),
            }));
        }
        out.push(json!({
            "id": id,
            "object_type": row.object_type,
            "created_run": row.created_run,
            "updated_run": row.updated_run,
            "attributes": attrs,
            "connectors": links,
            "accounts": app.store.accounts_of(id)?.iter().map(|a| json!({
                "target": a.agent,
                "state": a.state,
                "name": a.name,
                "id": a.remote_id,
                "pending_export": a.pending,
                "error": a.error,
                "awaiting_confirmation": a.unconfirmed.is_some(),
            })).collect::<Vec<_>>(),
        }));
    }
    if cli.json {
        print_json(&out)?;
        return Ok(0);
    }
    for o in &out {
        println!(
            "{} {}  (created in run {}, updated in run {})",
            o["object_type"].as_str().unwrap_or(""),
            o["id"],
            o["created_run"],
            o["updated_run"]
        );
        let empty = Vec::new();
        let attrs = o["attributes"].as_array().unwrap_or(&empty);
        let width = attrs
            .iter()
            .filter_map(|a| a["attribute"].as_str())
            .map(str::len)
            .max()
            .unwrap_or(10);
        for a in attrs {
            let shown: Vec<&str> = a["shown"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .filter_map(|v| v.as_str())
                .collect();
            let from: Vec<String> = a["from"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .map(|f| {
                    format!(
                        "{} {} (run {})",
                        f["agent"].as_str().unwrap_or(""),
                        f["anchor"].as_str().unwrap_or(""),
                        f["run"]
                    )
                })
                .collect();
            println!(
                "  {:width$}  {:40}  <- {}",
                a["attribute"].as_str().unwrap_or(""),
                shown.join("; "),
                from.join(", ")
            );
        }
        println!("  connectors:");
        for l in o["connectors"].as_array().unwrap_or(&empty) {
            let how = match l["kind"].as_str() {
                Some("joined") => format!(
                    "joined by rule {} on {}",
                    l["rule"].as_str().unwrap_or("?"),
                    l["detail"].as_str().unwrap_or("?")
                ),
                Some(k) => k.to_string(),
                None => String::new(),
            };
            println!(
                "    {:12} {:14} {} (run {})",
                l["agent"].as_str().unwrap_or(""),
                l["anchor"].as_str().unwrap_or(""),
                how,
                l["run"]
            );
        }
        let accounts = o["accounts"].as_array().unwrap_or(&empty);
        if !accounts.is_empty() {
            println!("  accounts:");
        }
        for a in accounts {
            let mut notes = Vec::new();
            if a["pending_export"] == true {
                notes.push("export pending".to_string());
            }
            if a["awaiting_confirmation"] == true {
                notes.push("awaiting confirmation".to_string());
            }
            if let Some(e) = a["error"].as_str() {
                notes.push(format!("last export failed: {e}"));
            }
            println!(
                "    {:16} {:9} {}{}",
                a["target"].as_str().unwrap_or(""),
                a["state"].as_str().unwrap_or(""),
                a["name"].as_str().unwrap_or("(not created yet)"),
                if notes.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", notes.join("; "))
                }
            );
        }
    }
    Ok(0)
}

/// `attr = "value" [and attr = "value" ...]`
fn parse_search(q: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = q.trim();
    loop {
        let (attr, after) = rest.split_once('=').context("expected attr = \"value\"")?;
        let attr = attr.trim().to_string();
        let after = after.trim_start();
        let value;
        if let Some(s) = after.strip_prefix('"') {
            let end = s.find('"').context("unterminated string in search")?;
            value = s[..end].to_string();
            rest = s[end + 1..].trim_start();
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            value = after[..end].to_string();
            rest = after[end..].trim_start();
        }
        out.push((attr, value));
        if rest.is_empty() {
            return Ok(out);
        }
        rest = rest
            .strip_prefix("and ")
            .or_else(|| rest.strip_prefix("AND "))
            .context("expected `and` between conditions")?;
    }
}

fn search(cli: &Cli, q: &str, ty: Option<&str>, limit: usize) -> Result<i32> {
    let app = open(cli)?;
    let conds = parse_search(q)?;
    let mut shown = Vec::new();
    for t in &app.rules.metaverse.types {
        if ty.is_some_and(|x| x != t.name) {
            continue;
        }
        let mut attrs = Vec::new();
        let mut missing = None;
        for (a, _) in &conds {
            match t.schema.get(a) {
                Some(i) => attrs.push(i),
                None => missing = Some(a),
            }
        }
        if let Some(a) = missing {
            // Without --type, a type that lacks the attribute holds no match.
            if ty.is_none()
                && app
                    .rules
                    .metaverse
                    .types
                    .iter()
                    .any(|x| x.schema.get(a).is_some())
            {
                continue;
            }
            let help = rules::error::suggest(a, t.schema.names().iter().map(String::as_str))
                .unwrap_or_default();
            bail!("{} has no attribute {a:?} {help}", t.name);
        }
        let Some((first_attr, first_value)) = conds.first() else {
            continue;
        };
        let candidates = app.store.find_mv_by(&t.name, first_attr, first_value)?;
        let schema_of = |n: &str| app.rules.metaverse.get(n).map(|t| &t.schema);
        for id in candidates {
            let Some(row) = app.store.get_mv(id, &schema_of)? else {
                continue;
            };
            let ok = conds
                .iter()
                .zip(&attrs)
                .all(|((_, v), &a)| row.attrs.values(a).any(|x| x == v));
            if ok && shown.len() < limit {
                shown.push((id, row.object_type.clone(), label(&app, id)));
            }
        }
    }
    if cli.json {
        print_json(
            &shown
                .iter()
                .map(|(id, t, l)| json!({"id": id, "object_type": t, "label": l}))
                .collect::<Vec<_>>(),
        )?;
    } else {
        for (id, t, l) in &shown {
            println!("{t} {id}  {l}");
        }
        println!("{} found", shown.len());
    }
    Ok(0)
}

fn runs(cli: &Cli, sub: Option<&RunsCommand>, limit: usize) -> Result<i32> {
    let store = Store::open(&cli.store)?;
    match sub {
        None => {
            let runs = store.runs(limit)?;
            if cli.json {
                let mut out = Vec::new();
                for r in &runs {
                    out.push(json!({"run": r, "steps": store.steps(r.id)?}));
                }
                return print_json(&out).map(|_| 0);
            }
            if runs.is_empty() {
                println!("no runs yet");
            }
            for r in &runs {
                let status = if r.status == "running" && r.finished_at.is_none() {
                    "running/interrupted"
                } else {
                    &r.status
                };
                println!(
                    "run {:>4}  {:24}  {}  {}",
                    r.id, r.command, r.started_at, status
                );
                for s in store.steps(r.id)? {
                    println!(
                        "          {:2}. {:24} {:8} {}  errors {}{}",
                        s.ordinal,
                        s.name,
                        s.status,
                        duration(&s.started_at, s.finished_at.as_deref()),
                        s.errors,
                        counters_line(&s.counters)
                    );
                }
            }
            Ok(0)
        }
        Some(RunsCommand::Show {
            run,
            errors,
            changes,
            limit,
        }) => {
            let Some(r) = store.run(*run)? else {
                eprintln!("no run {run}");
                return Ok(1);
            };
            let steps = store.steps(*run)?;
            let mut detail = Vec::new();
            for s in &steps {
                let listed = if *changes {
                    store.step_changes(s.id, *limit)?
                } else {
                    Vec::new()
                };
                detail.push((s, store.step_errors(s.id, *errors)?, listed));
            }
            if cli.json {
                let steps: Vec<_> = detail
                    .iter()
                    .map(|(s, e, c)| {
                        if *changes {
                            json!({"step": s, "errors": e, "changes": c})
                        } else {
                            json!({"step": s, "errors": e})
                        }
                    })
                    .collect();
                return print_json(&json!({"run": r, "steps": steps})).map(|_| 0);
            }
            println!(
                "run {} {:?}: {} (started {}, finished {}, rules {}, threads {})",
                r.id,
                r.command,
                r.status,
                r.started_at,
                r.finished_at.as_deref().unwrap_or("-"),
                r.rules_hash.as_deref().unwrap_or("-"),
                r.threads.unwrap_or(0)
            );
            for (s, errs, listed) in detail {
                println!(
                    "  {}. {} {} {}{}",
                    s.ordinal,
                    s.name,
                    s.status,
                    duration(&s.started_at, s.finished_at.as_deref()),
                    s.message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                );
                println!("     {}", counters_line(&s.counters).trim());
                for e in errs {
                    let place = match (&e.source, e.line) {
                        (Some(src), Some(l)) => format!("{src}:{l}: "),
                        _ => String::new(),
                    };
                    println!(
                        "     {} {}{}{}: {}",
                        e.kind,
                        place,
                        e.agent.as_deref().unwrap_or(""),
                        e.anchor
                            .as_deref()
                            .map(|a| format!(" {a}"))
                            .unwrap_or_default(),
                        e.message
                    );
                }
                if s.errors as usize > *errors {
                    println!("     ... {} more (--errors N)", s.errors as usize - errors);
                }
                for c in &listed {
                    let object = match (&c.agent, &c.anchor) {
                        (Some(a), Some(k)) => format!("{a} {k}"),
                        (Some(a), None) => a.clone(),
                        _ => String::new(),
                    };
                    let identity = c.mv_id.map(|m| format!("identity {m}")).unwrap_or_default();
                    let sep = if object.is_empty() || identity.is_empty() {
                        ""
                    } else {
                        " -> "
                    };
                    println!(
                        "     {:<18} {object}{sep}{identity}{}",
                        c.kind,
                        c.detail
                            .as_deref()
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default()
                    );
                }
                if *changes && listed.len() == *limit {
                    println!("     ... more changes (--limit N)");
                }
            }
            Ok(0)
        }
    }
}

fn counters_line(c: &serde_json::Value) -> String {
    match c.as_object() {
        Some(map) => {
            let parts: Vec<String> = map
                .iter()
                .filter(|(_, v)| v.as_u64().is_some_and(|n| n > 0))
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            if parts.is_empty() {
                String::new()
            } else {
                format!("  ({})", parts.join(", "))
            }
        }
        None => String::new(),
    }
}

fn duration(start: &str, end: Option<&str>) -> String {
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
    match (parse(start), end.and_then(parse)) {
        (Some(a), Some(b)) => format!("{:.2}s", (b - a).num_milliseconds() as f64 / 1000.0),
        _ => "-".into(),
    }
}

fn status(cli: &Cli) -> Result<i32> {
    let store = Store::open(&cli.store)?;
    let cs = store.cs_summary()?;
    let mv = store.mv_summary()?;
    let amb = store.ambiguous()?;
    let lock = store.lock_holder()?;
    let today = clock(cli).format("%Y-%m-%d").to_string();
    let due = store.due_mvs(&today)?.len();
    // Whether the next delta sync must run as a full one: only known when
    // the rules load.
    let synced_rules = store.meta("last_full_sync_rules_hash")?;
    let loaded = rules::load(&cli.rules, &|agent| {
        store.agent_schema(agent).ok().flatten()
    })
    .ok();
    let full_sync_due = loaded
        .as_ref()
        .map(|r| synced_rules.as_deref() != Some(r.hash.as_str()));
    let mut targets = Vec::new();
    for t in loaded.iter().flat_map(|r| &r.targets) {
        let c = store.export_counts(&t.name)?;
        let st = store.target_state(&t.name)?;
        let (drift, orphans) = store.open_findings(&t.name)?;
        targets.push(json!({
            "target": t.name,
            "kind": t.kind(),
            "accounts": c.accounts,
            "pending_exports": c.pending,
            "failing": c.failing,
            "disabled": c.disabled,
            "awaiting_confirmation": c.awaiting_confirmation,
            "drift_open": drift,
            "orphans_open": orphans,
            "quarantined": st.quarantined,
        }));
    }
    if cli.json {
        return print_json(&json!({
            "connector_spaces": cs.iter().map(|(a, n, p)| json!({"agent": a, "objects": n, "pending_imports": p})).collect::<Vec<_>>(),
            "metaverse": mv.iter().map(|(t, n)| json!({"object_type": t, "objects": n})).collect::<Vec<_>>(),
            "identities_due": due,
            "full_sync_due": full_sync_due,
            "ambiguous_joins": amb,
            "targets": targets,
            "run_lock": lock,
        }))
        .map(|_| 0);
    }
    println!("connector spaces:");
    for (a, n, p) in &cs {
        println!("  {a:14} {n:>9} objects  {p:>7} pending imports");
    }
    println!("metaverse:");
    for (t, n) in &mv {
        println!("  {t:14} {n:>9} objects");
    }
    println!("identities with a date due (hire, end, retention) by {today}: {due}");
    match full_sync_due {
        Some(true) => println!(
            "full sync due: the rules changed since the last full sync (a delta sync will run as one)"
        ),
        Some(false) => println!("full sync due: no"),
        None => println!("full sync due: unknown (the rules do not load)"),
    }
    if !targets.is_empty() {
        println!("targets:");
        for t in &targets {
            println!(
                "  {:14} {:>9} accounts  {:>7} pending exports  {:>5} failing  {:>5} disabled  {:>7} awaiting confirmation  {:>5} drifting  {:>5} orphans{}",
                t["target"].as_str().unwrap_or(""),
                t["accounts"],
                t["pending_exports"],
                t["failing"],
                t["disabled"],
                t["awaiting_confirmation"],
                t["drift_open"],
                t["orphans_open"],
                t["quarantined"]
                    .as_str()
                    .map(|q| format!("  QUARANTINED: {q}"))
                    .unwrap_or_default()
            );
        }
    }
    println!(
        "ambiguous joins waiting for a decision: {} (idsync review list)",
        amb.len()
    );
    for a in amb.iter().take(20) {
        println!(
            "  {} {}: rule {} found {:?} (run {})",
            a.agent, a.anchor, a.rule, a.candidates, a.run
        );
    }
    match &lock {
        Some(h) => println!("run lock: {h}"),
        None => println!("run lock: free"),
    }
    Ok(0)
}

/// The run's clock: `--as-of` when it is an instant.
fn clock(cli: &Cli) -> chrono::DateTime<Utc> {
    match cli.as_of {
        Some(AsOf::Time(t)) => t,
        _ => Utc::now(),
    }
}

fn parse_as_of(s: &str) -> std::result::Result<AsOf, String> {
    // Dates have dashes: digits alone are a run.
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(AsOf::Run)
            .map_err(|_| format!("{s:?} is not a run number"));
    }
    parse_date(s)
        .map(AsOf::Time)
        .map_err(|_| format!("{s:?} is not a date (2026-12-01), an RFC 3339 time or a run number"))
}

/// `2026-12-01` (midnight UTC) or an RFC 3339 time.
pub(crate) fn parse_date(s: &str) -> std::result::Result<chrono::DateTime<Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{s:?} is not a date (2026-12-01) or an RFC 3339 time"))
}

fn report_reconcile(
    cli: &Cli,
    run: Option<RunId>,
    since: Option<chrono::DateTime<Utc>>,
    out: &std::path::Path,
) -> Result<i32> {
    use crate::store::RunRange;
    let app = open(cli)?;
    let (range, period) = match (run, since) {
        (Some(r), _) => {
            if app.store.run(r)?.is_none() {
                bail!("no run {r}");
            }
            (RunRange { from: r, to: r }, format!("run {r}"))
        }
        (None, Some(t)) => {
            let from = app
                .store
                .first_run_since(&crate::app::stamp(t))?
                .unwrap_or(RunId::MAX);
            (
                RunRange {
                    from,
                    to: RunId::MAX - 1,
                },
                format!(
                    "since {}",
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            )
        }
        (None, None) => (RunRange::ALL, "every run".to_string()),
    };
    let report = app.reconcile_report(range, &period, clock(cli))?;
    // The error names the file and carries its cause already.
    let written = crate::report::render::write_all(&report, out)
        .map_err(|e| anyhow::anyhow!("writing the reconciliation report: {e}"))?;
    if cli.json {
        print_json(&json!({
            "out": out,
            "period": report.period,
            "html": written.html,
            "json": written.json,
            "summary_csv": written.summary_csv,
            "sections": written.sections.iter().map(|s| json!({"key": s.key, "rows": s.rows, "csv": s.csv})).collect::<Vec<_>>(),
        }))?;
        return Ok(0);
    }
    println!(
        "reconciliation report ({}) written to {}",
        report.period,
        out.display()
    );
    for t in &report.targets {
        let findings: Vec<String> = t
            .counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let q = t
            .quarantined
            .as_deref()
            .map(|q| format!(" [quarantined: {q}]"))
            .unwrap_or_default();
        println!(
            "  {:<20} {:>7} accounts  {}{q}",
            t.target,
            t.accounts,
            if findings.is_empty() {
                "clean".to_string()
            } else {
                findings.join(", ")
            }
        );
    }
    for s in &report.sections {
        println!("  {:<20} {:>7} rows", s.key, s.rows.len());
    }
    Ok(0)
}
