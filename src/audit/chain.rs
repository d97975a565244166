//! The audit log's hash chain, without I/O: the canonical text a record is
//! hashed as, and a verifier that takes records one at a time in `seq`
//! order, so a log of any length is checked in constant memory.
//!
//! A record's hash is the SHA-256, in lowercase hex, of the UTF-8 text
//!
//! ```text
//! [seq,"at",run,"actor","kind","target","subject",DETAIL,"prev"]
//! ```
//!
//! a JSON array with no spaces: `run`, `target` and `subject` are `null`
//! when absent; strings are escaped as [`json_string`] does; `DETAIL` is the
//! stored detail text verbatim, which is the detail's canonical JSON (keys
//! sorted, no spaces; [`canonical_json`]). Every field is delimited by JSON
//! syntax, so no two different records share a text. `prev` is the hash of
//! the record before, or the anchor's hash after a prune, or [`GENESIS`]
//! for the first record ever.

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// The `prev` of the first record ever written.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A record as stored: what the chain covers, with its links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: i64,
    /// RFC 3339, UTC.
    pub at: String,
    pub run: Option<i64>,
    pub actor: String,
    pub kind: String,
    pub target: Option<String>,
    pub subject: Option<String>,
    /// Canonical JSON text, hashed as stored.
    pub detail: String,
    pub prev: String,
    pub hash: String,
}

impl AuditRecord {
    /// The hash this record's fields give; equal to `hash` unless the
    /// record was altered.
    pub fn computed_hash(&self) -> String {
        record_hash(&Fields {
            seq: self.seq,
            at: &self.at,
            run: self.run,
            actor: &self.actor,
            kind: &self.kind,
            target: self.target.as_deref(),
            subject: self.subject.as_deref(),
            detail: &self.detail,
            prev: &self.prev,
        })
    }
}

/// A record as one JSON object, fields in the order the hash covers them,
/// the detail as JSON (as a string if the stored text is not JSON, which
/// only an edit of the file can cause).
impl Serialize for AuditRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let detail = serde_json::from_str(&self.detail)
            .unwrap_or_else(|_| serde_json::Value::String(self.detail.clone()));
        Exported {
            seq: self.seq,
            at: &self.at,
            run: self.run,
            actor: &self.actor,
            kind: &self.kind,
            target: self.target.as_deref(),
            subject: self.subject.as_deref(),
            detail,
            prev: &self.prev,
            hash: &self.hash,
        }
        .serialize(s)
    }
}

/// Field order of an exported record: the order the hash covers them in.
#[derive(Serialize)]
struct Exported<'a> {
    seq: i64,
    at: &'a str,
    run: Option<i64>,
    actor: &'a str,
    kind: &'a str,
    target: Option<&'a str>,
    subject: Option<&'a str>,
    detail: serde_json::Value,
    prev: &'a str,
    hash: &'a str,
}

/// What a record's hash covers.
pub struct Fields<'a> {
    pub seq: i64,
    pub at: &'a str,
    pub run: Option<i64>,
    pub actor: &'a str,
    pub kind: &'a str,
    pub target: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub detail: &'a str,
    pub prev: &'a str,
}

/// The canonical text of a record (see the module's documentation).
pub fn canonical_text(f: &Fields) -> String {
    let mut s = String::with_capacity(160 + f.detail.len());
    let opt = |s: &mut String, v: Option<&str>| match v {
        Some(v) => json_string(s, v),
        None => s.push_str("null"),
    };
    let _ = write!(s, "[{},", f.seq);
    json_string(&mut s, f.at);
    s.push(',');
    match f.run {
        Some(r) => {
            let _ = write!(s, "{r}");
        }
        None => s.push_str("null"),
    }
    s.push(',');
    json_string(&mut s, f.actor);
    s.push(',');
    json_string(&mut s, f.kind);
    s.push(',');
    opt(&mut s, f.target);
    s.push(',');
    opt(&mut s, f.subject);
    s.push(',');
    s.push_str(f.detail);
    s.push(',');
    json_string(&mut s, f.prev);
    s.push(']');
    s
}

