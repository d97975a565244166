//! Provisioning and export attribute flow, as pure functions.
//!
//! For each identity and target, [`decide`] says what the account must
//! become: created, changed, disabled, enabled again, deleted, or forgotten,
//! from the target's scope, name and export flows over the identity's values,
//! and the account's stored state. At export time, [`operation`] turns an
//! account's desired values (with references written the target's way) and
//! what the target was last told into one [`ExportOp`] that carries only
//! what differs.

use super::truthy;
use crate::connector::target::{Attrs, Change, ExportOp};
use crate::expr::Context;
use crate::model::{MvId, Record};
use crate::rules::{AccountRead, DeprovisionAction, ExportValue, TargetAgent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the export flows want an account to hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desired {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: Attrs,
    /// Reference flows: target attribute -> the identities whose accounts
    /// it names, in value order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub refs: BTreeMap<String, Vec<MvId>>,
    /// Create-only values: written once, when the account is created.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub once: Attrs,
}

impl Desired {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Desired, String> {
        serde_json::from_str(text).map_err(|e| format!("stored desired state: {e}"))
    }
}

pub fn attrs_to_json(a: &Attrs) -> String {
    serde_json::to_string(a).unwrap_or_default()
}

pub fn attrs_from_json(text: &str) -> Result<Attrs, String> {
    serde_json::from_str(text).map_err(|e| format!("stored attributes: {e}"))
}

/// Where an account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// To be created: not in the target yet.
    Create,
    Present,
    Disabled,
    /// To be deleted.
    Delete,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Create => "create",
            State::Present => "present",
            State::Disabled => "disabled",
            State::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "create" => State::Create,
            "present" => State::Present,
            "disabled" => State::Disabled,
            "delete" => State::Delete,
            _ => return None,
        })
    }
}

/// An account as [`decide`] sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub state: State,
    /// The target knows it (created, or found and joined).
    pub exists: bool,
    pub desired: Desired,
}

/// What an account must become.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Keep,
    /// Store the account with this state and these wanted values; the
    /// difference from the target is exported next time. `kind` names the
    /// change for the run's change list.
    Put {
        state: State,
        desired: Desired,
        kind: &'static str,
    },
    /// Forget the account without touching the target.
    Forget {
        kind: &'static str,
    },
}

/// Whether the identity belongs in the target, and if so what its account
/// must hold. Flow errors are returned beside the values (the attribute is
/// left out); a name that cannot be computed is an error of its own.
pub fn evaluate(
    t: &TargetAgent,
    mv: &Record,
    own: MvId,
    ctx: &Context,
) -> (Option<Result<Desired, String>>, Vec<String>) {
    if let Some(scope) = &t.scope {
        match scope.eval(mv, ctx) {
            Ok(v) if truthy(&v) => {}
            Ok(_) => return (None, Vec::new()),
            Err(e) => {
                return (
                    Some(Err(format!("provision scope: {}", e.message))),
                    Vec::new(),
                );
            }
        }
    }
    let name = match t.name_expr.eval(mv, ctx) {
        Ok(v) => match v.to_strings().into_iter().next() {
            Some(n) => n,
            None => {
                return (
                    Some(Err(format!(
                        "provision name {:?} has no value for this identity",
                        t.name_expr.source()
                    ))),
                    Vec::new(),
                );
            }
        },
        Err(e) => {
            return (
                Some(Err(format!("provision name: {}", e.message))),
                Vec::new(),
            );
        }
    };
    let mut d = Desired {
        name,
        ..Desired::default()
    };
    let mut errors = Vec::new();
    for f in &t.flows {
        match &f.value {
            ExportValue::Expr(e) => match e.eval(mv, ctx) {
                Ok(v) => {
                    // A set in every target: the same number merged from two
                    // HR systems is one value.
                    let mut vals = v.to_strings();
                    let mut seen = std::collections::HashSet::new();
                    vals.retain(|x| seen.insert(x.clone()));
                    if !vals.is_empty() {
                        let into = if f.create_only {
                            &mut d.once
                        } else {
                            &mut d.attrs
                        };
                        into.insert(f.attr.clone(), vals);
                    }
                }
                Err(e) => errors.push(format!("export flow {:?}: {}", f.attr, e.message)),
            },
            // Written out at export time, like a reference to itself.
            ExportValue::Account { .. } => {
                d.refs.insert(f.attr.clone(), vec![own]);
            }
            ExportValue::Ref { attr, .. } => {
                let mut ids: Vec<MvId> = mv.values(*attr).filter_map(|v| v.parse().ok()).collect();
                let mut seen = std::collections::HashSet::new();
                ids.retain(|x| seen.insert(*x));
                if !ids.is_empty() {
                    d.refs.insert(f.attr.clone(), ids);
                }
            }
        }
    }
    (Some(Ok(d)), errors)
}

