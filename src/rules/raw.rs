//! Rule files exactly as written: serde structs mirroring the TOML, with
//! spans kept on every value a message may need to point at. Nothing here is
//! validated beyond TOML syntax and field names; `compile` does the rest.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// One rule file. A file holds an agent (with its columns, joins, projection,
/// scope and flows), the metaverse definition, run profiles and schedules,
/// tests, or the audit log's settings; the loader tells which from the
/// tables present.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    pub agent: Option<Spanned<RawAgent>>,
    #[serde(default)]
    pub columns: BTreeMap<Spanned<String>, Spanned<RawColumn>>,
    #[serde(default)]
    pub join: Vec<Spanned<RawJoin>>,
    /// The probabilistic join tried after the exact ones.
    pub fuzzy_join: Option<Spanned<RawFuzzyJoin>>,
    pub projection: Option<Spanned<RawProjection>>,
    pub scope: Option<RawScope>,
    pub flows: Option<RawFlows>,
    /// A target: a system idsync provisions accounts in.
    pub target: Option<Spanned<RawTarget>>,
    pub provision: Option<Spanned<RawProvision>>,
    pub deprovision: Option<Spanned<RawDeprovision>>,
    /// `[reconcile]`: what a confirming import does about drift, orphans
    /// and missing accounts.
    pub reconcile: Option<Spanned<RawReconcile>>,
    pub metaverse: Option<Spanned<RawMetaverse>>,
    #[serde(default)]
    pub profile: Vec<Spanned<RawProfile>>,
    #[serde(default)]
    pub schedule: Vec<Spanned<RawSchedule>>,
    #[serde(default)]
    pub test: Vec<Spanned<RawTest>>,
    /// How long the audit log keeps its records; in any one file.
    pub audit: Option<Spanned<RawAudit>>,
}

impl RawFile {
    /// Whether the file says anything about what the metaverse holds. A
    /// target's file does not (it decides what is exported), nor does one
    /// of only run profiles, schedules, rule tests and the audit log's
    /// retention: changing them must not make the next delta sync a full
    /// one.
    pub fn shapes_metaverse(&self) -> bool {
        // Every table named: a new one must be counted on one side or the
        // other, or the rules hash would miss it.
        let RawFile {
            agent,
            columns,
            join,
            fuzzy_join,
            projection,
            scope,
            flows,
            target,
            provision,
            deprovision,
            reconcile,
            metaverse,
            profile: _,
            schedule: _,
            test: _,
            audit: _,
        } = self;
        target.is_none()
            && (agent.is_some()
                || !columns.is_empty()
                || !join.is_empty()
                || fuzzy_join.is_some()
                || projection.is_some()
                || scope.is_some()
                || flows.is_some()
                || provision.is_some()
                || deprovision.is_some()
                || reconcile.is_some()
                || metaverse.is_some())
    }
}

