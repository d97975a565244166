//! `idsync review ...`, `idsync join`, `idsync disconnect`: a person's
//! decisions about connector-space objects. The review queue holds the
//! objects whose join found several identities; accepting one candidate
//! makes an explicit connector, rejecting them all projects a new identity.
//! Decisions are stored and honoured by every later sync, full or delta,
//! before the join rules, so they survive rule changes.

use super::{Cli, open, open_writer, print_json};
use crate::app::{App, stamp};
use crate::audit::{AuditEntry, AuditKind};
use crate::engine::fuzzy_join::Scored;
use crate::model::{CsId, MvId};
use crate::store::{AmbiguousRow, DecisionRow};
use anyhow::{Result, bail};
use chrono::Utc;
use clap::Subcommand;
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Source objects waiting for a decision, numbered.
    List,
    /// One waiting object beside its candidates, attribute by attribute.
    Show { n: CsId },
    /// Join the object to candidate K (as `review show` numbers them).
    Accept {
        n: CsId,
        #[arg(long, value_name = "K")]
        candidate: usize,
    },
    /// Reject every candidate: the object becomes a new identity.
    Reject { n: CsId },
    /// Every decision made so far, and the sync that applied it.
    Decisions,
}

pub fn run(cli: &Cli, sub: &ReviewCommand) -> Result<i32> {
    match sub {
        ReviewCommand::List => list(cli),
        ReviewCommand::Show { n } => show(cli, *n),
        ReviewCommand::Accept { n, candidate } => {
            let (mut app, _lock) = open_writer(cli, &format!("review accept {n}"))?;
            let item = waiting(&app, *n)?;
            let Some(&mv) = candidate
                .checked_sub(1)
                .and_then(|k| item.candidates.get(k))
            else {
                bail!(
                    "review {n} has candidates 1 to {}; `idsync review show {n}` lists them",
                    item.candidates.len()
                );
            };
            decide(
                cli,
                &mut app,
                *n,
                &item.agent,
                &item.anchor,
                "join",
                Some(mv),
            )
        }
        ReviewCommand::Reject { n } => {
            let (mut app, _lock) = open_writer(cli, &format!("review reject {n}"))?;
            let item = waiting(&app, *n)?;
            decide(
                cli,
                &mut app,
                *n,
                &item.agent,
                &item.anchor,
                "project",
                None,
            )
        }
        ReviewCommand::Decisions => decisions(cli),
    }
}

