//! How a system that never knew a person's worker id writes their name and
//! birth date: the spelling mistakes, short forms, other romanisations and
//! date mix-ups that keep such records from joining on exact keys. Used by
//! [`super::unkeyed`]; every function draws from the caller's stream, so
//! the result depends only on the seed.
//!
//! A change that a fuzzy name comparison folds away anyway (case,
//! diacritics, the date's format) is *formatting*, applied to every record
//! and not listed; the rest is *noise*, named by a tag (`surname-typo`,
//! `nickname`, `dob-swapped`, ...) so a join's misses can be traced to it.

use super::calendar;
use super::names::{self, ADOPTED};
use super::people::Identity;
use super::rng::SplitMix64;

/// A record's three fields as written, and the noise in them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub given: String,
    pub family: String,
    /// Empty when the system has no birth date.
    pub birth: String,
    pub noise: Vec<&'static str>,
}

/// Per mille of records with each kind of noise, where the name allows it
/// (a name without a known short form gets none, and so on).
mod rate {
    pub const NICKNAME: u64 = 100;
    pub const INITIAL: u64 = 50;
    pub const GIVEN_TYPO: u64 = 30;
    pub const GIVEN_MIDDLE: u64 = 40;
    pub const GIVEN_TRANSLIT: u64 = 20;
    pub const SURNAME_TYPO: u64 = 80;
    pub const SURNAME_TRANSLIT: u64 = 50;
    pub const SURNAME_CHANGED: u64 = 15;
    pub const DOB_MISSING: u64 = 40;
    pub const DOB_SWAPPED: u64 = 100;
    pub const DOB_OFF: u64 = 30;
}

/// Writes `id` as the unkeyed system holds it.
pub fn write(id: &Identity, r: &mut SplitMix64) -> Written {
    let mut noise = Vec::new();
    let given = given_name(id, r, &mut noise);
    let family = family_name(id, r, &mut noise);
    let birth = birth_date(id.birth, r, &mut noise);
    // Formatting: a third of the records come from screens that keep
    // capitals, or no diacritics, or both.
    let (given, family) = match r.below(100) {
        0..10 => (
            names::ascii_fold(&given).to_uppercase(),
            names::ascii_fold(&family).to_uppercase(),
        ),
        10..20 => (given.to_uppercase(), family.to_uppercase()),
        20..32 => (names::ascii_fold(&given), names::ascii_fold(&family)),
        _ => (given, family),
    };
    Written {
        given,
        family,
        birth,
        noise,
    }
}

/// Draws one of the cases below; `None` when the drawn one does not apply
/// to this name, which then stays as it is.
fn given_name(id: &Identity, r: &mut SplitMix64, noise: &mut Vec<&'static str>) -> String {
    let x = r.below(1000);
    let mut cut = 0;
    let mut next = |n: u64| {
        cut += n;
        x < cut
    };
    let changed = if next(rate::NICKNAME) {
        short_form(id, r).map(|s| (s, "nickname"))
    } else if next(rate::INITIAL) {
        let c = id.given.chars().next().unwrap_or('X');
        Some((
            if r.chance(500) {
                format!("{c}.")
            } else {
                c.to_string()
            },
            "initial",
        ))
    } else if next(rate::GIVEN_TYPO) {
        Some((typo(id.given, r), "given-typo"))
    } else if next(rate::GIVEN_MIDDLE) {
        id.middle
            .map(|m| (format!("{} {m}", id.given), "given+middle"))
    } else if next(rate::GIVEN_TRANSLIT) {
        romanise(id.given, id.region.name, r).map(|s| (s, "given-translit"))
    } else {
        None
    };
    match changed {
        Some((s, tag)) => {
            noise.push(tag);
            s
        }
        None => id.given.to_string(),
    }
}

