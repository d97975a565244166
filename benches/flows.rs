//! Flow evaluation: a 10-flow import rule set (the kinds admins write:
//! copies, concatenations, case and diacritic folding, a switch, a date
//! reformat, a conditional) over generated Workday records. Criterion's
//! throughput counts one element per flow per object, so its time per
//! element is the time per flow per object.
//!
//!   cargo bench --bench flows
//!   IDSYNC_BENCH_OBJECTS=1000000 cargo bench --bench flows

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use idsync::engine::eval_flows;
use idsync::expr::Context;
use idsync::model::Record;

use idsync::r#gen::WORKDAY_HEADER as HEADER;

const FLOWS: &str = r#"
[flows.import]
employeeId = "Worker_ID"
givenName = "Legal_First_Name"
sn = "PCase(Legal_Last_Name)"
displayName = 'Coalesce(Preferred_First_Name, Legal_First_Name) & " " & Legal_Last_Name'
mail = 'ToLower(NormalizeDiacritics(Legal_First_Name & "." & Legal_Last_Name)) & "@example.com"'
accountName = 'ToLower(StripSpaces(NormalizeDiacritics(Left(Legal_First_Name, 1) & Legal_Last_Name)))'
department = 'Trim(Department)'
hireDate = 'FormatDateTime(Hire_Date, "yyyy-MM-dd", "dd.MM.yyyy")'
workerStatus = 'Switch(Worker_Status, "unknown", "Active", "active", "Terminated", "leaver", "Leave", "leave")'
employeeType = 'IIF(IsPresent(Termination_Date), "former", "employee")'
"#;

fn benches(c: &mut Criterion) {
    let objects: usize = std::env::var("IDSYNC_BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).expect("mkdir");
    std::fs::write(
        rules.join("mv.toml"),
        "[metaverse.types.person]\nprecedence = [\"hr\"]\n[metaverse.types.person.attributes]\n\
         employeeId = \"string\"\ngivenName = \"string\"\nsn = \"string\"\ndisplayName = \"string\"\n\
         mail = \"string\"\naccountName = \"string\"\ndepartment = \"string\"\nhireDate = \"string\"\n\
         workerStatus = \"string\"\nemployeeType = \"string\"\n",
    )
    .expect("write");
    let attrs: Vec<String> = HEADER.iter().map(|h| format!("{h:?}")).collect();
    std::fs::write(
        rules.join("hr.toml"),
        format!(
            "[agent]\nname = \"hr\"\nkind = \"csv\"\nobject_type = \"person\"\nanchor = \"Worker_ID\"\npath = \"x.csv\"\nattributes = [{}]\n{FLOWS}",
            attrs.join(", ")
        ),
    )
    .expect("write");
    let set = idsync::rules::load(&rules, &|_| None).expect("rules");
    let agent = set.agent("hr").expect("agent").clone();
    assert_eq!(agent.flows.len(), 10);

    let people = objects * 4 / 3 + 10;
    let records: Vec<Record> = idsync::r#gen::workday_rows(people, 42)
        .take(objects)
        .map(|row| {
            let mut b = Record::builder();
            for (i, v) in row.iter().enumerate() {
                b.push(i as u32, v);
            }
            b.build()
        })
        .collect();
    let now = chrono::Utc::now();
    let mut g = c.benchmark_group("flows");
    g.sample_size(10);
    g.throughput(Throughput::Elements(
        (records.len() * agent.flows.len()) as u64,
    ));
    g.bench_function(format!("10 flows x {} objects", records.len()), |b| {
        b.iter(|| {
            let mut n = 0;
            for r in &records {
                let ctx = Context {
                    now,
                    object_key: "hr/x",
                    unique: None,
                };
                let out = eval_flows(&agent, r, &ctx);
                n += out.values.count(0) + out.errors.len();
            }
            n
        })
    });
    g.finish();
}

criterion_group!(flows, benches);
criterion_main!(flows);
