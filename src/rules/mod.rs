//! Rule files: agents, joins, projection, flows, precedence, run profiles
//! and their schedules, loaded in two stages. `raw` mirrors the TOML; `compile` turns it
//! into the types below, which can only hold valid rules. The engine only
//! ever sees the compiled form.

mod compile;
pub mod error;
pub mod raw;

pub use compile::load;
pub use error::{RuleError, RuleErrors};

use crate::connector::Source;
use crate::expr::Expr;
use crate::expr::scope::Filter;
use crate::model::Schema;
use crate::model::text::Norm;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A whole, valid rule set.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub dir: PathBuf,
    /// Hex digest of the bytes of every rule file that shapes the metaverse
    /// (not targets, run profiles, schedules or rule tests), recorded with
    /// each run: a delta sync under a different one runs as a full sync.
    pub hash: String,
    pub metaverse: Metaverse,
    /// In sync order.
    pub agents: Vec<Agent>,
    /// Systems accounts are provisioned in, by file path order.
    pub targets: Vec<TargetAgent>,
    pub profiles: BTreeMap<String, Profile>,
    /// In the order written (files by path).
    pub schedules: Vec<Schedule>,
    pub tests: Vec<RuleTest>,
    pub audit: AuditSettings,
    /// Every rule file (named relative to `dir`) and the digest of its
    /// name and bytes: what the audit log compares to say which changed.
    pub files: BTreeMap<String, String>,
}

/// `[audit]`: how long the audit log keeps records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditSettings {
    /// Records older than this are removed by `idsync audit prune`; None:
    /// kept forever.
    pub retention_days: Option<u32>,
}

impl AuditSettings {
    /// A century: beyond it a retention is a typing mistake, not a policy.
    pub const MAX_RETENTION_DAYS: u32 = 36_500;
}

impl RuleSet {
    pub fn agent(&self, name: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.name == name)
    }

    pub fn agent_names(&self) -> Vec<&str> {
        self.agents.iter().map(|a| a.name.as_str()).collect()
    }

    pub fn target(&self, name: &str) -> Option<&TargetAgent> {
        self.targets.iter().find(|t| t.name == name)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Metaverse {
    pub types: Vec<MvType>,
    pub guard: DeletionGuard,
    pub groups: Vec<GroupRule>,
}

/// Groups computed from identities: one group object (of `group_type`) per
/// distinct `key` value over the objects of `members` that `when` accepts.
/// Group types are written only by these rules; syncs leave them alone.
#[derive(Debug, Clone)]
pub struct GroupRule {
    pub name: String,
    pub members: usize,
    pub group_type: usize,
    pub key: Expr,
    pub when: Option<Expr>,
    /// Group attribute -> expression over the group's first member (by id).
    pub set: Vec<(u32, Expr)>,
    /// The group type's `name` and `member` attributes.
    pub name_attr: u32,
    pub member_attr: u32,
}

/// How much one step may delete or disconnect before it stops and asks for
/// `--allow-deletes`: more than `max_deletes` objects, or more than
/// `max_delete_percent` of what is there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeletionGuard {
    pub max_deletes: u64,
    pub max_delete_percent: f64,
}

impl Default for DeletionGuard {
    /// 500 as Entra Connect; half of a space covers the small estate whose
    /// source arrives empty or cut short.
    fn default() -> DeletionGuard {
        DeletionGuard {
            max_deletes: 500,
            max_delete_percent: 50.0,
        }
    }
}

impl DeletionGuard {
    /// Whether deleting `n` of `total` objects passes the guard, given what
    /// the admin allowed on the command line.
    pub fn allows(&self, n: u64, total: u64, allowed: Option<u64>) -> bool {
        if n == 0 || allowed.is_some_and(|a| n <= a) {
            return true;
        }
        let percent = if total == 0 {
            0.0
        } else {
            n as f64 * 100.0 / total as f64
        };
        n <= self.max_deletes && percent <= self.max_delete_percent
    }
}

impl Metaverse {
    pub fn get(&self, name: &str) -> Option<&MvType> {
        self.types.iter().find(|t| t.name == name)
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.types.iter().position(|t| t.name == name)
    }

