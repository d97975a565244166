//! `explain` and `history` as text for people: grouped, with columns
//! aligned per section. Built as strings, so tests read what is printed.

use super::{AsOfView, Explanation, History, Offer};
use crate::history::{AsOf, Cutoff, show_values};
use std::collections::BTreeMap;
use std::fmt::Write as _;

fn at(t: &Option<String>) -> &str {
    t.as_deref().unwrap_or("time unknown")
}

fn width<'a>(items: impl Iterator<Item = &'a str>) -> usize {
    items.map(|s| s.chars().count()).max().unwrap_or(0)
}

/// `explain` for people.
pub fn explanation(e: &Explanation) -> String {
    let mut out = String::new();
    let mut w = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    let Some(ty) = &e.object_type else {
        w(format!("identity {}: no longer in the metaverse", e.id));
        if let Some(c) = &e.created {
            w(format!(
                "  created:  run {} ({})  {}",
                c.run,
                at(&c.at),
                c.text
            ));
        }
        if let Some(d) = &e.deleted {
            w(format!("  deleted:  run {} ({})", d.run, at(&d.at)));
        }
        removed(&mut w, e);
        w(format!(
            "  idsync history {} lists everything recorded",
            e.id
        ));
        return out;
    };
    w(format!(
        "{ty} {}  {}",
        e.id,
        e.label.as_deref().unwrap_or_default()
    ));
    if let Some(c) = &e.created {
        w(format!(
            "  exists because: {} in run {} ({})",
            c.text,
            c.run,
            at(&c.at)
        ));
    }
    if let Some(r) = &e.retained_since {
        w(format!(
            "  retained since {r}: no connector left; kept so a rehire gets it back"
        ));
    }

    w("  connectors:".into());
    if e.connectors.is_empty() {
        w("    (none)".into());
    }
    let wa = width(e.connectors.iter().map(|c| c.agent.as_str()));
    let wk = width(e.connectors.iter().map(|c| c.anchor.as_str()));
    for c in &e.connectors {
        let why = match (&c.rule, c.kind.as_str()) {
            (Some(rule), "joined") => {
                let on = if c.matched.is_empty() {
                    c.key.clone().unwrap_or_default()
                } else {
                    c.matched
                        .iter()
                        .map(|m| format!("{} = {} ({:?})", m.source, m.attribute, m.value))
                        .collect::<Vec<_>>()
                        .join(" and ")
                };
                format!("joined by rule {rule}: {on}")
            }
            (_, "projected") => "projected: created the identity".to_string(),
            (_, "joined-by-hand") => {
                "joined by a person's decision (idsync review decisions)".to_string()
            }
            (_, kind) => kind.to_string(),
        };
        let pending = c
            .pending_import
            .as_deref()
            .map(|p| format!("  [{p} staged, not synced yet]"))
            .unwrap_or_default();
        w(format!(
            "    {:wa$}  {:wk$}  run {} ({})  {why}{pending}",
            c.agent,
            c.anchor,
            c.run,
            at(&c.at)
        ));
    }

    w("  attributes:".into());
    let wn = width(e.attributes.iter().map(|a| a.attribute.as_str()));
    let pad = " ".repeat(wn + 6);
    for a in &e.attributes {
        w(format!(
            "    {:wn$}  {}",
            a.attribute,
            show_values(&a.shown)
        ));
        for s in &a.sources {
            let flow = s
                .flow
                .as_deref()
                .map(|f| format!(", flow {}", one_line(f)))
                .unwrap_or_default();
            w(format!(
                "{pad}from {} {}{flow}, run {} ({})",
                s.agent,
                s.anchor,
                s.run,
                at(&s.at)
            ));
        }
        w(format!("{pad}{}", a.reason));
        // What a lower source would give, where it differs.
        for r in a.ranking.iter().filter(|r| !r.supplied) {
            if let Offer::Values(v) = &r.offer
                && *v != a.values
            {
                w(format!(
                    "{pad}{} (rank {}) offers {}",
                    r.agent,
                    r.rank,
                    show_values(v)
                ));
            }
        }
    }

    w("  accounts:".into());
    if e.accounts.is_empty() {
        w("    (no target provisions this type)".into());
    }
    let wt = width(e.accounts.iter().map(|a| a.target.as_str()));
    let pad = " ".repeat(wt + 6);
    for a in &e.accounts {
        let head = match &a.account {
            Some(s) => {
                let mut notes = Vec::new();
                if s.pending_export {
                    notes.push("export pending".to_string());
                }
                if s.awaiting_confirmation {
                    notes.push("awaiting confirmation".to_string());
                }
                if let Some(err) = &s.error {
                    notes.push(format!("last export failed: {err}"));
                }
                format!(
                    "{} {}{}, created run {} ({}), updated run {} ({}){}",
                    s.state,
                    s.name.as_deref().unwrap_or("(no name yet)"),
                    s.remote_id
                        .as_deref()
                        .map(|r| format!(" (id {r})"))
                        .unwrap_or_default(),
                    s.created_run,
                    at(&s.created_at),
                    s.updated_run,
                    at(&s.updated_at),
                    if notes.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", notes.join("; "))
                    }
                )
            }
            None => "no account".to_string(),
        };
        w(format!("    {:wt$}  {head}", a.target));
        let scope = match (&a.scope, a.in_scope, &a.scope_error) {
            (_, _, Some(err)) => format!("scope failed: {err}"),
            (None, _, _) => "scope: every object of the type".to_string(),
            (Some(s), Some(true), _) => format!("scope {}: in scope now", one_line(s)),
            (Some(s), _, _) => format!("scope {}: not in scope now", one_line(s)),
        };
        w(format!(
            "{pad}{scope}; leaving scope: {} ({} target)",
            a.deprovision, a.kind
        ));
        w(format!("{pad}{}", a.reason));
    }
    removed(&mut w, e);
    out
}

