//! A connector space held in memory for one import's comparison: every
//! anchor with what the space holds for it, and a way to find an anchor.
//!
//! Anchors sit back to back in one buffer, not one string each. The space is
//! read in anchor order, and most sources deliver their rows in key order
//! too, so an anchor is looked for first just after the one found before
//! (a cursor: no hashing, memory read in order), then by binary search; a
//! hash table is built only when the source turns out not to follow the
//! order. Anchors new in this import are kept in a small table of their own.

use crate::model::CsId;
use rustc_hash::FxHashMap;
use std::cmp::Ordering;

/// How far the cursor steps over anchors the source skipped (deleted rows)
/// before a binary search is cheaper.
const STEPS: usize = 4;
/// Lookups off the cursor tolerated before the hash table is built; past
/// it, one in this many.
const MISSES: usize = 4096;
const MISS_SHARE: usize = 8;

pub(super) const NO_ENTRY: usize = usize::MAX;

/// One anchor and its state.
pub(super) struct Entry {
    pub id: CsId,
    pub hash: u64,
    pub raw: u64,
    /// The line the anchor was first met on in this import.
    pub line: u64,
    pub flags: u8,
    pub sighting: Sighting,
    start: usize,
    len: u32,
    /// The next entry whose anchor has the same 64-bit hash.
    next: usize,
}

pub(super) const DELETED: u8 = 1;
pub(super) const HAS_RAW: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sighting {
    Unseen,
    /// Reported by fingerprint and waiting for its converted object.
    Claimed,
    Seen,
}

impl Entry {
    pub fn deleted(&self) -> bool {
        self.flags & DELETED != 0
    }

    pub fn raw(&self) -> Option<u64> {
        (self.flags & HAS_RAW != 0).then_some(self.raw)
    }
}

#[derive(Default)]
pub(super) struct Space {
    anchors: Vec<u8>,
    pub entries: Vec<Entry>,
    /// The first entries, as loaded, in anchor order.
    sorted: usize,
    /// Where the next anchor of a source in anchor order should be.
    cursor: usize,
    lookups: usize,
    misses: usize,
    /// Anchor hash -> last entry with it, over every entry; once built.
    all: Option<FxHashMap<u64, usize>>,
    /// The same for the entries after `sorted`, until `all` is built.
    added: FxHashMap<u64, usize>,
}

fn anchor_key(anchor: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(anchor)
}

impl Space {
    /// Room for `n` stored anchors and a share of new ones: growing past
    /// the capacity copies every entry into memory the kernel must first
    /// fault in, and room reserved but never used costs nothing.
    pub fn with_capacity(n: usize) -> Space {
        let room = n + n / 16 + 1024;
        Space {
            anchors: Vec::with_capacity(room * 12),
            entries: Vec::with_capacity(room),
            ..Space::default()
        }
    }

    fn anchor(&self, i: usize) -> &[u8] {
        self.entries
            .get(i)
            .and_then(|e| self.anchors.get(e.start..e.start + e.len as usize))
            .unwrap_or_default()
    }

    /// Appends an entry read from the store, which reads in anchor order;
    /// an anchor out of that order makes the space a hashed one.
    pub fn load(&mut self, anchor: &[u8], id: CsId, hash: u64, raw: Option<u64>, flags: u8) {
        let ordered = self.all.is_none()
            && self.entries.len() == self.sorted
            && (self.sorted == 0 || self.anchor(self.sorted - 1) < anchor);
        if ordered {
            self.append(anchor, id, hash, raw, flags, NO_ENTRY);
            self.sorted += 1;
        } else {
            if self.all.is_none() {
                self.build();
            }
            self.push(anchor, id, hash, raw, flags);
        }
    }

    /// Adds an anchor met in this import.
    pub fn push(
        &mut self,
        anchor: &[u8],
        id: CsId,
        hash: u64,
        raw: Option<u64>,
        flags: u8,
    ) -> usize {
        let i = self.entries.len();
        let table = self.all.as_mut().unwrap_or(&mut self.added);
        let next = table.insert(anchor_key(anchor), i).unwrap_or(NO_ENTRY);
        self.append(anchor, id, hash, raw, flags, next)
    }

    fn append(
        &mut self,
        anchor: &[u8],
        id: CsId,
        hash: u64,
        raw: Option<u64>,
        flags: u8,
        next: usize,
    ) -> usize {
        let i = self.entries.len();
        let start = self.anchors.len();
        self.anchors.extend_from_slice(anchor);
        self.entries.push(Entry {
            id,
            hash,
            raw: raw.unwrap_or(0),
            line: 0,
            flags: flags | if raw.is_some() { HAS_RAW } else { 0 },
            sighting: Sighting::Unseen,
            start,
            len: anchor.len() as u32,
            next,
        });
        i
    }

