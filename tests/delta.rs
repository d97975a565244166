//! Delta sync against full sync: the same sources after a day of changes
//! (movers, name changes, leavers, deleted rows, joiners, rehires under a new
//! worker id), imported into two copies of one store; one copy runs a delta
//! sync, the other a full sync. The metaverses must be identical: every
//! identity, value, lineage entry and connector.

mod common;
use common::*;
use idsync::app::App;
use std::path::{Path, PathBuf};

struct Estate {
    env: Env,
}

impl Estate {
    /// Generated HR data for `people` with the example rules, one full run done.
    fn new(people: usize) -> Estate {
        let env = Env::new();
        let out = env.dir.path().to_str().expect("utf-8 path").to_string();
        let g = run(
            &env,
            &env.store(),
            &[
                "generate",
                "--people",
                &people.to_string(),
                "--seed",
                "11",
                "--out",
                &out,
            ],
        );
        assert!(g.status.success(), "{}", stderr(&g));
        copy_dir(&repo().join("rules/example"), &env.path("rules/example"));
        let e = Estate { env };
        let r = e.idsync(&e.env.store(), &["run", "nightly"]);
        assert!(r.status.success(), "{}{}", stdout(&r), stderr(&r));
        e
    }

    fn rules(&self) -> PathBuf {
        self.env.path("rules/example")
    }

    fn idsync(&self, store: &Path, args: &[&str]) -> std::process::Output {
        let rules = self.rules();
        let mut all = vec!["--rules", rules.to_str().expect("utf-8")];
        all.extend_from_slice(args);
        run(&self.env, store, &all)
    }

    fn hr(&self, file: &str) -> PathBuf {
        self.env.path(&format!("fixtures/hr/{file}"))
    }
}

fn run(env: &Env, store: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_idsync"));
    cmd.arg("--store").arg(store).arg("-q").args(args);
    cmd.current_dir(env.dir.path());
    cmd.output().expect("run idsync")
}

type Rows = (csv::StringRecord, Vec<csv::StringRecord>);

fn read(path: &Path, delimiter: u8, latin1: bool) -> Rows {
    let bytes = std::fs::read(path).expect("read source");
    let text: String = if latin1 {
        bytes.iter().map(|&b| b as char).collect()
    } else {
        String::from_utf8(bytes)
            .expect("utf-8")
            .trim_start_matches('\u{feff}')
            .to_string()
    };
    let mut r = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let header = r.headers().expect("header").clone();
    let rows = r.records().map(|x| x.expect("row")).collect();
    (header, rows)
}

fn write(path: &Path, delimiter: u8, latin1: bool, (header, rows): &Rows) {
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_writer(Vec::new());
    w.write_record(header).expect("header");
    for r in rows {
        w.write_record(r).expect("row");
    }
    let text = String::from_utf8(w.into_inner().expect("flush")).expect("utf-8");
    let bytes: Vec<u8> = if latin1 {
        text.chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect()
    } else {
        let mut b = "\u{feff}".as_bytes().to_vec();
        b.extend(text.as_bytes());
        b
    };
    std::fs::write(path, bytes).expect("write source");
}

fn set(
    header: &csv::StringRecord,
    row: &csv::StringRecord,
    col: &str,
    value: &str,
) -> csv::StringRecord {
    let i = header
        .iter()
        .position(|h| h == col)
        .unwrap_or_else(|| panic!("no column {col}"));
    row.iter()
        .enumerate()
        .map(|(j, v)| if j == i { value } else { v })
        .collect()
}

fn get<'r>(header: &csv::StringRecord, row: &'r csv::StringRecord, col: &str) -> &'r str {
    let i = header
        .iter()
        .position(|h| h == col)
        .unwrap_or_else(|| panic!("no column {col}"));
    &row[i]
}

/// A day of HR changes, deterministic.
fn day_two(e: &Estate) {
    let wd = e.hr("workday.csv");
    let (h, rows) = read(&wd, b',', false);
    let mut out = Vec::new();
    let mut gone = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let mut r = r.clone();
        if i % 71 == 5 {
            gone.push(r);
            continue;
        }
        if i % 50 == 3 {
            r = set(&h, &r, "Department", "Reorganisation");
        }
        if i % 97 == 7 {
            let sn = format!("{}-Marsh", get(&h, &r, "Legal_Last_Name"));
            r = set(&h, &r, "Legal_Last_Name", &sn);
        }
        if i % 83 == 11 {
            r = set(&h, &r, "Worker_Status", "Terminated");
            r = set(&h, &r, "Termination_Date", "2026-01-15");
        }
        out.push(r);
    }
    // Rehires under a new worker id: some of those who left come back.
    for (k, r) in gone.iter().enumerate().filter(|(k, _)| k % 2 == 0) {
        out.push(set(&h, r, "Worker_ID", &format!("W9{k:05}")));
    }
    // Joiners, one reporting to the first worker.
    let boss = get(&h, &rows[0], "Worker_ID").to_string();
    for k in 0..15 {
        let mut r = rows[k * 7 + 1].clone();
        r = set(&h, &r, "Worker_ID", &format!("W8{k:05}"));
        r = set(&h, &r, "Legal_First_Name", &format!("Newcomer{k}"));
        r = set(&h, &r, "Preferred_First_Name", "");
        r = set(&h, &r, "Birth_Date", "1999-02-03");
        r = set(&h, &r, "Manager_ID", &boss);
        out.push(r);
    }
    write(&wd, b',', false, &(h, out));

    let sap = e.hr("sap_hr.csv");
    let (h, rows) = read(&sap, b';', true);
    let out: Vec<_> = rows
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 90 != 4)
        .map(|(i, r)| {
            if i % 60 == 9 {
                set(&h, r, "ORGTX", "Umstrukturierung")
            } else {
                r.clone()
            }
        })
        .collect();
    write(&sap, b';', true, &(h, out));
}

