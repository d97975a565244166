//! Tests of the generator's output and of the bundled example's internal
//! consistency (its SQL source against its database, its truth table against
//! its source files). The bundled files are checked here because they and the
//! generator share one format contract: if either drifts, the same rule files
//! stop loading both.

use super::names::ascii_fold;
use super::rng::SplitMix64;
use super::*;
use crate::connector::sqlite_file::{TableDump, dump_script, dump_table};
use chrono::{NaiveDate, NaiveDateTime};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------- readers ---

/// A parsed row with the line it starts on (header = line 1).
struct Row {
    line: u64,
    fields: Vec<String>,
}

fn parse(text: &str, delimiter: u8) -> (Vec<String>, Vec<Row>) {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    // The physical line the record starts on, counted here: with CRLF
    // endings csv's `Position` points at the LF that ends the previous
    // record, so its `line` is one short.
    let rows = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let mut start = r.position().unwrap().byte() as usize;
            while text.as_bytes().get(start) == Some(&b'\n') {
                start += 1;
            }
            Row {
                line: 1 + count(&text.as_bytes()[..start], b"\n") as u64,
                fields: r.iter().map(str::to_string).collect(),
            }
        })
        .collect();
    (header, rows)
}

fn read_workday(path: &Path) -> (Vec<u8>, Vec<String>, Vec<Row>) {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.starts_with(UTF8_BOM), "{path:?} lacks the UTF-8 BOM");
    let text = std::str::from_utf8(&bytes[UTF8_BOM.len()..]).unwrap();
    let (header, rows) = parse(text, b',');
    (bytes, header, rows)
}

fn read_sap(path: &Path) -> (Vec<u8>, Vec<String>, Vec<Row>) {
    let bytes = std::fs::read(path).unwrap();
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    let (header, rows) = parse(&text, b';');
    (bytes, header, rows)
}

fn dump(path: &Path) -> TableDump {
    dump_table(path, "contractor").unwrap()
}

fn iso_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|_| s.len() == 10)
}

fn sap_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%d.%m.%Y")
        .ok()
        .filter(|_| s.len() == 10)
}

fn is_worker_id(s: &str) -> bool {
    s.len() == 7 && s.starts_with('W') && s[1..].bytes().all(|b| b.is_ascii_digit())
}

/// The name-and-birth-date join key the rules use: family name and the first
/// word of the given name, case- and diacritic-folded and trimmed.
fn join_key(family: &str, given: &str, birth: &str) -> (String, String, String) {
    let fold = |s: &str| ascii_fold(s.trim()).to_lowercase();
    let first = given.split_whitespace().next().unwrap_or_default();
    (fold(family), fold(first), birth.to_string())
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

// ------------------------------------------------------------- generator ---

#[test]
fn splitmix64_matches_the_reference_sequence() {
    let mut r = SplitMix64::new(0);
    assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
    assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
}

#[test]
fn same_inputs_give_byte_identical_files() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let sa = generate(a.path(), 1500, 42).unwrap();
    let sb = generate(b.path(), 1500, 42).unwrap();
    generate(c.path(), 1500, 43).unwrap();
    assert_eq!(sa, sb);
    for file in ["workday.csv", "sap_hr.csv", "contractors.db"] {
        let fa = std::fs::read(a.path().join("fixtures/hr").join(file)).unwrap();
        let fb = std::fs::read(b.path().join("fixtures/hr").join(file)).unwrap();
        let fc = std::fs::read(c.path().join("fixtures/hr").join(file)).unwrap();
        assert!(
            fa == fb,
            "{file} differs between two runs with the same seed"
        );
        assert!(fa != fc, "{file} is the same for two seeds");
    }
    // Generating again over existing files replaces them.
    assert_eq!(generate(a.path(), 1500, 42).unwrap(), sa);
    assert_eq!(
        dump(&a.path().join("fixtures/hr/contractors.db"))
            .rows
            .len(),
        sa.contractor_rows
    );
}