/// `[audit]`: the audit log's retention. Absent: records are kept forever.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    /// `idsync audit prune` removes records older than this many days.
    pub retention_days: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    pub name: Spanned<String>,
    pub kind: Spanned<String>,
    pub object_type: Spanned<String>,
    pub anchor: Spanned<String>,
    /// csv: the file; sql: the database file. Relative to the rule file.
    pub path: Spanned<String>,
    pub delimiter: Option<Spanned<String>>,
    pub quote: Option<Spanned<String>>,
    pub encoding: Option<Spanned<String>>,
    pub table: Option<Spanned<String>>,
    pub query: Option<Spanned<String>>,
    /// The connector-space schema, when the source should not be read to learn it.
    pub attributes: Option<Spanned<Vec<Spanned<String>>>>,
    pub description: Option<String>,
    /// How a delta import finds what changed (SQL sources).
    pub delta: Option<Spanned<RawDelta>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDelta {
    /// A source column that grows whenever a row changes.
    pub watermark: Spanned<String>,
    /// A source column that is true for a deleted row.
    pub tombstone: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawColumn {
    pub rename: Option<Spanned<String>>,
    #[serde(default)]
    pub ignore: bool,
    pub date: Option<Spanned<StringOrList>>,
    pub multi: Option<Spanned<String>>,
    #[serde(default)]
    pub null_values: Vec<String>,
    pub trim: Option<bool>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            StringOrList::One(s) => vec![s],
            StringOrList::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJoin {
    pub name: Spanned<String>,
    #[serde(rename = "match")]
    pub matches: Vec<Spanned<RawMatch>>,
}

/// `[fuzzy_join]`: fields compared with levels, blocking keys, thresholds
/// and the trained weights, in the matcher's own serde types.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFuzzyJoin {
    pub name: Spanned<String>,
    pub fields: Vec<Spanned<RawFuzzyField>>,
    #[serde(default)]
    pub blocking: Vec<Spanned<crate::fuzzy::BlockKey>>,
    #[serde(default)]
    pub thresholds: crate::fuzzy::Thresholds,
    /// Written by `idsync train-join`, or by hand.
    pub weights: Option<Spanned<crate::fuzzy::Params>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFuzzyField {
    /// An expression over the connector-space object.
    pub cs: Spanned<String>,
    /// The metaverse attribute compared; also the field's name.
    pub mv: Spanned<String>,
    pub kind: crate::fuzzy::FieldKind,
    pub levels: Vec<crate::fuzzy::Level>,
    #[serde(default)]
    pub term_frequency: bool,
    /// The first level (by name, e.g. "date-swapped", or "else") that never
    /// joins on its own.
    pub review_from: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    /// An expression over the connector-space object.
    pub cs: Spanned<String>,
    /// A metaverse attribute.
    pub mv: Spanned<String>,
    #[serde(default)]
    pub normalize: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProjection {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// An expression that must be true for an unjoined object to project.
    pub when: Option<Spanned<String>>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScope {
    /// Entra-style scoping filter groups: clauses ANDed, groups ORed.
    #[serde(default)]
    pub inbound: Vec<Vec<crate::expr::scope::RawClause>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlows {
    /// Metaverse attribute -> expression, or `{ expr = "...", ref = "mvAttr" }`.
    #[serde(default)]
    pub import: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    /// Target attribute -> expression over the metaverse object, or
    /// `{ expr = "...", create_only = true }`, or `{ ref = "manager" }`.
    #[serde(default)]
    pub export: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
}

/// `[target]`: where and how accounts are written. Which keys apply depends
/// on `kind`; the compiler says which ones do not.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub name: Spanned<String>,
    pub kind: Spanned<String>,
    pub object_type: Spanned<String>,
    pub description: Option<String>,
    /// ldap: `ldap://host:port`; scim: the service's base URL.
    pub url: Option<Spanned<String>>,
    pub bind_dn: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub base: Option<Spanned<String>>,
    pub filter: Option<Spanned<String>>,
    pub object_classes: Option<Spanned<Vec<String>>>,
    pub id_attribute: Option<Spanned<String>>,
    pub token_env: Option<Spanned<String>>,
    pub resource: Option<Spanned<String>>,
    pub extensions: Option<Spanned<Vec<String>>>,
    pub attempts: Option<Spanned<i64>>,
    pub backoff_ms: Option<Spanned<i64>>,
    pub timeout_secs: Option<Spanned<i64>>,
    /// sql: the database file; csv: the file written. Relative to the rule file.
    pub path: Option<Spanned<String>>,
    pub table: Option<Spanned<String>>,
    /// sql, csv: the column holding the object's name.
    pub key: Option<Spanned<String>>,
    pub delimiter: Option<Spanned<String>>,
    /// Stop exporting to this target when a run's errors pass this share.
    pub quarantine: Option<Spanned<RawQuarantine>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuarantine {
    pub error_percent: Option<Spanned<f64>>,
    pub min_errors: Option<Spanned<i64>>,
}

/// `[provision]`: which metaverse objects must have an account, and its name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvision {
    /// An expression over the metaverse object; no scope: every object of the type.
    pub scope: Option<Spanned<String>>,
    /// The account's name: DN, userName, key.
    pub name: Spanned<String>,
    /// A target attribute (one of the export flows) whose value finds an
    /// existing account to join before creating one.
    #[serde(rename = "match")]
    pub match_attr: Option<Spanned<String>>,
}

/// `[deprovision]`: what happens to an account whose identity left scope or
/// was deleted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeprovision {
    /// `delete`, `disable` or `disconnect`.
    pub action: Spanned<String>,
    /// disable: target attribute -> expression.
    #[serde(default)]
    pub set: BTreeMap<Spanned<String>, Spanned<String>>,
    /// disable: the account's name while disabled (move to another OU).
    pub name: Option<Spanned<String>>,
    /// Accounts whose identity merely left scope are left as they are; the
    /// action applies only when the identity is deleted.
    #[serde(default)]
    pub skip_out_of_scope_deletions: bool,
}

/// `[reconcile]` in a target file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReconcile {
    /// The flows' drift policy unless a flow says its own:
    /// `authoritative`, `report` or `tolerate`.
    pub drift: Option<Spanned<String>>,
    /// Accounts no identity owns: `report`, `disable` or `delete`.
    pub orphans: Option<Spanned<String>>,
    /// Accounts deleted in the target by hand: `recreate` or `report`.
    pub missing: Option<Spanned<String>>,
    /// Whether an account here gives access (default true): only then is a
    /// leaver's account there a finding.
    pub grants_access: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetaverse {
    /// The order agents are synced in; defaults to the order of their names.
    #[serde(default)]
    pub sync_order: Vec<Spanned<String>>,
    #[serde(default)]
    pub types: BTreeMap<Spanned<String>, Spanned<RawMvType>>,
    /// Limits on what one step may delete before it needs `--allow-deletes`.
    pub deletion_guard: Option<Spanned<RawGuard>>,
    /// Groups computed from the identities' attributes.
    #[serde(default)]
    pub groups: Vec<Spanned<RawGroupRule>>,
}

/// `[[metaverse.groups]]`: one group per distinct value of `key` over the
/// member type's objects (those `when` accepts).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroupRule {
    pub name: Spanned<String>,
    /// The metaverse type of the members.
    pub members: Spanned<String>,
    /// The metaverse type the groups are stored as.
    #[serde(rename = "type")]
    pub group_type: Spanned<String>,
    /// An expression over a member: the group's name; null: in no group.
    pub key: Spanned<String>,
    pub when: Option<Spanned<String>>,
    /// Group attribute -> expression over the group's first member.
    #[serde(default)]
    pub set: BTreeMap<Spanned<String>, Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGuard {
    pub max_deletes: Option<Spanned<i64>>,
    pub max_delete_percent: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMvType {
    /// Ranked agents for every attribute without its own precedence.
    #[serde(default)]
    pub precedence: Vec<Spanned<String>>,
    /// `last-connector` (default), `any-of` (with `deletion_agents`) or `never`.
    pub deletion: Option<Spanned<String>>,
    #[serde(default)]
    pub deletion_agents: Vec<Spanned<String>>,
    /// Days an identity is kept after its deletion rule fires, so a rehire
    /// gets it back.
    pub retain_days: Option<Spanned<i64>>,
    /// Attribute -> value set on an identity while it is retained.
    #[serde(default)]
    pub retained: BTreeMap<Spanned<String>, Spanned<String>>,
    /// Date attributes on which an identity is looked at again though no
    /// source changed (a hire or end date reached).
    #[serde(default)]
    pub wake_on: Vec<Spanned<String>>,
    /// An expression saying an identity is a leaver: the reconciliation
    /// report lists leavers whose accounts are still enabled.
    pub leaver: Option<Spanned<String>>,
    /// Attributes that each name one person in the system issuing them (a
    /// worker id): two different values mean two people, so no fuzzy join
    /// may bring them onto one identity.
    #[serde(default)]
    pub authoritative_keys: Vec<Spanned<String>>,
    /// Attribute -> type name, or a table `{ type, multi, precedence, null }`.
    #[serde(default)]
    pub attributes: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    pub name: Spanned<String>,
    pub description: Option<String>,
    pub steps: Vec<Spanned<toml::Value>>,
}

/// When `idsync schedule` runs a profile: `every` (an interval) or `cron`
/// (five fields, UTC), exactly one of them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub profile: Spanned<String>,
    pub every: Option<Spanned<String>>,
    pub cron: Option<Spanned<String>>,
    pub description: Option<String>,
}

/// A rule unit test: input attributes for an agent, expected flow outputs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTest {
    pub name: Spanned<String>,
    pub agent: Spanned<String>,
    #[serde(default)]
    pub input: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub expect: BTreeMap<Spanned<String>, toml::Value>,
}
