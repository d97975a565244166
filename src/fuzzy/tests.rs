//! The whole match on a seeded synthetic population: two systems holding
//! overlapping people, the second with typos, swaps and gaps, plus the cases
//! an identity engine must never get wrong (twins, namesakes) and the ones
//! it must not miss. Weights are trained by EM on the data, as in use.

use super::*;

/// The generator's SplitMix64, with the draws this population is made of.
struct Rng(crate::r#gen::rng::SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const GIVEN: &[&str] = &[
    "james",
    "mary",
    "robert",
    "patricia",
    "john",
    "jennifer",
    "michael",
    "linda",
    "david",
    "elizabeth",
    "william",
    "barbara",
    "richard",
    "susan",
    "joseph",
    "jessica",
    "thomas",
    "sarah",
    "charles",
    "karen",
    "christopher",
    "lisa",
    "daniel",
    "nancy",
    "matthew",
    "betty",
    "anthony",
    "margaret",
    "mark",
    "sandra",
    "donald",
    "ashley",
    "steven",
    "kimberly",
    "paul",
    "emily",
    "andrew",
    "donna",
    "joshua",
    "michelle",
    "kenneth",
    "carol",
    "kevin",
    "amanda",
    "brian",
    "dorothy",
    "george",
    "melissa",
    "timothy",
    "deborah",
    "lukas",
    "sofia",
    "jonas",
    "emma",
    "felix",
    "hannah",
    "leon",
    "lena",
    "noah",
    "mia",
];

const SURNAMES: &[&str] = &[
    "smith",
    "smith",
    "smith",
    "johnson",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "gonzalez",
    "wilson",
    "anderson",
    "taylor",
    "moore",
    "jackson",
    "martin",
    "lee",
    "perez",
    "thompson",
    "white",
    "harris",
    "sanchez",
    "clark",
    "ramirez",
    "lewis",
    "robinson",
    "walker",
    "young",
    "allen",
    "king",
    "wright",
    "scott",
    "torres",
    "nguyen",
    "hill",
    "flores",
    "green",
    "adams",
    "nelson",
    "baker",
    "hall",
    "rivera",
    "campbell",
    "mitchell",
    "carter",
    "roberts",
    "mueller",
    "schmidt",
    "schneider",
    "fischer",
    "weber",
    "meyer",
    "wagner",
    "becker",
    "schulz",
    "hoffmann",
    "koch",
    "richter",
    "klein",
    "wolf",
    "schroeder",
    "neumann",
    "schwarz",
    "zimmermann",
    "braun",
    "krueger",
    "hofmann",
    "hartmann",
    "lange",
    "schmitt",
    "werner",
    "krause",
    "meier",
];

const STREETS: &[&str] = &[
    "main street",
    "oak avenue",
    "park road",
    "station road",
    "church lane",
    "high street",
    "mill lane",
    "bahnhofstrasse",
    "hauptstrasse",
    "lindenweg",
    "schillerstrasse",
    "elm close",
];

#[derive(Clone)]
struct Person {
    given: String,
    surname: String,
    dob: String,
    postcode: String,
    street: String,
}

impl Person {
    fn row(&self) -> Vec<Option<String>> {
        [
            &self.given,
            &self.surname,
            &self.dob,
            &self.postcode,
            &self.street,
        ]
        .iter()
        .map(|s| (!s.is_empty()).then(|| s.to_string()))
        .collect()
    }
}

fn person(rng: &mut Rng) -> Person {
    Person {
        given: rng.pick(GIVEN).into(),
        surname: rng.pick(SURNAMES).into(),
        dob: format!(
            "{}-{:02}-{:02}",
            1950 + rng.below(50),
            1 + rng.below(12),
            1 + rng.below(28)
        ),
        postcode: format!("{}", 1000 + rng.below(900)),
        street: format!("{} {}", 1 + rng.below(120), rng.pick(STREETS)),
    }
}

/// One typo: a letter changed, dropped or two swapped.
fn typo(rng: &mut Rng, s: &str) -> String {
    let mut c: Vec<char> = s.chars().collect();
    if c.len() < 3 {
        return s.into();
    }
    let i = 1 + rng.below(c.len() - 2);
    match rng.below(3) {
        0 => c[i] = (b'a' + rng.below(26) as u8) as char,
        1 => {
            c.remove(i);
        }
        _ => c.swap(i, i + 1),
    }
    c.into_iter().collect()
}

