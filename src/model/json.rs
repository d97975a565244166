//! The stored text forms of records and lineage, read and written without
//! building a JSON tree: a sync reads and writes millions of them, and an
//! intermediate `serde_json::Value` per object costs more than the rest of
//! the sync together.
//!
//! - a record is a JSON object, attribute name -> string, or an array of
//!   strings for several values: `{"sn":"Lee","phone":["1","2"]}`;
//! - lineage is a JSON list of groups `[agent, anchor, run, [attributes]]`:
//!   `[["hr","H1",3,["givenName","sn"]],["sub","S1",4,["title"]]]`. Most
//!   values of an identity come from one or two sources, so grouping keeps
//!   the text (written for every identity) a third of a per-attribute form.

use super::{Record, RecordBuilder, RunId, Schema};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// A string that borrows from the input when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
            // Numbers and booleans written by hand into a store are kept as text.
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed("")))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// One attribute's value(s) pushed straight into the builder.
struct Values<'b> {
    attr: u32,
    b: &'b mut RecordBuilder,
}

impl<'de> DeserializeSeed<'de> for Values<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Values<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or a list of strings")
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.b.push(self.attr, v);
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.b.push(self.attr, &v.to_string());
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.b.push(self.attr, &v.to_string());
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.b.push(self.attr, &v.to_string());
        Ok(())
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.b.push(self.attr, if v { "true" } else { "false" });
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(t) = seq.next_element::<Text>()? {
            self.b.push(self.attr, &t.0);
        }
        Ok(())
    }
}

struct RecordSeed<'s> {
    schema: &'s Schema,
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = Record;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object of attributes")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
        let mut b = RecordBuilder::with_capacity(map.size_hint().unwrap_or(16), 256);
        while let Some(name) = map.next_key::<Text>()? {
            match self.schema.get(&name.0) {
                Some(attr) => map.next_value_seed(Values { attr, b: &mut b })?,
                // A name the schema no longer has (a dropped column) is skipped.
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(b.build())
    }
}

/// Reads a stored record; names `schema` does not know are skipped.
pub fn record_from_json(text: &str, schema: &Schema) -> Result<Record, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let r = de.deserialize_map(RecordSeed { schema })?;
    de.end()?;
    Ok(r)
}

fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut from = 0;
    for (i, &c) in bytes.iter().enumerate() {
        let esc = match c {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            c if c < 0x20 => "",
            _ => continue,
        };
        // Escapes are ASCII, so `i` is always on a character boundary.
        out.push_str(&s[from..i]);
        if esc.is_empty() {
            out.push_str(&format!("\\u{:04x}", c));
        } else {
            out.push_str(esc);
        }
        from = i + 1;
    }
    out.push_str(&s[from..]);
    out.push('"');
}

/// Writes a record in its stored form.
pub fn record_to_json(r: &Record, schema: &Schema) -> String {
    let mut out = String::with_capacity(64 + r.iter().map(|(_, v)| v.len() + 24).sum::<usize>());
    out.push('{');
    let mut first = true;
    for attr in r.attrs() {
        if !first {
            out.push(',');
        }
        first = false;
        push_json_str(&mut out, schema.name(attr));
        out.push(':');
        if r.count(attr) == 1 {
            push_json_str(&mut out, r.first(attr).unwrap_or_default());
        } else {
            out.push('[');
            for (i, v) in r.values(attr).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_str(&mut out, v);
            }
            out.push(']');
        }
    }
    out.push('}');
    out
}

/// Writes lineage entries `(attribute, agent, anchor, run)`, grouped by
/// source in order of first appearance.
pub fn lineage_to_json<'a>(
    entries: impl IntoIterator<Item = (&'a str, &'a str, &'a str, RunId)>,
) -> String {
    type Source<'a> = (&'a str, &'a str, RunId);
    let mut groups: Vec<(Source, Vec<&str>)> = Vec::new();
    for (attr, agent, anchor, run) in entries {
        match groups.iter_mut().find(|(k, _)| *k == (agent, anchor, run)) {
            Some((_, attrs)) => attrs.push(attr),
            None => groups.push(((agent, anchor, run), vec![attr])),
        }
    }
    let mut out = String::from("[");
    for (i, ((agent, anchor, run), attrs)) in groups.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        push_json_str(&mut out, agent);
        out.push(',');
        push_json_str(&mut out, anchor);
        out.push(',');
        out.push_str(&run.to_string());
        out.push_str(",[");
        for (j, a) in attrs.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            push_json_str(&mut out, a);
        }
        out.push_str("]]");
    }
    out.push(']');
    out
}

#[derive(serde::Deserialize)]
struct Group<'a>(
    #[serde(borrow)] Text<'a>,
    #[serde(borrow)] Text<'a>,
    RunId,
    #[serde(borrow)] Vec<Text<'a>>,
);

/// Calls `f(attribute, agent, anchor, run)` for every stored lineage entry.
pub fn lineage_entries(
    text: &str,
    mut f: impl FnMut(&str, &str, &str, RunId),
) -> Result<(), serde_json::Error> {
    let groups: Vec<Group> = serde_json::from_str(text)?;
    for g in &groups {
        for a in &g.3 {
            f(&a.0, &g.0.0, &g.1.0, g.2);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_with_escapes_multi_values_and_unknown_names() {
        let s = Schema::new(["sn", "phone", "note"]);
        let mut b = Record::builder();
        b.push(0, "O'Brien \"Bob\"\\");
        b.push(1, "1");
        b.push(1, "2");
        b.push(2, "line\nbreak\u{1}");
        let r = b.build();
        let text = record_to_json(&r, &s);
        let via_serde: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(via_serde["phone"][1], "2");
        assert_eq!(record_from_json(&text, &s).expect("parse"), r);
        let narrower = Schema::new(["phone"]);
        let r2 = record_from_json(&text, &narrower).expect("parse");
        assert_eq!(r2.values(0).collect::<Vec<_>>(), vec!["1", "2"]);
        assert!(record_from_json("{\"sn\":", &s).is_err());
    }

    #[test]
    fn lineage_round_trips() {
        let text = lineage_to_json([
            ("sn", "hr", "H\"1", 3),
            ("sn", "sub", "S1", 4),
            ("mail", "hr", "H\"1", 3),
        ]);
        assert_eq!(
            text,
            r#"[["hr","H\"1",3,["sn","mail"]],["sub","S1",4,["sn"]]]"#
        );
        let mut got = Vec::new();
        lineage_entries(&text, |a, g, k, r| got.push(format!("{a}/{g}/{k}/{r}"))).expect("parse");
        assert_eq!(got, vec!["sn/hr/H\"1/3", "mail/hr/H\"1/3", "sn/sub/S1/4"]);
        assert_eq!(lineage_to_json([]), "[]");
    }
}
