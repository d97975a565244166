//! What a probabilistic match compares, as data: the fields with their
//! comparison levels, the blocking keys and the decision thresholds. A rule
//! file deserializes into these (serde, unknown fields refused); `check`
//! resolves field names against the columns of the records before anything
//! is compared, so a misspelt field is an error, never a silent null.

use serde::{Deserialize, Serialize};

/// How a field's values are read before they are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FieldKind {
    /// Free text (names, streets, towns): compared after folding case,
    /// diacritics, punctuation and spaces.
    Name,
    /// A date: `YYYYMMDD`, `YYYY-MM-DD`, `DD.MM.YYYY` or `DD/MM/YYYY`;
    /// anything else reads as missing.
    Date,
    /// An identifier or code (postcode, social security number): compared
    /// after trimming and folding case only.
    Exact,
}

/// One comparison level. A field's levels are tried in order and the first
/// that holds is the pair's level; when none holds the pair falls to the
/// implicit last level, "else" (disagreement). A null on either side is
/// "missing" and weighs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Level {
    /// The values as read, trimmed, are equal.
    Exact,
    /// Equal after normalisation (for names: case, diacritics,
    /// punctuation, spaces).
    Normalised,
    /// Jaro-Winkler similarity of the normalised values at least this.
    JaroWinkler(f64),
    /// Normalised Levenshtein similarity (1 - distance / longer length) at
    /// least this.
    Levenshtein(f64),
    /// Damerau-Levenshtein distance of the normalised values at most this
    /// (a typo in an identifier).
    Edits(u32),
    /// One side is a single letter, the other's initial.
    Initial,
    /// Dates: exactly one of day, month and year differs.
    DateOneOff,
    /// Dates: day and month swapped, same year.
    DateSwapped,
}

impl Level {
    pub fn label(&self) -> String {
        match self {
            Level::Exact => "exact".into(),
            Level::Normalised => "normalised".into(),
            Level::JaroWinkler(t) => format!("jaro-winkler >= {t}"),
            Level::Levenshtein(t) => format!("levenshtein >= {t}"),
            Level::Edits(n) => format!("edits <= {n}"),
            Level::Initial => "initial".into(),
            Level::DateOneOff => "one date part off".into(),
            Level::DateSwapped => "day and month swapped".into(),
        }
    }

    fn fits(&self, kind: FieldKind) -> bool {
        match self {
            Level::DateOneOff | Level::DateSwapped => kind == FieldKind::Date,
            Level::JaroWinkler(_) | Level::Levenshtein(_) | Level::Initial => {
                kind != FieldKind::Date
            }
            Level::Exact | Level::Normalised | Level::Edits(_) => true,
        }
    }
}

/// One compared field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// The column compared (the same name on both sides).
    pub name: String,
    pub kind: FieldKind,
    pub levels: Vec<Level>,
    /// Weigh an exact agreement by how rare the value is.
    #[serde(default)]
    pub term_frequency: bool,
    /// Levels from this index on (`levels.len()` is "else") never join on
    /// their own, whatever the score: a pair at one goes to review at best.
    /// A day-month swap is a typo or another person; a wholly different
    /// given name with all else equal is a twin as often as an error.
    #[serde(default)]
    pub review_from: Option<usize>,
}

impl FieldSpec {
    /// Names: exact, normalised, then close and far Jaro-Winkler.
    pub fn name(name: &str) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            kind: FieldKind::Name,
            levels: vec![
                Level::Normalised,
                Level::JaroWinkler(0.92),
                Level::JaroWinkler(0.8),
            ],
            term_frequency: true,
            review_from: None,
        }
    }

    /// Dates: equal, one part off, day and month swapped; a swap or a
    /// wholly different date never joins on its own.
    pub fn date(name: &str) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            kind: FieldKind::Date,
            levels: vec![Level::Exact, Level::DateOneOff, Level::DateSwapped],
            term_frequency: false,
            review_from: Some(2),
        }
    }

    /// Identifiers: equal, or one typo away.
    pub fn code(name: &str) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            kind: FieldKind::Exact,
            levels: vec![Level::Exact, Level::Edits(1)],
            term_frequency: false,
            review_from: None,
        }
    }

    /// Levels including the final "else".
    pub fn level_count(&self) -> usize {
        self.levels.len() + 1
    }

    /// Label of level `i` (the last is "else").
    pub fn level_label(&self, i: usize) -> String {
        self.levels
            .get(i)
            .map_or_else(|| "else".into(), Level::label)
    }
}

/// How a blocking key reads one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Transform {
    /// The normalised value.
    Whole,
    /// Its first n characters.
    Prefix(u32),
    /// Its Soundex code.
    Soundex,
    /// Its Double Metaphone primary code.
    Metaphone,
    /// Of a date, the year.
    Year,
}

/// One part of a blocking key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPart {
    pub field: String,
    pub transform: Transform,
}

/// A blocking key: pairs whose parts all agree are candidates. A record
/// with any part null or empty has no key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockKey {
    pub name: String,
    pub parts: Vec<KeyPart>,
}

impl BlockKey {
    pub fn new(name: &str, parts: &[(&str, Transform)]) -> BlockKey {
        BlockKey {
            name: name.into(),
            parts: parts
                .iter()
                .map(|(f, t)| KeyPart {
                    field: (*f).into(),
                    transform: *t,
                })
                .collect(),
        }
    }
}

/// Where decisions fall, in bits (log2 odds of a match).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// At or above: joins, when unambiguous.
    pub join: f64,
    /// At or above (and below `join`, or ambiguous): goes to review.
    pub review: f64,
    /// How far the best candidate must lead every rival to be unambiguous.
    pub margin: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            join: 10.0,
            review: 0.0,
            margin: 5.0,
        }
    }
}