fn family_name(id: &Identity, r: &mut SplitMix64, noise: &mut Vec<&'static str>) -> String {
    let x = r.below(1000);
    let changed = if x < rate::SURNAME_TYPO {
        Some((typo(id.family, r), "surname-typo"))
    } else if x < rate::SURNAME_TYPO + rate::SURNAME_TRANSLIT {
        romanise(id.family, id.region.name, r).map(|s| (s, "surname-translit"))
    } else if x < rate::SURNAME_TYPO + rate::SURNAME_TRANSLIT + rate::SURNAME_CHANGED {
        // Married, or took the other parent's name: another surname of
        // the same culture.
        let &entry = r.pick(id.region.family);
        let other = names::family_form(entry, id.female);
        (other != id.family).then(|| (other.to_string(), "surname-changed"))
    } else {
        None
    };
    match changed {
        Some((s, tag)) => {
            noise.push(tag);
            s
        }
        None => id.family.to_string(),
    }
}

fn birth_date(day: i64, r: &mut SplitMix64, noise: &mut Vec<&'static str>) -> String {
    let (mut y, mut m, mut d) = calendar::civil(day);
    let x = r.below(1000);
    if x < rate::DOB_MISSING {
        noise.push("dob-missing");
        return String::new();
    }
    if x < rate::DOB_MISSING + rate::DOB_SWAPPED {
        // Keyed month first into a day-first field; the field accepts it
        // only when the day could be a month.
        if d <= 12 && d != m {
            std::mem::swap(&mut d, &mut m);
            noise.push("dob-swapped");
        }
    } else if x < rate::DOB_MISSING + rate::DOB_SWAPPED + rate::DOB_OFF {
        // One part off: a year one out, a neighbouring day, or the month
        // next to it (when the day exists in every month).
        match r.below(4) {
            0 | 1 => y += if r.chance(500) { 1 } else { -1 },
            2 => d = if d < 28 { d + 1 } else { d - 1 },
            _ if d <= 28 => m = if m < 12 { m + 1 } else { m - 1 },
            _ => y += 1,
        }
        noise.push("dob-off");
    }
    match r.below(100) {
        0..40 => format!("{y:04}-{m:02}-{d:02}"),
        40..70 => format!("{d:02}.{m:02}.{y:04}"),
        70..85 => format!("{d:02}/{m:02}/{y:04}"),
        _ => format!("{y:04}{m:02}{d:02}"),
    }
}

/// One keying slip that keeps the first letter: a neighbouring key, two
/// letters transposed, one left out or one doubled. Always differs from
/// the name it is given.
pub fn typo(name: &str, r: &mut SplitMix64) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() < 2 {
        return format!("{name}{}", neighbour('e', r));
    }
    for _ in 0..4 {
        let mut c = chars.clone();
        let i = 1 + r.index(c.len() - 1);
        match r.below(4) {
            1 if i + 1 < c.len() => c.swap(i, i + 1),
            1 if i >= 2 => c.swap(i - 1, i),
            0 | 1 => {
                let n = neighbour(c[i].to_ascii_lowercase(), r);
                c[i] = if c[i].is_uppercase() {
                    n.to_ascii_uppercase()
                } else {
                    n
                };
            }
            2 => {
                c.remove(i);
            }
            _ => c.insert(i, c[i]),
        }
        let out: String = c.into_iter().collect();
        if out != name && out.trim() == out && !out.is_empty() {
            return out;
        }
    }
    format!("{name}{}", neighbour('e', r))
}

/// A key next to `c` on a QWERTY keyboard; any letter for one it has not.
fn neighbour(c: char, r: &mut SplitMix64) -> char {
    const ROWS: [&str; 3] = ["qwertyuiop", "asdfghjkl", "zxcvbnm"];
    for row in ROWS {
        if let Some(p) = row.find(c) {
            let b = row.as_bytes();
            let left = p.checked_sub(1).map(|q| b[q]);
            let right = b.get(p + 1).copied();
            return char::from(match (left, right) {
                (Some(l), Some(rt)) => {
                    if r.chance(500) {
                        l
                    } else {
                        rt
                    }
                }
                (Some(x), None) | (None, Some(x)) => x,
                (None, None) => b'e',
            });
        }
    }
    char::from(b'a' + r.below(26) as u8)
}

