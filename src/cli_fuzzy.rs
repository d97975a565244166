//! `idsync train-join <agent>` and the blocking estimates `idsync check`
//! prints: a fuzzy join rule against what the store holds. Training reads
//! the agent's objects not yet joined and the identities of its type it has
//! no connector to, runs EM over the candidate pairs, and rewrites only the
//! `weights` of the rule file's `[fuzzy_join]` (toml_edit keeps every other
//! line and comment as written), for a person to review before a sync.

use super::{Cli, open, print_json};
use crate::fuzzy::{self, EmOptions, Params, Sides};
use crate::model::{MvId, Record};
use crate::rules::{Agent, FuzzyJoin, RuleSet};
use crate::store::Store;
use anyhow::{Context as _, Result, bail};
use chrono::Utc;
use rustc_hash::FxHashSet;
use serde_json::json;

/// The agent's unjoined objects (or `all` of them) and the identities of
/// its type it has no connector to, read for the rule's matcher. A joined
/// object's own identity is never on the right: it would be a match found
/// by the rule's own sources, not by the fields.
fn agent_sides(
    store: &Store,
    rules: &RuleSet,
    agent: &Agent,
    rule: &FuzzyJoin,
    all: bool,
) -> Result<Sides> {
    let objects = store.load_cs(&agent.name, &agent.schema)?;
    let joined: FxHashSet<MvId> = objects.iter().filter_map(|o| o.mv).collect();
    let left: Vec<(&Record, String)> = objects
        .iter()
        .filter(|o| (all || o.mv.is_none()) && o.pending != Some(crate::model::Delta::Delete))
        .map(|o| (&o.attrs, format!("{}/{}", agent.name, o.anchor)))
        .collect();
    let ty = &rules.metaverse.types[agent.object_type];
    let schema_of = |t: &str| (t == ty.name).then_some(&ty.schema);
    let mut right: Vec<Record> = Vec::new();
    store.load_mv(&schema_of, &mut |row| {
        if row.object_type == ty.name && !joined.contains(&row.id) {
            right.push(row.attrs);
        }
    })?;
    let (sides, _) = crate::engine::fuzzy_join::sides(rule, &left, right.iter(), Utc::now(), None)
        .map_err(anyhow::Error::msg)?;
    Ok(sides)
}

/// Per fuzzy rule with its agent: each blocking key's pairs and largest
/// block against the store's current objects and identities.
pub(super) fn estimates(store: &Store, rules: &RuleSet) -> Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    for a in &rules.agents {
        let Some(rule) = &a.fuzzy else { continue };
        let sides = agent_sides(store, rules, a, rule, false)?;
        let keys: Vec<serde_json::Value> = fuzzy::blocking::estimate(&rule.spec, &sides)
            .into_iter()
            .map(|k| json!({"key": k.key, "pairs": k.pairs, "largest_block": k.largest_block}))
            .collect();
        out.push(json!({
            "agent": a.name,
            "rule": rule.name,
            "objects": sides.left.len(),
            "identities": sides.right.len(),
            "keys": keys,
        }));
    }
    Ok(out)
}

pub(super) fn print_estimates(all: &[serde_json::Value]) {
    for e in all {
        println!(
            "fuzzy join {} {:?}: {} unjoined object(s) against {} identities",
            e["agent"].as_str().unwrap_or_default(),
            e["rule"].as_str().unwrap_or_default(),
            e["objects"],
            e["identities"]
        );
        for k in e["keys"].as_array().into_iter().flatten() {
            println!(
                "  blocking key {:<20} {:>12} pair(s), largest block {}",
                k["key"].as_str().unwrap_or_default(),
                k["pairs"],
                k["largest_block"]
            );
        }
    }
}

pub(super) fn train_join(cli: &Cli, agent: &str, all: bool) -> Result<i32> {
    let app = open(cli)?;
    let Some(a) = app.rules.agent(agent) else {
        bail!(
            "no agent {agent:?}; agents are: {}",
            app.rules.agent_names().join(", ")
        );
    };
    let Some(rule) = &a.fuzzy else {
        bail!(
            "agent {agent:?} has no [fuzzy_join] in {}",
            a.file.display()
        );
    };
    let mut sides = agent_sides(&app.store, &app.rules, a, rule, all)?;
    let mut every = all;
    // A rule added after the agent's objects joined or projected has no
    // unjoined object to learn from; all of them serve as well.
    if sides.left.is_empty() && !all {
        sides = agent_sides(&app.store, &app.rules, a, rule, true)?;
        every = true;
    }
    if sides.left.is_empty() || sides.right.is_empty() {
        bail!(
            "nothing to train on: {} object(s) of {agent} against {} identities without one of its connectors; import {agent} and sync the other agents first",
            sides.left.len(),
            sides.right.len()
        );
    }
    let training = fuzzy::train(&rule.spec, &sides, &EmOptions::default());
    write_weights(&a.file, &training.params)?;
    if cli.json {
        print_json(&json!({
            "agent": agent,
            "rule": rule.name,
            "file": a.file,
            "objects": sides.left.len(),
            "every_object": every,
            "identities": sides.right.len(),
            "iterations": training.iterations,
            "converged": training.converged,
            "weights": training.params,
        }))?;
        return Ok(0);
    }
    println!(
        "fuzzy join {agent} {:?}: EM over {} {}object(s) and {} identities, {} iteration(s){}; weights written to {}",
        rule.name,
        sides.left.len(),
        if every { "" } else { "unjoined " },
        sides.right.len(),
        training.iterations,
        if training.converged {
            ""
        } else {
            " (did not converge)"
        },
        a.file.display()
    );
    println!(
        "  prior {:+.2} bits (lambda {:.3e})",
        training.params.prior(),
        training.params.lambda
    );
    for (f, p) in rule.spec.fields.iter().zip(&training.params.fields) {
        let levels: Vec<String> = (0..f.level_count())
            .map(|l| format!("{} {:+.2}", f.level_label(l), p.weight(l)))
            .collect();
        println!("  {:<18} {}", f.name, levels.join(", "));
    }
    println!("review them, then run a sync");
    Ok(0)
}

/// Replaces `[fuzzy_join].weights` in the rule file, keeping the rest of
/// the file as written.
fn write_weights(path: &std::path::Path, params: &Params) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("parse {}", path.display()))?;
    let Some(fj) = doc
        .get_mut("fuzzy_join")
        .and_then(|t| t.as_table_like_mut())
    else {
        bail!("{} has no [fuzzy_join] table", path.display());
    };
    let mut weights = toml_edit::Table::new();
    weights.insert("lambda", toml_edit::value(params.lambda));
    let mut fields = toml_edit::Array::new();
    for p in &params.fields {
        let mut t = toml_edit::InlineTable::new();
        t.insert(
            "m",
            p.m.iter().copied().collect::<toml_edit::Array>().into(),
        );
        t.insert(
            "u",
            p.u.iter().copied().collect::<toml_edit::Array>().into(),
        );
        fields.push(t);
    }
    fields.set_trailing_comma(true);
    for f in fields.iter_mut() {
        f.decor_mut().set_prefix("\n  ");
    }
    fields.set_trailing("\n");
    weights.insert("fields", toml_edit::value(fields));
    fj.remove("weights");
    fj.insert("weights", toml_edit::Item::Table(weights));
    std::fs::write(path, doc.to_string()).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}
