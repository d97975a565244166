//! Decisions over scored pairs, never guessing in the grey zone. A left
//! record joins its best candidate only when the score reaches `join` and
//! nothing rivals it: no other candidate of the record, and no other record
//! claiming the same right record, within `margin` of it or at `join`
//! itself. Anything else at or above `review` goes to review with its
//! candidates; below, no match.

use super::score::ScoredPair;
use super::spec::Thresholds;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The best score is under `join`.
    BelowJoin,
    /// Another candidate of the same record comes close.
    RivalCandidate,
    /// Another record claims the same candidate.
    Contested,
    /// The best candidate agrees on a field only at a level that never
    /// joins on its own (this field's index).
    ReviewLevel(u16),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Join {
        left: u32,
        right: u32,
        score: f64,
    },
    /// Candidates at or above `review`, best first.
    Review {
        left: u32,
        why: Why,
        candidates: Vec<(u32, f64)>,
    },
    NoMatch {
        left: u32,
    },
}

impl Decision {
    pub fn left(&self) -> u32 {
        match self {
            Decision::Join { left, .. }
            | Decision::Review { left, .. }
            | Decision::NoMatch { left } => *left,
        }
    }
}

/// One decision per left row `0..left_rows`, in row order.
pub fn decide(scored: &[ScoredPair], left_rows: usize, t: &Thresholds) -> Vec<Decision> {
    // Best first per left record; ties by right row, so order is fixed.
    let mut order: Vec<usize> = (0..scored.len())
        .filter(|&i| (scored[i].left as usize) < left_rows)
        .collect();
    order.sort_unstable_by(|&a, &b| {
        let (x, y) = (&scored[a], &scored[b]);
        x.left
            .cmp(&y.left)
            .then(y.score.total_cmp(&x.score))
            .then(x.right.cmp(&y.right))
    });
    // The two best claims on each right record: (pair index, left).
    let mut claims: rustc_hash::FxHashMap<u32, [Option<usize>; 2]> = Default::default();
    for &i in &order {
        let p = &scored[i];
        let c = claims.entry(p.right).or_default();
        let beats = |j: Option<usize>| j.is_none_or(|j| p.score > scored[j].score);
        if beats(c[0]) {
            c[1] = c[0];
            c[0] = Some(i);
        } else if beats(c[1]) {
            c[1] = Some(i);
        }
    }
    let mut out = Vec::with_capacity(left_rows);
    let mut next = 0;
    for left in 0..left_rows as u32 {
        let start = next;
        while next < order.len() && scored[order[next]].left == left {
            next += 1;
        }
        let mine = &order[start..next];
        let Some(&best) = mine.first() else {
            out.push(Decision::NoMatch { left });
            continue;
        };
        let best = &scored[best];
        if best.score < t.review {
            out.push(Decision::NoMatch { left });
            continue;
        }
        let second = mine.get(1).copied();
        let other_claim = claims.get(&best.right).and_then(|c| {
            c.iter()
                .flatten()
                .copied()
                .find(|&j| scored[j].left != left)
        });
        // A rival within the margin, or one that could join on its own.
        // A rival at a review-only level (a twin's different given name)
        // cannot, so only the margin counts for it.
        let close = |rival: Option<usize>| {
            rival.is_some_and(|j| {
                let r = &scored[j];
                r.score > best.score - t.margin || (r.score >= t.join && r.review_only.is_none())
            })
        };
        let why = if best.score < t.join {
            Some(Why::BelowJoin)
        } else if let Some(f) = best.review_only {
            Some(Why::ReviewLevel(f))
        } else if close(second) {
            Some(Why::RivalCandidate)
        } else if close(other_claim) {
            Some(Why::Contested)
        } else {
            None
        };
        out.push(match why {
            None => Decision::Join {
                left,
                right: best.right,
                score: best.score,
            },
            Some(why) => Decision::Review {
                left,
                why,
                candidates: mine
                    .iter()
                    .map(|&i| (scored[i].right, scored[i].score))
                    .take_while(|(_, s)| *s >= t.review)
                    .collect(),
            },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(left: u32, right: u32, score: f64) -> ScoredPair {
        ScoredPair {
            left,
            right,
            score,
            contributions: vec![],
            review_only: None,
        }
    }

    const T: Thresholds = Thresholds {
        join: 10.0,
        review: 0.0,
        margin: 5.0,
    };

    #[test]
    fn clear_best_joins_grey_zone_reviews_low_is_no_match() {
        let d = decide(
            &[p(0, 3, 20.0), p(0, 4, 2.0), p(1, 5, 6.0), p(2, 6, -4.0)],
            4,
            &T,
        );
        assert_eq!(
            d,
            vec![
                Decision::Join {
                    left: 0,
                    right: 3,
                    score: 20.0
                },
                Decision::Review {
                    left: 1,
                    why: Why::BelowJoin,
                    candidates: vec![(5, 6.0)]
                },
                Decision::NoMatch { left: 2 },
                Decision::NoMatch { left: 3 },
            ]
        );
    }

    #[test]
    fn a_close_rival_candidate_sends_to_review() {
        let d = decide(&[p(0, 4, 13.0), p(0, 3, 16.0), p(0, 5, -3.0)], 1, &T);
        assert_eq!(
            d,
            vec![Decision::Review {
                left: 0,
                why: Why::RivalCandidate,
                candidates: vec![(3, 16.0), (4, 13.0)]
            }]
        );
        // Two candidates both above join are ambiguous however far apart.
        let d = decide(&[p(0, 3, 40.0), p(0, 4, 11.0)], 1, &T);
        assert!(matches!(
            d[0],
            Decision::Review {
                why: Why::RivalCandidate,
                ..
            }
        ));
    }

    #[test]
    fn two_records_claiming_one_candidate_both_go_to_review() {
        let d = decide(&[p(0, 7, 18.0), p(1, 7, 16.0)], 2, &T);
        assert!(matches!(
            d[0],
            Decision::Review {
                why: Why::Contested,
                ..
            }
        ));
        assert!(matches!(
            d[1],
            Decision::Review {
                why: Why::Contested,
                ..
            }
        ));
        // A weak second claim does not block a strong first one, and the
        // weak one joins nothing.
        let d = decide(&[p(0, 7, 18.0), p(1, 7, 3.0)], 2, &T);
        assert!(matches!(d[0], Decision::Join { right: 7, .. }));
        assert!(matches!(
            d[1],
            Decision::Review {
                why: Why::BelowJoin,
                ..
            }
        ));
    }

    #[test]
    fn a_review_only_level_caps_at_review() {
        let mut x = p(0, 1, 40.0);
        x.review_only = Some(2);
        let d = decide(&[x], 1, &T);
        assert!(matches!(
            d[0],
            Decision::Review {
                why: Why::ReviewLevel(2),
                ..
            }
        ));
    }

    #[test]
    fn ties_are_never_joined() {
        let d = decide(&[p(0, 1, 30.0), p(0, 2, 30.0)], 1, &T);
        assert_eq!(
            d,
            vec![Decision::Review {
                left: 0,
                why: Why::RivalCandidate,
                candidates: vec![(1, 30.0), (2, 30.0)]
            }]
        );
    }
}