/// The usual short forms of given names in the generator's lists.
static SHORT_FORMS: &[(&str, &str)] = &[
    ("Elizabeth", "Liz"),
    ("Elizabeth", "Beth"),
    ("Jennifer", "Jen"),
    ("Jessica", "Jess"),
    ("Rebecca", "Becky"),
    ("Abigail", "Abby"),
    ("Charlotte", "Lottie"),
    ("Amelia", "Millie"),
    ("Megan", "Meg"),
    ("Olivia", "Liv"),
    ("James", "Jim"),
    ("John", "Jack"),
    ("Michael", "Mike"),
    ("Michael", "Micha"),
    ("David", "Dave"),
    ("Robert", "Bob"),
    ("William", "Bill"),
    ("Thomas", "Tom"),
    ("Daniel", "Dan"),
    ("Christopher", "Chris"),
    ("Matthew", "Matt"),
    ("Andrew", "Andy"),
    ("Joshua", "Josh"),
    ("Benjamin", "Ben"),
    ("Patrick", "Pat"),
    ("Katrin", "Kati"),
    ("Franziska", "Franzi"),
    ("Ursula", "Uschi"),
    ("Andreas", "Andi"),
    ("Tobias", "Tobi"),
    ("Maximilian", "Max"),
    ("Matthias", "Matze"),
    ("Benedikt", "Ben"),
    ("Nicolas", "Nico"),
    ("José", "Pepe"),
    ("Alejandro", "Alex"),
    ("Javier", "Javi"),
    ("Sebastián", "Seba"),
    ("Jesús", "Chuy"),
    ("Pilar", "Pili"),
    ("Valentina", "Vale"),
    ("Beatriz", "Bia"),
    ("Rafael", "Rafa"),
    ("Antônio", "Toninho"),
    ("Giuseppe", "Beppe"),
    ("Giuseppe", "Peppe"),
    ("Giovanni", "Gianni"),
    ("Alessandro", "Sandro"),
    ("Lorenzo", "Enzo"),
    ("Federica", "Fede"),
    ("Pieter", "Piet"),
    ("Katarzyna", "Kasia"),
    ("Małgorzata", "Gosia"),
    ("Agnieszka", "Aga"),
    ("Magdalena", "Magda"),
    ("Wojciech", "Wojtek"),
    ("Krzysztof", "Krzysiek"),
    ("Tomasz", "Tomek"),
    ("Zsófia", "Zsófi"),
    ("László", "Laci"),
    ("Konstantinos", "Kostas"),
    ("Eleni", "Lena"),
    ("Aleksandr", "Sasha"),
    ("Dmitri", "Dima"),
    ("Sergei", "Seryozha"),
    ("Alexei", "Lyosha"),
    ("Natalia", "Natasha"),
    ("Ekaterina", "Katya"),
    ("Svetlana", "Sveta"),
    ("Irina", "Ira"),
    ("Olga", "Olya"),
    ("Mykola", "Kolya"),
    ("Mohammed", "Mo"),
    ("Rajesh", "Raj"),
    ("Vikram", "Vicky"),
    ("Ananya", "Anu"),
    ("Oluwaseun", "Seun"),
    ("Olusegun", "Segun"),
];

/// A short form of the given name, or for East and South-East Asian
/// names an English name adopted at work.
fn short_form(id: &Identity, r: &mut SplitMix64) -> Option<String> {
    let forms: Vec<&str> = SHORT_FORMS
        .iter()
        .filter(|(g, _)| *g == id.given)
        .map(|(_, s)| *s)
        .collect();
    if !forms.is_empty() {
        return Some((*r.pick(&forms)).to_string());
    }
    if matches!(
        id.region.name,
        "chinese" | "korean" | "vietnamese" | "southeast-asian"
    ) {
        let (f, m) = ADOPTED;
        return Some((*r.pick(if id.female { f } else { m })).to_string());
    }
    None
}