    /// Whether objects of type `t` are groups computed by rules, not synced
    /// from agents.
    pub fn computed(&self, t: usize) -> bool {
        self.groups.iter().any(|g| g.group_type == t)
    }

    /// The schema of a synced type, by name; `None` for computed groups, so
    /// syncs neither load nor touch them.
    pub fn synced_schema(&self, name: &str) -> Option<&Schema> {
        let i = self.index(name)?;
        (!self.computed(i)).then(|| &self.types[i].schema)
    }
}

#[derive(Debug, Clone)]
pub struct MvType {
    pub name: String,
    pub schema: Schema,
    /// Parallel to `schema`.
    pub attrs: Vec<MvAttr>,
    pub deletion: Deletion,
    /// Days an identity is kept, without connectors, after its deletion rule
    /// fires; a rehire joins it again.
    pub retain_days: Option<u32>,
    /// Values set on a retained identity (attribute, value).
    pub retained: Vec<(u32, String)>,
    /// Date attributes whose arrival re-evaluates the identity.
    pub wake_on: Vec<u32>,
    /// True for an identity that has left (the reconciliation report's
    /// leavers still enabled).
    pub leaver: Option<Expr>,
    /// Single-valued attributes of which one identity holds at most one
    /// value across all its sources: a fuzzy join that would add a second
    /// goes to review.
    pub authoritative_keys: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Date,
    Number,
    Boolean,
    /// Holds the id of another metaverse object.
    Reference,
}

