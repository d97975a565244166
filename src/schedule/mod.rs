//! Schedules: when each `[[schedule]]` of the rules is due (`when.rs`).

mod when;

pub use when::{Next, When, parse_interval, pick};