#[test]
fn in_memory_rows_match_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(dir.path(), 800, 7).unwrap();
    let (_, _, wd) = read_workday(&dir.path().join("fixtures/hr/workday.csv"));
    let mem: Vec<Vec<String>> = workday_rows(800, 7).collect();
    assert_eq!(mem.len(), summary.workday_rows);
    assert!(mem.iter().zip(&wd).all(|(m, f)| *m == f.fields));
    let (_, _, sap) = read_sap(&dir.path().join("fixtures/hr/sap_hr.csv"));
    let mem: Vec<Vec<String>> = sap_rows(800, 7).collect();
    assert!(mem.len() == sap.len() && mem.iter().zip(&sap).all(|(m, f)| *m == f.fields));
    assert_eq!(contractor_rows(800, 7).count(), summary.contractor_rows);
    assert_eq!(people(800, 7).len(), 800);
}

#[test]
fn empty_run_writes_headers_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = generate(dir.path(), 0, 1).unwrap();
    assert_eq!((s.workday_rows, s.sap_rows, s.contractor_rows), (0, 0, 0));
    let (_, header, rows) = read_workday(&dir.path().join("fixtures/hr/workday.csv"));
    assert_eq!(header, WORKDAY_HEADER);
    assert!(rows.is_empty());
}

