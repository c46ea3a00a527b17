//! Keyset pagination: page arguments, their limits, and opaque cursors.
//!
//! A cursor is the sort value and id of a row, tagged with the order it was
//! minted for; it is validated on the way in, so a forged or foreign cursor
//! is BAD_CURSOR, never a database error.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::sea_query::{Expr, ExprTrait, Order};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{AppResult, bad_cursor, bad_input, limit_exceeded};

/// Rows in a page when the client names no size.
pub const DEFAULT_PAGE_SIZE: i32 = 20;
/// Most rows in one page.
pub const MAX_PAGE_SIZE: i32 = 100;
/// Deepest `offset` accepted; deeper pages are for cursors.
pub const MAX_OFFSET: i32 = 10_000;

/// `first`/`after`/`last`/`before`/`offset` as the client sent them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
    pub offset: Option<i32>,
}

/// A value a list is sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SortValue {
    Int(i64),
    Float(f64),
}

impl SortValue {
    /// The value as an integer, for ordering integer-sorted lists.
    pub fn as_i64(self) -> i64 {
        match self {
            SortValue::Int(i) => i,
            SortValue::Float(f) => f as i64,
        }
    }
}

impl From<SortValue> for sea_orm::Value {
    fn from(v: SortValue) -> Self {
        match v {
            SortValue::Int(i) => i.into(),
            SortValue::Float(f) => f.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct CursorBody {
    /// The list and order the cursor belongs to, e.g. `task:UPDATED_AT`.
    o: String,
    v: SortValue,
    i: Uuid,
}

/// A decoded cursor: where a page starts or ends.
#[derive(Clone, Debug, PartialEq)]
pub struct Cursor {
    pub value: SortValue,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(order_tag: &str, value: SortValue, id: Uuid) -> String {
        let body = CursorBody {
            o: order_tag.to_owned(),
            v: value,
            i: id,
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).unwrap_or_default())
    }

    /// Decodes a cursor minted for `order_tag` whose value is an integer
    /// (`float_value = false`) or a float.
    pub fn decode(text: &str, order_tag: &str, float_value: bool) -> AppResult<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad_cursor())?;
        let body: CursorBody = serde_json::from_slice(&bytes).map_err(|_| bad_cursor())?;
        let value = match (body.v, float_value) {
            (SortValue::Int(i), false) => SortValue::Int(i),
            (SortValue::Int(i), true) => SortValue::Float(i as f64),
            (SortValue::Float(f), true) if f.is_finite() => SortValue::Float(f),
            _ => return Err(bad_cursor()),
        };
        if body.o != order_tag {
            return Err(bad_cursor());
        }
        Ok(Cursor { value, id: body.i })
    }
}

/// Validated page arguments, ready to become SQL.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// Rows wanted; one more is fetched to learn whether there are more.
    pub size: u64,
    pub offset: u64,
    /// Paging from the end (`last`/`before`): rows are fetched in reverse order.
    pub backward: bool,
    pub after: Option<Cursor>,
    pub before: Option<Cursor>,
}

/// A list size argument, checked like every list's: 0 to `MAX_PAGE_SIZE`.
pub fn page_size(name: &str, n: Option<i32>) -> AppResult<Option<u64>> {
    match n {
        None => Ok(None),
        Some(n) if n < 0 => Err(bad_input(format!("`{name}` must not be negative"))),
        Some(n) if n > MAX_PAGE_SIZE => Err(limit_exceeded(format!(
            "`{name}` must be at most {MAX_PAGE_SIZE}"
        ))),
        Some(n) => Ok(Some(n as u64)),
    }
}

impl Window {
    pub fn new(args: &PageArgs, order_tag: &str, float_value: bool) -> AppResult<Window> {
        let first = page_size("first", args.first)?;
        let last = page_size("last", args.last)?;
        if first.is_some() && last.is_some() {
            return Err(bad_input("pass `first` or `last`, not both"));
        }
        let offset = match args.offset {
            None => 0,
            Some(n) if n < 0 => return Err(bad_input("`offset` must not be negative")),
            Some(n) if n > MAX_OFFSET => {
                return Err(limit_exceeded(format!(
                    "`offset` must be at most {MAX_OFFSET}; use cursors to go deeper"
                )));
            }
            Some(n) => n as u64,
        };
        let decode = |c: &Option<String>| {
            c.as_deref()
                .map(|c| Cursor::decode(c, order_tag, float_value))
                .transpose()
        };
        let backward =
            last.is_some() || (first.is_none() && args.before.is_some() && args.after.is_none());
        Ok(Window {
            size: first.or(last).unwrap_or(DEFAULT_PAGE_SIZE as u64),
            offset,
            backward,
            after: decode(&args.after)?,
            before: decode(&args.before)?,
        })
    }

    /// The direction rows are fetched in, for a list sorted `direction`.
    pub fn fetch_order(&self, ascending: bool) -> Order {
        if ascending != self.backward {
            Order::Asc
        } else {
            Order::Desc
        }
    }

    /// Conditions that keep rows strictly between the cursors, for a list
    /// sorted by `(sort, id)` in the given direction.
    pub fn conditions(&self, sort: &Expr, id: &Expr, ascending: bool) -> Vec<Expr> {
        let beyond = |c: &Cursor, later: bool| {
            let row = Expr::tuple([sort.clone(), id.clone()]);
            let at = Expr::tuple([Expr::val(c.value), Expr::val(c.id)]);
            if later == ascending {
                row.gt(at)
            } else {
                row.lt(at)
            }
        };
        let mut out = Vec::new();
        if let Some(c) = &self.after {
            out.push(beyond(c, true));
        }
        if let Some(c) = &self.before {
            out.push(beyond(c, false));
        }
        out
    }

