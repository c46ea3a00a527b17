//! Nested pages (a page of children under each of many parents) in one
//! statement: a `UNION ALL` of one index-ordered, limited page per parent, so
//! each page costs what its rows cost however many children follow it.

use std::cmp::Ordering;
use std::collections::HashMap;

use sea_orm::sea_query::{Alias, Asterisk, Query, SelectStatement, UnionType};
use uuid::Uuid;

use super::page::{Page, Window};

/// The `UNION ALL` of `pages`, or `None` for no pages. Each page is wrapped
/// in a select of its own that `columns` fills in: SQLite allows no ORDER BY
/// or LIMIT on a member of a compound select.
pub(super) fn union_all(
    pages: impl IntoIterator<Item = SelectStatement>,
    columns: impl Fn(&mut SelectStatement),
) -> Option<SelectStatement> {
    let mut members = pages.into_iter().enumerate().map(|(n, page)| {
        let mut member = Query::select();
        columns(&mut member);
        member
            .from_subquery(page, Alias::new(format!("p{n}")))
            .to_owned()
    });
    let mut statement = members.next()?;
    for member in members {
        statement.union(UnionType::All, member);
    }
    Some(statement)
}

/// Selects a page's rows as they are.
pub(super) fn every_column(member: &mut SelectStatement) {
    member.column(Asterisk);
}

/// The rows of a `UNION ALL` of pages as each parent's page, for every one
/// of `parents`. A compound select does not promise its members' order, so
/// each page is sorted again by `key`, ascending or not.
pub(super) fn pages_by_parent<M, K: Ord>(
    parents: &[Uuid],
    rows: Vec<M>,
    parent: impl Fn(&M) -> Uuid,
    key: impl Fn(&M) -> K,
    ascending: bool,
    window: &Window,
) -> HashMap<Uuid, Page<M>> {
    let mut grouped: HashMap<Uuid, Vec<M>> = HashMap::new();
    for row in rows {
        grouped.entry(parent(&row)).or_default().push(row);
    }
    let order = |a: &M, b: &M| -> Ordering {
        let ord = key(a).cmp(&key(b));
        if ascending { ord } else { ord.reverse() }
    };
    parents
        .iter()
        .map(|id| {
            let mut rows = grouped.remove(id).unwrap_or_default();
            rows.sort_by(order);
            (*id, window.finish(rows))
        })
        .collect()
}
