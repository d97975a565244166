//! `idsync audit ...`: verify the audit log's hash chain, export it as JSON
//! lines for a SIEM, list it for people, prune it to the rules' retention.
//! Verify, export and list only read (no run lock); prune writes.

use super::{Cli, clock, open_writer, parse_date, print_json};
use crate::app::stamp;
use crate::audit::{self, AuditError, AuditRecord};
use crate::store::{AuditQuery, Store};
use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde_json::json;
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain: exit 0 when intact, printing the head hash
    /// to note where idsync cannot write; exit 1 naming the first record
    /// altered, removed or inserted.
    Verify,
    /// Write records as JSON lines, one object per record with its prev and
    /// hash, for a SIEM.
    Export {
        /// Only records written at or after this time (`2026-11-01` or RFC 3339).
        #[arg(long, value_name = "DATE", value_parser = parse_date)]
        since: Option<DateTime<Utc>>,
        /// Write to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Remove records older than the rules' `[audit] retention_days`; the
    /// last one removed becomes the anchor verification starts from.
    Prune,
    /// Records for people: the latest ones, or the first from --since on.
    List {
        /// From this time on (`2026-11-01` or RFC 3339).
        #[arg(long, value_name = "DATE", value_parser = parse_date)]
        since: Option<DateTime<Utc>>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

pub fn run(cli: &Cli, sub: &AuditCommand) -> Result<i32> {
    match sub {
        AuditCommand::Verify => verify(cli),
        AuditCommand::Export { since, out } => export(cli, *since, out.as_deref()),
        AuditCommand::Prune => prune(cli),
        AuditCommand::List { since, limit } => list(cli, *since, *limit),
    }
}

/// The store, which must exist: reading an audit log never creates one.
fn existing_store(cli: &Cli) -> Result<Store> {
    if !cli.store.exists() {
        bail!("no store at {}", cli.store.display());
    }
    Ok(Store::open(&cli.store)?)
}

fn verify(cli: &Cli) -> Result<i32> {
    let store = existing_store(cli)?;
    match audit::verify(&store)? {
        Ok(v) => {
            if cli.json {
                print_json(&json!({
                    "intact": true,
                    "checked": v.checked,
                    "first_seq": v.first_seq,
                    "last_seq": v.last_seq,
                    "head": v.head,
                    "anchor": v.anchor,
                }))?;
                return Ok(0);
            }
            let (Some(first), Some(last), Some(head)) = (v.first_seq, v.last_seq, &v.head) else {
                println!("audit log intact: no records yet");
                return Ok(0);
            };
            println!(
                "audit log intact: {} records checked, seq {first} to {last}",
                v.checked
            );
            if let Some(a) = &v.anchor {
                println!(
                    "starts after the anchor at seq {} (records to {} pruned)",
                    a.seq, a.at
                );
            }
            println!("head: seq {last} hash {head}");
            println!(
                "note the head where idsync cannot write: a later verify must show it \
                 for seq {last}, or the log was rebuilt"
            );
            Ok(0)
        }
        Err(broken) => {
            if cli.json {
                print_json(&json!({
                    "intact": false,
                    "checked": broken.checked,
                    "problem": broken.problem,
                }))?;
            } else {
                println!("audit log BROKEN at {}", broken.problem);
                println!("{} records before it verified", broken.checked);
            }
            Ok(1)
        }
    }
}

fn export(cli: &Cli, since: Option<DateTime<Utc>>, out: Option<&Path>) -> Result<i32> {
    let store = existing_store(cli)?;
    let mut sink: Box<dyn std::io::Write> = match out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let query = AuditQuery {
        since: since.map(stamp),
        ..AuditQuery::default()
    };
    let mut written = 0u64;
    let mut failed = None;
    store.audit_reader()?.each(&query, &mut |r| {
        let line = serde_json::to_string(&r).map_err(std::io::Error::from);
        match line.and_then(|l| writeln!(sink, "{l}")) {
            Ok(()) => {
                written += 1;
                true
            }
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })?;
    let target = out.map_or_else(|| "stdout".to_string(), |p| p.display().to_string());
    if let Some(e) = failed {
        return Err(e).with_context(|| format!("writing to {target}"));
    }
    sink.flush()
        .with_context(|| format!("writing to {target}"))?;
    if let Some(path) = out {
        if cli.json {
            print_json(&json!({"records": written, "out": path}))?;
        } else {
            println!("{written} audit records written to {}", path.display());
        }
    }
    Ok(0)
}

fn list(cli: &Cli, since: Option<DateTime<Utc>>, limit: usize) -> Result<i32> {
    let store = existing_store(cli)?;
    // From --since the first records on; else the latest, shown oldest first.
    let query = AuditQuery {
        since: since.map(stamp),
        limit: Some(limit.saturating_add(1)),
        newest_first: since.is_none(),
        ..AuditQuery::default()
    };
    let mut records: Vec<AuditRecord> = Vec::new();
    store.audit_reader()?.each(&query, &mut |r| {
        records.push(r);
        true
    })?;
    let more = records.len() > limit;
    records.truncate(limit);
    if since.is_none() {
        records.reverse();
    }
    if cli.json {
        print_json(&records)?;
        return Ok(0);
    }
    if records.is_empty() {
        println!("no audit records");
    }
    for r in &records {
        let about: Vec<&str> = [r.target.as_deref(), r.subject.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        println!(
            "{:>6}  {}  {:<18} {:>8}  {}  {}{}",
            r.seq,
            r.at,
            r.kind,
            r.run.map(|n| format!("run {n}")).unwrap_or_default(),
            r.actor,
            if about.is_empty() {
                String::new()
            } else {
                format!("{}  ", about.join(" "))
            },
            r.detail
        );
    }
    if more {
        match since {
            Some(_) => println!("... more after these (--limit N)"),
            None => println!("... older records before these (--since DATE, --limit N)"),
        }
    }
    Ok(0)
}

fn prune(cli: &Cli) -> Result<i32> {
    let (mut app, _lock) = open_writer(cli, "audit prune")?;
    let Some(days) = app.rules.audit.retention_days else {
        if cli.json {
            print_json(&json!({"retention_days": null, "removed": 0}))?;
        } else {
            println!("no [audit] retention_days in the rules: records are kept forever");
        }
        return Ok(0);
    };
    match audit::prune(&mut app.store, days, clock(cli)) {
        Ok(pruned) => {
            if cli.json {
                print_json(&json!({
                    "retention_days": days,
                    "removed": pruned.as_ref().map_or(0, |p| p.removed),
                    "pruned": pruned,
                }))?;
            } else {
                match pruned {
                    None => println!("no audit records older than {days} days"),
                    Some(p) => println!(
                        "removed {} audit records written before {} (through seq {}); \
                         verification starts from there (hash {}); recorded as record {}",
                        p.removed, p.cutoff, p.anchor.seq, p.anchor.hash, p.recorded_as
                    ),
                }
            }
            Ok(0)
        }
        Err(AuditError::Broken(problem)) => {
            eprintln!(
                "error: the audit log is broken at {problem}; nothing was pruned, so the \
                 damage stays visible (see `idsync audit verify`)"
            );
            Ok(1)
        }
        Err(e) => Err(e.into()),
    }
}