/// What an identity's account in target `t` must become. `mv` is `None`
/// when the identity was deleted.
pub fn decide(
    t: &TargetAgent,
    mv: Option<&Record>,
    own: MvId,
    account: Option<&Account>,
    ctx: &Context,
) -> (Decision, Vec<String>) {
    let (wanted, errors) = match mv {
        Some(r) => evaluate(t, r, own, ctx),
        None => (None, Vec::new()),
    };
    let decision = match (wanted, account) {
        (Some(Err(e)), _) => return (Decision::Keep, [vec![e], errors].concat()),
        (Some(Ok(desired)), None) => Decision::Put {
            state: State::Create,
            desired,
            kind: "account-provisioned",
        },
        (Some(Ok(desired)), Some(a)) => {
            let (state, kind) = match (a.state, a.exists) {
                (State::Disabled, _) => (State::Present, "account-enabled"),
                (State::Delete, true) => (State::Present, "account-kept"),
                (State::Delete, false) | (State::Create, _) => (State::Create, "account-updated"),
                (State::Present, _) => (State::Present, "account-updated"),
            };
            if state == a.state && desired == a.desired {
                Decision::Keep
            } else {
                Decision::Put {
                    state,
                    desired,
                    kind,
                }
            }
        }
        (None, None) => Decision::Keep,
        (None, Some(a)) => deprovision(t, mv, a, ctx),
    };
    (decision, errors)
}

fn deprovision(t: &TargetAgent, mv: Option<&Record>, a: &Account, ctx: &Context) -> Decision {
    if mv.is_some() && t.deprovision.skip_out_of_scope {
        return Decision::Keep;
    }
    if !a.exists {
        return Decision::Forget {
            kind: "account-unprovisioned",
        };
    }
    match &t.deprovision.action {
        DeprovisionAction::Delete if a.state == State::Delete => Decision::Keep,
        DeprovisionAction::Delete => Decision::Put {
            state: State::Delete,
            desired: a.desired.clone(),
            kind: "account-deprovisioned",
        },
        DeprovisionAction::Disconnect => Decision::Forget {
            kind: "account-disconnected",
        },
        DeprovisionAction::Disable { set, name } => {
            // A deleted identity has no values left: the expressions see an
            // empty object, so constants apply and the rest keep what the
            // account holds.
            let empty = Record::default();
            let input = mv.unwrap_or(&empty);
            let mut d = a.desired.clone();
            for (attr, e) in set {
                if let Ok(v) = e.eval(input, ctx) {
                    let vals = v.to_strings();
                    if vals.is_empty() {
                        d.attrs.remove(attr);
                    } else {
                        d.attrs.insert(attr.clone(), vals);
                    }
                }
            }
            if let Some(n) = name
                && let Ok(v) = n.eval(input, ctx)
                && let Some(n) = v.to_strings().into_iter().next()
            {
                d.name = n;
            }
            if a.state == State::Disabled && d == a.desired {
                Decision::Keep
            } else {
                Decision::Put {
                    state: State::Disabled,
                    desired: d,
                    kind: "account-disabled",
                }
            }
        }
    }
}

/// Two names of one object: LDAP DNs compare without case and without the
/// spaces people put after commas; SCIM user names compare without case.
pub fn same_name(a: &str, b: &str) -> bool {
    fn norm(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            out.extend(c.to_lowercase());
            if c == ',' || c == '=' {
                while chars.peek() == Some(&' ') {
                    chars.next();
                }
            }
        }
        out.trim().replace(" ,", ",").replace(" =", "=")
    }
    a == b || norm(a) == norm(b)
}

/// The changes that take an account from `have` to `want`, over the
/// attributes the flows manage. Multi-valued attributes change by values
/// added and removed (a group's members); others are replaced whole.
pub fn diff(want: &Attrs, have: &Attrs, managed: &[(&str, bool)]) -> Vec<Change> {
    let mut out = Vec::new();
    let none = Vec::new();
    for &(attr, multi) in managed {
        let w = want.get(attr).unwrap_or(&none);
        let h = have.get(attr).unwrap_or(&none);
        if multi {
            let adds: Vec<String> = w.iter().filter(|v| !h.contains(v)).cloned().collect();
            let removes: Vec<String> = h.iter().filter(|v| !w.contains(v)).cloned().collect();
            if !adds.is_empty() {
                out.push(Change::Add(attr.to_string(), adds));
            }
            if !removes.is_empty() {
                out.push(Change::Remove(attr.to_string(), removes));
            }
        } else if w != h {
            out.push(Change::Replace(attr.to_string(), w.clone()));
        }
    }
    out
}