/// Other romanisations and spellings of a culture's names, as `(from, to)`:
/// `from` is a substring, or with `^` and `$` the name's start or end.
fn romanisations(region: &str) -> &'static [(&'static str, &'static str)] {
    match region {
        "anglo" => &[
            ("Mac", "Mc"),
            ("Mc", "Mac"),
            ("^Smith$", "Smyth"),
            ("^Clark$", "Clarke"),
            ("^Allen$", "Allan"),
            ("^Thompson$", "Thomson"),
            ("^Brooks$", "Brookes"),
            ("^Seán$", "Shaun"),
        ],
        "german" => &[
            ("ü", "ue"),
            ("ö", "oe"),
            ("ä", "ae"),
            ("ß", "ss"),
            ("Ü", "Ue"),
            ("Ö", "Oe"),
            ("eyer$", "eier"),
            ("mann$", "man"),
            ("Sch", "Sh"),
        ],
        "french" => &[("^Lefèvre$", "Lefebvre"), ("^Théo$", "Teo")],
        "spanish" => &[
            ("z$", "s"),
            ("ñ", "nn"),
            ("^Ximena$", "Jimena"),
            ("^Jiménez$", "Giménez"),
            ("^Vázquez$", "Vásquez"),
        ],
        "portuguese" => &[
            ("^Sousa$", "Souza"),
            ("^Thiago$", "Tiago"),
            ("^Luíza$", "Luísa"),
            ("ç", "ss"),
        ],
        "dutch" => &[
            ("ij", "y"),
            ("ssen$", "sen"),
            ("^de ", "De "),
            ("^van ", "Van "),
        ],
        "nordic" => &[
            ("ø", "oe"),
            ("å", "aa"),
            ("Å", "Aa"),
            ("ö", "oe"),
            ("ä", "ae"),
            ("sson$", "son"),
            ("sen$", "son"),
        ],
        "west-slavic" => &[
            ("w", "v"),
            ("W", "V"),
            ("sz", "sh"),
            ("cz", "ch"),
            ("ski$", "sky"),
            ("ř", "rz"),
        ],
        "balkan-hungarian-romanian" => &[
            ("ć", "ch"),
            ("ć", "tj"),
            ("Đ", "Dj"),
            ("cs", "ch"),
            ("sz", "s"),
            ("ó", "o"),
        ],
        "greek" => &[
            ("^Gi", "Y"),
            ("^Y", "Gi"),
            ("ou", "u"),
            ("ch", "h"),
            ("^K", "C"),
        ],
        "east-slavic" => &[
            ("ov$", "off"),
            ("ev$", "eff"),
            ("ks", "x"),
            ("x", "ks"),
            ("i$", "iy"),
            ("ei$", "ey"),
            ("^Yu", "Ju"),
            ("^Sh", "Sch"),
            ("nko$", "nco"),
            ("^Fed", "Fyod"),
            ("ia$", "iya"),
        ],
        "turkish" => &[
            ("ş", "sh"),
            ("ç", "ch"),
            ("ğ", "gh"),
            ("Ş", "Sh"),
            ("Ç", "Ch"),
            ("ö", "oe"),
            ("ü", "ue"),
        ],
        "arabic" => &[
            ("^Mohammed$", "Muhammad"),
            ("^Mohammed$", "Mohamed"),
            ("^Ahmed$", "Ahmad"),
            ("^Youssef$", "Yusuf"),
            ("^Khalid$", "Khaled"),
            ("^Hassan$", "Hasan"),
            ("^Omar$", "Umar"),
            ("^Al-", "El-"),
            ("^El-", "Al-"),
            ("^Al-", "Al "),
            ("^Hussein$", "Husayn"),
            ("^Aisha$", "Aysha"),
            ("^Layla$", "Leila"),
            ("^Mariam$", "Maryam"),
            ("^Nour$", "Noor"),
            ("^Saleh$", "Salih"),
            ("ou", "u"),
        ],
        "south-asian" => &[
            ("ksh", "x"),
            ("oo", "u"),
            ("jee$", "ji"),
            ("ow", "ou"),
            ("^Iyer$", "Aiyar"),
            ("^Imran$", "Emran"),
        ],
        "chinese" => &[
            ("^Zh", "Ch"),
            ("^X", "Hs"),
            ("^Q", "Ch"),
            ("^Li$", "Lee"),
            ("^Wu$", "Woo"),
            ("^Liu$", "Lau"),
            ("^Chen$", "Chan"),
            ("ao", "au"),
            ("-", ""),
        ],
        "japanese" => &[
            ("ō", "ou"),
            ("ō", "oh"),
            ("ū", "uu"),
            ("shi", "si"),
            ("chi", "ti"),
            ("tsu", "tu"),
        ],
        "korean" => &[
            ("^Lee$", "Yi"),
            ("^Lee$", "Rhee"),
            ("^Park$", "Pak"),
            ("^Choi$", "Choe"),
            ("^Jung$", "Chung"),
            ("^Kang$", "Gang"),
            ("^Cho$", "Jo"),
            ("^Yoon$", "Yun"),
            ("^Lim$", "Im"),
            ("^Shin$", "Sin"),
            ("-", ""),
            ("-", " "),
        ],
        "southeast-asian" => &[
            ("^Gonzales$", "Gonzalez"),
            ("^Wijaya$", "Widjaja"),
            ("^Susanto$", "Soesanto"),
            ("^Nugroho$", "Noegroho"),
            ("^Budi$", "Boedi"),
        ],
        _ => &[],
    }
}