pub fn record_hash(f: &Fields) -> String {
    hex(&Sha256::digest(canonical_text(f).as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Appends `v` as a JSON string. Written here, not by a library, so the
/// hashed text cannot change with a dependency's version: `"` and `\`
/// escaped, \b \f \n \r \t by name, other control characters as `\u00xx`,
/// everything else as is.
pub fn json_string(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON value as text with object keys sorted (by their bytes) at every
/// level and no spaces: the same value always gives the same text, whatever
/// order its keys were inserted in.
pub fn canonical_json(v: &serde_json::Value) -> String {
    let mut s = String::new();
    write_canonical(&mut s, v);
    s
}

fn write_canonical(out: &mut String, v: &serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => json_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, k);
                out.push(':');
                write_canonical(out, item);
            }
            out.push('}');
        }
    }
}

/// Where verification starts after a prune: the last record removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anchor {
    pub seq: i64,
    pub hash: String,
    pub at: String,
}

/// What is wrong with the log, at the first place it goes wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The first record that is not as written: altered, missing, inserted.
    pub seq: i64,
    pub kind: ProblemKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// Its contents do not give its hash.
    Altered,
    /// Its hash is not the `prev` of the record after it: it was rewritten
    /// with a hash to match, or another record was put in its place.
    Relinked,
    /// It is not there: a gap in `seq`, or the records after the anchor
    /// are gone.
    Removed,
    /// It sits where no record can: at or before the anchor.
    Inserted,
    /// Its `prev` is not the start of the log (or the anchor's hash).
    BadStart,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Altered => "altered",
            ProblemKind::Relinked => "relinked",
            ProblemKind::Removed => "removed",
            ProblemKind::Inserted => "inserted",
            ProblemKind::BadStart => "bad-start",
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "record {} ({}): {}",
            self.seq,
            self.kind.as_str(),
            self.message
        )
    }
}

/// An intact log's summary: what an operator notes to check later that the
/// log was not rebuilt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub checked: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// The last record's hash.
    pub head: Option<String>,
    pub anchor: Option<Anchor>,
}

/// Checks records fed in `seq` order; holds only the last record's seq and
/// hash. Stop feeding at the first [`Problem`].
#[derive(Debug)]
pub struct Verifier {
    anchor: Option<Anchor>,
    next_seq: i64,
    prev_hash: String,
    /// The record before the next one, when there is one since the anchor.
    prev_seq: Option<i64>,
    first_seq: Option<i64>,
    checked: u64,
    /// Whether an `audit-pruned` record names the anchor: an anchor none
    /// accounts for means records were removed by hand.
    anchor_recorded: bool,
}

/// The kind of the record a prune appends; its detail names the anchor.
pub const PRUNED: &str = "audit-pruned";

impl Verifier {
    pub fn new(anchor: Option<Anchor>) -> Verifier {
        let (next_seq, prev_hash) = match &anchor {
            Some(a) => (a.seq + 1, a.hash.clone()),
            None => (1, GENESIS.to_string()),
        };
        Verifier {
            anchor,
            next_seq,
            prev_hash,
            prev_seq: None,
            first_seq: None,
            checked: 0,
            anchor_recorded: false,
        }
    }

