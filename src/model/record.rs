//! A compact, immutable attribute record: values concatenated in one buffer,
//! slots `(attribute, end offset)` sorted by attribute. A multi-valued
//! attribute is several consecutive slots with the same attribute.
//! An absent attribute and an empty value are the same thing: null.

use super::Schema;

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Record {
    buf: Box<str>,
    slots: Box<[(u32, u32)]>,
}

impl Record {
    pub fn builder() -> RecordBuilder {
        RecordBuilder::default()
    }

    fn range(&self, slot: usize) -> (usize, usize) {
        let start = if slot == 0 {
            0
        } else {
            self.slots[slot - 1].1 as usize
        };
        (start, self.slots[slot].1 as usize)
    }

    fn value(&self, slot: usize) -> &str {
        let (s, e) = self.range(slot);
        &self.buf[s..e]
    }

    /// Index of the first slot of `attr`, if present.
    fn first_slot(&self, attr: u32) -> Option<usize> {
        let i = self.slots.partition_point(|&(a, _)| a < attr);
        (i < self.slots.len() && self.slots[i].0 == attr).then_some(i)
    }

    pub fn first(&self, attr: u32) -> Option<&str> {
        self.first_slot(attr).map(|i| self.value(i))
    }

    pub fn count(&self, attr: u32) -> usize {
        match self.first_slot(attr) {
            None => 0,
            Some(i) => self.slots[i..].iter().take_while(|s| s.0 == attr).count(),
        }
    }

    pub fn nth(&self, attr: u32, n: usize) -> Option<&str> {
        let i = self.first_slot(attr)?;
        let j = i + n;
        (j < self.slots.len() && self.slots[j].0 == attr).then(|| self.value(j))
    }

    pub fn values(&self, attr: u32) -> impl Iterator<Item = &str> {
        let start = self.first_slot(attr).unwrap_or(self.slots.len());
        (start..self.slots.len())
            .take_while(move |&i| self.slots[i].0 == attr)
            .map(move |i| self.value(i))
    }

    /// Every `(attribute, value)` in attribute order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &str)> {
        (0..self.slots.len()).map(move |i| (self.slots[i].0, self.value(i)))
    }

    /// The distinct attributes present, in order.
    pub fn attrs(&self) -> impl Iterator<Item = u32> + '_ {
        let mut last = None;
        self.slots.iter().filter_map(move |&(a, _)| {
            if last == Some(a) {
                None
            } else {
                last = Some(a);
                Some(a)
            }
        })
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// A 64-bit content hash, stable across processes and platforms, used to
    /// tell a changed source row from an unchanged one without comparing values.
    pub fn content_hash(&self, schema: &Schema) -> u64 {
        // Each (name, position among the attribute's values, value) hashes on
        // its own and the results are summed: names, not indexes, and an
        // order-free sum, so a column reorder in the source is not a change,
        // with no sorting per row.
        let mut total: u64 = 0;
        let mut last = u32::MAX;
        let mut nth: u64 = 0;
        for (a, v) in self.iter() {
            nth = if a == last { nth + 1 } else { 0 };
            last = a;
            let mut h = super::Fnv::default();
            h.write(schema.name(a).as_bytes());
            h.write(&[0xff]);
            h.write(&nth.to_le_bytes());
            h.write(v.as_bytes());
            // splitmix64's finaliser spreads each pair's bits before the sum.
            let mut x = h.finish();
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^= x >> 31;
            total = total.wrapping_add(x);
        }
        total
    }

    /// This record with every value of `attr` replaced by `values` (empty
    /// ones dropped: null). One copy into buffers of the exact size, where
    /// a [`RecordBuilder`] copies twice and sorts: a full sync replaces a
    /// value of each of a million identities (a unique login, a manager's
    /// id for the manager's key).
    pub fn with_values<S: AsRef<str>>(&self, attr: u32, values: &[S]) -> Record {
        let lo = self.slots.partition_point(|&(a, _)| a < attr);
        let hi = lo + self.slots[lo..].iter().take_while(|s| s.0 == attr).count();
        let start = if lo == 0 {
            0
        } else {
            self.slots[lo - 1].1 as usize
        };
        let end = if hi == lo {
            start
        } else {
            self.slots[hi - 1].1 as usize
        };
        let added: usize = values.iter().map(|v| v.as_ref().len()).sum();
        let mut buf = String::with_capacity(self.buf.len() - (end - start) + added);
        buf.push_str(&self.buf[..start]);
        let new = values.iter().filter(|v| !v.as_ref().is_empty()).count();
        let mut slots = Vec::with_capacity(self.slots.len() - (hi - lo) + new);
        slots.extend_from_slice(&self.slots[..lo]);
        for v in values {
            let v = v.as_ref();
            if !v.is_empty() {
                buf.push_str(v);
                slots.push((attr, buf.len() as u32));
            }
        }
        let moved = buf.len();
        buf.push_str(&self.buf[end..]);
        slots.extend(
            self.slots[hi..]
                .iter()
                .map(|&(a, e)| (a, (e as usize - end + moved) as u32)),
        );
        Record {
            buf: buf.into_boxed_str(),
            slots: slots.into_boxed_slice(),
        }
    }

    /// Same values under other attribute numbers, for moving a record between schemas.
    pub fn remap(&self, map: impl Fn(u32) -> Option<u32>) -> Record {
        let mut b = RecordBuilder::default();
        for (a, v) in self.iter() {
            if let Some(to) = map(a) {
                b.push(to, v);
            }
        }
        b.build()
    }
}

