//! Checks on a parsed document that must run before async-graphql's own
//! validation: a fragment cycle is bad input, but would otherwise surface as
//! the recursion limit.

use std::collections::{HashMap, HashSet};

use async_graphql::Name;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

fn spreads<'a>(set: &'a SelectionSet, out: &mut Vec<&'a Name>) {
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => spreads(&f.node.selection_set.node, out),
            Selection::FragmentSpread(s) => out.push(&s.node.fragment_name.node),
            Selection::InlineFragment(i) => spreads(&i.node.selection_set.node, out),
        }
    }
}

/// The name of a fragment that spreads itself, directly or through others.
pub fn fragment_cycle(doc: &ExecutableDocument) -> Option<String> {
    let graph: HashMap<&Name, Vec<&Name>> = doc
        .fragments
        .iter()
        .map(|(name, def)| {
            let mut out = Vec::new();
            spreads(&def.node.selection_set.node, &mut out);
            (name, out)
        })
        .collect();
    let mut done: HashSet<&Name> = HashSet::new();
    for start in graph.keys() {
        // Depth-first walk with an explicit stack, so a hostile document
        // cannot overflow ours either.
        let mut on_path: HashSet<&Name> = HashSet::new();
        let mut stack: Vec<(&Name, usize)> = vec![(start, 0)];
        while let Some((name, next)) = stack.pop() {
            if done.contains(name) {
                continue;
            }
            on_path.insert(name);
            let children = graph.get(name).map(Vec::as_slice).unwrap_or_default();
            if let Some(child) = children.get(next) {
                stack.push((name, next + 1));
                if on_path.contains(child) {
                    return Some(child.to_string());
                }
                stack.push((child, 0));
            } else {
                on_path.remove(name);
                done.insert(name);
            }
        }
    }
    None
}
