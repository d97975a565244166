//! Per-stage benchmarks on seeded, realistic HR data (`idsync::gen`) with
//! the bundled example rules: CSV parsing, connector-space staging (store
//! writes), import flows, and the full sync plan (join, projection,
//! precedence, references).
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
                let tx = s.begin().expect("tx");
                let mut st = tx.stager("workday", &workday.schema).expect("stager");
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
    g.finish();
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
