//! Unkeyed records: the generated people described again by a system that
//! never knew their worker ids (an acquired company's payroll, keyed in by
//! hand), for measuring a fuzzy join at scale. Each record has an
//! employee number of its own, a given name, a family name and a birth
//! date, written with the noise of [`super::noise`]. Three in four records
//! are people of the population `generate --people N --seed S` writes (and
//! so of the metaverse a run over those sources builds); the rest are
//! people no other source has.
//!
//! The truth goes to a side file: per record, every source record of the
//! same person as `agent:anchor` under the example's agent names (none for
//! someone new), the noise it was given, and how many people in the
//! metaverse share its person's exact given name, family name and birth
//! date (namesakes no matcher can tell apart).
//!
//! Output depends only on `(people, seed, records)`. The people with an
//! identity are held in memory while they are drawn from (about 150 bytes
//! each).

use super::noise::{self, Written};
use super::people::{Identity, Person};
use super::rng::SplitMix64;
use rustc_hash::FxHashMap;
use std::fs::{self, File};
use std::io;
use std::path::Path;

pub const UNKEYED_HEADER: [&str; 4] = ["EMP_NO", "FIRST_NAME", "LAST_NAME", "BIRTH_DATE"];
pub const TRUTH_HEADER: [&str; 4] = ["EMP_NO", "truth", "noise", "namesakes"];
/// The file names under `OUT/fixtures/hr/`.
pub const UNKEYED_FILE: &str = "legacy.csv";
pub const TRUTH_FILE: &str = "legacy_truth.csv";

/// Per mille of the records that are people of the population.
pub const KNOWN_PER_MILLE: usize = 750;

/// Seeds of the draws, apart from the population's own streams.
const PICK: u64 = 0x756e_6b65_7965_6431;
const NEW: u64 = 0x756e_6b65_7965_6432;
const NOISE: u64 = 0x756e_6b65_7965_6433;

/// One unkeyed record and its truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unkeyed {
    /// `L0000001`, ...: in file order.
    pub number: String,
    pub written: Written,
    /// The person's source records (`workday:W100001`, `sap:00010001`,
    /// `contractors:C-0001`); empty for someone new.
    pub truth: Vec<String>,
    /// Other people with an identity and the same given name, family name
    /// and birth date as this record's person.
    pub namesakes: u32,
}

/// What [`write_unkeyed`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnkeyedSummary {
    pub records: usize,
    /// Records of people with an identity.
    pub known: usize,
    /// Of those, records with noise beyond formatting.
    pub noisy: usize,
    /// People of the population with an identity, drawn from.
    pub population: usize,
}

/// Whether the example's rules give the person an identity: every
/// Workday record projects; an SAP record only while not withdrawn, a
/// contractor record only while active.
fn has_identity(p: &Person) -> bool {
    !p.workday.is_empty()
        || p.sap.as_ref().is_some_and(|s| s[11] != "0")
        || p.contractor
            .as_ref()
            .is_some_and(|c| c[9].as_deref() == Some("active"))
}

fn anchors(p: &Person) -> Vec<String> {
    let mut out: Vec<String> = p
        .workday
        .iter()
        .map(|w| format!("workday:{}", w[0]))
        .collect();
    out.extend(p.sap.as_ref().map(|s| format!("sap:{}", s[0])));
    out.extend(
        p.contractor
            .as_ref()
            .and_then(|c| c[0].as_ref())
            .map(|c| format!("contractors:{c}")),
    );
    out
}

type NameKey = (&'static str, &'static str, i64);

fn name_key(id: &Identity) -> NameKey {
    (id.given, id.family, id.birth)
}

