//! Per-stage benchmarks on seeded, realistic HR data (`idsync::gen`) with
//! the bundled example rules: CSV parsing, connector-space staging (store
//! writes), import flows, and the full sync plan (join, projection,
//! precedence, references).
//!
//! The last benchmark plans the same sync with a fuzzy join rule added to
//! SAP, deciding what its exact rules do not find.
//!
//!   cargo bench --bench pipeline
//!   IDSYNC_BENCH_PEOPLE=200000 cargo bench --bench pipeline

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use idsync::app::App;
use idsync::connector::{self, Collect};
use idsync::engine::eval_flows;
use idsync::expr::Context;
use std::path::{Path, PathBuf};

fn people() -> usize {
    std::env::var("IDSYNC_BENCH_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// Generated sources plus a copy of the example rules, laid out like the repository.
fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    idsync::r#gen::generate(dir.path(), people(), 42).expect("generate");
    let rules = dir.path().join("rules/example");
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/example"),
        &rules,
    );
    (dir, rules)
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let p = e.expect("entry").path();
        let t = to.join(p.file_name().expect("name"));
        if p.is_dir() {
            copy(&p, &t);
        } else {
            std::fs::copy(&p, &t).expect("copy");
        }
    }
}

fn benches(c: &mut Criterion) {
    let (dir, rules) = setup();
    let store = dir.path().join("bench.db");
    let mut app = App::open(&rules, &store).expect("open");
    let now = chrono::Utc::now();

    let workday = app.rules.agent("workday").expect("workday").clone();
    let mut rows = Collect::default();
    connector::open(&workday.source)
        .full_import(&mut rows)
        .expect("read");
    let n = rows.objects.len() as u64;

    let mut g = c.benchmark_group("stages");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n));
    g.bench_function("csv parse (workday)", |b| {
        b.iter(|| {
            let mut sink = Collect::default();
            connector::open(&workday.source)
                .full_import(&mut sink)
                .expect("read");
            sink.objects.len()
        })
    });
    g.bench_function("import flows (workday)", |b| {
        b.iter(|| {
            let mut total = 0;
            for o in &rows.objects {
                let ctx = Context {
                    now,
                    object_key: &o.anchor,
                    unique: None,
                };
                total += eval_flows(&workday, &o.attrs, &ctx).values.count(0);
            }
            total
        })
    });
    g.bench_function("stage into store (workday, fresh space)", |b| {
        b.iter_batched(
            || {
                let path = dir.path().join(format!("stage-{}.db", rand_suffix()));
                (idsync::store::Store::open(&path).expect("store"), path)
            },
            |(mut s, path)| {
                let space = s.space("workday").expect("space");
                let tx = s.begin().expect("tx");
                let mut st = tx
                    .stager("workday", &workday.schema, space)
                    .expect("stager");
                for o in &rows.objects {
                    let _ = st
                        .object(&o.anchor, &o.attrs, &workday.schema, o.line)
                        .expect("stage");
                }
                st.finish_full().expect("finish");
                tx.commit().expect("commit");
                drop(s);
                let _ = std::fs::remove_file(path);
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();

    // Stage all three sources once, then plan full syncs over them.
    let run = app.begin_run(None, "bench", now).expect("run");
    let mut records = 0;
    for a in ["workday", "sap", "contractors"] {
        records += app
            .import(a, idsync::app::ImportMode::Full, run, 1, now)
            .expect("import")
            .counts
            .read;
    }
    let mut g = c.benchmark_group("sync");
    g.sample_size(10);
    g.throughput(Throughput::Elements(records));
    g.bench_function(
        "full sync plan (join, project, precedence, references)",
        |b| {
            b.iter_batched(
                || app.prepare_sync(run, now).expect("load"),
                |s| s.plan().counters,
                BatchSize::PerIteration,
            )
        },
    );
    drop(app);

    // The same sources and store, SAP with a fuzzy rule after its exact ones.
    let sap = rules.join("agents/sap.toml");
    let text = std::fs::read_to_string(&sap).expect("sap rules");
    std::fs::write(&sap, format!("{text}\n{SAP_FUZZY}")).expect("write");
    let app = App::open(&rules, &store).expect("open");
    g.bench_function("full sync plan, SAP with a fuzzy join rule", |b| {
        b.iter_batched(
            || app.prepare_sync(run, now).expect("load"),
            |s| s.plan().counters,
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// Hand-set weights: a join needs surname, given name and birth date to
/// agree closely; a swapped day and month waits for review.
const SAP_FUZZY: &str = r#"
[fuzzy_join]
name = "by-person"
fields = [
  { cs = "NACHN", mv = "sn", kind = "name", levels = ["normalised", { jaro-winkler = 0.92 }, { jaro-winkler = 0.8 }] },
  { cs = "VORNA", mv = "givenName", kind = "name", levels = ["normalised", { jaro-winkler = 0.92 }, "initial"] },
  { cs = "GBDAT", mv = "birthDate", kind = "date", levels = ["exact", "date-one-off", "date-swapped"], review_from = "date-swapped" },
]
blocking = [
  { name = "dob", parts = [{ field = "birthDate", transform = "whole" }] },
  { name = "sound+year", parts = [{ field = "sn", transform = "soundex" }, { field = "birthDate", transform = "year" }] },
]
thresholds = { join = 10.0, review = 4.0, margin = 5.0 }

[fuzzy_join.weights]
lambda = 0.0001
fields = [
  { m = [0.85, 0.1, 0.03, 0.02], u = [0.003, 0.01, 0.05, 0.937] },
  { m = [0.85, 0.08, 0.065, 0.005], u = [0.005, 0.01, 0.02, 0.965] },
  { m = [0.95, 0.02, 0.01, 0.02], u = [0.00005, 0.002, 0.0001, 0.99785] },
]
"#;

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