/// Everything a generated run must satisfy to load with the example's rules.
#[test]
fn generated_files_keep_the_source_formats() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(dir.path(), 3000, 2024).unwrap();
    let hr = dir.path().join("fixtures/hr");

    // Workday: BOM, CRLF after every record (a bare LF only inside quotes).
    let (bytes, header, wd) = read_workday(&hr.join("workday.csv"));
    assert_eq!(header, WORKDAY_HEADER);
    assert_eq!(wd.len(), summary.workday_rows);
    assert_eq!(count(&bytes, b"\r\n"), wd.len() + 1);
    assert!(bytes.ends_with(b"\r\n"));
    let ids: HashSet<&str> = wd.iter().map(|r| r.fields[0].as_str()).collect();
    assert_eq!(ids.len(), wd.len(), "Worker_IDs are unique");
    let mut emails = HashSet::new();
    for r in &wd {
        let f = &r.fields;
        assert_eq!(f.len(), 15, "line {}", r.line);
        assert!(is_worker_id(&f[0]), "{f:?}");
        assert!(!f[1].is_empty() && !f[3].is_empty(), "{f:?}");
        let birth = iso_date(&f[5]).unwrap();
        assert!(
            (1955..=2004).contains(&chrono::Datelike::year(&birth)),
            "{f:?}"
        );
        assert!(
            f[6].ends_with("@example.com") && f[6] == f[6].to_lowercase(),
            "{f:?}"
        );
        assert!(emails.insert(f[6].clone()), "e-mail {} twice", f[6]);
        let hire = iso_date(&f[10]).unwrap();
        assert!(hire > birth, "{f:?}");
        match f[12].as_str() {
            "Terminated" => assert!(iso_date(&f[11]).unwrap() >= hire, "{f:?}"),
            "Active" | "Leave" => assert!(f[11].is_empty(), "{f:?}"),
            other => panic!("Worker_Status {other}"),
        }
        if f[9].is_empty() {
            assert_eq!(r.line, 2, "only the CEO has no manager");
        } else {
            assert!(ids.contains(f[9].as_str()), "dangling Manager_ID {}", f[9]);
        }
        assert!(f[14].split('|').all(|p| p.starts_with('+')), "{f:?}");
    }
    assert!(wd.iter().any(|r| r.fields[8].contains(',')));
    assert!(wd.iter().any(|r| r.fields[13].contains('\n')));
    assert!(wd.iter().any(|r| r.fields[14].contains('|')));

    // SAP: Latin-1 (not UTF-8), LF only, 14 fields, SAP dates.
    let (bytes, header, sap) = read_sap(&hr.join("sap_hr.csv"));
    assert_eq!(header, SAP_HEADER);
    assert_eq!(sap.len(), summary.sap_rows);
    assert!(bytes.iter().any(|&b| b >= 0x80), "no diacritics at all");
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "SAP file must be Latin-1"
    );
    assert!(!bytes.contains(&b'\r'));
    let pernrs: HashSet<&str> = sap.iter().map(|r| r.fields[0].as_str()).collect();
    assert_eq!(pernrs.len(), sap.len(), "PERNRs are unique");
    let mut roots = 0;
    for r in &sap {
        let f = &r.fields;
        assert_eq!(f.len(), 14, "line {}", r.line);
        assert!(
            f[0].len() == 8 && f[0].bytes().all(|b| b.is_ascii_digit()),
            "{f:?}"
        );
        assert!(
            f[0].starts_with('0'),
            "PERNR keeps its leading zeros: {f:?}"
        );
        sap_date(&f[4]).unwrap();
        assert!(f[5].is_empty() || ids.contains(f[5].as_str()), "{f:?}");
        if f[8].is_empty() {
            roots += 1;
        } else {
            assert!(pernrs.contains(f[8].as_str()), "dangling VORGS {f:?}");
        }
        let entry = sap_date(&f[9]).unwrap();
        match f[11].as_str() {
            "0" => assert!(sap_date(&f[10]).unwrap() >= entry, "{f:?}"),
            "1" | "3" => assert_eq!(f[10], "31.12.9999"),
            other => panic!("STAT2 {other}"),
        }
        assert_eq!(f[12].len(), 10, "{f:?}");
    }
    assert_eq!(roots, 1, "one managing director without VORGS");

    // Contractors: the example's schema, ISO dates, sponsors are managers.
    let db = dump(&hr.join("contractors.db"));
    assert_eq!(db.ddl, [CONTRACTOR_DDL, CONTRACTOR_INDEX]);
    let rows = db.rows;
    assert_eq!(rows.len(), summary.contractor_rows);
    let by_id: HashMap<&str, &Vec<String>> = wd
        .iter()
        .map(|r| (r.fields[0].as_str(), &r.fields))
        .collect();
    let leads = |title: &str| {
        ["Chief ", "Director, ", "Head of ", "Team Lead, "]
            .iter()
            .any(|p| title.starts_with(p))
            || title.ends_with(" Manager")
    };
    for (i, c) in rows.iter().enumerate() {
        let get = |k: usize| c[k].as_deref();
        assert_eq!(get(0), Some(format!("C-{:04}", i + 1).as_str()));
        assert!(
            get(1).is_some_and(|s| !s.is_empty()) && get(2).is_some(),
            "{c:?}"
        );
        assert!(get(3).is_none_or(|d| iso_date(d).is_some()), "{c:?}");
        assert!(get(4).is_some_and(|e| e.contains('@')), "{c:?}");
        let sponsor = by_id[get(6).unwrap()];
        assert!(
            sponsor[12] == "Active" && leads(&sponsor[8]),
            "{c:?} {sponsor:?}"
        );
        let start = iso_date(get(7).unwrap()).unwrap();
        assert!(
            get(8).is_none_or(|d| iso_date(d).unwrap() >= start),
            "{c:?}"
        );
        match get(9) {
            Some("ended") => assert!(get(8).is_some(), "{c:?}"),
            Some("active") => {}
            other => panic!("status {other:?}"),
        }
        NaiveDateTime::parse_from_str(get(10).unwrap(), "%Y-%m-%dT%H:%M:%S").unwrap();
        assert_eq!(get(11), Some("0"), "no row is deleted: {c:?}");
    }
}

