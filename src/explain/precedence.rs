//! Why an attribute holds the value it does, as pure functions: given what
//! each agent of a ranked precedence offers now and which agent the
//! lineage names, the verdict per agent and a sentence for people
//! ("workday (rank 1) has no value; sap (rank 2) supplied it"). The caller
//! works out the offers from the connectors' staged values.

use serde::Serialize;

/// What one agent offers an attribute, from its connector's staged values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "offer", content = "values", rename_all = "kebab-case")]
pub enum Offer {
    /// The identity has no connector from the agent.
    NotConnected,
    /// The agent has no import flow into the attribute.
    NoFlow,
    /// Connected, with a flow, and the flow gives nothing.
    NoValue,
    /// The flow failed on the object (the message).
    FlowError(String),
    Values(Vec<String>),
}

/// One agent of a ranked precedence, and what became of its offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ranked {
    pub agent: String,
    /// 1 for the highest precedence.
    pub rank: usize,
    #[serde(flatten)]
    pub offer: Offer,
    /// The lineage names this agent: its value is the attribute's.
    pub supplied: bool,
}

/// Each ranked agent's offer against the lineage's `source`, and why the
/// value is the one it is. `clear`: a null from a higher agent clears the
/// attribute instead of letting the next one through.
pub fn ranked(
    offers: &[(String, Offer)],
    source: Option<&str>,
    clear: bool,
) -> (Vec<Ranked>, String) {
    let list: Vec<Ranked> = offers
        .iter()
        .enumerate()
        .map(|(i, (agent, offer))| Ranked {
            agent: agent.clone(),
            rank: i + 1,
            offer: offer.clone(),
            supplied: source == Some(agent.as_str()),
        })
        .collect();
    let name = |r: &Ranked| format!("{} (rank {})", r.agent, r.rank);
    let Some(win) = list.iter().position(|r| r.supplied) else {
        let reason = match source {
            Some(s) => format!("set by {s}, which is not in the precedence list"),
            None => "no recorded origin".to_string(),
        };
        return (list, reason);
    };
    let mut parts: Vec<String> = list[..win]
        .iter()
        .map(|r| {
            let why = match &r.offer {
                Offer::NotConnected => "is not connected",
                Offer::NoFlow => "has no flow into it",
                Offer::NoValue if clear => "has no value (and would clear it at the next sync)",
                Offer::NoValue => "has no value",
                Offer::FlowError(_) => "failed to compute it",
                Offer::Values(_) => "has a value the last sync did not see (a pending import)",
            };
            format!("{} {why}", name(r))
        })
        .collect();
    let w = &list[win];
    parts.push(if win == 0 {
        format!("{} supplied it (the highest precedence)", name(w))
    } else {
        format!("{} supplied it", name(w))
    });
    (list, parts.join("; "))
}

/// Why an attribute under equal precedence holds its value: the last
/// system to change it wins.
pub fn equal(source: Option<(&str, i64)>) -> String {
    match source {
        Some((agent, run)) => {
            format!("equal precedence, the last writer wins: {agent} changed it last (run {run})")
        }
        None => "equal precedence; no recorded origin".to_string(),
    }
}

/// Why a multi-valued attribute holds its values: merged from every
/// connector that flows into it.
pub fn merged(sources: &[&str]) -> String {
    match sources {
        [] => "values of every connector merged; no recorded origin".to_string(),
        [one] => format!("values of every connector merged; only {one} has any"),
        many => format!("values of every connector merged, from {}", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offers(list: &[(&str, Offer)]) -> Vec<(String, Offer)> {
        list.iter()
            .map(|(a, o)| (a.to_string(), o.clone()))
            .collect()
    }

    #[test]
    fn a_lower_source_wins_when_higher_ones_have_no_value() {
        let o = offers(&[
            ("workday", Offer::NoValue),
            ("sap", Offer::Values(vec!["Finanzen".into()])),
            ("contractors", Offer::NotConnected),
        ]);
        let (list, reason) = ranked(&o, Some("sap"), false);
        assert_eq!(
            reason,
            "workday (rank 1) has no value; sap (rank 2) supplied it"
        );
        assert!(list[1].supplied && !list[0].supplied && !list[2].supplied);
        assert_eq!(list[2].rank, 3);
    }

    #[test]
    fn each_higher_source_says_why_it_gave_nothing() {
        let o = offers(&[
            ("workday", Offer::NotConnected),
            ("sap", Offer::NoFlow),
            ("contractors", Offer::Values(vec!["Acme".into()])),
        ]);
        let (_, reason) = ranked(&o, Some("contractors"), true);
        assert_eq!(
            reason,
            "workday (rank 1) is not connected; sap (rank 2) has no flow into it; contractors (rank 3) supplied it"
        );
        let (_, top) = ranked(&o[2..], Some("contractors"), false);
        assert_eq!(
            top,
            "contractors (rank 1) supplied it (the highest precedence)"
        );
    }

    #[test]
    fn a_higher_value_not_yet_synced_and_unknown_sources_are_named() {
        let o = offers(&[
            ("workday", Offer::Values(vec!["x".into()])),
            ("sap", Offer::Values(vec!["y".into()])),
        ]);
        let (_, reason) = ranked(&o, Some("sap"), false);
        assert!(reason.starts_with("workday (rank 1) has a value the last sync did not see"));
        let (_, reason) = ranked(&o, Some("legacy"), false);
        assert_eq!(reason, "set by legacy, which is not in the precedence list");
        let (_, reason) = ranked(&o, None, false);
        assert_eq!(reason, "no recorded origin");
    }

    #[test]
    fn equal_and_merged_name_their_sources() {
        assert_eq!(
            equal(Some(("sap", 4))),
            "equal precedence, the last writer wins: sap changed it last (run 4)"
        );
        assert_eq!(
            merged(&["workday", "sap"]),
            "values of every connector merged, from workday, sap"
        );
    }
}
