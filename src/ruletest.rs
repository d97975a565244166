//! Rule unit tests: `[[test]]` blocks in rule files give an agent's input
//! attributes and the metaverse values its import flows must produce.
//! `idsync check` runs them, so admins can test rules before a run does.

use crate::engine::eval_flows;
use crate::expr::Context;
use crate::model::Record;
use crate::rules::RuleSet;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
pub struct TestResult {
    pub name: String,
    pub passed: bool,
    /// `file:line: test "name": ...` when it failed.
    pub message: String,
}

pub fn run_all(rules: &RuleSet, now: DateTime<Utc>) -> Vec<TestResult> {
    rules
        .tests
        .iter()
        .map(|t| {
            let agent = &rules.agents[t.agent];
            let mvt = &rules.metaverse.types[agent.object_type];
            let place = format!("{}:{}: test {:?}", t.file.display(), t.line, t.name);
            let mut problems = Vec::new();
            let mut b = Record::builder();
            for (name, values) in &t.input {
                match agent.schema.get(name) {
                    Some(a) => values.iter().for_each(|v| b.push(a, v)),
                    None => problems.push(format!(
                        "input {name:?} is not an attribute of agent {:?}",
                        agent.name
                    )),
                }
            }
            let input = b.build();
            let key = format!("{}/test", agent.name);
            let out = eval_flows(
                agent,
                &input,
                &Context {
                    now,
                    object_key: &key,
                    unique: None,
                },
            );
            for (attr, msg) in &out.errors {
                problems.push(format!("flow {:?} failed: {msg}", mvt.schema.name(*attr)));
            }
            for (name, expected) in &t.expect {
                let Some(a) = mvt.schema.get(name) else {
                    continue;
                };
                let got: Vec<String> = out.values.values(a).map(str::to_string).collect();
                if &got != expected {
                    problems.push(format!("{name}: expected {expected:?}, got {got:?}"));
                }
            }
            TestResult {
                name: t.name.clone(),
                passed: problems.is_empty(),
                message: if problems.is_empty() {
                    format!("{place}: ok")
                } else {
                    format!("{place}: {}", problems.join("; "))
                },
            }
        })
        .collect()
}
