//! Precedence: computing each metaverse attribute from the flows of every
//! connector of the object.
//!
//! - ranked: the highest agent in the list that is connected and flows a
//!   value wins; a null lets the next agent through (`null = "skip"`) or
//!   clears the attribute (`null = "clear"`);
//! - equal: the most recent change wins: among connectors changed in this
//!   sync the last in sync order; if none changed, the current value stays
//!   while its agent is still connected;
//! - multi-valued: values of all connectors are merged, in precedence order,
//!   without duplicates.
//!
//! A flow that failed on an object keeps the attribute's current value
//! rather than letting a lower source overwrite it.

use super::flow::FlowOut;
use crate::model::{Record, RecordBuilder, RunId};
use crate::rules::{MvType, NullPolicy, Precedence};

/// One attribute's origin in the engine: compact, names are resolved when
/// the object is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct LinEntry {
    pub attr: u32,
    pub agent: u16,
    pub run: RunId,
}

pub(super) struct Contribution<'a> {
    pub agent: usize,
    pub out: &'a FlowOut,
    /// The connector changed in this sync (pending import or newly joined).
    pub changed: bool,
    /// Flow outputs over what the last sync saw, for a pending update.
    pub prev: Option<&'a FlowOut>,
}

impl Contribution<'_> {
    /// Did this connector write attribute `a` in this sync?
    fn wrote(&self, a: u32) -> bool {
        self.changed
            && match self.prev {
                None => true,
                Some(p) => !p.values.values(a).eq(self.out.values.values(a)),
            }
    }
}