fn removed(w: &mut impl FnMut(String), e: &Explanation) {
    if e.accounts_removed.is_empty() {
        return;
    }
    w("  accounts disabled or removed earlier:".into());
    for r in &e.accounts_removed {
        w(format!("    run {} ({})  {}", r.run, at(&r.at), r.text));
    }
}

/// Values with the labels of the identities references name.
fn labelled(values: &[String], labels: &BTreeMap<String, String>) -> String {
    let shown: Vec<String> = values
        .iter()
        .map(|v| match labels.get(v) {
            Some(l) => format!("{v} ({l})"),
            None => v.clone(),
        })
        .collect();
    show_values(&shown)
}

/// An expression for a column: on one line, long ones cut short (`--json`
/// has them whole).
fn one_line(s: &str) -> String {
    const MAX: usize = 72;
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() <= MAX {
        return s;
    }
    let cut: String = s.chars().take(MAX - 3).collect();
    format!("{cut}...")
}

/// `history` for people.
pub fn history(h: &History) -> String {
    let mut out = String::new();
    let name = match (&h.object_type, &h.label) {
        (Some(t), Some(l)) => format!("{t} {} ({l})", h.id),
        _ => format!("identity {} (deleted)", h.id),
    };
    let _ = writeln!(out, "{name}: {} change(s) recorded", h.total);
    if h.total > h.entries.len() {
        let _ = writeln!(
            out,
            "  ... {} earlier change(s) (--limit N)",
            h.total - h.entries.len()
        );
    }
    let wr = h
        .entries
        .iter()
        .map(|e| e.run.to_string().len())
        .max()
        .unwrap_or(1);
    let ws = width(h.entries.iter().map(|e| e.step.as_str()));
    for e in &h.entries {
        let _ = writeln!(
            out,
            "  run {:>wr$}  {}  {:ws$}  {}",
            e.run, e.at, e.step, e.text
        );
        let wa = width(e.values.keys().map(String::as_str));
        let pad = " ".repeat(wr + e.at.len() + ws + 12);
        for (attr, (before, after)) in &e.values {
            let _ = writeln!(
                out,
                "{pad}{attr:wa$}  {} -> {}",
                labelled(before, &h.labels),
                labelled(after, &h.labels)
            );
        }
    }
    out
}

/// `history --as-of` for people.
pub fn as_of(v: &AsOfView) -> String {
    let mut out = String::new();
    let when = match &v.as_of {
        Cutoff::Run(n) => match &v.run_finished {
            Some(t) => format!("as of the end of run {n} ({t})"),
            None => format!("as of the end of run {n}"),
        },
        Cutoff::Time(t) => format!("as of {t}"),
    };
    let name = match &v.object_type {
        Some(t) => format!("{t} {}", v.id),
        None => format!("identity {} (deleted since)", v.id),
    };
    match &v.result {
        AsOf::NotYet {
            created_run,
            created_at,
        } => {
            let _ = writeln!(
                out,
                "{name} {when}: did not exist yet (created in run {created_run}, {created_at})"
            );
        }
        AsOf::Deleted { run, at } => {
            let _ = writeln!(
                out,
                "{name} {when}: no longer existed (deleted in run {run}, {at})"
            );
        }
        AsOf::Existed { values, unknown } => {
            let _ = writeln!(out, "{name} {when}:");
            let wa = width(values.keys().map(String::as_str));
            for (attr, vals) in values {
                let _ = writeln!(out, "  {attr:wa$}  {}", labelled(vals, &v.labels));
            }
            if !unknown.is_empty() {
                let _ = writeln!(
                    out,
                    "  not known (changed later by records that kept no values): {}",
                    unknown.join(", ")
                );
            }
        }
    }
    out
}
