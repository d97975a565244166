//! Text normalisations used to compare identities across systems: one system
//! writes `Müller`, another `MULLER`, a third ` muller `. Join keys pass
//! through an ordered list of these before they are compared.

use std::borrow::Cow;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Norm {
    FoldCase,
    FoldDiacritics,
    Trim,
    CollapseSpaces,
    FirstWord,
    DigitsOnly,
    StripLeadingZeros,
    RemovePunctuation,
}

impl Norm {
    pub const ALL: [(&'static str, Norm); 8] = [
        ("fold-case", Norm::FoldCase),
        ("fold-diacritics", Norm::FoldDiacritics),
        ("trim", Norm::Trim),
        ("collapse-spaces", Norm::CollapseSpaces),
        ("first-word", Norm::FirstWord),
        ("digits-only", Norm::DigitsOnly),
        ("strip-leading-zeros", Norm::StripLeadingZeros),
        ("remove-punctuation", Norm::RemovePunctuation),
    ];

    pub fn parse(name: &str) -> Option<Norm> {
        Norm::ALL.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    pub fn apply(self, s: &str) -> String {
        match self {
            Norm::FoldCase => s.to_lowercase(),
            Norm::FoldDiacritics => fold_diacritics(s).into_owned(),
            Norm::Trim => s.trim().to_string(),
            Norm::CollapseSpaces => s.split_whitespace().collect::<Vec<_>>().join(" "),
            Norm::FirstWord => s
                .split(|c: char| c.is_whitespace() || c == '-' || c == '.')
                .find(|w| !w.is_empty())
                .unwrap_or("")
                .to_string(),
            Norm::DigitsOnly => s.chars().filter(char::is_ascii_digit).collect(),
            Norm::StripLeadingZeros => {
                let t = s.trim_start_matches('0');
                if t.is_empty() && !s.is_empty() {
                    "0".to_string()
                } else {
                    t.to_string()
                }
            }
            Norm::RemovePunctuation => s
                .chars()
                .filter(|c| !c.is_ascii_punctuation() && !is_general_punct(*c))
                .collect(),
        }
    }
}

fn is_general_punct(c: char) -> bool {
    matches!(
        c,
        '\u{2010}'..='\u{2027}' | '\u{00b7}' | '\u{00ab}' | '\u{00bb}'
    )
}

/// Appends `s` normalised to `out`. Join keys are computed millions of
/// times per sync: ASCII input under the common normalisations (trim, case,
/// diacritics, first word) takes a path that allocates nothing.
pub fn normalize_into(s: &str, norms: &[Norm], out: &mut String) {
    let simple = norms.iter().all(|n| {
        matches!(
            n,
            Norm::Trim | Norm::FoldCase | Norm::FoldDiacritics | Norm::FirstWord
        )
    });
    if !(simple && s.is_ascii()) {
        out.push_str(&normalize(s, norms));
        return;
    }
    let mut v = s;
    let mut lower = false;
    for n in norms {
        match n {
            Norm::Trim => v = v.trim(),
            Norm::FirstWord => {
                v = v
                    .split(|c: char| c.is_whitespace() || c == '-' || c == '.')
                    .find(|w| !w.is_empty())
                    .unwrap_or("")
            }
            Norm::FoldCase => lower = true,
            _ => {}
        }
    }
    if lower {
        out.extend(v.chars().map(|c| c.to_ascii_lowercase()));
    } else {
        out.push_str(v);
    }
}

/// Applies normalisations in order.
pub fn normalize(s: &str, norms: &[Norm]) -> String {
    let mut out = s.to_string();
    for n in norms {
        out = n.apply(&out);
    }
    out
}

/// Letters that carry no combining mark in Unicode and so survive NFD; folded
/// by hand to what a directory admin expects in an ASCII login.
fn fold_letter(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' => "ss",
        'ẞ' => "SS",
        'ø' => "o",
        'Ø' => "O",
        'æ' => "ae",
        'Æ' => "AE",
        'œ' => "oe",
        'Œ' => "OE",
        'ł' => "l",
        'Ł' => "L",
        'đ' => "d",
        'Đ' => "D",
        'ð' => "d",
        'Ð' => "D",
        'þ' => "th",
        'Þ' => "TH",
        'ı' => "i",
        'ħ' => "h",
        'Ħ' => "H",
        'ŀ' => "l",
        'Ŀ' => "L",
        'ŧ' => "t",
        'Ŧ' => "T",
        'ſ' => "s",
        'ĸ' => "k",
        'ŉ' => "n",
        'ƒ' => "f",
        _ => return None,
    })
}

/// Decomposes (NFD), drops combining marks and folds the letters above:
/// "Zoë Ærøskøbing-Łódź" → "Zoe AEroskobing-Lodz".
pub fn fold_diacritics(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for c in s.nfd() {
        if is_combining_mark(c) {
            continue;
        }
        match fold_letter(c) {
            Some(f) => out.push_str(f),
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_names_from_different_systems_to_one_key() {
        let key = [Norm::Trim, Norm::FoldCase, Norm::FoldDiacritics];
        assert_eq!(normalize(" Müller ", &key), normalize("MULLER", &key));
        assert_eq!(normalize("Øster-Straße", &key), "oster-strasse");
        assert_eq!(normalize("José", &key), "jose");
        assert_eq!(normalize("Łukasz", &key), "lukasz");
        assert_eq!(normalize("e\u{301}", &key), "e", "combining acute dropped");
    }

    #[test]
    fn the_fast_path_agrees_with_the_general_one() {
        let sets: [&[Norm]; 3] = [
            &[Norm::Trim, Norm::FoldCase, Norm::FoldDiacritics],
            &[Norm::FirstWord, Norm::FoldCase, Norm::FoldDiacritics],
            &[Norm::FoldCase, Norm::Trim],
        ];
        for norms in sets {
            for s in [
                " MULLER ", "Anna M.", "Jean-Luc", "  ", "Müller", "O'Brien", "ZOE",
            ] {
                let mut out = String::new();
                normalize_into(s, norms, &mut out);
                assert_eq!(out, normalize(s, norms), "{s:?} {norms:?}");
            }
        }
    }

    #[test]
    fn word_and_digit_normalisations() {
        assert_eq!(Norm::FirstWord.apply("Anna M."), "Anna");
        assert_eq!(Norm::FirstWord.apply("  Jean-Luc"), "Jean");
        assert_eq!(Norm::StripLeadingZeros.apply("00012345"), "12345");
        assert_eq!(Norm::StripLeadingZeros.apply("000"), "0");
        assert_eq!(Norm::DigitsOnly.apply("+41 (44) 123-45"), "414412345");
        assert_eq!(Norm::CollapseSpaces.apply(" a   b "), "a b");
        assert_eq!(
            Norm::RemovePunctuation.apply("O'Brien-Smith"),
            "OBrienSmith"
        );
        assert_eq!(Norm::parse("fold-case"), Some(Norm::FoldCase));
        assert_eq!(Norm::parse("fold_case"), None);
    }
}
