//! idsync: an identity synchronization engine.
//!
//! Management agents import connected systems into connector spaces; the sync
//! engine joins and projects them into one metaverse identity per person with
//! attribute precedence and lineage. See `ARCHITECTURE.md` for the map.

pub mod app;
pub mod audit;
pub mod cli;
pub mod connector;
pub mod engine;
pub mod explain;
pub mod export;
pub mod expr;
pub mod fuzzy;
pub mod r#gen;
pub mod groups;
pub mod history;
pub mod import;
pub mod model;
pub mod reconcile;
pub mod report;
pub mod rules;
pub mod ruletest;
pub mod schedule;
pub mod shutdown;
pub mod store;
