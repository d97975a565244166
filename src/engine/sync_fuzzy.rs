//! The fuzzy join phase of a sync: an agent's `[fuzzy_join]` over the
//! objects its exact rules did not find, and the review queue entries it
//! leaves. Apart from `sync.rs` so the phase it joins stays readable.

use super::*;
use crate::engine::fuzzy_join::Row;

impl Sync<'_> {
    /// The agent's fuzzy rule over the objects no exact rule found (by
    /// position in the agent's list), against every identity of its type
    /// that has no connector from the agent yet, in metaverse order.
    pub(super) fn fuzzy_decisions(
        &mut self,
        a: usize,
        candidates: &[usize],
        decisions: &[Decision],
    ) -> FxHashMap<usize, FuzzyDecision> {
        let rules = self.rules;
        let agent = &rules.agents[a];
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
        // Decisions of an earlier pass that nothing since can change are
        // kept; only the other objects are decided again.
        let (kept, left) = self.still_decided(a, left);
        if left.is_empty() {
            return kept;
        }
        // Only identities sharing a blocking key with an object can be
        // compared, so only they are read record by record; a
        // term-frequency weight counts values over all of them, unless a
        // delta sync has them from the last full one.
        let known = self.tf_known.remove(&a);
        let keys = crate::engine::fuzzy_join::object_keys(
            rule,
            agent.object_type,
            &self.objects(a, &left),
            self.now,
        );
        let tf = rule.spec.fields.iter().any(|f| f.term_frequency);
        let picked: Vec<(usize, bool)> = self
            .mvs
            .par_iter()
            .enumerate()
            .filter(|(_, m)| {
                !m.deleted && m.ty == agent.object_type && !m.conns().any(|(x, _)| x == a)
            })
            .map(|(p, m)| (p, keys.shares_key(&m.attrs)))
            .filter(|&(_, shares)| (tf && known.is_none()) || shares)
            .collect();
        // An identity is compared with each record its connectors bring, as
        // well as its own values: their flows must be known.
        let shared: Vec<usize> = picked.iter().filter(|(_, s)| *s).map(|(p, _)| *p).collect();
        self.ensure_flows(&shared);
        let fields = |r: &Record| -> Vec<Option<String>> {
            rule.mv
                .iter()
                .map(|&x| r.values(x).find(|v| !v.trim().is_empty()).map(String::from))
                .collect()
        };
        let mut rows: Vec<Row> = Vec::with_capacity(picked.len());
        for &(p, shares) in &picked {
            let m = &self.mvs[p];
            rows.push(Row::own(p as u32, &m.attrs));
            if !shares {
                continue;
            }
            let mut seen = vec![fields(&m.attrs)];
            for (x, j) in m.conns() {
                let Some(out) = &self.cs[x][j].out else {
                    continue;
                };
                let v = fields(&out.values);
                if v.iter().any(Option::is_some) && !seen.contains(&v) {
                    seen.push(v);
                    rows.push(Row {
                        pos: p as u32,
                        attrs: &out.values,
                        via: Some((x, j)),
                    });
                }
            }
        }
        let out = crate::engine::fuzzy_join::decide(
            rule,
            &self.objects(a, &left),
            &rows,
            self.now,
            known.as_ref(),
        );
        if let Some(k) = known {
            self.tf_known.insert(a, k);
        }
        let mut decided: FxHashMap<usize, FuzzyDecision> = left
            .into_iter()
            .zip(out)
            .map(|(i, d)| {
                let d = match d {
                    FuzzyDecision::Join { mv, mut scored } => {
                        self.name_via(&mut scored);
                        match self.conflict(a, i, mv as usize) {
                            Some(why) => FuzzyDecision::Review(vec![scored], Some(why)),
                            None => FuzzyDecision::Join { mv, scored },
                        }
                    }
                    FuzzyDecision::Review(mut scored, why) => {
                        for s in &mut scored {
                            self.name_via(s);
                        }
                        FuzzyDecision::Review(scored, why)
                    }
                    d => d,
                };
                (i, d)
            })
            .collect();
        decided.extend(kept);
        self.fuzzy_memo
            .insert(a, (self.touched_log.len(), decided.clone()));
        decided
    }

    /// Splits `left` into the objects whose last fuzzy decision still
    /// holds (with it) and those to decide again: an object is decided
    /// again when an identity joined or projected since shares a blocking
    /// key with it or is among its candidates. Identities the agent itself
    /// projected in this sync never were its candidates and change nothing.
    /// Term frequencies moved by the changes are not followed: they weigh a
    /// value by thousands of others.
    fn still_decided(
        &self,
        a: usize,
        left: Vec<usize>,
    ) -> (FxHashMap<usize, FuzzyDecision>, Vec<usize>) {
        let agent = &self.rules.agents[a];
        let (Some(rule), Some((since, memo))) = (&agent.fuzzy, self.fuzzy_memo.get(&a)) else {
            return (FxHashMap::default(), left);
        };
        let mut changed: Vec<usize> = self.touched_log[*since..]
            .iter()
            .map(|&p| p as usize)
            .filter(|&p| {
                let m = &self.mvs[p];
                !(m.orig.is_none() && m.conns().all(|(x, _)| x == a))
            })
            .collect();
        changed.sort_unstable();
        changed.dedup();
        let blocks = crate::engine::fuzzy_join::BlockSpec::of(agent.object_type, rule);
        let hit: rustc_hash::FxHashSet<(usize, String)> = changed
            .iter()
            .flat_map(|&p| {
                let attrs = &self.mvs[p].attrs;
                blocks
                    .iter()
                    .enumerate()
                    .filter_map(move |(b, s)| Some((b, s.mv_key(attrs)?)))
            })
            .collect();
        let changed: rustc_hash::FxHashSet<i64> = changed.iter().map(|&p| p as i64).collect();
        let names_changed = |d: &FuzzyDecision| match d {
            FuzzyDecision::Join { scored, .. } => changed.contains(&scored.mv),
            FuzzyDecision::Review(c, _) => c.iter().any(|s| changed.contains(&s.mv)),
            _ => false,
        };
        let stands: Vec<bool> = left
            .par_iter()
            .map(|&i| {
                let Some(d) = memo.get(&i) else {
                    return false;
                };
                if names_changed(d) {
                    return false;
                }
                let c = &self.cs[a][i];
                let key = key_of(&agent.name, &c.row.anchor);
                let values =
                    crate::engine::fuzzy_join::cs_values(rule, &c.row.attrs, &self.ctx(&key));
                !blocks
                    .iter()
                    .enumerate()
                    .any(|(b, s)| s.cs_key(&values).is_some_and(|k| hit.contains(&(b, k))))
            })
            .collect();
        let mut kept = FxHashMap::default();
        let mut again = Vec::new();
        for (i, s) in left.into_iter().zip(stands) {
            match memo.get(&i) {
                Some(d) if s => {
                    kept.insert(i, d.clone());
                }
                _ => again.push(i),
            }
        }
        (kept, again)
    }

    /// Term frequencies as a full sync ends, per agent whose fuzzy rule
    /// weighs by them: over its objects still unjoined and the identities
    /// it could join. Delta syncs weigh values by them until the next full
    /// sync counts again.
    pub(super) fn count_frequencies(&mut self) {
        let rules = self.rules;
        for (a, agent) in rules.agents.iter().enumerate() {
            let Some(rule) = &agent.fuzzy else {
                continue;
            };
            if !rule.spec.fields.iter().any(|f| f.term_frequency) {
                continue;
            }
            let left: Vec<usize> = (0..self.cs[a].len())
                .filter(|&i| {
                    let c = &self.cs[a][i];
                    c.mv.is_none()
                        && c.in_scope
                        && c.row.pending != Some(crate::model::Delta::Delete)
                })
                .collect();
            let mvs: Vec<&Record> = self
                .mvs
                .iter()
                .filter(|m| {
                    !m.deleted && m.ty == agent.object_type && !m.conns().any(|(x, _)| x == a)
                })
                .map(|m| &m.attrs)
                .collect();
            let objects = self.objects(a, &left);
            // The spec was checked against these columns when compiled.
            if let Ok((sides, _)) =
                crate::engine::fuzzy_join::sides(rule, &objects, mvs.into_iter(), self.now, None)
            {
                self.plan.frequencies.push((a, sides.frequencies()));
            }
        }
    }

    /// Objects of agent `a` as the matcher reads them: attributes and the
    /// expression context's key.
    fn objects(&self, a: usize, which: &[usize]) -> Vec<(&Record, String)> {
        let agent = &self.rules.agents[a];
        which
            .iter()
            .map(|&i| {
                let c = &self.cs[a][i];
                (&c.row.attrs, key_of(&agent.name, &c.row.anchor))
            })
            .collect()
    }

    /// Names the connector a score was read from, for people.
    fn name_via(&self, s: &mut crate::engine::fuzzy_join::Scored) {
        if let Some((x, j)) = s.at {
            s.via = Some(format!(
                "{} {}",
                self.rules.agents[x].name, self.cs[x][j].row.anchor
            ));
        }
    }

    /// Why object `i` of agent `a` may not join identity `p` on a score
    /// alone, whatever the score: the two hold different keys of one of
    /// the agent's exact join rules, or the identity's records and the
    /// object together would hold two values of an authoritative key (two
    /// workers by the systems' own ids). A person may still join them.
    fn conflict(&self, a: usize, i: usize, p: usize) -> Option<String> {
        let agent = &self.rules.agents[a];
        let c = &self.cs[a][i];
        let key = key_of(&agent.name, &c.row.anchor);
        let ctx = self.ctx(&key);
        let m = &self.mvs[p];
        for rule in &agent.joins {
            let mine = crate::engine::join::cs_keys(rule, &c.row.attrs, &ctx).unwrap_or_default();
            let theirs = KeySpec::of(agent, rule).mv_keys(&m.attrs);
            if !mine.is_empty() && !theirs.is_empty() && !mine.iter().any(|k| theirs.contains(k)) {
                return Some(format!(
                    "join rule {:?} reads {} here and {} on identity {}",
                    rule.name,
                    mine.join(", "),
                    theirs.join(", "),
                    m.id
                ));
            }
        }
        let t = &self.rules.metaverse.types[agent.object_type];
        if t.authoritative_keys.is_empty() {
            return None;
        }
        let flowed = eval_flows(agent, &c.row.attrs, &ctx);
        for &k in &t.authoritative_keys {
            let mine: Vec<&str> = flowed.values.values(k).filter(|v| !v.is_empty()).collect();
            if mine.is_empty() {
                continue;
            }
            let mut held: Vec<&str> = m.attrs.values(k).collect();
            for (x, j) in m.conns() {
                if let Some(out) = &self.cs[x][j].out {
                    held.extend(out.values.values(k));
                }
            }
            held.retain(|v| !v.is_empty());
            if !held.is_empty() && !mine.iter().any(|v| held.contains(v)) {
                held.sort_unstable();
                held.dedup();
                return Some(format!(
                    "identity {} holds {} {} and this object would add {}",
                    m.id,
                    t.schema.name(k),
                    held.join(", "),
                    mine.join(", ")
                ));
            }
        }
        None
    }

    /// A fuzzy rule's grey zone: the object waits in the review queue with
    /// its candidates' scores, as an ambiguous join does.
    pub(super) fn defer_review(
        &mut self,
        a: usize,
        i: usize,
        mut scored: Vec<crate::engine::fuzzy_join::Scored>,
        why: Option<String>,
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
            ) + &why.map(|w| format!(": {w}")).unwrap_or_default(),
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
