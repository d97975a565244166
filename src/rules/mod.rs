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
    /// Hex digest of every rule file's bytes, recorded with each run.
    pub hash: String,
    pub metaverse: Metaverse,
    /// In sync order.
    pub agents: Vec<Agent>,
    pub profiles: BTreeMap<String, Profile>,
    /// In the order written (files by path).
    pub schedules: Vec<Schedule>,
    pub tests: Vec<RuleTest>,
}

impl RuleSet {
    pub fn agent(&self, name: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.name == name)
    }

    pub fn agent_names(&self) -> Vec<&str> {
        self.agents.iter().map(|a| a.name.as_str()).collect()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Metaverse {
    pub types: Vec<MvType>,
    pub guard: DeletionGuard,
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
    pub projection: Projection,
    pub inbound: Filter,
    pub flows: Vec<ImportFlow>,
}

#[derive(Debug, Clone)]
pub struct JoinRule {
    pub name: String,
    pub parts: Vec<JoinPart>,
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
}

impl std::fmt::Display for StepAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepAction::Import { agent } => write!(f, "import {agent}"),
            StepAction::DeltaImport { agent } => write!(f, "delta-import {agent}"),
            StepAction::Sync => f.write_str("sync"),
            StepAction::DeltaSync => f.write_str("delta-sync"),
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