/// The second system's copy: each field typo'd or dropped now and then.
fn corrupt(rng: &mut Rng, p: &Person) -> Person {
    let mut q = p.clone();
    for f in [&mut q.given, &mut q.surname, &mut q.street] {
        if rng.chance(0.1) {
            *f = typo(rng, f);
        } else if rng.chance(0.03) {
            f.clear();
        }
    }
    if rng.chance(0.05) {
        // One digit of the date wrong.
        let mut d: Vec<char> = q.dob.chars().collect();
        let i = [3, 6, 9][rng.below(3)];
        d[i] = if d[i] == '1' { '2' } else { '1' };
        q.dob = d.into_iter().collect();
    } else if rng.chance(0.03) {
        q.dob.clear();
    }
    if rng.chance(0.05) {
        q.postcode = format!("{}", 1000 + rng.below(900));
    }
    q
}

fn spec() -> MatchSpec {
    let name = |n: &str, tf: bool| FieldSpec {
        levels: vec![
            Level::Normalised,
            Level::JaroWinkler(0.92),
            Level::JaroWinkler(0.8),
            Level::Initial,
        ],
        term_frequency: tf,
        ..FieldSpec::name(n)
    };
    let given = FieldSpec {
        review_from: Some(4),
        ..name("given_name", true)
    };
    let street = FieldSpec {
        levels: vec![Level::Normalised, Level::Levenshtein(0.8)],
        term_frequency: false,
        ..FieldSpec::name("street")
    };
    MatchSpec {
        fields: vec![
            given,
            name("surname", true),
            FieldSpec::date("dob"),
            FieldSpec::code("postcode"),
            street,
        ],
        blocking: vec![
            BlockKey::new("dob", &[("dob", Transform::Whole)]),
            BlockKey::new(
                "surname-sound+year",
                &[("surname", Transform::Soundex), ("dob", Transform::Year)],
            ),
            BlockKey::new(
                "given+postcode",
                &[
                    ("given_name", Transform::Prefix(2)),
                    ("postcode", Transform::Whole),
                ],
            ),
        ],
        thresholds: Thresholds {
            join: 10.0,
            review: 0.0,
            margin: 5.0,
        },
    }
}

const COLUMNS: [&str; 5] = ["given_name", "surname", "dob", "postcode", "street"];

fn p(given: &str, surname: &str, dob: &str, postcode: &str, street: &str) -> Person {
    Person {
        given: given.into(),
        surname: surname.into(),
        dob: dob.into(),
        postcode: postcode.into(),
        street: street.into(),
    }
}

