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
pub struct LinEntry {
    /// Metaverse types have fewer than 65,536 attributes (the rules check).
    pub attr: u16,
    pub agent: u16,
    /// Runs are numbered from 1; four billion of them is enough.
    pub run: u32,
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

/// What an attribute's value becomes.
enum Pick {
    /// No value.
    Null,
    /// The current value and lineage stay.
    Keep,
    /// Contribution `i`'s values (possibly none, for `null = "clear"`).
    From(usize),
}

/// `flows_into[agent][attr]`: does the agent have a flow into the attribute.
/// `contribs` are sorted by agent (sync order).
pub(super) fn compute(
    t: &MvType,
    flows_into: &[Vec<bool>],
    contribs: &[Contribution],
    current: &Record,
    current_lin: &[LinEntry],
    run: RunId,
) -> (Record, Vec<LinEntry>) {
    let mut b = RecordBuilder::with_capacity(t.attrs.len() + 4, 256);
    let mut lin = Vec::with_capacity(t.attrs.len());
    let flows = |agent: usize, attr: u32| {
        flows_into
            .get(agent)
            .and_then(|f| f.get(attr as usize))
            .copied()
            .unwrap_or(false)
    };
    let of = |agent: usize| contribs.iter().position(|c| c.agent == agent);
    let mut li = 0;
    let run = run as u32;

    for (ai, attr) in t.attrs.iter().enumerate() {
        let a = ai as u32;
        // `current_lin` is sorted by attribute: this attribute's entries are one run of it.
        while li < current_lin.len() && current_lin[li].attr < a as u16 {
            li += 1;
        }
        let start = li;
        while li < current_lin.len() && current_lin[li].attr == a as u16 {
            li += 1;
        }
        let old = &current_lin[start..li];

        if attr.multi {
            merge_multi(
                a, attr, contribs, &flows, current, old, run, &mut b, &mut lin,
            );
            continue;
        }

        let pick = match &attr.precedence {
            Precedence::Ranked(rank) => {
                let mut pick = Pick::Null;
                for &agent in rank {
                    let Some(i) = of(agent) else { continue };
                    if !flows(agent, a) {
                        continue;
                    }
                    let c = &contribs[i];
                    if c.out.failed(a) {
                        pick = Pick::Keep;
                        break;
                    }
                    if c.out.values.count(a) > 0 || attr.null == NullPolicy::Clear {
                        pick = Pick::From(i);
                        break;
                    }
                }
                pick
            }
            Precedence::Equal => {
                let writer = contribs.iter().rposition(|c| {
                    flows(c.agent, a)
                        && c.wrote(a)
                        && (c.out.values.count(a) > 0 || c.out.failed(a))
                });
                let current_agent = old.first().and_then(|l| of(l.agent as usize));
                if let Some(i) = writer {
                    if contribs[i].out.failed(a) {
                        Pick::Keep
                    } else {
                        Pick::From(i)
                    }
                } else if let Some(i) = current_agent {
                    // The system that set the value may have cleared it.
                    if contribs[i].wrote(a) {
                        Pick::From(i)
                    } else {
                        Pick::Keep
                    }
                } else if let Some(i) = contribs
                    .iter()
                    .position(|c| flows(c.agent, a) && c.out.values.count(a) > 0)
                {
                    Pick::From(i)
                } else {
                    Pick::Null
                }
            }
        };

        match pick {
            Pick::Null => {}
            Pick::Keep => {
                for v in current.values(a) {
                    b.push(a, v);
                }
                lin.extend_from_slice(old);
            }
            Pick::From(i) => {
                let c = &contribs[i];
                if c.out.values.count(a) == 0 {
                    continue;
                }
                for v in c.out.values.values(a) {
                    b.push(a, v);
                }
                let same = c.out.values.values(a).eq(current.values(a));
                let kept = old.first().filter(|l| same && l.agent as usize == c.agent);
                lin.push(LinEntry {
                    attr: a as u16,
                    agent: c.agent as u16,
                    run: kept.map(|l| l.run).unwrap_or(run),
                });
            }
        }
    }
    // Exactly sized: the capacity is one entry per attribute, most
    // identities have fewer, and a full sync holds a million of these.
    (b.build(), lin.as_slice().to_vec())
}

/// A multi-valued attribute: every connector's values, in precedence order
/// (ranked agents first, then the rest in sync order), without duplicates.
#[allow(clippy::too_many_arguments)]
fn merge_multi(
    a: u32,
    attr: &crate::rules::MvAttr,
    contribs: &[Contribution],
    flows: &dyn Fn(usize, u32) -> bool,
    current: &Record,
    old: &[LinEntry],
    run: u32,
    b: &mut RecordBuilder,
    lin: &mut Vec<LinEntry>,
) {
    let mut order: Vec<usize> = Vec::with_capacity(contribs.len());
    if let Precedence::Ranked(rank) = &attr.precedence {
        order.extend(
            rank.iter()
                .filter_map(|&ag| contribs.iter().position(|c| c.agent == ag)),
        );
    }
    for i in 0..contribs.len() {
        if !order.contains(&i) {
            order.push(i);
        }
    }
    if order
        .iter()
        .any(|&i| flows(contribs[i].agent, a) && contribs[i].out.failed(a))
    {
        for v in current.values(a) {
            b.push(a, v);
        }
        lin.extend_from_slice(old);
        return;
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut contributors: Vec<usize> = Vec::new();
    for &i in &order {
        let c = &contribs[i];
        if !flows(c.agent, a) {
            continue;
        }
        for v in c.out.values.values(a) {
            if !seen.contains(&v) {
                seen.push(v);
                if !contributors.contains(&c.agent) {
                    contributors.push(c.agent);
                }
            }
        }
    }
    let unchanged = seen.iter().copied().eq(current.values(a));
    for v in &seen {
        b.push(a, v);
    }
    let mut entries: Vec<LinEntry> = contributors
        .into_iter()
        .map(|agent| {
            let old_run = old
                .iter()
                .find(|l| l.agent as usize == agent)
                .map(|l| l.run);
            LinEntry {
                attr: a as u16,
                agent: agent as u16,
                run: old_run.filter(|_| unchanged).unwrap_or(run),
            }
        })
        .collect();
    entries.sort();
    lin.extend(entries);
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
            retain_days: None,
            retained: Vec::new(),
            wake_on: Vec::new(),
            leaver: None,
            authoritative_keys: Vec::new(),
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
