//! The export half of a connector: what a target system is asked to do, and
//! how it answers.
//!
//! The engine decides *what* a target must hold (provisioning, export flows,
//! deprovisioning) and hands each target one [`ExportOp`] per object. A
//! target applies it and says, for that object alone, whether it worked. An
//! error says whether trying again later can help ([`ExportError::Transient`]:
//! the server is down, timed out, throttled) or not ([`ExportError::Rejected`]:
//! the server refused the data), so the export step knows whether to back off
//! or to record the error and move on.
//!
//! Attribute names are the target's own: LDAP attribute types, SCIM attribute
//! paths (`userName`, `name.givenName`, `emails[type eq "work"].value`, an
//! extension URN followed by `:attr`), SQL column names, file column names.
//! Values are strings; a reference to another object of the target is already
//! written the way the target wants it ([`RefBy`]).

use std::collections::BTreeMap;

/// Values per target attribute; an attribute with no values is absent.
pub type Attrs = BTreeMap<String, Vec<String>>;

/// One attribute's change inside an [`ExportOp::Update`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The attribute holds exactly these values afterwards; empty clears it.
    Replace(String, Vec<String>),
    /// These values are added to a multi-valued attribute (group members).
    Add(String, Vec<String>),
    /// These values are removed from a multi-valued attribute.
    Remove(String, Vec<String>),
}

impl Change {
    pub fn attr(&self) -> &str {
        match self {
            Change::Replace(a, _) | Change::Add(a, _) | Change::Remove(a, _) => a,
        }
    }
}

/// `attrs` after `changes`: what a target holds once an update applied.
pub fn apply_changes(attrs: &mut Attrs, changes: &[Change]) {
    for c in changes {
        match c {
            Change::Replace(a, v) if v.is_empty() => {
                attrs.remove(a);
            }
            Change::Replace(a, v) => {
                attrs.insert(a.clone(), v.clone());
            }
            Change::Add(a, v) => {
                let e = attrs.entry(a.clone()).or_default();
                for x in v {
                    if !e.contains(x) {
                        e.push(x.clone());
                    }
                }
            }
            Change::Remove(a, v) => {
                if let Some(e) = attrs.get_mut(a) {
                    e.retain(|x| !v.contains(x));
                    if e.is_empty() {
                        attrs.remove(a);
                    }
                }
            }
        }
    }
}

/// What one object in a target must undergo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportOp {
    /// Create the object. `name` is its distinguished name (LDAP), its
    /// `userName` or group `displayName` (SCIM), its key (SQL, file).
    Create { name: String, attrs: Attrs },
    /// Change an existing object, known by the id the target gave it (the
    /// `entryUUID`, the SCIM `id`, the key); `rename` moves it to a new name
    /// (LDAP modrdn, possibly to another parent) before `changes` apply.
    Update {
        id: String,
        name: String,
        rename: Option<String>,
        changes: Vec<Change>,
    },
    /// Delete the object.
    Delete { id: String, name: String },
}

impl ExportOp {
    pub fn verb(&self) -> &'static str {
        match self {
            ExportOp::Create { .. } => "create",
            ExportOp::Update {
                rename: Some(_), ..
            } => "rename",
            ExportOp::Update { .. } => "update",
            ExportOp::Delete { .. } => "delete",
        }
    }
}

/// An object as the target holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteObject {
    /// The target's own stable id (`entryUUID`, SCIM `id`, the key).
    pub id: String,
    /// Its current name (DN, `userName`, key).
    pub name: String,
    /// Only the attributes the connector was configured to read.
    pub attrs: Attrs,
}

/// What an applied operation left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The object's id in the target (new for a create).
    pub id: String,
    /// Its name afterwards.
    pub name: String,
}

/// How one object refers to another in this target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefBy {
    /// By name: an LDAP DN, a file's key.
    Name,
    /// By id: a SCIM resource id.
    Id,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// Trying again later may work: the target is unreachable, timed out,
    /// throttled (429) or failing (5xx) after the retries within the run.
    #[error("{0}")]
    Transient(String),
    /// The target refused this object; trying again unchanged will not help
    /// (a schema violation, a 400, a uniqueness conflict it could not resolve).
    #[error("{0}")]
    Rejected(String),
    /// The object the operation names is not in the target (deleted by hand).
    #[error("no such object: {0}")]
    NotFound(String),
    /// A create found the name already taken.
    #[error("already exists: {0}")]
    Exists(String),
}

impl ExportError {
    pub fn is_transient(&self) -> bool {
        matches!(self, ExportError::Transient(_))
    }
}

/// A connected system idsync writes to.
///
/// Contract: each call concerns one object and either does all of it or
/// none of it, as far as the target allows; `apply` of a `Create` whose name
/// exists answers [`ExportError::Exists`], an `Update` or `Delete` of an id
/// that is gone answers [`ExportError::NotFound`]. Secrets (passwords,
/// tokens) are read from the environment variable the rules name, when
/// connecting, and never appear in an error message.
pub trait Target: Send {
    /// `ldap`, `scim`, `sql`, `csv`.
    fn kind(&self) -> &'static str;

