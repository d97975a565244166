//! Unicode text transformations whose exact behaviour matters for generated
//! identifiers (mail nicknames, logins): diacritic folding, culture-aware
//! case mapping (Turkish dotted/dotless i) and proper case. Each returns the
//! input borrowed when nothing changes, since most names are already ASCII.

use std::borrow::Cow;

/// Decomposes (NFD), drops combining marks and folds the letters that have
/// none: "Zoë Ærøskøbing-Łódź" → "Zoe AEroskobing-Lodz". The same folding
/// join keys use (`fold-diacritics`), so a login and a join agree.
pub(super) fn normalize_diacritics(s: &str) -> Cow<'_, str> {
    crate::model::text::fold_diacritics(s)
}

/// Whether a culture name asks for Turkic casing (`tr`, `tr-TR`, `az-Latn-AZ`).
pub(super) fn is_turkic(culture: &str) -> bool {
    let lang = culture.split(['-', '_']).next().unwrap_or("");
    lang.eq_ignore_ascii_case("tr") || lang.eq_ignore_ascii_case("az")
}

/// Lower case. Outside Turkic cultures, `İ` lowers to a plain `i` rather than
/// Unicode's `i` + combining dot, which would be invisible garbage in a login.
pub(super) fn to_lower(s: &str, turkic: bool) -> Cow<'_, str> {
    if s.is_ascii() {
        if !s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Cow::Borrowed(s);
        }
        if !turkic {
            return Cow::Owned(s.to_ascii_lowercase());
        }
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            'I' if turkic => out.push('ı'),
            'İ' => out.push('i'),
            _ => out.extend(c.to_lowercase()),
        }
    }
    // `to_lowercase` on the whole string knows final sigma; redo it when it matters.
    if out.contains('σ') && !turkic {
        return Cow::Owned(s.replace('İ', "i").to_lowercase());
    }
    Cow::Owned(out)
}

/// Upper case; in Turkic cultures `i` uppers to `İ`. `ß` becomes `SS`.
pub(super) fn to_upper(s: &str, turkic: bool) -> Cow<'_, str> {
    if s.is_ascii() {
        if !s.bytes().any(|b| b.is_ascii_lowercase()) {
            return Cow::Borrowed(s);
        }
        if !turkic {
            return Cow::Owned(s.to_ascii_uppercase());
        }
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            'i' if turkic => out.push('İ'),
            _ => out.extend(c.to_uppercase()),
        }
    }
    Cow::Owned(out)
}

/// Proper case: the first letter of each word upper, the rest lower. Words
/// are separated by whitespace and `-` unless `separators` lists the
/// separator characters explicitly ("jean-luc o'neil" → "Jean-Luc O'neil").
pub(super) fn pcase(s: &str, separators: Option<&str>) -> String {
    let is_sep = |c: char| match separators {
        Some(seps) => seps.contains(c),
        None => c.is_whitespace() || c == '-',
    };
    let mut out = String::with_capacity(s.len());
    let mut word_start = true;
    for c in s.chars() {
        if is_sep(c) {
            out.push(c);
            word_start = true;
        } else if word_start {
            // Title case of a ligature-like letter is its upper case here.
            out.extend(c.to_uppercase());
            word_start = false;
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diacritics_fold_to_ascii() {
        assert_eq!(
            normalize_diacritics("Zoë Ærøskøbing-Łódź"),
            "Zoe AEroskobing-Lodz"
        );
        assert_eq!(normalize_diacritics("Straße Þór"), "Strasse THor");
        assert_eq!(normalize_diacritics("José Ñuñez Çelik"), "Jose Nunez Celik");
        // Precomposed and combining forms give the same result.
        assert_eq!(normalize_diacritics("e\u{301}"), "e");
        assert_eq!(normalize_diacritics("Dvořák ąę"), "Dvorak ae");
        assert!(matches!(
            normalize_diacritics("plain"),
            Cow::Borrowed("plain")
        ));
        // Scripts without a Latin folding pass through unchanged.
        assert_eq!(normalize_diacritics("Σωκράτης"), "Σωκρατης");
    }

    #[test]
    fn turkish_casing() {
        assert_eq!(to_lower("İSTANBUL IĞDIR", true), "istanbul ığdır");
        assert_eq!(to_upper("istanbul ığdır", true), "İSTANBUL IĞDIR");
        assert_eq!(to_lower("İSTANBUL IĞDIR", false), "istanbul iğdir");
        assert_eq!(to_upper("istanbul ığdır", false), "ISTANBUL IĞDIR");
        assert!(is_turkic("tr-TR"));
        assert!(is_turkic("az_Latn"));
        assert!(!is_turkic("en-US"));
        assert!(!is_turkic(""));
    }

    #[test]
    fn general_casing() {
        assert_eq!(to_upper("straße", false), "STRASSE");
        assert_eq!(to_lower("ΟΔΥΣΣΕΥΣ", false), "οδυσσευς");
        assert_eq!(to_lower("ÅSE", false), "åse");
        assert!(matches!(to_lower("abc", false), Cow::Borrowed(_)));
        assert!(matches!(to_upper("ABC", true), Cow::Borrowed(_)));
        assert_eq!(to_lower("ABC", true), "abc");
    }

    #[test]
    fn proper_case() {
        assert_eq!(pcase("JEAN-LUC o'NEIL  van", None), "Jean-Luc O'neil  Van");
        assert_eq!(pcase("o'neil", Some(" '")), "O'Neil");
        assert_eq!(pcase("élodie ÉMILE", None), "Élodie Émile");
        assert_eq!(pcase("", None), "");
    }
}