/// The records of a run, in file order.
pub fn unkeyed(people: usize, seed: u64, records: usize) -> (Vec<Unkeyed>, usize) {
    let mut population = super::people(people, seed);
    let mut pool: Vec<(Identity<'static>, Vec<String>)> = Vec::new();
    let mut names: FxHashMap<NameKey, u32> = FxHashMap::default();
    for p in population.by_ref() {
        if has_identity(&p) {
            *names.entry(name_key(&p.identity)).or_default() += 1;
            pool.push((p.identity, anchors(&p)));
        }
    }
    let drawn_from = pool.len();
    let known = (records * KNOWN_PER_MILLE / 1000).min(pool.len());
    // The first `known` of a partial Fisher-Yates shuffle: distinct people.
    let mut r = SplitMix64::stream(seed ^ PICK, 0);
    for i in 0..known {
        let j = i + r.index(pool.len() - i);
        pool.swap(i, j);
    }
    pool.truncate(known);
    let mut all: Vec<(Identity<'static>, Vec<String>)> = pool;
    for j in 0..records - known {
        let id = population.identity(&mut SplitMix64::stream(seed ^ NEW, j as u64));
        all.push((id, Vec::new()));
    }
    for i in (1..all.len()).rev() {
        let j = r.index(i + 1);
        all.swap(i, j);
    }
    let out = all
        .into_iter()
        .enumerate()
        .map(|(k, (id, truth))| {
            let mut r = SplitMix64::stream(seed ^ NOISE, k as u64);
            let same = names.get(&name_key(&id)).copied().unwrap_or(0);
            Unkeyed {
                number: format!("L{:07}", k + 1),
                written: noise::write(&id, &mut r),
                // Known people count themselves among those with the name.
                namesakes: if truth.is_empty() { same } else { same - 1 },
                truth,
            }
        })
        .collect();
    (out, drawn_from)
}

/// Writes `out/fixtures/hr/legacy.csv` (UTF-8, comma, LF) and its truth
/// beside it, `legacy_truth.csv`, replacing files already there. The HR
/// sources are not written.
pub fn write_unkeyed(
    out: &Path,
    people: usize,
    seed: u64,
    records: usize,
) -> io::Result<UnkeyedSummary> {
    let dir = out.join("fixtures").join("hr");
    fs::create_dir_all(&dir)?;
    let (all, population) = unkeyed(people, seed, records);
    let writer = |name: &str| -> io::Result<csv::Writer<File>> {
        Ok(csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(1 << 16)
            .from_writer(File::create(dir.join(name))?))
    };
    let mut file = writer(UNKEYED_FILE)?;
    let mut truth = writer(TRUTH_FILE)?;
    file.write_record(UNKEYED_HEADER)?;
    truth.write_record(TRUTH_HEADER)?;
    let mut summary = UnkeyedSummary {
        records,
        population,
        ..UnkeyedSummary::default()
    };
    for u in &all {
        let w = &u.written;
        file.write_record([&u.number, &w.given, &w.family, &w.birth])?;
        truth.write_record([
            u.number.as_str(),
            &u.truth.join("|"),
            &w.noise.join("|"),
            &u.namesakes.to_string(),
        ])?;
        if !u.truth.is_empty() {
            summary.known += 1;
            summary.noisy += usize::from(!w.noise.is_empty());
        }
    }
    file.flush()?;
    truth.flush()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn same_seed_same_records_other_seed_others() {
        let (a, pa) = unkeyed(3000, 42, 500);
        let (b, pb) = unkeyed(3000, 42, 500);
        assert_eq!((&a, pa), (&b, pb));
        let (c, _) = unkeyed(3000, 43, 500);
        assert_ne!(a, c);
        assert_eq!(a.len(), 500);
        assert_eq!(a[0].number, "L0000001");
        assert_eq!(a[499].number, "L0000500");
    }

    #[test]
    fn shares_of_known_new_and_noisy_records() {
        let (all, population) = unkeyed(20_000, 7, 4000);
        assert!(population > 17_000 && population < 20_000, "{population}");
        let known: Vec<&Unkeyed> = all.iter().filter(|u| !u.truth.is_empty()).collect();
        assert_eq!(known.len(), 3000, "three in four are known people");
        let people: HashSet<&Vec<String>> = known.iter().map(|u| &u.truth).collect();
        assert_eq!(people.len(), known.len(), "each known person once");
        let noisy = known.iter().filter(|u| !u.written.noise.is_empty()).count();
        let share = noisy * 1000 / known.len();
        assert!((250..=450).contains(&share), "noisy per mille: {share}");
        // Every kind of noise occurs, at about its rate.
        let count = |tag: &str| {
            known
                .iter()
                .filter(|u| u.written.noise.contains(&tag))
                .count()
        };
        for (tag, lo, hi) in [
            ("surname-typo", 60, 110),
            ("dob-missing", 25, 60),
            ("dob-swapped", 10, 40),
            ("dob-off", 15, 45),
            ("initial", 30, 75),
            ("nickname", 5, 60),
            ("surname-translit", 5, 50),
            ("surname-changed", 3, 25),
            ("given-typo", 15, 50),
            ("given+middle", 5, 50),
        ] {
            let n = count(tag) * 1000 / known.len();
            assert!((lo..=hi).contains(&n), "{tag}: {n} per mille");
        }
        // Truth anchors name the example's agents.
        for u in &known {
            for a in &u.truth {
                assert!(
                    a.starts_with("workday:W")
                        || a.starts_with("sap:")
                        || a.starts_with("contractors:C-"),
                    "{a}"
                );
            }
        }
    }

    #[test]
    fn written_fields_read_as_the_fuzzy_join_reads_them() {
        let (all, _) = unkeyed(2000, 3, 2000);
        let mut formats = HashSet::new();
        for u in &all {
            let w = &u.written;
            assert!(!w.given.is_empty() && !w.family.is_empty(), "{u:?}");
            let b = &w.birth;
            if b.is_empty() {
                assert!(w.noise.contains(&"dob-missing"), "{u:?}");
                continue;
            }
            let shape: String = b
                .chars()
                .map(|c| if c.is_ascii_digit() { '9' } else { c })
                .collect();
            assert!(
                ["9999-99-99", "99.99.9999", "99/99/9999", "99999999"].contains(&shape.as_str()),
                "{b}"
            );
            formats.insert(shape);
        }
        assert_eq!(formats.len(), 4);
    }

    #[test]
    fn writes_the_records_and_their_truth() {
        let dir = tempfile::tempdir().unwrap();
        let s = write_unkeyed(dir.path(), 1000, 42, 200).unwrap();
        assert_eq!((s.records, s.known), (200, 150));
        let hr = dir.path().join("fixtures/hr");
        let text = std::fs::read_to_string(hr.join(UNKEYED_FILE)).unwrap();
        assert!(text.starts_with("EMP_NO,FIRST_NAME,LAST_NAME,BIRTH_DATE\n"));
        assert_eq!(text.lines().count(), 201);
        let truth = std::fs::read_to_string(hr.join(TRUTH_FILE)).unwrap();
        assert!(truth.starts_with("EMP_NO,truth,noise,namesakes\n"));
        assert_eq!(truth.lines().count(), 201);
        assert!(!hr.join("workday.csv").exists(), "only the unkeyed files");
    }
}