/// `flows_into[agent][attr]`: does the agent have a flow into the attribute.
pub(super) fn compute(
    t: &MvType,
    flows_into: &[Vec<bool>],
    contribs: &[Contribution],
    current: &Record,
    current_lin: &[LinEntry],
    run: RunId,
) -> (Record, Vec<LinEntry>) {
    let mut b = RecordBuilder::default();
    let mut lin = Vec::new();
    let of = |agent: usize| contribs.iter().find(|c| c.agent == agent);
    let flows = |agent: usize, attr: u32| {
        flows_into
            .get(agent)
            .and_then(|f| f.get(attr as usize))
            .copied()
            .unwrap_or(false)
    };

    for (ai, attr) in t.attrs.iter().enumerate() {
        let a = ai as u32;
        let old_lin: Vec<&LinEntry> = current_lin.iter().filter(|l| l.attr == a).collect();
        let keep_current = |b: &mut RecordBuilder, lin: &mut Vec<LinEntry>| {
            for v in current.values(a) {
                b.push(a, v);
            }
            lin.extend(old_lin.iter().copied().copied());
        };
        // Winner: (agent, values); None means no value.
        let mut chosen: Option<(usize, Vec<&str>)> = None;

        if attr.multi {
            let order: Vec<usize> = match &attr.precedence {
                Precedence::Ranked(rank) => {
                    let mut o = rank.clone();
                    o.extend(
                        contribs
                            .iter()
                            .map(|c| c.agent)
                            .filter(|x| !rank.contains(x)),
                    );
                    o
                }
                Precedence::Equal => contribs.iter().map(|c| c.agent).collect(),
            };
            let mut seen: Vec<&str> = Vec::new();
            let mut contributors: Vec<usize> = Vec::new();
            let mut failed = false;
            for agent in order {
                let Some(c) = of(agent) else { continue };
                if !flows(agent, a) {
                    continue;
                }
                if c.out.failed(a) {
                    failed = true;
                    break;
                }
                for v in c.out.values.values(a) {
                    if !seen.contains(&v) {
                        seen.push(v);
                        if !contributors.contains(&agent) {
                            contributors.push(agent);
                        }
                    }
                }
            }
            if failed {
                keep_current(&mut b, &mut lin);
                continue;
            }
            let unchanged = seen == current.values(a).collect::<Vec<_>>();
            for v in &seen {
                b.push(a, v);
            }
            for agent in contributors {
                let old_run = old_lin
                    .iter()
                    .find(|l| l.agent as usize == agent)
                    .map(|l| l.run);
                lin.push(LinEntry {
                    attr: a,
                    agent: agent as u16,
                    run: old_run.filter(|_| unchanged).unwrap_or(run),
                });
            }
            continue;
        }

        match &attr.precedence {
            Precedence::Ranked(rank) => {
                let mut failed = false;
                for &agent in rank {
                    let Some(c) = of(agent) else { continue };
                    if !flows(agent, a) {
                        continue;
                    }
                    if c.out.failed(a) {
                        failed = true;
                        break;
                    }
                    let values: Vec<&str> = c.out.values.values(a).collect();
                    if !values.is_empty() || attr.null == NullPolicy::Clear {
                        chosen = Some((agent, values));
                        break;
                    }
                }
                if failed {
                    keep_current(&mut b, &mut lin);
                    continue;
                }
            }
            Precedence::Equal => {
                let writer = contribs.iter().rfind(|c| {
                    flows(c.agent, a)
                        && c.wrote(a)
                        && (c.out.values.count(a) > 0 || c.out.failed(a))
                });
                let current_agent = old_lin.first().map(|l| l.agent as usize).and_then(of);
                if let Some(c) = writer {
                    if c.out.failed(a) {
                        keep_current(&mut b, &mut lin);
                        continue;
                    }
                    chosen = Some((c.agent, c.out.values.values(a).collect()));
                } else if let Some(c) = current_agent {
                    if c.wrote(a) {
                        // The system that set the value has cleared it.
                        chosen = Some((c.agent, Vec::new()));
                    } else {
                        keep_current(&mut b, &mut lin);
                        continue;
                    }
                } else if let Some(c) = contribs
                    .iter()
                    .find(|c| flows(c.agent, a) && c.out.values.count(a) > 0)
                {
                    chosen = Some((c.agent, c.out.values.values(a).collect()));
                }
            }
        }

        if let Some((agent, values)) = chosen {
            let same = values == current.values(a).collect::<Vec<_>>();
            let old = old_lin
                .first()
                .filter(|l| l.agent as usize == agent && same);
            for v in &values {
                b.push(a, v);
            }
            if !values.is_empty() {
                lin.push(LinEntry {
                    attr: a,
                    agent: agent as u16,
                    run: old.map(|l| l.run).unwrap_or(run),
                });
            }
        }
    }
    lin.sort();
    (b.build(), lin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Schema;
    use crate::rules::{AttrType, Deletion, MvAttr};

    fn mvtype(precedence: Precedence, null: NullPolicy, multi: bool) -> MvType {
        MvType {
            name: "person".into(),
            schema: Schema::new(["x"]),
            attrs: vec![MvAttr {
                name: "x".into(),
                kind: AttrType::String,
                multi,
                precedence,
                null,
            }],
            deletion: Deletion::LastConnector,
        }
    }

    fn out(values: &[&str]) -> FlowOut {
        let mut b = RecordBuilder::default();
        for v in values {
            b.push(0, v);
        }
        FlowOut {
            values: b.build(),
            errors: Vec::new(),
        }
    }

    fn rec(values: &[&str]) -> Record {
        out(values).values
    }

    const ALL: &[&[bool]] = &[&[true], &[true], &[true]];

    fn flows() -> Vec<Vec<bool>> {
        ALL.iter().map(|r| r.to_vec()).collect()
    }

    fn run(
        t: &MvType,
        contribs: &[Contribution],
        current: &Record,
        lin: &[LinEntry],
    ) -> (Vec<String>, Vec<LinEntry>) {
        let (r, l) = compute(t, &flows(), contribs, current, lin, 9);
        (r.values(0).map(str::to_string).collect(), l)
    }

    #[test]
    fn ranked_highest_value_wins_and_null_skips_or_clears() {
        let (hi, lo, none) = (out(&["hi"]), out(&["lo"]), out(&[]));
        let skip = mvtype(Precedence::Ranked(vec![0, 1]), NullPolicy::Skip, false);
        let c = [
            Contribution {
                agent: 1,
                out: &lo,
                changed: true,
                prev: None,
            },
            Contribution {
                agent: 0,
                out: &hi,
                changed: false,
                prev: None,
            },
        ];
        assert_eq!(run(&skip, &c, &Record::default(), &[]).0, vec!["hi"]);

        let c = [
            Contribution {
                agent: 0,
                out: &none,
                changed: true,
                prev: None,
            },
            Contribution {
                agent: 1,
                out: &lo,
                changed: true,
                prev: None,
            },
        ];
        let (v, l) = run(&skip, &c, &Record::default(), &[]);
        assert_eq!(v, vec!["lo"]);
        assert_eq!(
            l,
            vec![LinEntry {
                attr: 0,
                agent: 1,
                run: 9
            }]
        );

        let clear = mvtype(Precedence::Ranked(vec![0, 1]), NullPolicy::Clear, false);
        assert!(run(&clear, &c, &rec(&["old"]), &[]).0.is_empty());
    }

    #[test]
    fn ranked_unchanged_value_keeps_its_lineage_run() {
        let t = mvtype(Precedence::Ranked(vec![0]), NullPolicy::Skip, false);
        let v = out(&["same"]);
        let old = [LinEntry {
            attr: 0,
            agent: 0,
            run: 3,
        }];
        let (_, l) = run(
            &t,
            &[Contribution {
                agent: 0,
                out: &v,
                changed: true,
                prev: None,
            }],
            &rec(&["same"]),
            &old,
        );
        assert_eq!(l[0].run, 3);
    }

    #[test]
    fn equal_precedence_last_changed_writer_wins() {
        let t = mvtype(Precedence::Equal, NullPolicy::Skip, false);
        let (a, b) = (out(&["from-a"]), out(&["from-b"]));
        let old = [LinEntry {
            attr: 0,
            agent: 0,
            run: 1,
        }];
        // Nothing changed: the current value stays.
        let c = [
            Contribution {
                agent: 0,
                out: &a,
                changed: false,
                prev: None,
            },
            Contribution {
                agent: 1,
                out: &b,
                changed: false,
                prev: None,
            },
        ];
        assert_eq!(run(&t, &c, &rec(&["from-a"]), &old).0, vec!["from-a"]);
        // Agent 1 changed: its value wins although agent 0 ranks first in order.
        let c = [
            Contribution {
                agent: 0,
                out: &a,
                changed: false,
                prev: None,
            },
            Contribution {
                agent: 1,
                out: &b,
                changed: true,
                prev: None,
            },
        ];
        assert_eq!(run(&t, &c, &rec(&["from-a"]), &old).0, vec!["from-b"]);
    }

    #[test]
    fn multi_values_merge_without_duplicates() {
        let t = mvtype(Precedence::Ranked(vec![1, 0]), NullPolicy::Skip, true);
        let (a, b) = (out(&["x", "y"]), out(&["y", "z"]));
        let c = [
            Contribution {
                agent: 0,
                out: &a,
                changed: true,
                prev: None,
            },
            Contribution {
                agent: 1,
                out: &b,
                changed: true,
                prev: None,
            },
        ];
        let (v, l) = run(&t, &c, &Record::default(), &[]);
        assert_eq!(v, vec!["y", "z", "x"]);
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn failed_flow_keeps_current_value() {
        let t = mvtype(Precedence::Ranked(vec![0, 1]), NullPolicy::Skip, false);
        let bad = FlowOut {
            values: Record::default(),
            errors: vec![(0, "bad date".into())],
        };
        let lo = out(&["lo"]);
        let c = [
            Contribution {
                agent: 0,
                out: &bad,
                changed: true,
                prev: None,
            },
            Contribution {
                agent: 1,
                out: &lo,
                changed: true,
                prev: None,
            },
        ];
        let old = [LinEntry {
            attr: 0,
            agent: 0,
            run: 2,
        }];
        assert_eq!(run(&t, &c, &rec(&["kept"]), &old).0, vec!["kept"]);
    }
}
