//! An identity's history, as pure functions over its change records: the
//! values kept with each record (`change.data`), a sentence per record for
//! people, and the identity's values as of an earlier run, found by undoing
//! newer changes from the current values.
//!
//! `change.data` holds, for `identity-updated` and `identity-deleted`
//! records, `{"attribute": [[before], [after]], ...}`: the values of the
//! attributes the change touched (a deletion's are every value the identity
//! had, and none after). Undoing a change is setting each attribute back to
//! its `before`, so the values as of run N are the current ones with every
//! later change undone, newest first.

use crate::model::{Record, RunId, Schema};
use crate::store::HistoryRow;
use std::collections::BTreeMap;

/// Per attribute, the values before and after one change.
pub type Values = BTreeMap<String, (Vec<String>, Vec<String>)>;

/// An identity's values: attribute name -> values (no entry for none).
pub type State = BTreeMap<String, Vec<String>>;

/// The `data` of an identity update: the changed attributes' values before
/// (`previous` holds only those) and after.
pub fn update_data(schema: &Schema, changes: &[u32], previous: &Record, now: &Record) -> String {
    let values: BTreeMap<&str, (Vec<&str>, Vec<&str>)> = changes
        .iter()
        .map(|&a| {
            (
                schema.name(a),
                (previous.values(a).collect(), now.values(a).collect()),
            )
        })
        .collect();
    serde_json::to_string(&values).unwrap_or_default()
}

/// The `data` of an identity's deletion, from its stored values (the
/// record text of `model::json`): every value before, none after.
pub fn deleted_data(stored: &str) -> Option<String> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(stored).ok()?;
    let values: BTreeMap<String, (Vec<String>, Vec<String>)> = map
        .into_iter()
        .map(|(k, v)| (k, (strings(v), Vec::new())))
        .collect();
    serde_json::to_string(&values).ok()
}

fn strings(v: serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::Array(items) => items.into_iter().flat_map(strings).collect(),
        serde_json::Value::String(s) if s.is_empty() => Vec::new(),
        serde_json::Value::String(s) => vec![s],
        serde_json::Value::Null => Vec::new(),
        other => vec![other.to_string()],
    }
}

/// One change of an identity, as `history` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    pub run: RunId,
    /// When the step that made it started.
    pub at: String,
    pub step: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Values before and after, for identity updates and deletions.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub values: Values,
    /// An update recorded before values were kept: the attributes it
    /// changed are known, their earlier values are not.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub values_unrecorded: bool,
    /// The change in words.
    pub text: String,
}

impl Entry {
    pub fn from_row(row: HistoryRow) -> Entry {
        let values: Values = row
            .data
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        let values_unrecorded = row.kind == "identity-updated" && values.is_empty();
        let mut e = Entry {
            run: row.run,
            at: row.started_at,
            step: row.step,
            kind: row.kind,
            agent: row.agent,
            anchor: row.anchor,
            detail: row.detail,
            values,
            values_unrecorded,
            text: String::new(),
        };
        e.text = describe(&e);
        e
    }
}