/// The attributes a target's flows keep in step (create-only ones are
/// written once and left alone), and whether each is multi-valued.
pub fn managed(t: &TargetAgent) -> Vec<(&str, bool)> {
    t.flows
        .iter()
        .filter(|f| !f.create_only)
        .map(|f| (f.attr.as_str(), f.multi))
        .collect()
}

/// How an account in another target is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written<'a> {
    /// As that target's references are: ids for SCIM, names elsewhere.
    AsReference,
    Id,
    Name,
    /// An attribute's values, as that target's confirming import found them.
    Attribute(&'a str),
}

/// What an identity's account in a target writes for a flow: none while
/// there is no account (or nothing read back from it yet).
pub type Lookup<'a> = dyn Fn(&str, MvId, Written) -> Option<Vec<String>> + 'a;

/// `Desired::attrs` with the references written out through `lookup`
/// (target, identity -> the value the target wants); the second value says
/// whether any reference could not be written yet (its account does not
/// exist), so the account must be exported again later.
pub fn resolve(t: &TargetAgent, d: &Desired, lookup: &Lookup) -> (Attrs, bool) {
    let mut attrs = d.attrs.clone();
    let mut unresolved = false;
    for f in &t.flows {
        let (target, how) = match &f.value {
            ExportValue::Ref { target, .. } => (target, Written::AsReference),
            ExportValue::Account { target, read } => (
                target,
                match read {
                    AccountRead::Id => Written::Id,
                    AccountRead::Name => Written::Name,
                    AccountRead::Attribute(a) => Written::Attribute(a),
                },
            ),
            ExportValue::Expr(_) => continue,
        };
        let Some(ids) = d.refs.get(&f.attr) else {
            continue;
        };
        let mut vals = Vec::with_capacity(ids.len());
        for &id in ids {
            match lookup(target, id, how) {
                Some(v) => vals.extend(v),
                None => unresolved = true,
            }
        }
        if !vals.is_empty() {
            attrs.insert(f.attr.clone(), vals);
        }
    }
    (attrs, unresolved)
}

/// An account's export, from its state, what the target was last told
/// (`exported`, `current` name, `id`) and what is wanted (`want`, the
/// resolved attributes). `None`: nothing to do.
pub fn operation(
    t: &TargetAgent,
    state: State,
    id: Option<&str>,
    current: Option<&str>,
    d: &Desired,
    want: &Attrs,
    exported: &Attrs,
) -> Option<ExportOp> {
    match (state, id) {
        (State::Create, _) | (_, None) => {
            if state == State::Delete {
                return None;
            }
            let mut attrs = want.clone();
            for (k, v) in &d.once {
                attrs.entry(k.clone()).or_insert_with(|| v.clone());
            }
            Some(ExportOp::Create {
                name: d.name.clone(),
                attrs,
            })
        }
        (State::Delete, Some(id)) => Some(ExportOp::Delete {
            id: id.to_string(),
            name: current.unwrap_or(&d.name).to_string(),
        }),
        (State::Present | State::Disabled, Some(id)) => {
            let name = current.unwrap_or(&d.name).to_string();
            let rename = (!same_name(&name, &d.name)).then(|| d.name.clone());
            let changes = diff(want, exported, &managed(t));
            if rename.is_none() && changes.is_empty() {
                return None;
            }
            Some(ExportOp::Update {
                id: id.to_string(),
                name,
                rename,
                changes,
            })
        }
    }
}

/// `exported` after `op` applied: what the target now holds, as far as the
/// flows manage it.
pub fn after(exported: &Attrs, op: &ExportOp) -> Attrs {
    match op {
        ExportOp::Create { attrs, .. } => attrs.clone(),
        ExportOp::Delete { .. } => Attrs::new(),
        ExportOp::Update { changes, .. } => {
            let mut out = exported.clone();
            crate::connector::target::apply_changes(&mut out, changes);
            out
        }
    }
}