/// The population has the designed shape, and the hard cases arise.
#[test]
fn generated_population_has_the_designed_shape() {
    let n = 20_000;
    let all: Vec<Person> = people(n, 99).collect();
    let wd: Vec<&WorkdayRow> = all.iter().flat_map(|p| &p.workday).collect();
    let sap: Vec<&SapRow> = all.iter().filter_map(|p| p.sap.as_ref()).collect();
    let con: Vec<&ContractorRow> = all.iter().filter_map(|p| p.contractor.as_ref()).collect();
    let share = |k: usize| k as f64 / n as f64;
    let records = share(wd.len() + sap.len() + con.len());
    assert!(
        (0.72..0.80).contains(&share(wd.len())),
        "workday {}",
        wd.len()
    );
    assert!(
        (0.42..0.50).contains(&share(sap.len())),
        "sap {}",
        sap.len()
    );
    assert!(
        (0.22..0.28).contains(&share(con.len())),
        "contractors {}",
        con.len()
    );
    assert!(
        (1.40..1.56).contains(&records),
        "{records} records per person"
    );

    // Half the SAP rows carry the Workday id; most of the others are found
    // in Workday by name and birth date despite SAP's spelling.
    let with_id = sap.iter().filter(|s| !s[5].is_empty()).count();
    assert!((0.45..0.55).contains(&(with_id as f64 / sap.len() as f64)));
    let mut by_key: HashMap<_, Vec<&str>> = HashMap::new();
    for w in &wd {
        by_key
            .entry(join_key(&w[3], &w[1], &w[5]))
            .or_default()
            .push(&w[0]);
    }
    let sap_key = |s: &SapRow| {
        let birth = sap_date(&s[4]).unwrap().format("%Y-%m-%d").to_string();
        join_key(&s[1], &s[2], &birth)
    };
    let without_id: Vec<_> = sap.iter().filter(|s| s[5].is_empty()).collect();
    let found = without_id
        .iter()
        .filter(|s| by_key.contains_key(&sap_key(s)))
        .count();
    let rate = found as f64 / without_id.len() as f64;
    assert!(
        (0.6..0.85).contains(&rate),
        "{rate} of SAP rows without id match by name"
    );
    assert!(
        sap.iter()
            .any(|s| s[5].is_empty() && s[1] == s[1].to_uppercase() && s[1].is_ascii()),
        "no SAP-style upper-case names"
    );
    assert!(
        sap.iter().any(|s| s[2].ends_with('.')),
        "no middle initials"
    );

    // Rehires make a Workday name+birth key ambiguous; same names without
    // the same birth date are common.
    assert!(by_key.values().any(|ids| ids.len() > 1));
    let mut names: HashMap<(&str, &str), usize> = HashMap::new();
    for w in &wd {
        *names.entry((&w[1], &w[3])).or_default() += 1;
    }
    assert!(names.values().filter(|&&k| k > 1).count() > 100);
    assert!(all.iter().any(|p| p.workday.len() == 2));

    // About a fifth of contractors are employees known by e-mail.
    let emails: HashSet<&str> = wd.iter().map(|w| w[6].as_str()).collect();
    let by_mail = con
        .iter()
        .filter(|c| {
            let e = c[4].as_deref().unwrap_or_default().to_lowercase();
            emails.contains(e.as_str())
        })
        .count();
    let rate = by_mail as f64 / con.len() as f64;
    assert!(
        (0.15..0.25).contains(&rate),
        "{rate} of contractors match by e-mail"
    );
    assert!(
        con.iter()
            .any(|c| c[4].as_deref().is_some_and(|e| e.contains("@Example.com")))
    );

    // Status mix.
    let terminated = wd.iter().filter(|w| w[12] == "Terminated").count();
    assert!((0.04..0.12).contains(&(terminated as f64 / wd.len() as f64)));
    assert!(sap.iter().any(|s| s[11] == "0") && sap.iter().any(|s| s[11] == "1"));
    assert!(con.iter().any(|c| c[9].as_deref() == Some("ended")));

    // The manager tree is a tree rooted at the CEO and at least 4 deep.
    let manager: HashMap<&str, &str> = wd
        .iter()
        .filter(|w| !w[9].is_empty())
        .map(|w| (w[0].as_str(), w[9].as_str()))
        .collect();
    let mut deepest = 0;
    for w in &wd {
        let (mut at, mut depth) = (w[0].as_str(), 0);
        while let Some(&m) = manager.get(at) {
            at = m;
            depth += 1;
            assert!(depth < 100, "cycle above {}", w[0]);
        }
        assert_eq!(at, wd[0][0], "{} is not under the CEO", w[0]);
        deepest = deepest.max(depth);
    }
    assert!(deepest >= 4, "tree only {deepest} deep");
}