/// `idsync join agent:anchor <identity>`: an explicit connector.
pub fn join(cli: &Cli, object: &str, identity: &[String]) -> Result<i32> {
    let (mut app, _lock) = open_writer(cli, &format!("join {object}"))?;
    let (agent, anchor, cs) = source_object(&app, object)?;
    let ids = crate::explain::resolve(&app, identity, false)?;
    let mv = match ids.as_slice() {
        [one] => *one,
        [] => bail!("no identity found for {:?}", identity.join(" ")),
        many => bail!(
            "{:?} names {} identities ({}); give a metaverse id",
            identity.join(" "),
            many.len(),
            many.iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    decide(cli, &mut app, cs, &agent, &anchor, "join", Some(mv))
}

/// `idsync disconnect agent:anchor`: an explicit disconnector.
pub fn disconnect(cli: &Cli, object: &str) -> Result<i32> {
    let (mut app, _lock) = open_writer(cli, &format!("disconnect {object}"))?;
    let (agent, anchor, cs) = source_object(&app, object)?;
    decide(cli, &mut app, cs, &agent, &anchor, "disconnect", None)
}

fn source_object(app: &App, object: &str) -> Result<(String, String, CsId)> {
    let Some((agent, anchor)) = object.split_once(':') else {
        bail!("{object:?}: give the source object as agent:anchor (workday:W100042)");
    };
    if app.rules.agent(agent).is_none() {
        bail!(
            "no agent {agent:?}; agents are: {}",
            app.rules.agent_names().join(", ")
        );
    }
    match app.store.cs_object(agent, anchor)? {
        Some((cs, _)) => Ok((agent.to_string(), anchor.to_string(), cs)),
        None => bail!("{agent} has no object {anchor:?} in its connector space"),
    }
}

fn waiting(app: &App, n: CsId) -> Result<AmbiguousRow> {
    match app.store.ambiguous()?.into_iter().find(|a| a.cs_id == n) {
        Some(a) => Ok(a),
        None => bail!(
            "nothing waits for a decision as review {n}; `idsync review list` shows what does"
        ),
    }
}

fn decide(
    cli: &Cli,
    app: &mut App,
    cs: CsId,
    agent: &str,
    anchor: &str,
    kind: &str,
    mv: Option<MvId>,
) -> Result<i32> {
    let entry = AuditEntry::now(AuditKind::DecisionMade, None)
        .target(agent)
        .subject(anchor)
        .detail(json!({"decision": kind, "identity": mv}));
    let d = DecisionRow {
        cs_id: cs,
        agent: agent.to_string(),
        anchor: anchor.to_string(),
        kind: kind.to_string(),
        mv_id: mv,
        actor: entry.actor.clone(),
        at: stamp(Utc::now()),
        note: None,
        applied_run: None,
    };
    let tx = app.store.begin()?;
    tx.put_decision(&d)?;
    tx.audit(&entry)?;
    tx.commit()?;
    if cli.json {
        print_json(&d)?;
        return Ok(0);
    }
    let what = described(kind, mv);
    println!(
        "{agent} {anchor}: {what}; the next sync (delta or full) applies it, and every sync after keeps it"
    );
    Ok(0)
}

/// A decision in words.
fn described(kind: &str, mv: Option<MvId>) -> String {
    match (kind, mv) {
        ("join", Some(m)) => format!("joined to identity {m}"),
        ("project", _) => "a new identity".to_string(),
        _ => "disconnected, and joined to nothing".to_string(),
    }
}

fn list(cli: &Cli) -> Result<i32> {
    let app = open(cli)?;
    let items = app.store.ambiguous()?;
    if cli.json {
        print_json(&items)?;
        return Ok(0);
    }
    if items.is_empty() {
        println!("nothing waits for a decision");
    }
    for a in &items {
        println!(
            "{:>6}  {} {}: rule {:?} found {} candidates ({}), run {}",
            a.cs_id,
            a.agent,
            a.anchor,
            a.rule,
            a.candidates.len(),
            a.candidates
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            a.run
        );
    }
    Ok(0)
}

/// The attributes shown side by side: each join rule's metaverse side, then
/// a few that tell people apart.
const SHOWN: &[&str] = &[
    "displayName",
    "employeeId",
    "birthDate",
    "mail",
    "department",
    "lifecycle",
];

fn show(cli: &Cli, n: CsId) -> Result<i32> {
    let app = open(cli)?;
    let item = waiting(&app, n)?;
    let Some(agent) = app.rules.agent(&item.agent) else {
        bail!("no agent {:?} in the rules", item.agent);
    };
    let Some(obj) = app
        .store
        .find_cs(&item.agent, &item.anchor, &agent.schema)?
    else {
        bail!("{} has no object {:?} any more", item.agent, item.anchor);
    };
    let t = &app.rules.metaverse.types[agent.object_type];
    let schema_of = |name: &str| app.rules.metaverse.get(name).map(|t| &t.schema);
    let mut candidates = Vec::new();
    for id in &item.candidates {
        candidates.push((*id, app.store.get_mv(*id, &schema_of)?));
    }
    // Each attribute once: the rules' first, then the usual ones.
    let mut attrs: Vec<(String, Option<usize>)> = Vec::new();
    for rule in &agent.joins {
        for part in &rule.parts {
            let name = t.schema.name(part.mv).to_string();
            if !attrs.iter().any(|(a, _)| *a == name) {
                attrs.push((name, None));
            }
        }
    }
    if let Some(f) = &agent.fuzzy {
        for &a in &f.mv {
            let name = t.schema.name(a).to_string();
            if !attrs.iter().any(|(x, _)| *x == name) {
                attrs.push((name, None));
            }
        }
    }
    for a in SHOWN {
        if t.schema.get(a).is_some() && !attrs.iter().any(|(x, _)| x == a) {
            attrs.push((a.to_string(), None));
        }
    }
    // What the object would bring to each attribute: its import flows.
    let key = format!("{}/{}", item.agent, item.anchor);
    let ctx = crate::expr::Context {
        now: Utc::now(),
        object_key: &key,
        unique: None,
    };
    let source_value = |attr: &str| -> String {
        let Some(a) = t.schema.get(attr) else {
            return String::new();
        };
        agent
            .flows
            .iter()
            .find(|f| f.target == a)
            .and_then(|f| f.expr.eval(&obj.attrs, &ctx).ok())
            .map(|v| v.to_strings().join(" | "))
            .unwrap_or_default()
    };
    let rows: Vec<serde_json::Value> = attrs
        .iter()
        .map(|(attr, _)| {
            let mine = source_value(attr);
            let theirs: Vec<String> = candidates
                .iter()
                .map(|(_, row)| {
                    row.as_ref()
                        .and_then(|r| {
                            t.schema
                                .get(attr)
                                .map(|a| r.attrs.values(a).collect::<Vec<_>>().join(" | "))
                        })
                        .unwrap_or_default()
                })
                .collect();
            json!({"attribute": attr, "object": mine, "candidates": theirs})
        })
        .collect();
    let scores = Scored::list_from_json(item.scores.as_deref());
    if cli.json {
        print_json(&json!({
            "review": n,
            "agent": item.agent,
            "anchor": item.anchor,
            "rule": item.rule,
            "run": item.run,
            "candidates": item.candidates,
            "attributes": rows,
            "scores": scores,
        }))?;
        return Ok(0);
    }
    println!(
        "review {n}: {} {} — join rule {:?} found {} identities in run {}",
        item.agent,
        item.anchor,
        item.rule,
        item.candidates.len(),
        item.run
    );
    let mut header = format!(
        "  {:<18} {:<24}",
        "attribute",
        format!("{} {}", item.agent, item.anchor)
    );
    for (k, (id, _)) in candidates.iter().enumerate() {
        header.push_str(&format!(" {:<24}", format!("{}. identity {id}", k + 1)));
    }
    println!("{header}");
    for r in &rows {
        let mine = r["object"].as_str().unwrap_or_default();
        let mut line = format!(
            "  {:<18} {:<24}",
            r["attribute"].as_str().unwrap_or_default(),
            mine
        );
        for v in r["candidates"].as_array().into_iter().flatten() {
            let v = v.as_str().unwrap_or_default();
            let mark = if !mine.is_empty() && v.eq_ignore_ascii_case(mine) {
                "="
            } else {
                " "
            };
            line.push_str(&format!(" {mark}{:<23}", v));
        }
        println!("{line}");
    }
    println!("  (= the same value as the object)");
    print_scores(&candidates, &scores);
    println!(
        "decide: idsync review accept {n} --candidate K   |   idsync review reject {n} (a new identity)"
    );
    Ok(0)
}

/// A fuzzy rule's score of each candidate, field by field: the level each
/// field reached and the bits it added (negative: against a match).
fn print_scores(candidates: &[(MvId, Option<crate::store::MvRow>)], scores: &[Scored]) {
    if scores.is_empty() {
        return;
    }
    println!("scores (bits: log2 odds of one person; each field's contribution):");
    for (k, (id, _)) in candidates.iter().enumerate() {
        let Some(s) = scores.iter().find(|s| s.mv == *id) else {
            continue;
        };
        let via = s
            .via
            .as_ref()
            .map(|v| format!(" (best against {v}'s record)"))
            .unwrap_or_default();
        println!("  {}. identity {id}: score {:.2}{via}", k + 1, s.score);
        for f in &s.fields {
            println!("     {:<18} {:<26} {:+.2}", f.field, f.level, f.weight);
        }
    }
}

fn decisions(cli: &Cli) -> Result<i32> {
    let app = open(cli)?;
    let all = app.store.decisions()?;
    if cli.json {
        print_json(&all)?;
        return Ok(0);
    }
    if all.is_empty() {
        println!("no decisions made");
    }
    for d in &all {
        let what = described(&d.kind, d.mv_id);
        let applied = d
            .applied_run
            .map(|r| format!("applied in run {r}"))
            .unwrap_or_else(|| "waits for the next sync".to_string());
        println!(
            "{} {}: {what} by {} at {}; {applied}",
            d.agent, d.anchor, d.actor, d.at
        );
    }
    Ok(0)
}