    /// Records checked so far and found intact.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    pub fn push(&mut self, r: &AuditRecord) -> Result<(), Problem> {
        let problem = |seq, kind, message: String| Problem { seq, kind, message };
        if r.seq < self.next_seq {
            return Err(problem(
                r.seq,
                ProblemKind::Inserted,
                match &self.anchor {
                    Some(a) => format!(
                        "it lies at or before the anchor (seq {}): pruned records cannot come back",
                        a.seq
                    ),
                    None => "its seq is out of order".to_string(),
                },
            ));
        }
        if r.seq > self.next_seq {
            let missing = self.next_seq;
            let span = if r.seq - 1 > missing {
                format!("records {missing} to {} are missing", r.seq - 1)
            } else {
                "it is missing".to_string()
            };
            return Err(problem(
                missing,
                ProblemKind::Removed,
                format!("{span} (the next record is {})", r.seq),
            ));
        }
        if r.computed_hash() != r.hash {
            return Err(problem(
                r.seq,
                ProblemKind::Altered,
                "its contents do not match its hash".to_string(),
            ));
        }
        if r.prev != self.prev_hash {
            return Err(match (self.prev_seq, &self.anchor) {
                (Some(p), _) => problem(
                    p,
                    ProblemKind::Relinked,
                    format!(
                        "its hash is not the prev that record {} holds: it was rewritten with a new hash, or replaced",
                        r.seq
                    ),
                ),
                (None, Some(a)) => problem(
                    r.seq,
                    ProblemKind::BadStart,
                    format!(
                        "its prev is not the anchor's hash (seq {}): the record or the anchor was rewritten",
                        a.seq
                    ),
                ),
                (None, None) => problem(
                    r.seq,
                    ProblemKind::BadStart,
                    "its prev is not the start of the log: records before it were removed or it was rewritten"
                        .to_string(),
                ),
            });
        }
        if r.kind == PRUNED
            && let Some(a) = &self.anchor
            && pruned_through(&r.detail).is_some_and(|(seq, hash)| seq == a.seq && hash == a.hash)
        {
            self.anchor_recorded = true;
        }
        self.first_seq.get_or_insert(r.seq);
        self.prev_seq = Some(r.seq);
        self.prev_hash.clone_from(&r.hash);
        self.next_seq = r.seq + 1;
        self.checked += 1;
        Ok(())
    }

    /// The end of the log: whether a prune accounts for the anchor.
    pub fn finish(self) -> Result<Verified, Problem> {
        if let Some(a) = &self.anchor
            && !self.anchor_recorded
        {
            let message = if self.checked == 0 {
                "every record after the anchor is missing".to_string()
            } else {
                format!(
                    "the log starts after an anchor at seq {} that no {PRUNED} record accounts for: records up to it were removed outside `audit prune`, or the anchor was rewritten",
                    a.seq
                )
            };
            return Err(Problem {
                seq: if self.checked == 0 { a.seq + 1 } else { a.seq },
                kind: ProblemKind::Removed,
                message,
            });
        }
        Ok(Verified {
            checked: self.checked,
            first_seq: self.first_seq,
            last_seq: self.prev_seq,
            head: self.prev_seq.map(|_| self.prev_hash),
            anchor: self.anchor,
        })
    }
}

/// The detail of an `audit-pruned` record: how many records it removed and
/// the last one's seq and hash (the anchor).
pub fn pruned_detail(
    removed: u64,
    through: &Anchor,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut d = serde_json::json!({
        "removed": removed,
        "through_seq": through.seq,
        "through_hash": through.hash,
        "through_at": through.at,
    });
    if let (Some(d), serde_json::Value::Object(extra)) = (d.as_object_mut(), extra) {
        d.extend(extra);
    }
    d
}

