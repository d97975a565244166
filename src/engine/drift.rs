//! Drift: what a confirming import makes of an account's values, as pure
//! functions. A value is compared with two others: what the export flows
//! want now, and what idsync last exported. The target holding either is
//! not drift (the first is in step; the second waits for an export already
//! pending). Anything else was changed by someone other than idsync.

use crate::connector::target::Attrs;
use crate::rules::{DriftPolicy, ExportValue, TargetAgent};

/// The same values, in any order; case is ignored, as directories do for
/// most attributes.
pub fn same_values(a: &[String], b: &[String]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut x: Vec<String> = a.iter().map(|v| v.to_lowercase()).collect();
    let mut y: Vec<String> = b.iter().map(|v| v.to_lowercase()).collect();
    x.sort();
    y.sort();
    x == y
}

/// What the target's value of one attribute means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The target holds what the flows want.
    InStep,
    /// The target holds what idsync last exported; the flows want a newer
    /// value the next export writes.
    Waiting,
    /// Neither: changed in the target.
    Drift,
}

pub fn verdict(found: &[String], exported: &[String], want: &[String]) -> Verdict {
    if same_values(found, want) {
        Verdict::InStep
    } else if same_values(found, exported) {
        Verdict::Waiting
    } else {
        Verdict::Drift
    }
}

/// One attribute's drift in one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrDrift {
    pub attr: String,
    pub expected: Vec<String>,
    pub found: Vec<String>,
    pub policy: DriftPolicy,
}

/// The comparison of one account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountCheck {
    pub drift: Vec<AttrDrift>,
    /// Attributes in step with the flows while `exported` says otherwise:
    /// the target was set right by someone else (or a rollback arrived);
    /// `exported` takes the target's value so no export repeats it.
    pub in_step: Vec<String>,
    /// Attributes compared and found as wanted or waiting.
    pub compared: Vec<String>,
}