/// Run with `cargo test --release --lib gen::tests::throughput -- --ignored
/// --nocapture`; `IDSYNC_GEN_PEOPLE` sets the size (default 1,000,000) and
/// `IDSYNC_GEN_OUT` keeps the files in that directory (e.g. `scale-out`).
#[test]
#[ignore = "measures speed; run in release"]
fn throughput() {
    let people: usize = std::env::var("IDSYNC_GEN_PEOPLE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let temp = tempfile::tempdir().unwrap();
    let out =
        std::env::var_os("IDSYNC_GEN_OUT").map_or_else(|| temp.path().to_path_buf(), PathBuf::from);
    let t = std::time::Instant::now();
    let summary = generate(&out, people, 1).unwrap();
    let elapsed = t.elapsed();
    let size: u64 = ["workday.csv", "sap_hr.csv", "contractors.db"]
        .iter()
        .map(|f| {
            std::fs::metadata(out.join("fixtures/hr").join(f))
                .unwrap()
                .len()
        })
        .sum();
    println!(
        "{summary:?} in {:.2} s ({:.0} people/s, {} MB)",
        elapsed.as_secs_f64(),
        people as f64 / elapsed.as_secs_f64(),
        size / 1_000_000
    );
}

// ------------------------------------------------------- bundled example ---

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/hr")
}

#[test]
fn contractors_sql_and_db_hold_the_same_rows() {
    let dir = fixture_dir();
    let sql = std::fs::read_to_string(dir.join("contractors.sql")).unwrap();
    let from_sql = dump_script(&sql, "contractor").unwrap();
    let db = dump(&dir.join("contractors.db"));
    assert_eq!(from_sql.ddl, db.ddl);
    assert_eq!(
        db.ddl,
        [CONTRACTOR_DDL, CONTRACTOR_INDEX],
        "generator and example differ"
    );
    let rows = db.rows;
    assert_eq!(from_sql.rows, rows);
    assert!(rows.len() >= 8);
}

/// The example's rows, split into those an import must accept and the lines
/// it must reject, by the same rules the engine applies.
struct Example {
    workday: HashMap<String, Vec<String>>,
    workday_rejected: BTreeSet<u64>,
    sap: HashMap<String, Vec<String>>,
    sap_rejected: BTreeSet<u64>,
    contractors: HashMap<String, Vec<Option<String>>>,
}

