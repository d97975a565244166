//! The sync engine: pure functions from connector spaces, the metaverse and
//! the rules to a [`SyncPlan`]: which objects join, which project, which
//! disconnect, and every metaverse value with its lineage. No I/O, no clock:
//! the run id and the time are parameters. Parallel stages compute decisions
//! with rayon; a fixed order (agent sync order, then anchor) applies them, so
//! the same inputs give the same plan on any number of threads.

pub mod drift;
mod flow;
pub mod fuzzy_join;
mod index;
mod join;
pub mod outbound;
mod precedence;
mod refs;
mod sync;

pub use flow::{FlowOut, eval_flows};
pub use index::{Key, KeyKinds, KeyLookup, due_days, retention_end};
pub use precedence::LinEntry;
pub use sync::Sync;
pub(crate) use sync::rss_mib;

use crate::expr::Value;
use crate::model::{CsId, MvId, Record};

/// How a condition's value reads as true or false (scopes, `when`).
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Str(s) => matches!(s.to_ascii_lowercase().as_str(), "true" | "yes" | "1"),
        Value::Num(n) => *n != 0.0,
        Value::List(items) => items.iter().any(truthy),
        Value::Null | Value::Date(_) => false,
    }
}

/// A metaverse object to insert or update.
#[derive(Debug, Clone, PartialEq)]
pub struct MvWrite {
    pub id: MvId,
    /// Index into `rules.metaverse.types`.
    pub object_type: usize,
    pub attrs: Record,
    /// Sorted by attribute; names resolve through the rules ([`lineage_json`]).
    pub lineage: Box<[LinEntry]>,
    /// The anchor of each agent's connector, for lineage.
    pub anchors: Box<[(u16, Box<str>)]>,
    /// Attributes whose values changed (none listed for a new object).
    pub changes: Box<[u32]>,
    /// The values `changes` had before this sync, for the history; only
    /// those attributes, so an unchanged identity carries nothing.
    pub previous: Record,
    /// Set while the identity is kept without connectors.
    pub retained_since: Option<Box<str>>,
    /// `retained_since` differs from what the store has.
    pub retained_changed: bool,
}

/// The stored text of a write's lineage (`model::json`).
pub fn lineage_json(rules: &crate::rules::RuleSet, w: &MvWrite) -> String {
    let t = &rules.metaverse.types[w.object_type];
    crate::model::json::lineage_to_json(w.lineage.iter().map(|l| {
        let anchor = w
            .anchors
            .iter()
            .find(|(a, _)| *a == l.agent)
            .map(|(_, k)| &**k)
            .unwrap_or_default();
        (
            t.schema.name(u32::from(l.attr)),
            rules.agents[l.agent as usize].name.as_str(),
            anchor,
            l.run as crate::model::RunId,
        )
    }))
}

/// A person's decision about a connector-space object, honoured before the
/// join rules by every sync (the review queue, `idsync join`,
/// `idsync disconnect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manual {
    /// An explicit connector: the object belongs to this identity.
    Join(MvId),
    /// A new identity, whatever the join rules would find.
    Project,
    /// An explicit disconnector: joined to nothing, never projected.
    Disconnect,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkWrite {
    pub cs: CsId,
    /// Index into `rules.agents`.
    pub agent: u16,
    pub mv: MvId,
    /// `projected` or `joined`.
    pub kind: &'static str,
    /// Index into the agent's join rules; one past the last exact rule is
    /// the fuzzy rule.
    pub rule: Option<u16>,
    /// The key values that matched, for explanations.
    pub detail: Option<Box<str>>,
}

impl LinkWrite {
    pub fn rule_name<'r>(&self, rules: &'r crate::rules::RuleSet) -> Option<&'r str> {
        let r = self.rule? as usize;
        let name = rules.agents.get(self.agent as usize)?.join_rule_name(r);
        (!name.is_empty()).then_some(name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ambiguous {
    pub cs: CsId,
    pub agent: String,
    pub anchor: String,
    pub rule: String,
    pub candidates: Vec<MvId>,
    /// A fuzzy rule's score of each candidate, field by field; empty for
    /// an exact rule.
    pub scores: Vec<fuzzy_join::Scored>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncError {
    /// `flow-error`, `dangling-reference`, `ambiguous-reference`,
    /// `reference-cycle`, `join-conflict`, `ambiguous-join`.
    pub kind: &'static str,
    pub agent: Option<String>,
    pub anchor: Option<String>,
    pub message: String,
}

/// Counts of what a sync decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncCounters {
    pub processed: u64,
    pub joins: u64,
    pub projections: u64,
    pub ambiguous: u64,
    /// Connectors removed: the object was deleted or left scope.
    pub disconnects: u64,
    /// Connector-space objects outside their agent's inbound scope.
    pub out_of_scope: u64,
    pub unjoined: u64,
    pub mv_adds: u64,
    pub mv_updates: u64,
    pub mv_deletes: u64,
    pub mv_unchanged: u64,
    /// Identities kept without connectors (a leaver a rehire can claim).
    pub mv_retained: u64,
    /// Retained identities joined again.
    pub mv_revived: u64,
    pub flow_errors: u64,
    pub reference_errors: u64,
}

/// A sync's decisions, ready to be written in one transaction. Lists are in
/// a fixed order, so two plans from the same inputs compare equal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncPlan {
    /// Objects whose [`Manual`] decision this sync carried out.
    pub manual_applied: Vec<CsId>,
    pub inserts: Vec<MvWrite>,
    pub updates: Vec<MvWrite>,
    pub deletes: Vec<MvId>,
    pub links: Vec<LinkWrite>,
    pub unlinks: Vec<CsId>,
    /// Connector-space objects whose staged delete is now done.
    pub removed_cs: Vec<CsId>,
    pub ambiguous: Vec<Ambiguous>,
    pub errors: Vec<SyncError>,
    pub counters: SyncCounters,
    /// Connectors removed, as (agent, connector-space object, anchor, identity).
    pub disconnected: Vec<(u16, CsId, Box<str>, MvId)>,
    /// Per agent (index into `rules.agents`): connectors removed.
    pub disconnects_by_agent: Vec<u64>,
    /// Lookup keys to store and forget, as (key, identity), sorted.
    pub key_adds: Vec<(Key, MvId)>,
    pub key_removes: Vec<(Key, MvId)>,
    /// Each written identity's due days (replacing those it had).
    pub due: Vec<(MvId, Vec<Box<str>>)>,
    /// Only for a partial sync: keys held by identities it was not given
    /// and must load to decide (join candidates, referrers of an identity
    /// that went or changed its key, holders of a value a complex unique
    /// expression chose). The caller loads them and plans again until no
    /// probe finds anyone new.
    pub probes: Vec<Key>,
    /// A full sync's term frequencies per agent (index) with a fuzzy rule
    /// that weighs by them, for the delta syncs until the next full one.
    pub frequencies: Vec<(usize, crate::fuzzy::Frequencies)>,
}