/// Every identity with its values, lineage and connectors, in id order.
fn dump(rules: &Path, store: &Path) -> Vec<String> {
    let app = App::open(rules, store).expect("open");
    let schema_of = |t: &str| app.rules.metaverse.get(t).map(|t| &t.schema);
    let mut rows = Vec::new();
    app.store
        .load_mv(&schema_of, &mut |r| rows.push(r))
        .expect("load");
    rows.iter()
        .map(|r| {
            let schema = schema_of(&r.object_type).expect("type");
            let mut links: Vec<String> = app
                .store
                .links_of(r.id)
                .expect("links")
                .into_iter()
                .map(|l| format!("{}:{} {}", l.agent, l.anchor, l.kind))
                .collect();
            links.sort();
            format!(
                "{} {} {} {} {:?} {links:?}",
                r.id,
                idsync::model::json::record_to_json(&r.attrs, schema),
                r.lineage_json,
                r.updated_run,
                r.retained_since
            )
        })
        .collect()
}

fn counters(out: &std::process::Output) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(out), stderr(out)));
    v["counters"].clone()
}

#[test]
fn a_delta_sync_gives_the_metaverse_a_full_sync_gives() {
    let e = Estate::new(1500);
    day_two(&e);
    let full = e.env.path("full.db");
    std::fs::copy(e.env.store(), &full).expect("copy store");
    for store in [&e.env.store(), &full] {
        for agent in ["workday", "sap", "contractors"] {
            let o = e.idsync(store, &["import", agent]);
            assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        }
    }
    let d = e.idsync(
        &e.env.store(),
        &["--json", "sync", "--delta", "--allow-deletes", "1000"],
    );
    assert!(d.status.success(), "{}{}", stdout(&d), stderr(&d));
    let v: serde_json::Value = serde_json::from_slice(&d.stdout).expect("json");
    assert_eq!(v["mode"], "delta", "{v}");
    let f = e.idsync(&full, &["--json", "sync", "--allow-deletes", "1000"]);
    assert!(f.status.success(), "{}{}", stdout(&f), stderr(&f));

    let (a, b) = (dump(&e.rules(), &e.env.store()), dump(&e.rules(), &full));
    assert_eq!(a.len(), b.len());
    let differ: Vec<(&String, &String)> = a.iter().zip(&b).filter(|(x, y)| x != y).collect();
    assert!(
        differ.is_empty(),
        "{} identities differ, first: {:#?}",
        differ.len(),
        &differ[..differ.len().min(3)]
    );

    let (dc, fc) = (counters(&d), counters(&f));
    for k in [
        "joins",
        "projections",
        "disconnects",
        "mv_adds",
        "mv_updates",
        "mv_deletes",
        "mv_retained",
        "mv_revived",
    ] {
        assert_eq!(dc[k], fc[k], "{k}: delta {dc} full {fc}");
    }
    assert!(fc["mv_updates"].as_u64().unwrap_or(0) > 20, "{fc}");
    assert!(fc["mv_retained"].as_u64().unwrap_or(0) > 5, "{fc}");
    assert!(fc["mv_revived"].as_u64().unwrap_or(0) > 2, "{fc}");
    // A delta sync looks only at what changed; a full one at everything.
    assert!(
        dc["processed"].as_u64() < fc["processed"].as_u64(),
        "delta {dc} full {fc}"
    );

    // Nothing changed since: a delta cycle finds nothing to do.
    for agent in ["workday", "sap", "contractors"] {
        assert!(
            e.idsync(&e.env.store(), &["import", agent])
                .status
                .success()
        );
    }
    let again = e.idsync(&e.env.store(), &["--json", "sync", "--delta"]);
    let c = counters(&again);
    assert_eq!(c["processed"], 0, "{c}");
    assert_eq!(c["mv_updates"], 0, "{c}");
}