fn load_example() -> Example {
    let dir = fixture_dir();
    let (bytes, header, rows) = read_workday(&dir.join("workday.csv"));
    assert_eq!(header, WORKDAY_HEADER);
    assert_eq!(
        count(&bytes, b"\r\n"),
        rows.len() + 1,
        "CRLF after each record"
    );
    let mut workday = HashMap::new();
    let mut workday_rejected = BTreeSet::new();
    for r in rows {
        let f = &r.fields;
        let ok = f.len() == 15
            && is_worker_id(&f[0])
            && !workday.contains_key(&f[0])
            && iso_date(&f[5]).is_some()
            && iso_date(&f[10]).is_some()
            && (f[11].is_empty() || iso_date(&f[11]).is_some());
        if ok {
            workday.insert(f[0].clone(), r.fields);
        } else {
            workday_rejected.insert(r.line);
        }
    }
    let (bytes, header, rows) = read_sap(&dir.join("sap_hr.csv"));
    assert_eq!(header, SAP_HEADER);
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "SAP file must be Latin-1"
    );
    assert!(!bytes.contains(&b'\r'));
    let mut sap = HashMap::new();
    let mut sap_rejected = BTreeSet::new();
    for r in rows {
        let f = &r.fields;
        let ok = f.len() == 14
            && f[0].len() == 8
            && sap_date(&f[4]).is_some()
            && sap_date(&f[9]).is_some()
            && sap_date(&f[10]).is_some();
        if ok {
            sap.insert(f[0].clone(), r.fields);
        } else {
            sap_rejected.insert(r.line);
        }
    }
    let contractors = dump(&dir.join("contractors.db"))
        .rows
        .into_iter()
        .map(|c| (c[0].clone().unwrap(), c))
        .collect();
    Example {
        workday,
        workday_rejected,
        sap,
        sap_rejected,
        contractors,
    }
}

struct Truth {
    person: String,
    workday: Vec<String>,
    sap: Option<String>,
    contractor: Option<String>,
    expect: String,
    note: String,
}

fn load_truth() -> Vec<Truth> {
    let text = std::fs::read_to_string(fixture_dir().join("truth.csv")).unwrap();
    let (header, rows) = parse(&text, b',');
    assert_eq!(
        header,
        ["person", "workday", "sap", "contractor", "expect", "note"]
    );
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    rows.into_iter()
        .map(|r| {
            let f = r.fields;
            Truth {
                person: f[0].clone(),
                workday: f[1]
                    .split('|')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                sap: some(&f[2]),
                contractor: some(&f[3]),
                expect: f[4].clone(),
                note: f[5].clone(),
            }
        })
        .collect()
}

#[test]
fn truth_lists_every_record_and_every_rejected_line() {
    let ex = load_example();
    let truth = load_truth();
    let mut people = HashSet::new();
    let (mut wd_seen, mut sap_seen, mut con_seen) = (Vec::new(), Vec::new(), Vec::new());
    let (mut wd_rejected, mut sap_rejected) = (BTreeSet::new(), BTreeSet::new());
    for t in &truth {
        assert!(people.insert(t.person.clone()), "{} twice", t.person);
        assert!(!t.note.is_empty(), "{} has no note", t.person);
        if t.expect == "rejected" {
            let line: u64 = t
                .note
                .strip_prefix("line ")
                .and_then(|s| s.split(':').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("{}: note must start with `line N:`", t.person));
            if t.sap.is_some() {
                sap_rejected.insert(line);
            } else {
                wd_rejected.insert(line);
            }
            continue;
        }
        assert!(
            ["merged", "separate", "ambiguous", "out-of-scope"].contains(&t.expect.as_str()),
            "{}: expect {}",
            t.person,
            t.expect
        );
        wd_seen.extend(t.workday.iter().cloned());
        sap_seen.extend(t.sap.iter().cloned());
        con_seen.extend(t.contractor.iter().cloned());
    }
    assert_eq!(wd_rejected, ex.workday_rejected, "rejected Workday lines");
    assert_eq!(sap_rejected, ex.sap_rejected, "rejected SAP lines");
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let keys = |m: Vec<&String>| sorted(m.into_iter().cloned().collect());
    assert_eq!(sorted(wd_seen), keys(ex.workday.keys().collect()));
    assert_eq!(sorted(sap_seen), keys(ex.sap.keys().collect()));
    assert_eq!(sorted(con_seen), keys(ex.contractors.keys().collect()));
}