fn pruned_through(detail: &str) -> Option<(i64, String)> {
    let v: serde_json::Value = serde_json::from_str(detail).ok()?;
    Some((
        v.get("through_seq")?.as_i64()?,
        v.get("through_hash")?.as_str()?.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A valid chain of `n` records after `anchor`.
    fn chain(anchor: Option<&Anchor>, n: i64) -> Vec<AuditRecord> {
        let (mut seq, mut prev) = match anchor {
            Some(a) => (a.seq, a.hash.clone()),
            None => (0, GENESIS.to_string()),
        };
        let mut out = Vec::new();
        for i in 0..n {
            seq += 1;
            let mut r = AuditRecord {
                seq,
                at: format!("2026-11-01T10:00:{:02}.000Z", i % 60),
                run: (i % 2 == 0).then_some(7),
                actor: "ops@host".into(),
                kind: "step-finished".into(),
                target: Some("hr".into()),
                subject: None,
                detail: canonical_json(&json!({"n": i, "step": "import"})),
                prev: prev.clone(),
                hash: String::new(),
            };
            r.hash = r.computed_hash();
            prev = r.hash.clone();
            out.push(r);
        }
        out
    }

    fn verify(anchor: Option<Anchor>, records: &[AuditRecord]) -> Result<Verified, Problem> {
        let mut v = Verifier::new(anchor);
        for r in records {
            v.push(r)?;
        }
        v.finish()
    }

    #[test]
    fn an_intact_chain_verifies_and_names_its_head() {
        let records = chain(None, 5);
        let v = verify(None, &records).expect("intact");
        assert_eq!(v.checked, 5);
        assert_eq!((v.first_seq, v.last_seq), (Some(1), Some(5)));
        assert_eq!(v.head.as_deref(), Some(records[4].hash.as_str()));
        assert_eq!(records[0].prev, GENESIS);
    }

    #[test]
    fn an_empty_log_without_an_anchor_is_intact() {
        let v = verify(None, &[]).expect("intact");
        assert_eq!((v.checked, v.head), (0, None));
    }

    #[test]
    fn an_altered_field_is_named() {
        for field in 0..7 {
            let mut records = chain(None, 5);
            let r = &mut records[2];
            match field {
                0 => r.at.push('1'),
                1 => r.run = None,
                2 => r.actor = "someone@else".into(),
                3 => r.kind = "run-started".into(),
                4 => r.target = None,
                5 => r.subject = Some(String::new()),
                _ => r.detail = canonical_json(&json!({"n": 99, "step": "import"})),
            }
            let p = verify(None, &records).expect_err("altered");
            assert_eq!((p.seq, p.kind), (3, ProblemKind::Altered), "field {field}");
        }
    }

    #[test]
    fn a_removed_record_is_named() {
        let mut records = chain(None, 5);
        records.remove(2);
        let p = verify(None, &records).expect_err("removed");
        assert_eq!((p.seq, p.kind), (3, ProblemKind::Removed));
        let mut records = chain(None, 6);
        records.drain(1..4);
        let p = verify(None, &records).expect_err("removed");
        assert_eq!((p.seq, p.kind), (2, ProblemKind::Removed));
        assert!(p.message.contains("records 2 to 4"), "{}", p.message);
    }

    #[test]
    fn removing_the_first_records_is_found() {
        let records = chain(None, 4);
        let p = verify(None, &records[2..]).expect_err("removed");
        assert_eq!((p.seq, p.kind), (1, ProblemKind::Removed));
    }

    #[test]
    fn a_record_rewritten_with_its_own_hash_recomputed_is_named() {
        let mut records = chain(None, 5);
        let r = &mut records[1];
        r.detail = canonical_json(&json!({"n": 1000}));
        r.hash = r.computed_hash();
        let p = verify(None, &records).expect_err("relinked");
        assert_eq!((p.seq, p.kind), (2, ProblemKind::Relinked));
    }

    #[test]
    fn renumbering_records_to_close_a_gap_is_found() {
        let mut records = chain(None, 5);
        records.remove(2);
        for r in &mut records[2..] {
            r.seq -= 1;
        }
        let p = verify(None, &records).expect_err("renumbered");
        assert_eq!((p.seq, p.kind), (3, ProblemKind::Altered));
    }

    fn pruned(anchor: &Anchor, seq: i64, prev: &str) -> AuditRecord {
        let mut r = AuditRecord {
            seq,
            at: "2027-01-01T00:00:00.000Z".into(),
            run: None,
            actor: "ops@host".into(),
            kind: PRUNED.into(),
            target: None,
            subject: None,
            detail: canonical_json(&pruned_detail(3, anchor, json!({}))),
            prev: prev.into(),
            hash: String::new(),
        };
        r.hash = r.computed_hash();
        r
    }

    /// A log pruned through record 3 of `full`: the anchor, and the records
    /// left with the prune's own record at the end.
    fn after_prune() -> (Anchor, Vec<AuditRecord>) {
        let full = chain(None, 6);
        let anchor = Anchor {
            seq: 3,
            hash: full[2].hash.clone(),
            at: full[2].at.clone(),
        };
        let mut kept = full[3..].to_vec();
        let head = kept[2].hash.clone();
        kept.push(pruned(&anchor, 7, &head));
        (anchor, kept)
    }

    #[test]
    fn verification_starts_from_the_anchor_after_a_prune() {
        let (anchor, kept) = after_prune();
        let v = verify(Some(anchor), &kept).expect("intact");
        assert_eq!((v.first_seq, v.last_seq, v.checked), (Some(4), Some(7), 4));
    }

    #[test]
    fn removals_after_the_anchor_are_still_found() {
        let (anchor, mut kept) = after_prune();
        kept.remove(1);
        let p = verify(Some(anchor.clone()), &kept).expect_err("removed");
        assert_eq!((p.seq, p.kind), (5, ProblemKind::Removed));
        let (_, kept) = after_prune();
        let p = verify(Some(anchor), &kept[1..]).expect_err("removed");
        assert_eq!((p.seq, p.kind), (4, ProblemKind::Removed));
    }

    #[test]
    fn an_anchor_no_prune_accounts_for_is_found() {
        let full = chain(None, 6);
        let anchor = Anchor {
            seq: 3,
            hash: full[2].hash.clone(),
            at: full[2].at.clone(),
        };
        let p = verify(Some(anchor.clone()), &full[3..]).expect_err("unaccounted");
        assert_eq!((p.seq, p.kind), (3, ProblemKind::Removed));
        let p = verify(Some(anchor), &[]).expect_err("all removed");
        assert_eq!((p.seq, p.kind), (4, ProblemKind::Removed));
    }

    #[test]
    fn a_rewritten_anchor_is_found() {
        let (mut anchor, kept) = after_prune();
        anchor.hash = GENESIS.to_string();
        let p = verify(Some(anchor), &kept).expect_err("bad anchor");
        assert_eq!((p.seq, p.kind), (4, ProblemKind::BadStart));
    }

    #[test]
    fn a_record_put_back_before_the_anchor_is_found() {
        let (anchor, mut kept) = after_prune();
        let old = chain(None, 3).remove(2);
        kept.insert(0, old);
        let p = verify(Some(anchor), &kept).expect_err("inserted");
        assert_eq!((p.seq, p.kind), (3, ProblemKind::Inserted));
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a = json!({"b": 1, "a": {"z": [true, null], "y": "x\ny"}});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"y":"x\ny","z":[true,null]},"b":1}"#
        );
    }

    #[test]
    fn canonical_text_delimits_every_field() {
        let f = |target: Option<&'static str>, subject: Option<&'static str>| Fields {
            seq: 1,
            at: "t",
            run: None,
            actor: "a",
            kind: "k",
            target,
            subject,
            detail: "{}",
            prev: GENESIS,
        };
        // The same characters split differently between fields hash apart.
        assert_ne!(
            record_hash(&f(Some("ab"), Some("c"))),
            record_hash(&f(Some("a"), Some("bc")))
        );
        assert_ne!(
            record_hash(&f(None, None)),
            record_hash(&f(Some("null"), None))
        );
        assert_ne!(record_hash(&f(Some(""), None)), record_hash(&f(None, None)));
        assert_eq!(
            canonical_text(&f(Some("x\"y"), None)),
            format!(r#"[1,"t",null,"a","k","x\"y",null,{{}},"{GENESIS}"]"#)
        );
    }

    #[test]
    fn the_hash_is_sha256_of_the_canonical_text() {
        // sha256("abc"), the FIPS 180-2 example, through the same hex path.
        assert_eq!(
            hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn json_strings_escape_what_json_requires() {
        let mut s = String::new();
        json_string(&mut s, "a\"\\\u{1}\té");
        assert_eq!(s, r#""a\"\\\u0001\té""#);
        let back: String = serde_json::from_str(&s).expect("valid JSON");
        assert_eq!(back, "a\"\\\u{1}\té");
    }
}