/// `name` under one of its culture's other spellings, drawn among those
/// that apply to it; `None` when none does.
pub fn romanise(name: &str, region: &str, r: &mut SplitMix64) -> Option<String> {
    let fits: Vec<(usize, &str, &str)> = romanisations(region)
        .iter()
        .filter_map(|&(from, to)| {
            let (start, end) = (from.starts_with('^'), from.ends_with('$'));
            let bare = from.trim_start_matches('^').trim_end_matches('$');
            let at = match (start, end) {
                (true, true) => (name == bare).then_some(0),
                (true, false) => name.starts_with(bare).then_some(0),
                (false, true) => name.ends_with(bare).then(|| name.len() - bare.len()),
                (false, false) => name.find(bare),
            }?;
            Some((at, bare, to))
        })
        .collect();
    if fits.is_empty() {
        return None;
    }
    let &(at, bare, to) = r.pick(&fits);
    let out = format!("{}{to}{}", &name[..at], &name[at + bare.len()..]);
    (out != name).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_differ_and_keep_the_first_letter() {
        let mut r = SplitMix64::new(7);
        for name in ["Müller", "Li", "O'Brien", "de la Cruz", "Wu", "Anna", "X"] {
            for _ in 0..200 {
                let t = typo(name, &mut r);
                assert_ne!(t, name);
                assert_eq!(t.chars().next(), name.chars().next(), "{name} -> {t}");
                assert!(!t.is_empty() && t.trim() == t, "{name} -> {t:?}");
            }
        }
    }

    #[test]
    fn romanisations_replace_where_they_fit() {
        let mut r = SplitMix64::new(1);
        assert_eq!(
            romanise("Ivanov", "east-slavic", &mut r).as_deref(),
            Some("Ivanoff")
        );
        assert_eq!(
            romanise("Zhang", "chinese", &mut r).as_deref(),
            Some("Chang")
        );
        assert_eq!(romanise("Nowak", "spanish", &mut r), None);
        assert_eq!(romanise("Lin", "chinese", &mut r), None, "^Li$ is whole");
        assert_eq!(
            romanise("Müller", "german", &mut r).as_deref(),
            Some("Mueller")
        );
    }
}