/// Applies the join rules the example is written for and checks that each
/// person of the truth table comes out as it says.
#[test]
fn truth_agrees_with_the_join_rules() {
    let ex = load_example();
    let mut wd_by_key: HashMap<_, BTreeSet<String>> = HashMap::new();
    let mut wd_by_mail: HashMap<String, BTreeSet<String>> = HashMap::new();
    for (id, f) in &ex.workday {
        wd_by_key
            .entry(join_key(&f[3], &f[1], &f[5]))
            .or_default()
            .insert(id.clone());
        wd_by_mail
            .entry(f[6].to_lowercase())
            .or_default()
            .insert(id.clone());
    }
    // SAP: WORKDAY_ID first, else name and birth date.
    let mut sap_joins: HashMap<&str, BTreeSet<String>> = HashMap::new();
    let mut projected_keys: HashMap<_, String> = HashMap::new();
    for (pernr, f) in &ex.sap {
        let birth = sap_date(&f[4]).unwrap().format("%Y-%m-%d").to_string();
        let key = join_key(&f[1], &f[2], &birth);
        let found = if f[5].is_empty() {
            wd_by_key.get(&key).cloned().unwrap_or_default()
        } else {
            assert!(
                ex.workday.contains_key(&f[5]),
                "{pernr}: unknown WORKDAY_ID"
            );
            BTreeSet::from([f[5].clone()])
        };
        if found.is_empty() {
            projected_keys.insert(key, pernr.clone());
        }
        sap_joins.insert(pernr, found);
    }
    // Contractors: e-mail first, else name and birth date, against Workday
    // and the SAP people who projected.
    let mut con_joins: HashMap<&str, BTreeSet<String>> = HashMap::new();
    for (id, c) in &ex.contractors {
        let mail = c[4].as_deref().unwrap_or_default().to_lowercase();
        let mut found = wd_by_mail.get(&mail).cloned().unwrap_or_default();
        if found.is_empty()
            && let Some(birth) = c[3].as_deref()
        {
            let key = join_key(c[2].as_deref().unwrap(), c[1].as_deref().unwrap(), birth);
            found = wd_by_key.get(&key).cloned().unwrap_or_default();
            if let Some(p) = projected_keys.get(&key) {
                found.insert(format!("sap:{p}"));
            }
        }
        con_joins.insert(id, found);
    }
    for t in load_truth() {
        // Scoping is the rules' business, not the join keys'.
        if t.expect == "rejected" || t.expect == "out-of-scope" {
            continue;
        }
        let listed: BTreeSet<String> = t.workday.iter().cloned().collect();
        let sap = t.sap.as_deref().map(|p| &sap_joins[p]);
        let con = t.contractor.as_deref().map(|c| &con_joins[c]);
        match t.expect.as_str() {
            "merged" => {
                assert_eq!(listed.len(), 1, "{}", t.person);
                assert!(
                    sap.is_none_or(|j| *j == listed),
                    "{}: SAP joins {sap:?}",
                    t.person
                );
                assert!(
                    con.is_none_or(|j| *j == listed),
                    "{}: contractor joins {con:?}",
                    t.person
                );
                assert!(
                    sap.is_some() || con.is_some(),
                    "{}: nothing to merge",
                    t.person
                );
            }
            "separate" => {
                let records =
                    listed.len() + usize::from(t.sap.is_some()) + usize::from(con.is_some());
                assert_eq!(records, 1, "{}", t.person);
                assert!(
                    sap.is_none_or(BTreeSet::is_empty),
                    "{}: SAP joins {sap:?}",
                    t.person
                );
                assert!(
                    con.is_none_or(BTreeSet::is_empty),
                    "{}: contractor joins {con:?}",
                    t.person
                );
            }
            "ambiguous" => {
                assert!(listed.len() > 1, "{}", t.person);
                assert_eq!(sap, Some(&listed), "{}", t.person);
            }
            other => panic!("{}: expect {other}", t.person),
        }
    }
    // Nothing outside the truth table's merges joins anything.
    let merged: usize = sap_joins
        .values()
        .chain(con_joins.values())
        .filter(|j| j.len() == 1)
        .count();
    assert_eq!(merged, 10, "joins: {sap_joins:?} {con_joins:?}");
}