    fn reference_by(&self) -> RefBy;

    /// Opens the connection and authenticates. An error here means no object
    /// can be exported this run; it is always about the target, not an object.
    fn connect(&mut self) -> Result<(), ExportError>;

    /// An existing object whose `attr` holds `value`, to join to instead of
    /// creating a duplicate (`uid=jdoe` under the base, `userName eq "jdoe"`).
    fn find(&mut self, attr: &str, value: &str) -> Result<Option<RemoteObject>, ExportError>;

    fn apply(&mut self, op: &ExportOp) -> Result<Applied, ExportError>;

    /// Pipelining, an optional ability: how many operations [`Target::send`]
    /// may have sent and not yet answered. 1, the default, means none: each
    /// is answered before the next goes.
    fn window(&self) -> usize {
        1
    }

    /// Sends `op` without waiting for its answer, so that the round trips of
    /// several operations overlap. Returns the answer when it is known at
    /// once (the default applies `op` there and then); otherwise
    /// [`Target::receive`] gives it later. Operations sent together must
    /// concern different objects and must not depend on each other's
    /// answers: the caller waits for an answer before it sends an operation
    /// that uses it. Each answer is what `apply` would have answered.
    fn send(&mut self, op: &ExportOp) -> Option<Result<Applied, ExportError>> {
        Some(self.apply(op))
    }

    /// The answer to the oldest operation whose `send` did not answer it;
    /// None when there is none.
    fn receive(&mut self) -> Option<Result<Applied, ExportError>> {
        None
    }

    /// Stops waiting for the operations sent and not yet answered (the
    /// target stopped answering). Whether they were applied is unknown: their
    /// accounts stay pending, and a create that meets its own earlier entry
    /// next time joins it.
    fn abandon(&mut self) {}

    /// Every object the target holds within this agent's reach (the search
    /// base and filter, the resource type, the table, the file), for a
    /// confirming import.
    fn read_all(&mut self, each: &mut dyn FnMut(RemoteObject)) -> Result<(), ExportError>;

    /// Called once after the last `apply` of a run: a file target writes its
    /// file here. Nothing by default.
    fn finish(&mut self) -> Result<(), ExportError> {
        Ok(())
    }
}

/// Reads a secret from the environment variable `var`; the error names the
/// variable, never a value.
pub fn secret(var: &str) -> Result<String, ExportError> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(v),
        Ok(_) => Err(ExportError::Transient(format!(
            "the environment variable {var} is empty"
        ))),
        Err(_) => Err(ExportError::Transient(format!(
            "the environment variable {var} is not set"
        ))),
    }
}

/// `[target]` of an LDAP agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapConfig {
    /// `ldap://host:port`.
    pub url: String,
    pub bind_dn: String,
    /// The environment variable holding the bind password.
    pub password_env: String,
    /// Where the agent's objects live; searches and the confirming import
    /// look below it.
    pub base: String,
    /// Which entries under `base` are this agent's: `(objectClass=inetOrgPerson)`.
    pub filter: String,
    /// Given to every created entry.
    pub object_classes: Vec<String>,
    /// The operational attribute that is the entry's stable id across renames.
    pub id_attr: String,
    /// The attributes a confirming import reads (the export flows' targets).
    pub attributes: Vec<String>,
    pub timeout_secs: u64,
}

/// Which resource type a SCIM agent manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimResource {
    Users,
    Groups,
}

/// `[target]` of a SCIM 2.0 agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimConfig {
    /// The service's base, e.g. `https://app.example.com/scim/v2`.
    pub url: String,
    /// The environment variable holding the bearer token.
    pub token_env: String,
    pub resource: ScimResource,
    /// Extension schema URNs the agent's attributes use, besides the core one.
    pub extensions: Vec<String>,
    /// The attributes a confirming import reads (the export flows' targets).
    pub attributes: Vec<String>,
    pub timeout_secs: u64,
    /// Attempts per request on 429, 5xx and timeouts, the first included.
    pub attempts: u32,
    /// The first wait between attempts; it doubles each time, and a
    /// `Retry-After` header overrides it.
    pub backoff_ms: u64,
}

/// `[target]` of a SQL table agent: one row per account, keyed by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlTargetConfig {
    pub path: std::path::PathBuf,
    pub display: String,
    pub table: String,
    /// The column holding the account's name; the id is the same value.
    pub key: String,
    /// The columns written (the export flows' targets).
    pub columns: Vec<String>,
    /// Columns only read, by the confirming import: values the application
    /// assigns that other targets' account flows read back.
    pub read_back: Vec<String>,
}

/// `[target]` of a delimited file: rewritten whole after each export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvTargetConfig {
    pub path: std::path::PathBuf,
    pub display: String,
    pub delimiter: u8,
    /// The column holding the account's name; the id is the same value.
    pub key: String,
    /// The other columns, in the order written.
    pub columns: Vec<String>,
}

/// Attributes from `(name, values)` pairs, for tests.
#[cfg(test)]
pub(crate) fn attrs_of(pairs: &[(&str, &[&str])]) -> Attrs {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect()
}
