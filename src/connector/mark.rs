//! What a delta import compares with: the digest of a whole file, the
//! fingerprint of one raw row, and the texts a connector leaves in the store
//! for its next import.
//!
//! Digests and fingerprints are XXH3 (64-bit): fast enough that hashing a
//! file costs less than reading it, and stable across versions of the crate.
//! They tell "certainly changed" from "unchanged", never anything
//! adversarial: a source that wants to hide a change from its own
//! synchronisation has easier ways.

use std::io::Read;
use std::path::Path;
use xxhash_rust::xxh3::{Xxh3, xxh3_64, xxh3_64_with_seed};

/// Bumped whenever the conversion of the same source bytes under the same
/// rules gives other values than before, so that rows fingerprinted by an
/// older version are converted again.
pub const CONVERSION_VERSION: u32 = 1;

/// Where a row fingerprinted but not converted is, and its fingerprint
/// (keyed by [`SourceDigest::rules`]), to convert it later if need be
/// ([`super::Connector::fetch`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowPlace {
    /// Where the row starts in the source (a byte offset for files).
    pub at: u64,
    pub line: u64,
    pub print: u64,
}

/// A file as a whole: the digest of its bytes, and a key for the rules it
/// is read under (the agent's column rules and the file's header). Row
/// fingerprints are keyed by `rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceDigest {
    pub file: u64,
    pub rules: u64,
}

impl SourceDigest {
    /// The stored form: `{"file":"<16 hex>","rules":"<16 hex>"}`.
    pub fn to_text(&self) -> String {
        serde_json::json!({
            "file": format!("{:016x}", self.file),
            "rules": format!("{:016x}", self.rules),
        })
        .to_string()
    }

    /// Reads [`SourceDigest::to_text`]; `None` for anything else.
    pub fn parse(text: &str) -> Option<SourceDigest> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        let hex = |k: &str| u64::from_str_radix(v.get(k)?.as_str()?, 16).ok();
        Some(SourceDigest {
            file: hex("file")?,
            rules: hex("rules")?,
        })
    }
}

/// Where a source stood when it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceMark {
    /// A file's digest, of the bytes actually read.
    Digest(SourceDigest),
    /// How far a SQL source has been read, in the connector's own words
    /// (handed back to [`super::Connector::changes_since`]).
    Watermark(String),
}

/// A stable 64-bit key for a configuration given as its text.
pub fn rules_key(text: &str) -> u64 {
    xxh3_64(format!("{CONVERSION_VERSION}\u{0}{text}").as_bytes())
}

/// Both keys in one: a row fingerprinted under one pair is comparable only
/// with rows fingerprinted under the same pair.
pub fn combine(a: u64, b: u64) -> u64 {
    xxh3_64_with_seed(&b.to_le_bytes(), a)
}

/// The fingerprint of one parsed row: its fields' bytes and where each
/// field ends, so moving a delimiter is a change.
pub fn row_print(record: &csv::ByteRecord, key: u64, scratch: &mut Vec<u8>) -> u64 {
    scratch.clear();
    for i in 0..record.len() {
        let end = record.range(i).map_or(0, |r| r.end) as u64;
        scratch.extend_from_slice(&end.to_le_bytes());
    }
    xxh3_64_with_seed(scratch, xxh3_64_with_seed(record.as_slice(), key))
}

/// Hashes every byte read through it.
pub struct Digesting<R> {
    inner: R,
    state: Box<Xxh3>,
}

impl<R> Digesting<R> {
    pub fn new(inner: R) -> Digesting<R> {
        Digesting {
            inner,
            state: Box::new(Xxh3::new()),
        }
    }

    /// Counts bytes that were read before this reader saw them.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.state.update(bytes);
    }

    pub fn digest(&self) -> u64 {
        self.state.digest()
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

impl<R: Read> Read for Digesting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(chunk) = buf.get(..n) {
            self.state.update(chunk);
        }
        Ok(n)
    }
}

/// The digest of a whole file, read in large blocks.
pub fn file_digest(path: &Path) -> std::io::Result<u64> {
    let mut file = std::fs::File::open(path)?;
    let mut state = Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(state.digest());
        }
        state.update(buf.get(..n).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_text_round_trips_and_rejects_other_text() {
        let d = SourceDigest {
            file: 0x0123_4567_89ab_cdef,
            rules: 7,
        };
        let text = d.to_text();
        assert_eq!(
            text,
            r#"{"file":"0123456789abcdef","rules":"0000000000000007"}"#
        );
        assert_eq!(SourceDigest::parse(&text), Some(d));
        for bad in ["", "{}", r#"{"file":"zz","rules":"1"}"#, "[1,2]"] {
            assert_eq!(SourceDigest::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn row_prints_see_field_bounds_and_the_key() {
        let mut s = Vec::new();
        let ab_c = csv::ByteRecord::from(vec!["ab", "c"]);
        let a_bc = csv::ByteRecord::from(vec!["a", "bc"]);
        assert_ne!(row_print(&ab_c, 1, &mut s), row_print(&a_bc, 1, &mut s));
        assert_ne!(row_print(&ab_c, 1, &mut s), row_print(&ab_c, 2, &mut s));
        assert_eq!(
            row_print(&ab_c, 1, &mut s),
            row_print(&ab_c.clone(), 1, &mut s)
        );
    }

    #[test]
    fn streamed_and_whole_file_digests_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let mut r = Digesting::new(std::fs::File::open(&path).unwrap());
        let mut head = [0u8; 3];
        r.get_mut().read_exact(&mut head).unwrap();
        r.feed(&head);
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        assert_eq!(r.digest(), file_digest(&path).unwrap());
        assert_eq!(r.digest(), xxh3_64(&bytes));
    }
}