    /// Turns `size + 1` fetched rows into a page in display order.
    pub fn finish<T>(&self, mut rows: Vec<T>) -> Page<T> {
        let more = rows.len() as u64 > self.size;
        rows.truncate(self.size as usize);
        if self.backward {
            rows.reverse();
            Page {
                rows,
                has_next_page: self.before.is_some(),
                has_previous_page: more,
            }
        } else {
            Page {
                rows,
                has_next_page: more,
                has_previous_page: self.after.is_some() || self.offset > 0,
            }
        }
    }
}

/// One page of rows, in display order.
#[derive(Debug)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Page {
            rows: Vec::new(),
            has_next_page: false,
            has_previous_page: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_orders() {
        let id = Uuid::now_v7();
        let text = Cursor::encode("task:TOTAL", SortValue::Int(7), id);
        let back = Cursor::decode(&text, "task:TOTAL", false).unwrap();
        assert_eq!(
            back,
            Cursor {
                value: SortValue::Int(7),
                id
            }
        );
        assert!(Cursor::decode(&text, "task:FAILED", false).is_err());
        assert!(Cursor::decode("not-a-cursor", "task:TOTAL", false).is_err());
    }

    #[test]
    fn page_sizes_are_bounded() {
        let args = |first| PageArgs {
            first: Some(first),
            ..Default::default()
        };
        assert!(Window::new(&args(101), "t", false).is_err());
        assert!(Window::new(&args(-1), "t", false).is_err());
        assert_eq!(Window::new(&args(0), "t", false).unwrap().size, 0);
        assert_eq!(
            Window::new(&PageArgs::default(), "t", false).unwrap().size,
            20
        );
    }

    fn uuid() -> impl Strategy<Value = Uuid> {
        any::<u128>().prop_map(Uuid::from_u128)
    }

    fn tag() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("task:UPDATED_AT".to_owned()),
            "[a-z]{1,8}:[A-Z_]{1,12}",
            ".{0,20}"
        ]
    }

    fn finite() -> impl Strategy<Value = f64> {
        any::<f64>().prop_filter("finite", |f| f.is_finite())
    }

    // Cursors come back from clients as any string: decoding refuses with
    // BAD_CURSOR, never panics and never hands a forged value to SQL.
    proptest! {
        #[test]
        fn decoding_any_text_never_panics(text in any::<String>(), float in any::<bool>()) {
            if let Err(e) = Cursor::decode(&text, "task:UPDATED_AT", float) {
                prop_assert_eq!(e.code(), "BAD_CURSOR");
            }
        }

        /// Valid base64 of anything reaches the JSON parser behind it.
        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let text = URL_SAFE_NO_PAD.encode(&bytes);
            for float in [false, true] {
                if let Err(e) = Cursor::decode(&text, "t", float) {
                    prop_assert_eq!(e.code(), "BAD_CURSOR");
                }
            }
        }

        /// Well-formed bodies with odd values: only finite numbers of the
        /// list's kind and the list's own tag pass.
        #[test]
        fn odd_bodies_are_refused(o in tag(), v in any::<f64>(), i in any::<i128>(), id in uuid(), float in any::<bool>()) {
            for body in [
                serde_json::json!({ "o": o, "v": v, "i": id }),
                serde_json::json!({ "o": o, "v": i.to_string(), "i": id }),
                serde_json::json!({ "o": o, "v": serde_json::Number::from_i128(i), "i": id }),
                serde_json::json!({ "o": o, "v": 1, "i": id.to_string().to_uppercase() }),
            ] {
                let text = URL_SAFE_NO_PAD.encode(body.to_string());
                if let Ok(c) = Cursor::decode(&text, "task:UPDATED_AT", float) {
                    prop_assert_eq!(o.as_str(), "task:UPDATED_AT");
                    prop_assert_eq!(c.id, id);
                    match c.value {
                        SortValue::Int(_) => prop_assert!(!float),
                        SortValue::Float(f) => prop_assert!(float && f.is_finite()),
                    }
                }
            }
        }

        #[test]
        fn integer_cursors_round_trip(o in tag(), v in any::<i64>(), id in uuid()) {
            let text = Cursor::encode(&o, SortValue::Int(v), id);
            let back = Cursor::decode(&text, &o, false).unwrap();
            prop_assert_eq!(back, Cursor { value: SortValue::Int(v), id });
            let as_float = Cursor::decode(&text, &o, true).unwrap();
            prop_assert_eq!(as_float.value, SortValue::Float(v as f64));
            prop_assert_eq!(Cursor::decode(&text, &format!("{o}x"), false).unwrap_err().code(), "BAD_CURSOR");
        }

        #[test]
        fn float_cursors_round_trip(o in tag(), v in finite(), id in uuid()) {
            let text = Cursor::encode(&o, SortValue::Float(v), id);
            let back = Cursor::decode(&text, &o, true).unwrap();
            prop_assert_eq!(back, Cursor { value: SortValue::Float(v), id });
        }

        #[test]
        fn any_page_arguments_give_a_bounded_window_or_an_error(
            first in any::<Option<i32>>(),
            last in any::<Option<i32>>(),
            offset in any::<Option<i32>>(),
            after in proptest::option::of(".{0,40}"),
            before in proptest::option::of(".{0,40}"),
        ) {
            let args = PageArgs { first, after, last, before, offset };
            if let Ok(w) = Window::new(&args, "t", false) {
                prop_assert!(w.size <= MAX_PAGE_SIZE as u64);
                prop_assert!(w.offset <= MAX_OFFSET as u64);
            }
        }
    }
}