/// A change in words: what happened, to which object, in which system.
pub fn describe(e: &Entry) -> String {
    let agent = e.agent.as_deref().unwrap_or("?");
    let anchor = e.anchor.as_deref().unwrap_or("");
    let object = if anchor.is_empty() {
        agent.to_string()
    } else {
        format!("{agent} {anchor}")
    };
    let detail = e.detail.as_deref().unwrap_or("");
    let with = |s: String| {
        if detail.is_empty() {
            s
        } else {
            format!("{s}: {detail}")
        }
    };
    match e.kind.as_str() {
        "projected" => format!("created (projected) from {object}"),
        "joined" => match &e.detail {
            Some(rule) => format!("joined {object} by rule {rule}"),
            None => format!("joined {object}"),
        },
        "joined-by-hand" => format!("joined {object} by a person's decision"),
        "disconnected" => {
            format!("{object} disconnected (deleted there, out of scope, or by hand)")
        }
        "identity-updated" if e.values_unrecorded => {
            format!("updated {detail} (values not recorded)")
        }
        "identity-updated" => "updated".to_string(),
        "identity-retained" => format!("kept without connectors since {detail} (a leaver)"),
        "identity-deleted" => "deleted from the metaverse".to_string(),
        "account-provisioned" => format!("account in {agent} to be created (in scope)"),
        "account-updated" => format!("account in {agent}: wanted values changed"),
        "account-enabled" => format!("account in {agent} to be enabled again (back in scope)"),
        "account-kept" => format!("account in {agent} kept (back in scope before its deletion)"),
        "account-disabled" => format!("account in {agent} to be disabled (out of scope)"),
        "account-deprovisioned" => format!("account in {agent} to be deleted (out of scope)"),
        "account-unprovisioned" => {
            format!("account in {agent} dropped before it was created (out of scope)")
        }
        "account-disconnected" => {
            format!("account in {agent} disconnected (out of scope; the target keeps it)")
        }
        "account-missing" => format!("account {anchor} missing from {agent}"),
        "exported-create" => with(format!("created {anchor} in {agent}")),
        "exported-join" => format!("found {anchor} in {agent} and took it over"),
        "exported-update" => with(format!("updated {anchor} in {agent}")),
        "exported-rename" => with(format!("renamed to {anchor} in {agent}")),
        "exported-disable" => with(format!("disabled {anchor} in {agent}")),
        "exported-delete" => format!("deleted {anchor} from {agent}"),
        "group-created" => format!("group {detail} created"),
        "group-updated" => format!("group {detail}: members or values changed"),
        "group-deleted" => format!("group {detail} deleted (no members left)"),
        other => {
            let mut s = other.to_string();
            if e.agent.is_some() {
                s.push(' ');
                s.push_str(&object);
            }
            with(s)
        }
    }
}

/// Which changes happened after the point an as-of view looks at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cutoff {
    /// The end of this run.
    Run(RunId),
    /// This instant (RFC 3339): changes of steps started later are after it.
    Time(String),
}

impl Cutoff {
    /// Whether a change of run `run`, made by a step started at `at`, is
    /// after the cutoff.
    fn after(&self, run: RunId, at: &str) -> bool {
        match self {
            Cutoff::Run(n) => run > *n,
            Cutoff::Time(t) => match (
                chrono::DateTime::parse_from_rfc3339(at),
                chrono::DateTime::parse_from_rfc3339(t),
            ) {
                (Ok(a), Ok(b)) => a > b,
                _ => at > t.as_str(),
            },
        }
    }
}

/// An identity's values at a cutoff.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum AsOf {
    /// Created after the cutoff.
    NotYet {
        created_run: RunId,
        created_at: String,
    },
    /// Deleted at or before the cutoff.
    Deleted { run: RunId, at: String },
    Existed {
        values: State,
        /// Attributes changed after the cutoff by records that kept no
        /// values: what they held at the cutoff is not known.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        unknown: Vec<String>,
    },
}

/// The values at `cutoff`: `current` (none for a deleted identity) with
/// every change after the cutoff undone, newest first. `created` is the
/// run and time the identity was created, when known.
pub fn as_of(
    current: Option<&State>,
    created: Option<(RunId, &str)>,
    entries: &[Entry],
    cutoff: &Cutoff,
) -> AsOf {
    if let Some((run, at)) = created
        && cutoff.after(run, at)
    {
        return AsOf::NotYet {
            created_run: run,
            created_at: at.to_string(),
        };
    }
    if let Some(d) = entries
        .iter()
        .find(|e| e.kind == "identity-deleted" && !cutoff.after(e.run, &e.at))
    {
        return AsOf::Deleted {
            run: d.run,
            at: d.at.clone(),
        };
    }
    let mut values = current.cloned().unwrap_or_default();
    let mut unknown = Vec::new();
    for e in entries.iter().rev() {
        if !cutoff.after(e.run, &e.at) {
            break;
        }
        if e.values_unrecorded {
            for a in e.detail.as_deref().unwrap_or("").split(',') {
                if !a.is_empty() && !unknown.iter().any(|u| u == a) {
                    unknown.push(a.to_string());
                }
            }
            continue;
        }
        for (attr, (before, _)) in &e.values {
            if before.is_empty() {
                values.remove(attr);
            } else {
                values.insert(attr.clone(), before.clone());
            }
        }
    }
    unknown.sort();
    AsOf::Existed { values, unknown }
}