impl AttrType {
    pub const NAMES: [&'static str; 5] = ["string", "date", "number", "boolean", "reference"];

    pub fn parse(s: &str) -> Option<AttrType> {
        Some(match s {
            "string" => AttrType::String,
            "date" => AttrType::Date,
            "number" => AttrType::Number,
            "boolean" => AttrType::Boolean,
            "reference" => AttrType::Reference,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct MvAttr {
    pub name: String,
    pub kind: AttrType,
    pub multi: bool,
    pub precedence: Precedence,
    pub null: NullPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precedence {
    /// Agent indexes, highest first.
    Ranked(Vec<usize>),
    /// The most recent change wins, whichever agent made it.
    Equal,
}

/// What a null from a higher-precedence agent does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullPolicy {
    /// The next agent with a value wins.
    Skip,
    /// The null wins: the attribute is cleared.
    Clear,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    /// Delete the metaverse object when its last connector goes.
    LastConnector,
    /// Delete it when the connector from any of these agents goes.
    AnyOf(Vec<usize>),
    /// Never delete it automatically.
    Never,
}

#[derive(Debug, Clone)]
pub struct Agent {
    pub name: String,
    pub index: usize,
    pub file: PathBuf,
    pub source: Source,
    /// Index into `Metaverse::types`.
    pub object_type: usize,
    pub anchor: String,
    /// The connector-space schema.
    pub schema: Schema,
    pub joins: Vec<JoinRule>,
    /// Tried for what no exact rule found.
    pub fuzzy: Option<FuzzyJoin>,
    pub projection: Projection,
    pub inbound: Filter,
    pub flows: Vec<ImportFlow>,
}

impl Agent {
    /// The name of join rule `i`: the exact rules in order, then the fuzzy
    /// rule at `joins.len()`.
    pub fn join_rule_name(&self, i: usize) -> &str {
        match self.joins.get(i) {
            Some(j) => &j.name,
            None => self.fuzzy.as_ref().map_or("", |f| f.name.as_str()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct JoinRule {
    pub name: String,
    pub parts: Vec<JoinPart>,
}

/// `[fuzzy_join]`: a probabilistic join. Field `i` of `spec` compares
/// `cs[i]` over the connector-space object with metaverse attribute
/// `mv[i]`; the field is named after that attribute.
#[derive(Debug, Clone)]
pub struct FuzzyJoin {
    pub name: String,
    pub spec: crate::fuzzy::MatchSpec,
    pub cs: Vec<Expr>,
    pub mv: Vec<u32>,
    /// None until `idsync train-join` (or a person) writes the weights:
    /// `check` and every sync refuse the rule until then.
    pub params: Option<crate::fuzzy::Params>,
}

#[derive(Debug, Clone)]
pub struct JoinPart {
    pub cs: Expr,
    /// Metaverse attribute index in the agent's object type.
    pub mv: u32,
    pub normalize: Vec<Norm>,
}

#[derive(Debug, Clone)]
pub struct Projection {
    pub enabled: bool,
    pub when: Option<Expr>,
}

#[derive(Debug, Clone)]
pub struct ImportFlow {
    /// Metaverse attribute index.
    pub target: u32,
    pub expr: Expr,
    /// For reference attributes: the metaverse attribute the value is looked up in.
    pub reference: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub description: Option<String>,
    pub steps: Vec<ProfileStep>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileStep {
    pub action: StepAction,
    pub continue_on_error: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepAction {
    /// `import X`: read the whole source; what it no longer has is deleted.
    Import { agent: String },
    /// `delta-import X`: only what changed since the last import (a file is
    /// compared with the connector space; a SQL source by its watermark).
    DeltaImport { agent: String },
    /// `sync`: re-evaluate every object (needed after a rule change).
    Sync,
    /// `delta-sync`: only pending imports and the identities they reach.
    DeltaSync,
    /// `export X`: apply a target's pending exports.
    Export { agent: String },
}

impl std::fmt::Display for StepAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepAction::Import { agent } => write!(f, "import {agent}"),
            StepAction::DeltaImport { agent } => write!(f, "delta-import {agent}"),
            StepAction::Sync => f.write_str("sync"),
            StepAction::DeltaSync => f.write_str("delta-sync"),
            StepAction::Export { agent } => write!(f, "export {agent}"),
        }
    }
}

/// A `[[schedule]]` block: when `idsync schedule` runs a profile.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Names a profile of the rule set.
    pub profile: String,
    pub when: crate::schedule::When,
    pub description: Option<String>,
    /// `file:line`, to tell schedules apart in logs.
    pub place: String,
}

/// A `[[test]]` block: flows of `agent` over `input` must give `expect`.
#[derive(Debug, Clone)]
pub struct RuleTest {
    pub name: String,
    pub agent: usize,
    pub file: PathBuf,
    pub line: usize,
    pub input: Vec<(String, Vec<String>)>,
    pub expect: Vec<(String, Vec<String>)>,
}

/// A target agent: a system idsync writes accounts to, the metaverse
/// objects that must have one there, and what each account holds.
#[derive(Debug, Clone)]
pub struct TargetAgent {
    pub name: String,
    pub file: PathBuf,
    /// Digest of the target's rule file: when it changes, every identity is
    /// looked at again for this target.
    pub hash: String,
    pub connection: TargetConnection,
    /// Index into `Metaverse::types`.
    pub object_type: usize,
    /// Which objects must have an account; `None`: all of the type.
    pub scope: Option<Expr>,
    /// The account's name (DN, userName, key).
    pub name_expr: Expr,
    /// The target attribute whose value finds an existing account.
    pub match_attr: Option<String>,
    pub flows: Vec<ExportFlow>,
    pub deprovision: Deprovision,
    pub quarantine: Quarantine,
    pub reconcile: Reconcile,
    /// Attributes other targets' account flows read from this target's
    /// accounts: its confirming import keeps their values.
    pub read_back: Vec<String>,
}

impl TargetAgent {
    /// The column holding an account's name, for targets that have one
    /// (SQL, files): `match` may name it.
    pub fn key_column(&self) -> Option<&str> {
        match &self.connection {
            TargetConnection::Sql(c) => Some(&c.key),
            TargetConnection::Csv(c) => Some(&c.key),
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match &self.connection {
            TargetConnection::Ldap(_) => "ldap",
            TargetConnection::Scim(_) => "scim",
            TargetConnection::Sql(_) => "sql",
            TargetConnection::Csv(_) => "csv",
        }
    }
}

#[derive(Debug, Clone)]
pub enum TargetConnection {
    Ldap(crate::connector::target::LdapConfig),
    Scim(crate::connector::target::ScimConfig),
    Sql(crate::connector::target::SqlTargetConfig),
    Csv(crate::connector::target::CsvTargetConfig),
}

#[derive(Debug, Clone)]
pub struct ExportFlow {
    /// The target's attribute name.
    pub attr: String,
    pub value: ExportValue,
    /// Written when the account is created, never updated (an initial password).
    pub create_only: bool,
    /// Several values, changed by adding and removing values rather than
    /// replacing them all (group members).
    pub multi: bool,
    /// What a confirming import does when the target holds another value.
    pub drift: DriftPolicy,
}

/// What a confirming import does about a value changed in the target by
/// someone other than idsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftPolicy {
    /// Recorded and rolled back by a corrective export (values added by
    /// hand to a multi-valued attribute are removed).
    Authoritative,
    /// Recorded; the target keeps the value until the flow's value changes.
    Report,
    /// Not compared: the target manages the value too.
    Tolerate,
}

impl DriftPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftPolicy::Authoritative => "authoritative",
            DriftPolicy::Report => "report",
            DriftPolicy::Tolerate => "tolerate",
        }
    }

    pub fn parse(s: &str) -> Option<DriftPolicy> {
        Some(match s {
            "authoritative" => DriftPolicy::Authoritative,
            "report" => DriftPolicy::Report,
            "tolerate" => DriftPolicy::Tolerate,
            _ => return None,
        })
    }
}

/// A target's reconciliation policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconcile {
    /// The flows' policy unless a flow has its own.
    pub drift: DriftPolicy,
    pub orphans: OrphanAction,
    /// Re-create an account deleted in the target by hand at the next export
    /// (`true`), or only report it.
    pub recreate_missing: bool,
    /// An account here gives access: a leaver's enabled account is a
    /// finding. A write-back file gives none.
    pub grants_access: bool,
}

impl Default for Reconcile {
    fn default() -> Reconcile {
        Reconcile {
            drift: DriftPolicy::Authoritative,
            orphans: OrphanAction::Report,
            recreate_missing: true,
            grants_access: true,
        }
    }
}

/// What happens to an account in a target that no identity owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrphanAction {
    Report,
    /// Set the `[deprovision]` disable values (constants) at the next export.
    Disable,
    /// Delete it at the next export, within the deletion guard.
    Delete,
}

impl OrphanAction {
    pub fn as_str(self) -> &'static str {
        match self {
            OrphanAction::Report => "report",
            OrphanAction::Disable => "disable",
            OrphanAction::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone)]
pub enum ExportValue {
    Expr(Expr),
    /// The accounts, in target `target`, of the objects a reference
    /// attribute points to: written as their names or ids, as the target wants.
    Ref {
        attr: u32,
        target: String,
    },
    /// The identity's own account in another target, as that target knows
    /// it.
    Account {
        target: String,
        read: AccountRead,
    },
}

/// What an account flow reads of the account in the other target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountRead {
    /// An id the target made, such as a SCIM id or an entryUUID.
    Id,
    /// Its name: a DN, a userName.
    Name,
    /// An attribute's values as the other target's last confirming import
    /// found them: values the target assigns itself (a mail address).
    Attribute(String),
}

#[derive(Debug, Clone)]
pub struct Deprovision {
    pub action: DeprovisionAction,
    pub skip_out_of_scope: bool,
}

#[derive(Debug, Clone)]
pub enum DeprovisionAction {
    Delete,
    /// Set these values, and move the account when `name` says where.
    Disable {
        set: Vec<(String, Expr)>,
        name: Option<Expr>,
    },
    /// Forget the account; the target keeps it as it is.
    Disconnect,
}

/// When a target stops being exported to: more than `error_percent` of a
/// run's attempts failed, and at least `min_errors` of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quarantine {
    pub error_percent: f64,
    pub min_errors: u64,
}

impl Default for Quarantine {
    fn default() -> Quarantine {
        Quarantine {
            error_percent: 50.0,
            min_errors: 10,
        }
    }
}

impl Quarantine {
    pub fn trips(&self, errors: u64, attempts: u64) -> bool {
        attempts > 0
            && errors >= self.min_errors
            && errors as f64 * 100.0 / attempts as f64 > self.error_percent
    }
}
