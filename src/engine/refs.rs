//! Reference attributes (a manager, a sponsor) point at other metaverse
//! objects. A chain that loops back on itself is data worth a warning, not a
//! reason to stop: cycles are found with petgraph and reported with their path.

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use rustc_hash::FxHashMap;

/// Cycles among `edges` (from, to), each as its members in path order,
/// starting from the smallest member; self-references included.
pub(super) fn find_cycles(edges: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let mut graph: DiGraph<usize, ()> = DiGraph::new();
    let mut nodes: FxHashMap<usize, NodeIndex> = FxHashMap::default();
    let mut node =
        |g: &mut DiGraph<usize, ()>, x: usize| *nodes.entry(x).or_insert_with(|| g.add_node(x));
    let mut self_loops = Vec::new();
    for &(a, b) in edges {
        if a == b {
            self_loops.push(vec![a]);
            continue;
        }
        let (na, nb) = (node(&mut graph, a), node(&mut graph, b));
        graph.add_edge(na, nb, ());
    }
    let mut cycles: Vec<Vec<usize>> = tarjan_scc(&graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|component| {
            let members: Vec<usize> = component.iter().map(|&n| graph[n]).collect();
            path_order(&members, edges)
        })
        .collect();
    cycles.extend(self_loops);
    cycles.sort();
    cycles
}

/// Walks the cycle from its smallest member along edges inside it.
fn path_order(members: &[usize], edges: &[(usize, usize)]) -> Vec<usize> {
    let Some(&start) = members.iter().min() else {
        return Vec::new();
    };
    let mut path = vec![start];
    let mut at = start;
    while path.len() < members.len() {
        let next = edges
            .iter()
            .filter(|(a, b)| *a == at && members.contains(b) && !path.contains(b))
            .map(|(_, b)| *b)
            .min();
        match next {
            Some(n) => {
                path.push(n);
                at = n;
            }
            None => break,
        }
    }
    // A strongly connected component that is not one simple loop: list the rest.
    let mut rest: Vec<usize> = members
        .iter()
        .copied()
        .filter(|m| !path.contains(m))
        .collect();
    rest.sort_unstable();
    path.extend(rest);
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_loops_and_self_references_but_not_chains() {
        let edges = [(1, 2), (2, 3), (3, 1), (4, 5), (6, 6), (7, 1)];
        assert_eq!(find_cycles(&edges), vec![vec![1, 2, 3], vec![6]]);
        assert!(find_cycles(&[(1, 2), (2, 3)]).is_empty());
    }
}