/// A whole probabilistic match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    pub fields: Vec<FieldSpec>,
    pub blocking: Vec<BlockKey>,
    #[serde(default)]
    pub thresholds: Thresholds,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error("field {0:?}: no such column")]
    UnknownField(String),
    #[error("field {field:?}: level {level} does not apply to a {kind:?} field")]
    LevelKind {
        field: String,
        level: String,
        kind: FieldKind,
    },
    #[error("field {field:?}: threshold {value} is outside 0..=1")]
    Threshold { field: String, value: f64 },
    #[error("field {field:?}: review_from {index} is past the else level ({levels})")]
    ReviewFrom {
        field: String,
        index: usize,
        levels: usize,
    },
    #[error("field {0:?}: more than 250 levels")]
    TooManyLevels(String),
    #[error("blocking key {0:?} has no parts")]
    EmptyKey(String),
    #[error("blocking key {key:?}: field {field:?} is not a compared field")]
    KeyField { key: String, field: String },
    #[error("blocking key {key:?}: {transform:?} needs a date field, {field:?} is not one")]
    KeyTransform {
        key: String,
        field: String,
        transform: Transform,
    },
    #[error("thresholds: review ({review}) is above join ({join})")]
    Thresholds { join: f64, review: f64 },
    #[error("no fields to compare")]
    NoFields,
}

impl MatchSpec {
    /// Every error in the spec, each naming its field or key.
    pub fn check(&self, columns: &[&str]) -> Vec<SpecError> {
        let mut errors = Vec::new();
        if self.fields.is_empty() {
            errors.push(SpecError::NoFields);
        }
        for f in &self.fields {
            if !columns.contains(&f.name.as_str()) {
                errors.push(SpecError::UnknownField(f.name.clone()));
            }
            if let Some(i) = f.review_from
                && i > f.levels.len()
            {
                errors.push(SpecError::ReviewFrom {
                    field: f.name.clone(),
                    index: i,
                    levels: f.levels.len(),
                });
            }
            if f.levels.len() > 250 {
                errors.push(SpecError::TooManyLevels(f.name.clone()));
            }
            for l in &f.levels {
                if !l.fits(f.kind) {
                    errors.push(SpecError::LevelKind {
                        field: f.name.clone(),
                        level: l.label(),
                        kind: f.kind,
                    });
                }
                if let Level::JaroWinkler(t) | Level::Levenshtein(t) = l
                    && !(0.0..=1.0).contains(t)
                {
                    errors.push(SpecError::Threshold {
                        field: f.name.clone(),
                        value: *t,
                    });
                }
            }
        }
        for k in &self.blocking {
            if k.parts.is_empty() {
                errors.push(SpecError::EmptyKey(k.name.clone()));
            }
            for p in &k.parts {
                match self.fields.iter().find(|f| f.name == p.field) {
                    None => errors.push(SpecError::KeyField {
                        key: k.name.clone(),
                        field: p.field.clone(),
                    }),
                    Some(f) if p.transform == Transform::Year && f.kind != FieldKind::Date => {
                        errors.push(SpecError::KeyTransform {
                            key: k.name.clone(),
                            field: p.field.clone(),
                            transform: p.transform,
                        })
                    }
                    Some(_) => {}
                }
            }
        }
        let t = self.thresholds;
        if t.review > t.join {
            errors.push(SpecError::Thresholds {
                join: t.join,
                review: t.review,
            });
        }
        errors
    }

    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names_every_error() {
        let mut date = FieldSpec::date("dob");
        date.levels.push(Level::Initial);
        let mut name = FieldSpec::name("surname");
        name.levels.push(Level::JaroWinkler(1.5));
        name.review_from = Some(5);
        let spec = MatchSpec {
            fields: vec![name, date, FieldSpec::code("ssn")],
            blocking: vec![
                BlockKey::new("k", &[("surnme", Transform::Whole)]),
                BlockKey::new("y", &[("surname", Transform::Year)]),
                BlockKey::new("e", &[]),
            ],
            thresholds: Thresholds {
                join: 1.0,
                review: 2.0,
                margin: 1.0,
            },
        };
        let errors = spec.check(&["surname", "dob"]);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "field \"surname\": review_from 5 is past the else level (4)",
                "field \"surname\": threshold 1.5 is outside 0..=1",
                "field \"dob\": level initial does not apply to a Date field",
                "field \"ssn\": no such column",
                "blocking key \"k\": field \"surnme\" is not a compared field",
                "blocking key \"y\": Year needs a date field, \"surname\" is not one",
                "blocking key \"e\" has no parts",
                "thresholds: review (2) is above join (1)",
            ]
        );
    }

    #[test]
    fn spec_reads_from_toml() {
        let spec: MatchSpec = toml::from_str(
            r#"
            fields = [
              { name = "surname", kind = "name", levels = ["normalised", { jaro-winkler = 0.9 }], term_frequency = true },
              { name = "dob", kind = "date", levels = ["exact", "date-one-off", "date-swapped"] },
            ]
            blocking = [{ name = "dob", parts = [{ field = "dob", transform = "whole" }] }]
            thresholds = { join = 12.0, review = 2.0, margin = 4.0 }
            "#,
        )
        .expect("spec");
        assert_eq!(spec.fields[0].levels[1], Level::JaroWinkler(0.9));
        assert!(spec.fields[0].term_frequency);
        assert_eq!(spec.fields[1].level_label(3), "else");
        assert!(spec.check(&["surname", "dob"]).is_empty());
    }
}
