//! The in-memory shapes every layer shares: attribute schemas, compact records,
//! and the ids of connector-space and metaverse objects.
//!
//! A full sync holds millions of objects at once, so a [`Record`] keeps all its
//! values in one string buffer with a small slot table instead of a map of
//! owned strings: about a quarter of the memory, and one allocation per object.

pub mod json;
mod record;
pub mod text;

pub use record::{Record, RecordBuilder};

use rustc_hash::FxHashMap;

/// Row id of a connector-space object in the store.
pub type CsId = i64;
/// Row id of a metaverse object in the store.
pub type MvId = i64;
/// Row id of a run in the store.
pub type RunId = i64;

/// An ordered list of attribute names; a [`Record`] refers to attributes by
/// their position here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    names: Vec<String>,
    index: FxHashMap<String, u32>,
}

impl Schema {
    pub fn new<I, S>(names: I) -> Schema
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut schema = Schema::default();
        for name in names {
            schema.add(name.into());
        }
        schema
    }

    /// Adds a name if it is not there yet and returns its index either way.
    pub fn add(&mut self, name: String) -> u32 {
        if let Some(&i) = self.index.get(&name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.index.insert(name.clone(), i);
        self.names.push(name);
        i
    }

    pub fn get(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    pub fn name(&self, attr: u32) -> &str {
        self.names
            .get(attr as usize)
            .map(String::as_str)
            .unwrap_or("?")
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// What a pending import asks the sync to do with a connector-space object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Delta {
    Add,
    Update,
    Delete,
}

impl Delta {
    pub fn as_str(self) -> &'static str {
        match self {
            Delta::Add => "add",
            Delta::Update => "update",
            Delta::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Delta> {
        match s {
            "add" => Some(Delta::Add),
            "update" => Some(Delta::Update),
            "delete" => Some(Delta::Delete),
            _ => None,
        }
    }
}

/// FNV-1a, 64-bit: a fast, stable fingerprint (rule-set versions, row
/// hashes). Not for anything adversarial.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub fn finish(&self) -> u64 {
        self.0
    }

    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Where a metaverse value came from: the agent, the connector-space anchor,
/// and the run that set it. Stored as a compact `[agent, anchor, run]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Origin(pub String, pub String, pub RunId);

impl Origin {
    pub fn agent(&self) -> &str {
        &self.0
    }
    pub fn anchor(&self) -> &str {
        &self.1
    }
    pub fn run(&self) -> RunId {
        self.2
    }
}

/// Lineage of every attribute of one metaverse object. A multi-valued
/// attribute merged from several agents lists each contributor.
pub type Lineage = std::collections::BTreeMap<String, Vec<Origin>>;
