//! The in-memory shapes every layer shares: attribute schemas, compact records,
//! and the ids of connector-space and metaverse objects.
//!
//! A full sync holds millions of objects at once, so a [`Record`] keeps all its
//! values in one string buffer with a small slot table instead of a map of
//! owned strings: about a quarter of the memory, and one allocation per object.

mod record;

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
        self.names.get(attr as usize).map(String::as_str).unwrap_or("?")
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