/// Names the connector of a projection or join whose object is gone since
/// (its record reads the anchor from the object): the anchor of the
/// agent's next disconnection, as an identity has one connector per agent
/// at a time.
pub fn fill_anchors(entries: &mut [Entry]) {
    for i in 0..entries.len() {
        let e = &entries[i];
        if e.anchor.is_some() || !matches!(e.kind.as_str(), "projected" | "joined") {
            continue;
        }
        let found = entries[i + 1..]
            .iter()
            .find(|d| d.kind == "disconnected" && d.agent == e.agent)
            .and_then(|d| d.anchor.clone());
        if found.is_some() {
            entries[i].anchor = found;
            entries[i].text = describe(&entries[i]);
        }
    }
}

/// The run and time an identity was created, from its records: its first
/// projection (or a computed group's creation).
pub fn created(entries: &[Entry]) -> Option<(RunId, &str)> {
    entries
        .iter()
        .find(|e| e.kind == "projected" || e.kind == "group-created")
        .map(|e| (e.run, e.at.as_str()))
}

/// A value list as people read it, on one line: one value bare, several
/// in brackets, none as `(none)`; line breaks and tabs as `\n`, `\t`.
pub fn show_values(v: &[String]) -> String {
    let one = |s: &String| {
        if s.contains(['\n', '\r', '\t']) {
            s.replace('\n', "\\n")
                .replace('\r', "\\r")
                .replace('\t', "\\t")
        } else {
            s.clone()
        }
    };
    match v {
        [] => "(none)".into(),
        [x] => one(x),
        many => format!("[{}]", many.iter().map(one).collect::<Vec<_>>().join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(run: RunId, kind: &str, values: &[(&str, &[&str], &[&str])]) -> Entry {
        let v: Values = values
            .iter()
            .map(|(a, b, n)| {
                (
                    a.to_string(),
                    (
                        b.iter().map(|s| s.to_string()).collect(),
                        n.iter().map(|s| s.to_string()).collect(),
                    ),
                )
            })
            .collect();
        let mut e = Entry {
            run,
            at: format!("2026-11-{:02}T02:00:00.000Z", 20 + run),
            step: "sync".into(),
            kind: kind.into(),
            agent: None,
            anchor: None,
            detail: None,
            values: v,
            values_unrecorded: false,
            text: String::new(),
        };
        e.text = describe(&e);
        e
    }

    fn state(pairs: &[(&str, &[&str])]) -> State {
        pairs
            .iter()
            .map(|(a, v)| (a.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    fn history() -> Vec<Entry> {
        vec![
            entry(1, "projected", &[]),
            entry(
                2,
                "identity-updated",
                &[("department", &["Finance"], &["Audit"])],
            ),
            entry(
                4,
                "identity-updated",
                &[
                    ("department", &["Audit"], &["Treasury"]),
                    ("title", &[], &["Head of Treasury"]),
                ],
            ),
        ]
    }

    #[test]
    fn as_of_undoes_later_changes_newest_first() {
        let now = state(&[
            ("department", &["Treasury"]),
            ("title", &["Head of Treasury"]),
            ("sn", &["Lee"]),
        ]);
        let h = history();
        let at = |run| as_of(Some(&now), created(&h), &h, &Cutoff::Run(run));
        assert_eq!(
            at(1),
            AsOf::Existed {
                values: state(&[("department", &["Finance"]), ("sn", &["Lee"])]),
                unknown: vec![],
            }
        );
        // Run 3 changed nothing: as of run 3 is as of run 2.
        assert_eq!(at(3), at(2));
        assert_eq!(
            at(2),
            AsOf::Existed {
                values: state(&[("department", &["Audit"]), ("sn", &["Lee"])]),
                unknown: vec![],
            }
        );
        assert_eq!(
            at(4),
            AsOf::Existed {
                values: now.clone(),
                unknown: vec![]
            }
        );
        assert_eq!(
            at(0),
            AsOf::NotYet {
                created_run: 1,
                created_at: "2026-11-21T02:00:00.000Z".into()
            }
        );
    }

    #[test]
    fn as_of_a_time_counts_steps_started_by_then() {
        let now = state(&[("department", &["Treasury"])]);
        let h = history();
        let got = as_of(
            Some(&now),
            created(&h),
            &h,
            &Cutoff::Time("2026-11-23T00:00:00Z".into()),
        );
        assert_eq!(
            got,
            AsOf::Existed {
                values: state(&[("department", &["Audit"])]),
                unknown: vec![]
            }
        );
    }

    #[test]
    fn a_deleted_identity_is_rebuilt_from_its_deletion_record() {
        let mut h = history();
        h.push(entry(
            6,
            "identity-deleted",
            &[
                ("department", &["Treasury"], &[]),
                ("title", &["Head of Treasury"], &[]),
            ],
        ));
        assert_eq!(
            as_of(None, created(&h), &h, &Cutoff::Run(5)),
            AsOf::Existed {
                values: state(&[
                    ("department", &["Treasury"]),
                    ("title", &["Head of Treasury"])
                ]),
                unknown: vec![]
            }
        );
        assert_eq!(
            as_of(None, created(&h), &h, &Cutoff::Run(3)),
            AsOf::Existed {
                values: state(&[("department", &["Audit"])]),
                unknown: vec![]
            }
        );
        assert_eq!(
            as_of(None, created(&h), &h, &Cutoff::Run(6)),
            AsOf::Deleted {
                run: 6,
                at: "2026-11-26T02:00:00.000Z".into()
            }
        );
    }

    #[test]
    fn updates_recorded_without_values_are_named_as_unknown() {
        let mut h = history();
        let mut old = entry(5, "identity-updated", &[]);
        old.detail = Some("title,mail".into());
        old.values_unrecorded = true;
        h.push(old);
        let now = state(&[("department", &["Treasury"]), ("title", &["CFO"])]);
        let AsOf::Existed { values, unknown } = as_of(Some(&now), created(&h), &h, &Cutoff::Run(4))
        else {
            panic!("existed at run 4");
        };
        assert_eq!(unknown, vec!["mail".to_string(), "title".to_string()]);
        // What later records do say is still undone.
        assert_eq!(
            values.get("department"),
            Some(&vec!["Treasury".to_string()])
        );
    }

    #[test]
    fn a_gone_connector_is_named_by_its_disconnection() {
        let mut h = history();
        h[0].agent = Some("workday".into());
        let mut d = entry(5, "disconnected", &[]);
        d.agent = Some("workday".into());
        d.anchor = Some("W100024".into());
        h.push(d);
        fill_anchors(&mut h);
        assert_eq!(h[0].anchor.as_deref(), Some("W100024"));
        assert_eq!(h[0].text, "created (projected) from workday W100024");
    }

    #[test]
    fn data_round_trips_through_the_stored_text() {
        let schema = Schema::new(["sn", "phone", "title"]);
        let mut b = Record::builder();
        b.push(1, "1");
        let previous = b.build();
        let mut b = Record::builder();
        b.push(0, "Lee");
        b.push(1, "1");
        b.push(1, "2");
        b.push(2, "CFO");
        let now = b.build();
        let text = update_data(&schema, &[1, 2], &previous, &now);
        assert_eq!(text, r#"{"phone":[["1"],["1","2"]],"title":[[],["CFO"]]}"#);
        let parsed: Values = serde_json::from_str(&text).expect("parse");
        assert_eq!(parsed["title"].1, vec!["CFO".to_string()]);

        let gone = deleted_data(r#"{"sn":"Lee","phone":["1","2"]}"#).expect("valid");
        assert_eq!(gone, r#"{"phone":[["1","2"],[]],"sn":[["Lee"],[]]}"#);
        assert_eq!(deleted_data("not json"), None);
    }

    #[test]
    fn descriptions_name_the_object_and_the_system() {
        let mut e = entry(3, "exported-update", &[]);
        e.agent = Some("directory".into());
        e.anchor = Some("uid=jlee,ou=people".into());
        e.detail = Some("title: replace CFO".into());
        assert_eq!(
            describe(&e),
            "updated uid=jlee,ou=people in directory: title: replace CFO"
        );
        e.kind = "joined".into();
        e.agent = Some("sap".into());
        e.anchor = Some("00012001".into());
        e.detail = Some("by-workday-id".into());
        assert_eq!(describe(&e), "joined sap 00012001 by rule by-workday-id");
        assert_eq!(show_values(&[]), "(none)");
        assert_eq!(
            show_values(&["Berlin HQ\nMitte".into()]),
            "Berlin HQ\\nMitte"
        );
        assert_eq!(show_values(&["a".into(), "b".into()]), "[a, b]");
    }
}