/// A remote object's values of `attr`; targets differ in the case of
/// attribute names they return.
pub fn found_values<'a>(found: &'a Attrs, attr: &str) -> &'a [String] {
    found
        .get(attr)
        .or_else(|| {
            found
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(attr))
                .map(|(_, v)| v)
        })
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Compares an account's values in the target (`found`) with the flows'
/// values (`desired`: the account's wanted attributes, references not
/// written out) and what was last exported. Attributes in `skip` (exported
/// and not yet confirmed) are left to the confirmation check; `tolerate`
/// flows and create-only values are not compared. Reference flows are
/// compared with what was exported, as their written form lives there.
pub fn check_account(
    t: &TargetAgent,
    desired: &Attrs,
    exported: &Attrs,
    found: &Attrs,
    skip: &[String],
) -> AccountCheck {
    let mut out = AccountCheck::default();
    let none: Vec<String> = Vec::new();
    for f in &t.flows {
        if f.create_only || f.drift == DriftPolicy::Tolerate {
            continue;
        }
        if skip.iter().any(|s| s.eq_ignore_ascii_case(&f.attr)) {
            continue;
        }
        let last = exported.get(&f.attr).unwrap_or(&none);
        let want = match f.value {
            ExportValue::Expr(_) => desired.get(&f.attr).unwrap_or(&none),
            ExportValue::Ref { .. } | ExportValue::Account { .. } => last,
        };
        let have = found_values(found, &f.attr);
        match verdict(have, last, want) {
            Verdict::InStep => {
                if !same_values(have, last) {
                    out.in_step.push(f.attr.clone());
                }
                out.compared.push(f.attr.clone());
            }
            Verdict::Waiting => out.compared.push(f.attr.clone()),
            Verdict::Drift => out.drift.push(AttrDrift {
                attr: f.attr.clone(),
                expected: want.clone(),
                found: have.to_vec(),
                policy: f.drift,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_value_is_drift_only_when_neither_wanted_nor_last_exported() {
        assert_eq!(verdict(&v(&["A"]), &v(&["A"]), &v(&["A"])), Verdict::InStep);
        assert_eq!(verdict(&v(&["a"]), &v(&["A"]), &v(&["A"])), Verdict::InStep);
        // The flows changed; the export that writes it has not run yet.
        assert_eq!(
            verdict(&v(&["A"]), &v(&["A"]), &v(&["B"])),
            Verdict::Waiting
        );
        assert_eq!(verdict(&v(&["C"]), &v(&["A"]), &v(&["B"])), Verdict::Drift);
        assert_eq!(verdict(&v(&["C"]), &v(&["A"]), &v(&["A"])), Verdict::Drift);
        // Removed by hand, and added by hand.
        assert_eq!(verdict(&[], &v(&["A"]), &v(&["A"])), Verdict::Drift);
        assert_eq!(verdict(&v(&["X"]), &[], &[]), Verdict::Drift);
        // Multi-valued: order does not matter, an extra value does.
        assert_eq!(
            verdict(&v(&["b", "a"]), &v(&["a", "b"]), &v(&["a", "b"])),
            Verdict::InStep
        );
        assert_eq!(
            verdict(&v(&["a", "b", "x"]), &v(&["a", "b"]), &v(&["a", "b"])),
            Verdict::Drift
        );
    }

    /// A target compiled from rule text: the flows as `check` sees them.
    fn target(flows: &str) -> TargetAgent {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("mv.toml"),
            "[metaverse]\n[metaverse.types.person.attributes]\nlogin = \"string\"\ntitle = \"string\"\nphone = { type = \"string\", multi = true }\nmanager = \"reference\"\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("app.toml"),
            format!(
                "[target]\nname = \"app\"\nkind = \"csv\"\nobject_type = \"person\"\npath = \"app.csv\"\nkey = \"login\"\n\n[provision]\nname = \"login\"\n\n[flows.export]\n{flows}"
            ),
        )
        .expect("write");
        let rules = crate::rules::load(dir.path(), &|_| None).expect("rules");
        rules.targets.into_iter().next().expect("a target")
    }

    fn attrs(pairs: &[(&str, &[&str])]) -> Attrs {
        pairs.iter().map(|(k, x)| (k.to_string(), v(x))).collect()
    }

    #[test]
    fn an_account_is_compared_flow_by_flow_under_each_policy() {
        let t = target(
            "title = \"title\"\nphone = \"phone\"\nnote = { expr = \"title\", drift = \"tolerate\" }\npassword = { expr = \"login\", create_only = true }\nboss = { ref = \"manager\" }\nsite = { expr = \"title\", drift = \"report\" }\n",
        );
        let desired = attrs(&[
            ("title", &["Engineer"]),
            ("phone", &["1", "2"]),
            ("note", &["Engineer"]),
            ("site", &["Engineer"]),
        ]);
        let exported = attrs(&[
            ("title", &["Engineer"]),
            ("phone", &["1", "2"]),
            ("note", &["Engineer"]),
            ("boss", &["jdoe"]),
            ("site", &["Engineer"]),
        ]);
        let found = attrs(&[
            ("Title", &["Boss"]),
            ("phone", &["1", "2", "999"]),
            ("note", &["whatever the target says"]),
            ("password", &["changed by the person"]),
            ("boss", &["jdoe"]),
            ("site", &["Elsewhere"]),
        ]);
        let c = check_account(&t, &desired, &exported, &found, &[]);
        let drifted: Vec<(&str, DriftPolicy)> = c
            .drift
            .iter()
            .map(|d| (d.attr.as_str(), d.policy))
            .collect();
        assert_eq!(
            drifted,
            vec![
                ("phone", DriftPolicy::Authoritative),
                ("site", DriftPolicy::Report),
                ("title", DriftPolicy::Authoritative),
            ]
        );
        let title = c.drift.iter().find(|d| d.attr == "title").expect("title");
        assert_eq!(title.expected, v(&["Engineer"]));
        assert_eq!(title.found, v(&["Boss"]));
        // A reference is compared with what was written for it.
        assert_eq!(c.compared, vec!["boss".to_string()]);

        // Attributes waiting for confirmation are the confirmation's.
        let c = check_account(&t, &desired, &exported, &found, &["title".into()]);
        assert!(c.drift.iter().all(|d| d.attr != "title"));
    }

    #[test]
    fn a_target_set_right_by_someone_else_is_in_step() {
        let t = target("title = \"title\"\n");
        let desired = attrs(&[("title", &["New"])]);
        let exported = attrs(&[("title", &["Old"])]);
        // The export of "New" is pending: the target still holding "Old" waits.
        let c = check_account(&t, &desired, &exported, &attrs(&[("title", &["Old"])]), &[]);
        assert!(c.drift.is_empty() && c.in_step.is_empty());
        // Someone wrote "New" by hand: in step, and `exported` should follow.
        let c = check_account(&t, &desired, &exported, &attrs(&[("title", &["new"])]), &[]);
        assert!(c.drift.is_empty());
        assert_eq!(c.in_step, vec!["title".to_string()]);
    }

    #[test]
    fn found_values_ignore_the_case_of_attribute_names() {
        let mut a = Attrs::new();
        a.insert("telephoneNumber".into(), v(&["1"]));
        assert_eq!(found_values(&a, "telephonenumber"), v(&["1"]).as_slice());
        assert!(found_values(&a, "mail").is_empty());
    }
}
