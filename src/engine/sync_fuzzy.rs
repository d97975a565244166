//! The fuzzy join phase of a sync: an agent's `[fuzzy_join]` over the
//! objects its exact rules did not find, and the review queue entries it
//! leaves. Apart from `sync.rs` so the phase it joins stays readable.

use super::*;

impl Sync<'_> {
    /// The agent's fuzzy rule over the objects no exact rule found (by
    /// position in the agent's list), against every identity of its type
    /// that has no connector from the agent yet, in metaverse order.
    pub(super) fn fuzzy_decisions(
        &self,
        a: usize,
        candidates: &[usize],
        decisions: &[Decision],
    ) -> FxHashMap<usize, FuzzyDecision> {
        let agent = &self.rules.agents[a];
        let Some(rule) = &agent.fuzzy else {
            return FxHashMap::default();
        };
        let left: Vec<usize> = candidates
            .iter()
            .zip(decisions)
            .filter(|(i, d)| {
                matches!(d, Decision::NoMatch) && !self.manual.contains_key(&self.cs[a][**i].row.id)
            })
            .map(|(&i, _)| i)
            .collect();
        if left.is_empty() {
            return FxHashMap::default();
        }
        let objects: Vec<(&Record, String)> = left
            .iter()
            .map(|&i| {
                let c = &self.cs[a][i];
                (&c.row.attrs, key_of(&agent.name, &c.row.anchor))
            })
            .collect();
        let eligible = |m: &MvState| {
            !m.deleted && m.ty == agent.object_type && !m.conns().any(|(x, _)| x == a)
        };
        // Only identities sharing a blocking key with an object can be
        // compared, so only they are read for the matcher; a
        // term-frequency weight counts values over all of them.
        let wanted = (!rule.spec.fields.iter().any(|f| f.term_frequency)).then(|| {
            crate::engine::fuzzy_join::object_keys(rule, agent.object_type, &objects, self.now)
        });
        let mvs: Vec<(u32, &Record)> = self
            .mvs
            .par_iter()
            .enumerate()
            .filter(|(_, m)| eligible(m))
            .filter(|(_, m)| wanted.as_ref().is_none_or(|w| w.shares_key(&m.attrs)))
            .map(|(p, m)| (p as u32, &m.attrs))
            .collect();
        let out = crate::engine::fuzzy_join::decide(rule, &objects, &mvs, self.now);
        left.into_iter()
            .zip(out)
            .map(|(i, d)| match d {
                FuzzyDecision::Join { mv, scored } if self.other_key(a, i, mv as usize) => {
                    (i, FuzzyDecision::Review(vec![scored]))
                }
                d => (i, d),
            })
            .collect()
    }

    /// Whether object `i` of agent `a` and identity `p` each hold a key of
    /// one of the agent's exact join rules, and the keys differ: two
    /// workers by the systems' own ids, whatever their names and dates say.
    /// A fuzzy score never merges them; a person may.
    fn other_key(&self, a: usize, i: usize, p: usize) -> bool {
        let agent = &self.rules.agents[a];
        let c = &self.cs[a][i];
        let key = key_of(&agent.name, &c.row.anchor);
        let ctx = self.ctx(&key);
        agent.joins.iter().any(|rule| {
            let mine = crate::engine::join::cs_keys(rule, &c.row.attrs, &ctx).unwrap_or_default();
            let theirs = KeySpec::of(agent, rule).mv_keys(&self.mvs[p].attrs);
            !mine.is_empty() && !theirs.is_empty() && !mine.iter().any(|k| theirs.contains(k))
        })
    }

    /// A fuzzy rule's grey zone: the object waits in the review queue with
    /// its candidates' scores, as an ambiguous join does.
    pub(super) fn defer_review(
        &mut self,
        a: usize,
        i: usize,
        mut scored: Vec<crate::engine::fuzzy_join::Scored>,
    ) {
        let agent = &self.rules.agents[a];
        for s in &mut scored {
            s.mv = self.mvs[s.mv as usize].id;
        }
        let ids: Vec<MvId> = scored.iter().map(|s| s.mv).collect();
        let c = &self.cs[a][i];
        let rule = agent.join_rule_name(agent.joins.len()).to_string();
        let error = SyncError {
            kind: "ambiguous-join",
            agent: Some(agent.name.clone()),
            anchor: Some(c.row.anchor.clone()),
            message: format!(
                "fuzzy join rule {rule:?} found {} candidate(s) it may not join on its own ({}); left unjoined for a decision",
                scored.len(),
                scored
                    .iter()
                    .map(|s| format!("identity {} at {:.2}", s.mv, s.score))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let amb = Ambiguous {
            cs: c.row.id,
            agent: agent.name.clone(),
            anchor: c.row.anchor.clone(),
            rule,
            candidates: ids,
            scores: scored,
        };
        self.deferred
            .insert((a, i), Deferred::Ambiguous(error, amb));
        self.cs[a][i].settled = true;
    }
}