/// The order to export accounts in: an account after the accounts it
/// refers to in the same target (a manager before the people who report to
/// them), otherwise by identity. A cycle keeps identity order; the
/// references it leaves unwritten are written by a later pass.
pub fn export_order(items: &[(MvId, Vec<MvId>)]) -> Vec<usize> {
    use petgraph::graph::DiGraph;
    let pos: std::collections::HashMap<MvId, usize> = items
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    let mut g = DiGraph::<usize, ()>::with_capacity(items.len(), items.len());
    let nodes: Vec<_> = (0..items.len()).map(|i| g.add_node(i)).collect();
    for (i, (_, refs)) in items.iter().enumerate() {
        for r in refs {
            if let Some(&j) = pos.get(r)
                && j != i
            {
                g.add_edge(nodes[j], nodes[i], ());
            }
        }
    }
    match petgraph::algo::toposort(&g, None) {
        Ok(order) => {
            // toposort's order among independent nodes is not identity
            // order; a stable sort by depth keeps the result deterministic.
            let mut depth = vec![0usize; items.len()];
            for n in &order {
                let i = g[*n];
                for m in g.neighbors(*n) {
                    let j = g[m];
                    depth[j] = depth[j].max(depth[i] + 1);
                }
            }
            let mut idx: Vec<usize> = (0..items.len()).collect();
            idx.sort_by_key(|&i| (depth[i], items[i].0));
            idx
        }
        Err(_) => (0..items.len()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::connector::target::attrs_of as attrs;

    #[test]
    fn diff_replaces_single_values_and_adds_and_removes_multi_values() {
        let want = attrs(&[("cn", &["Ann Lee"]), ("member", &["a", "c"]), ("mail", &[])]);
        let have = attrs(&[
            ("cn", &["Ann Li"]),
            ("member", &["a", "b"]),
            ("mail", &["x@y"]),
        ]);
        let d = diff(
            &want,
            &have,
            &[("cn", false), ("member", true), ("mail", false)],
        );
        assert_eq!(
            d,
            vec![
                Change::Replace("cn".into(), vec!["Ann Lee".into()]),
                Change::Add("member".into(), vec!["c".into()]),
                Change::Remove("member".into(), vec!["b".into()]),
                Change::Replace("mail".into(), vec![]),
            ]
        );
        assert!(diff(&want, &want, &[("cn", false), ("member", true)]).is_empty());
    }

    #[test]
    fn an_attribute_the_flows_do_not_manage_is_left_alone() {
        let want = attrs(&[("cn", &["A"])]);
        let have = attrs(&[("cn", &["A"]), ("description", &["by hand"])]);
        assert!(diff(&want, &have, &[("cn", false)]).is_empty());
    }

    #[test]
    fn after_applies_changes() {
        let have = attrs(&[("cn", &["A"]), ("member", &["a", "b"]), ("mail", &["m"])]);
        let op = ExportOp::Update {
            id: "1".into(),
            name: "n".into(),
            rename: None,
            changes: vec![
                Change::Replace("cn".into(), vec!["B".into()]),
                Change::Add("member".into(), vec!["c".into(), "a".into()]),
                Change::Remove("member".into(), vec!["b".into()]),
                Change::Replace("mail".into(), vec![]),
            ],
        };
        assert_eq!(
            after(&have, &op),
            attrs(&[("cn", &["B"]), ("member", &["a", "c"])])
        );
    }

    #[test]
    fn names_compare_as_directories_do() {
        assert!(same_name(
            "uid=ann, ou=People,dc=example,dc=com",
            "UID=ann,ou=people,dc=example,dc=com"
        ));
        assert!(same_name("Ann.Lee", "ann.lee"));
        assert!(!same_name("uid=ann,ou=a,dc=x", "uid=ann,ou=b,dc=x"));
    }

    #[test]
    fn managers_are_exported_before_their_reports_and_cycles_keep_id_order() {
        // 3 reports to 5, 5 reports to 9; 1 stands alone.
        let items = vec![(1, vec![]), (3, vec![5]), (5, vec![9]), (9, vec![])];
        let order: Vec<MvId> = export_order(&items).iter().map(|&i| items[i].0).collect();
        assert_eq!(order, vec![1, 9, 5, 3]);
        let cyc = vec![(2, vec![4]), (4, vec![2])];
        assert_eq!(export_order(&cyc), vec![0, 1]);
    }

    #[test]
    fn states_round_trip() {
        for s in [
            State::Create,
            State::Present,
            State::Disabled,
            State::Delete,
        ] {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        assert_eq!(State::parse("gone"), None);
    }
}