/// Left and right tables; `truth[l] = Some(r)` when they are one person.
/// The hand-written cases come first: rows 0.. on both sides.
fn population() -> (Table, Table, Vec<Option<u32>>, usize) {
    let mut left = Table::new(COLUMNS.iter().map(|c| c.to_string()).collect());
    let mut right = left.clone();
    let mut truth = Vec::new();
    let cases = [
        // 0, 1: twins in both systems, each must find only its own row.
        (
            p("anna", "kowalczyk", "1990-05-05", "1234", "7 lindenweg"),
            Some(p("anna", "kowalczyk", "1990-05-05", "1234", "7 lindenweg")),
        ),
        (
            p("maria", "kowalczyk", "1990-05-05", "1234", "7 lindenweg"),
            Some(p("maria", "kowalczyk", "1990-05-05", "1234", "7 lindenweg")),
        ),
        // 2: a twin in the left system only; her sister is right row 2.
        (
            p("julia", "brzezinski", "1988-11-20", "1555", "3 elm close"),
            None,
        ),
        // 3: a namesake: same name, another birth date and address.
        (
            p("john", "smith", "1970-01-01", "1111", "12 main street"),
            None,
        ),
        // 4: a typo'd surname, birth date and given name equal.
        (
            p("kathrin", "oberhauser", "1982-03-14", "1555", "9 mill lane"),
            Some(p(
                "kathrin",
                "oberhuaser",
                "1982-03-14",
                "1555",
                "9 mill lane",
            )),
        ),
        // 5: day and month swapped, all else equal.
        (
            p("pieter", "vandenberg", "1975-04-09", "1777", "40 park road"),
            Some(p(
                "pieter",
                "vandenberg",
                "1975-09-04",
                "1777",
                "40 park road",
            )),
        ),
    ];
    let unmatched_right = [
        // Row 2's twin sister, and row 3's namesake.
        p(
            "katarzyna",
            "brzezinski",
            "1988-11-20",
            "1555",
            "3 elm close",
        ),
        p("john", "smith", "1985-07-23", "1822", "5 oak avenue"),
    ];
    for (l, r) in &cases {
        left.push(l.row());
        match r {
            Some(r) => {
                truth.push(Some(right.len() as u32));
                right.push(r.row());
            }
            None => truth.push(None),
        }
    }
    for r in &unmatched_right {
        right.push(r.row());
    }
    let special = left.len();
    let mut rng = Rng(crate::r#gen::rng::SplitMix64::new(2024));
    for i in 0..3000 {
        let a = person(&mut rng);
        left.push(a.row());
        if i % 3 == 2 {
            truth.push(None);
            right.push(person(&mut rng).row());
        } else {
            truth.push(Some(right.len() as u32));
            right.push(corrupt(&mut rng, &a).row());
        }
    }
    (left, right, truth, special)
}

fn run() -> (Training, Linkage) {
    let (left, right, _, _) = population();
    let spec = spec();
    let sides = prepare(&spec, &left, &right).expect("spec");
    let t = train(&spec, &sides, &EmOptions::default());
    let linkage = link(&spec, &t.params, &sides);
    (t, linkage)
}

fn joined(d: &Decision) -> Option<u32> {
    match d {
        Decision::Join { right, .. } => Some(*right),
        _ => None,
    }
}

#[test]
fn hard_cases_decide_right_with_trained_weights() {
    let (t, linkage) = run();
    assert!(t.converged, "EM did not converge: {t:?}");
    let d = &linkage.decisions;
    // Twins in both systems: each joins its own row, never the sister's.
    assert_eq!(joined(&d[0]), Some(0), "{:?}", d[0]);
    assert_eq!(joined(&d[1]), Some(1), "{:?}", d[1]);
    // A twin whose sister alone is on the other side, and a namesake.
    assert_eq!(joined(&d[2]), None, "twin merged: {:?}", d[2]);
    assert_eq!(joined(&d[3]), None, "namesake merged: {:?}", d[3]);
    assert_eq!(joined(&d[4]), Some(2), "typo'd surname: {:?}", d[4]);
    assert!(
        matches!(&d[5], Decision::Review { candidates, .. } if candidates.first().map(|c| c.0) == Some(3)),
        "day-month swap: {:?}",
        d[5]
    );
}

#[test]
fn the_population_links_with_high_precision_and_recall() {
    let (left, right, truth, special) = population();
    let spec = spec();
    let sides = prepare(&spec, &left, &right).expect("spec");
    let t = train(&spec, &sides, &EmOptions::default());
    let linkage = link(&spec, &t.params, &sides);
    let (mut tp, mut fp, mut reviewed) = (0, 0, 0);
    for d in &linkage.decisions[special..] {
        let truth = truth[d.left() as usize];
        match d {
            Decision::Join { right, .. } if truth == Some(*right) => tp += 1,
            Decision::Join { .. } => fp += 1,
            Decision::Review { candidates, .. }
                if truth.is_some_and(|t| candidates.iter().any(|c| c.0 == t)) =>
            {
                reviewed += 1
            }
            _ => {}
        }
    }
    let links = truth[special..].iter().flatten().count();
    // Every join is right; the matches whose typos pile up (a field in
    // four is typo'd, dropped or changed) go to review, not guessed.
    assert_eq!(fp, 0, "false joins");
    assert!(tp as f64 >= 0.95 * links as f64, "{tp} of {links} joined");
    assert!(
        (tp + reviewed) as f64 >= 0.99 * links as f64,
        "{tp} joined and {reviewed} in review of {links}"
    );
}

#[test]
fn explanations_name_fields_and_levels() {
    let (_, linkage) = run();
    let spec = spec();
    let typo = linkage
        .scored
        .iter()
        .find(|p| p.left == 4 && p.right == 2)
        .expect("typo'd pair is a candidate");
    let e = explain(&spec, typo);
    let levels: Vec<(&str, &str)> = e.iter().map(|(f, l, _)| (f.as_str(), l.as_str())).collect();
    assert_eq!(
        levels,
        [
            ("given_name", "normalised"),
            ("surname", "jaro-winkler >= 0.92"),
            ("dob", "exact"),
            ("postcode", "exact"),
            ("street", "normalised"),
        ]
    );
    let total: f64 = e.iter().map(|(_, _, w)| w).sum();
    assert!(e.iter().all(|(_, _, w)| *w > 0.0), "{e:?}");
    assert!(typo.score < total, "the prior of a rare match is negative");
}

#[test]
fn same_result_on_one_and_four_threads() {
    let on = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
            .install(run)
    };
    let (t1, l1) = on(1);
    let (t4, l4) = on(4);
    assert_eq!(t1, t4);
    assert_eq!(l1, l4);
    assert!(!l1.scored.is_empty());
}