/// Collects values in any order; [`RecordBuilder::build`] sorts them by
/// attribute (stable, so multi-values keep their order) and drops empty ones.
/// Values pushed in attribute order (what connectors do) need no sort and
/// no second copy.
#[derive(Debug, Clone)]
pub struct RecordBuilder {
    buf: String,
    /// (attribute, start, end) into `buf`.
    items: Vec<(u32, u32, u32)>,
    sorted: bool,
    /// No value was removed: `buf` holds exactly the items, in order.
    dense: bool,
}

impl Default for RecordBuilder {
    fn default() -> Self {
        RecordBuilder {
            buf: String::new(),
            items: Vec::new(),
            sorted: true,
            dense: true,
        }
    }
}

impl RecordBuilder {
    pub fn with_capacity(values: usize, bytes: usize) -> RecordBuilder {
        RecordBuilder {
            buf: String::with_capacity(bytes),
            items: Vec::with_capacity(values),
            ..RecordBuilder::default()
        }
    }

    pub fn push(&mut self, attr: u32, value: &str) {
        if value.is_empty() {
            return;
        }
        if self.items.last().is_some_and(|l| l.0 > attr) {
            self.sorted = false;
        }
        let start = self.buf.len() as u32;
        self.buf.push_str(value);
        self.items.push((attr, start, self.buf.len() as u32));
    }

    pub fn push_owned(&mut self, attr: u32, value: String) {
        self.push(attr, &value);
    }

    /// Replaces every value of `attr`.
    pub fn set(&mut self, attr: u32, values: impl IntoIterator<Item = String>) {
        self.remove(attr);
        for v in values {
            self.push(attr, &v);
        }
    }

    pub fn remove(&mut self, attr: u32) {
        let before = self.items.len();
        self.items.retain(|(a, _, _)| *a != attr);
        if self.items.len() != before {
            self.dense = false;
        }
    }

    pub fn build(self) -> Record {
        if self.sorted && self.dense {
            let slots: Vec<(u32, u32)> = self.items.iter().map(|&(a, _, e)| (a, e)).collect();
            return Record {
                // A copy, not `into_boxed_str`: mimalloc shrinks a block in
                // place while the new size is at least half of it, so a
                // buffer grown by doubling would keep up to twice its bytes,
                // and a full sync holds millions of records.
                buf: Box::from(self.buf.as_str()),
                slots: slots.into_boxed_slice(),
            };
        }
        let mut items = self.items;
        items.sort_by_key(|&(a, _, _)| a);
        let len: usize = items.iter().map(|&(_, s, e)| (e - s) as usize).sum();
        let mut buf = String::with_capacity(len);
        let mut slots = Vec::with_capacity(items.len());
        for &(a, s, e) in &items {
            buf.push_str(&self.buf[s as usize..e as usize]);
            slots.push((a, buf.len() as u32));
        }
        Record {
            buf: buf.into_boxed_str(),
            slots: slots.into_boxed_slice(),
        }
    }
}

impl From<&Record> for RecordBuilder {
    fn from(r: &Record) -> Self {
        let mut b = RecordBuilder::with_capacity(r.slots.len(), r.buf.len());
        for (a, v) in r.iter() {
            b.push(a, v);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_values_keep_order_and_attrs_sort() {
        let mut b = Record::builder();
        b.push(3, "c");
        b.push(1, "x");
        b.push(3, "a");
        b.push(2, "");
        let r = b.build();
        assert_eq!(r.first(1), Some("x"));
        assert_eq!(r.values(3).collect::<Vec<_>>(), vec!["c", "a"]);
        assert_eq!(r.count(3), 2);
        assert_eq!(r.nth(3, 1), Some("a"));
        assert_eq!(r.nth(3, 2), None);
        assert_eq!(r.first(2), None, "empty values are null");
        assert_eq!(r.attrs().collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn with_values_is_what_a_builder_makes() {
        let mut b = Record::builder();
        b.push(1, "one");
        b.push(3, "c1");
        b.push(3, "c2");
        b.push(5, "five");
        let r = b.build();
        let by_builder = |attr: u32, values: &[&str]| {
            let mut b = RecordBuilder::from(&r);
            b.set(attr, values.iter().map(|v| v.to_string()));
            b.build()
        };
        // Replaced, grown, shrunk, removed, added before, between and
        // after the rest, and empty values dropped.
        for attr in [0, 1, 2, 3, 4, 5, 6] {
            for values in [
                &[][..],
                &["x"][..],
                &["a longer value", "", "b"][..],
                &[""][..],
            ] {
                let got = r.with_values(attr, values);
                assert_eq!(got, by_builder(attr, values), "{attr} {values:?}");
                assert_eq!(
                    got.values(attr).collect::<Vec<_>>(),
                    values
                        .iter()
                        .filter(|v| !v.is_empty())
                        .copied()
                        .collect::<Vec<_>>()
                );
            }
        }
        assert_eq!(Record::default().with_values(2, &["v"]).first(2), Some("v"));
    }

    #[test]
    fn json_round_trip_and_hash_ignores_column_order() {
        let s = Schema::new(["id", "name", "tags"]);
        let mut b = Record::builder();
        b.push(0, "W1");
        b.push(1, "Zoë");
        b.push(2, "a");
        b.push(2, "b");
        let r = b.build();
        let json = crate::model::json::record_to_json(&r, &s);
        assert_eq!(json, r#"{"id":"W1","name":"Zoë","tags":["a","b"]}"#);
        let back = crate::model::json::record_from_json(&json, &s).expect("parse");
        assert_eq!(back, r);

        let s2 = Schema::new(["tags", "name", "id"]);
        let r2 = r.remap(|a| s2.get(s.name(a)));
        assert_eq!(r.content_hash(&s), r2.content_hash(&s2));
        let mut b3 = RecordBuilder::from(&r);
        b3.set(1, ["Zoe".to_string()]);
        assert_ne!(b3.build().content_hash(&s), r.content_hash(&s));
    }
}