    pub fn find(&mut self, anchor: &str) -> Option<usize> {
        let a = anchor.as_bytes();
        self.lookups += 1;
        if self.all.is_none() {
            let found = self.sorted_find(a);
            if self.misses > MISSES && self.misses * MISS_SHARE > self.lookups {
                self.build();
            }
            if found.is_some() {
                return found;
            }
        }
        let table = self.all.as_ref().unwrap_or(&self.added);
        let mut i = *table.get(&anchor_key(a))?;
        while i != NO_ENTRY {
            if self.anchor(i) == a {
                return Some(i);
            }
            i = self.entries.get(i).map_or(NO_ENTRY, |e| e.next);
        }
        None
    }

    /// The anchor among the loaded, ordered entries.
    fn sorted_find(&mut self, a: &[u8]) -> Option<usize> {
        let mut i = self.cursor;
        while i < self.sorted && i < self.cursor + STEPS {
            match self.anchor(i).cmp(a) {
                Ordering::Equal => {
                    self.cursor = i + 1;
                    return Some(i);
                }
                Ordering::Less => i += 1,
                Ordering::Greater => break,
            }
        }
        self.misses += 1;
        let (mut lo, mut hi) = (0, self.sorted);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.anchor(mid).cmp(a) {
                Ordering::Equal => {
                    // The source goes on from here, forward or back.
                    self.cursor = mid + 1;
                    return Some(mid);
                }
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
            }
        }
        // An anchor the space lacks says nothing of where the source is: a
        // new row whose anchor sorts after every other (a new, higher id)
        // would otherwise send the cursor to the end, and every row after
        // it would miss.
        None
    }

    /// The hash table over every entry, for sources not in anchor order.
    fn build(&mut self) {
        let mut all = FxHashMap::with_capacity_and_hasher(self.entries.len(), Default::default());
        for i in 0..self.entries.len() {
            let key = anchor_key(self.anchor(i));
            let next = all.insert(key, i).unwrap_or(NO_ENTRY);
            if let Some(e) = self.entries.get_mut(i) {
                e.next = next;
            }
        }
        self.all = Some(all);
        self.added = FxHashMap::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(anchors: &[&str]) -> Space {
        let mut s = Space::default();
        for (i, a) in anchors.iter().enumerate() {
            s.load(a.as_bytes(), i as CsId, 0, None, 0);
        }
        s
    }

    #[test]
    fn finds_in_order_out_of_order_and_new_anchors() {
        let mut s = space(&["a", "b", "c", "d", "e", "f", "g", "h"]);
        assert_eq!(s.sorted, 8);
        // In order, skipping a few (deleted in the source), then back.
        assert_eq!(s.find("a"), Some(0));
        assert_eq!(s.find("c"), Some(2));
        assert_eq!(s.find("h"), Some(7));
        assert_eq!(s.find("b"), Some(1));
        assert_eq!(s.find("bb"), None);
        let n = s.push(b"bb", -1, 0, None, 0);
        assert_eq!(s.find("bb"), Some(n));
        assert_eq!(s.find("zz"), None);
        s.build();
        for (i, a) in ["a", "b", "c", "d", "e", "f", "g", "h", "bb"]
            .iter()
            .enumerate()
        {
            assert_eq!(s.find(a), Some(i), "{a}");
        }
        assert_eq!(s.find("zz"), None);
    }

    #[test]
    fn new_anchors_between_ordered_rows_keep_the_cursor_in_place() {
        let names: Vec<String> = (0..20_000).map(|i| format!("W{i:06}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut s = space(&refs);
        // A source in anchor order with a new row after every tenth, its
        // anchor past all the others (as new, higher ids are), and some
        // rows deleted.
        for (i, name) in names.iter().enumerate() {
            if i % 100 == 7 {
                continue;
            }
            assert_eq!(s.find(name), Some(i));
            if i % 10 == 0 {
                let new = format!("X{i:06}");
                assert_eq!(s.find(&new), None);
                s.push(new.as_bytes(), -1, 0, None, 0);
            }
        }
        // Each new anchor misses once; each row after one is found at the
        // cursor again.
        assert_eq!(s.misses, 2_000);
        assert!(s.all.is_none());
    }

    #[test]
    fn a_space_read_out_of_order_is_hashed() {
        let mut s = space(&["b", "a", "c"]);
        assert_eq!(s.sorted, 1);
        assert_eq!(s.find("a"), Some(1));
        assert_eq!(s.find("c"), Some(2));
        assert_eq!(s.find("b"), Some(0));
    }

    #[test]
    fn a_source_out_of_order_switches_to_the_hash_table() {
        let names: Vec<String> = (0..20_000).map(|i| format!("{i:06}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut s = space(&refs);
        for i in (0..20_000).rev() {
            assert_eq!(s.find(&names[i]), Some(i));
        }
        assert!(s.all.is_some());
    }

    #[test]
    fn anchors_with_colliding_hashes_stay_apart() {
        let mut s = space(&["a", "b"]);
        s.build();
        // Chain "b" behind "a" under a's key, as a collision would.
        let key_a = anchor_key(b"a");
        if let Some(e) = s.entries.get_mut(1) {
            e.next = 0;
        }
        if let Some(all) = s.all.as_mut() {
            all.insert(key_a, 1);
        }
        assert_eq!(s.find("a"), Some(0));
        assert_eq!(s.find("b"), Some(1));
        assert_eq!(s.find("c"), None);
    }
}