#[test]
fn an_entity_keeps_its_best_record_per_left_record() {
    let pair = |left, right, score| ScoredPair {
        left,
        right,
        score,
        contributions: Vec::new(),
        review_only: None,
    };
    // Rows 0 and 1 are records of entity 0; row 2 is entity 1. Scored out
    // of order, with a tie on entity 0 for left record 1.
    let scored = vec![
        pair(1, 1, 3.0),
        pair(0, 0, 5.0),
        pair(0, 2, 7.0),
        pair(0, 1, 9.0),
        pair(1, 0, 3.0),
    ];
    let (best, rows, index) =
        super::best_per_entity(scored.into_iter().enumerate().collect(), &[0, 0, 1]);
    let got: Vec<(u32, u32, f64)> = best.iter().map(|p| (p.left, p.right, p.score)).collect();
    assert_eq!(got, vec![(0, 0, 9.0), (0, 1, 7.0), (1, 0, 3.0)]);
    assert_eq!(rows, vec![1, 2, 0]);
    assert_eq!(
        index,
        vec![3, 2, 4],
        "each pair's place among those compared"
    );
    // Two records of one entity are not rivals: left 0 joins entity 0.
    let t = Thresholds {
        join: 8.0,
        review: 4.0,
        margin: 1.0,
    };
    assert_eq!(
        decide(&best, 2, &t)[0],
        Decision::Join {
            left: 0,
            right: 0,
            score: 9.0
        }
    );
}

/// Keeping only the pairs that can count (at least `review - margin`)
/// decides exactly as scoring and keeping every compared pair does.
#[test]
fn dropping_pairs_below_the_floor_changes_no_decision() {
    let (left, right, _, _) = population();
    let spec = spec();
    let sides = prepare(&spec, &left, &right).expect("spec");
    let t = train(&spec, &sides, &EmOptions::default());
    let pairs = blocking::candidates(&spec, &sides);
    let g = compare::compare(&spec.fields, &sides, &pairs);
    let weights = Weights::new(&spec.fields, &t.params, &sides);
    let all = score::score(&weights, &sides, &pairs, &g);
    let linkage = link(&spec, &t.params, &sides);
    assert!(
        linkage.scored.len() < all.len() / 2,
        "most pairs are strangers"
    );
    assert_eq!(
        decide(&all, sides.left.len(), &spec.thresholds),
        linkage.decisions
    );
    // A decided pair carries its shares, the same as scoring it alone.
    let joined = linkage
        .decisions
        .iter()
        .find_map(|d| match d {
            Decision::Join { left, right, .. } => Some((*left, *right)),
            _ => None,
        })
        .expect("a join");
    let kept = linkage
        .scored
        .iter()
        .find(|p| (p.left, p.right) == joined)
        .expect("kept");
    let full = all
        .iter()
        .find(|p| (p.left, p.right) == joined)
        .expect("scored");
    assert_eq!(kept, full);
}
