//! The matcher's kernels on generated HR data: Workday workers against the
//! SAP HR records of the same population (given name, surname and birth
//! date, spelt and formatted differently). Blocking alone, then comparing
//! and scoring the candidate pairs; criterion's throughput counts one
//! element per record (blocking) or per candidate pair (compare + score).
//!
//!   cargo bench --bench fuzzy
//!   IDSYNC_BENCH_PEOPLE=200000 cargo bench --bench fuzzy

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use idsync::fuzzy::{
    self, BlockKey, EmOptions, FieldSpec, Level, MatchSpec, Table, Thresholds, Transform, blocking,
    compare, score,
};

fn table(columns: [&str; 3], rows: impl Iterator<Item = [String; 3]>) -> Table {
    let mut t = Table::new(columns.iter().map(|c| c.to_string()).collect());
    for r in rows {
        t.push(r.into_iter().map(Some).collect());
    }
    t
}

fn benches(c: &mut Criterion) {
    let people: usize = std::env::var("IDSYNC_BENCH_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    const COLUMNS: [&str; 3] = ["given", "surname", "birth"];
    // Workday: Legal_First_Name, Legal_Last_Name, Birth_Date (ISO).
    let left = table(
        COLUMNS,
        idsync::r#gen::workday_rows(people, 42).map(|r| [r[1].clone(), r[3].clone(), r[5].clone()]),
    );
    // SAP: VORNA, NACHN, GBDAT (dd.mm.yyyy).
    let right = table(
        COLUMNS,
        idsync::r#gen::sap_rows(people, 42).map(|r| [r[2].clone(), r[1].clone(), r[4].clone()]),
    );
    let spec = MatchSpec {
        fields: vec![
            FieldSpec {
                levels: vec![
                    Level::Normalised,
                    Level::JaroWinkler(0.92),
                    Level::JaroWinkler(0.8),
                    Level::Initial,
                ],
                ..FieldSpec::name("given")
            },
            FieldSpec::name("surname"),
            FieldSpec::date("birth"),
        ],
        blocking: vec![
            BlockKey::new("birth", &[("birth", Transform::Whole)]),
            BlockKey::new(
                "surname+year",
                &[("surname", Transform::Soundex), ("birth", Transform::Year)],
            ),
        ],
        thresholds: Thresholds::default(),
    };
    let sides = fuzzy::prepare(&spec, &left, &right).expect("spec");
    let pairs = blocking::candidates(&spec, &sides);
    let training = fuzzy::train(&spec, &sides, &EmOptions::default());
    let weights = fuzzy::Weights::new(&spec.fields, &training.params, &sides);

    let mut g = c.benchmark_group("fuzzy");
    g.sample_size(10);
    g.throughput(Throughput::Elements((left.len() + right.len()) as u64));
    g.bench_function(
        format!("block {} x {} records", left.len(), right.len()),
        |b| b.iter(|| blocking::candidates(&spec, &sides).len()),
    );
    g.throughput(Throughput::Elements(pairs.len() as u64));
    g.bench_function(format!("compare + score {} pairs", pairs.len()), |b| {
        b.iter(|| {
            let gammas = compare::compare(&spec.fields, &sides, &pairs);
            score::score(&weights, &sides, &pairs, &gammas).len()
        })
    });
    g.finish();
}

criterion_group!(fuzzy_benches, benches);
criterion_main!(fuzzy_benches);
