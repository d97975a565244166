//! Import attribute flow: evaluating an agent's flow expressions over one
//! connector-space object. The output is a record keyed by metaverse
//! attribute, plus the flows that failed on this object (recorded, and the
//! object's other flows still apply).

use crate::expr::Context;
use crate::model::{Record, RecordBuilder};
use crate::rules::Agent;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowOut {
    /// Values keyed by metaverse attribute index of the agent's object type.
    pub values: Record,
    /// (metaverse attribute, message) of each flow that failed.
    pub errors: Vec<(u32, String)>,
}

impl FlowOut {
    pub fn failed(&self, attr: u32) -> bool {
        self.errors.iter().any(|(a, _)| *a == attr)
    }
}

pub fn eval_flows(agent: &Agent, attrs: &Record, ctx: &Context) -> FlowOut {
    let mut b = RecordBuilder::default();
    let mut errors = Vec::new();
    for f in &agent.flows {
        // A plain copy is most flows; skip building a Value for it.
        if let Some(src) = f.expr.as_attr() {
            for v in attrs.values(src) {
                b.push(f.target, v);
            }
            continue;
        }
        if let Some(crate::expr::Value::Str(c)) = f.expr.as_const() {
            b.push(f.target, c);
            continue;
        }
        match f.expr.eval(attrs, ctx) {
            Ok(v) => {
                for s in v.to_strings() {
                    b.push_owned(f.target, s);
                }
            }
            Err(e) => errors.push((f.target, e.message)),
        }
    }
    FlowOut {
        values: b.build(),
        errors,
    }
}
