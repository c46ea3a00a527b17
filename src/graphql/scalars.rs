//! The `DateTime` scalar: RFC 3339 in UTC with millisecond precision.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{SecondsFormat, TimeZone, Utc};

/// A point in time, RFC 3339, UTC, millisecond precision
/// (e.g. `2026-11-22T15:47:10.123Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime(pub i64);

#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        let Value::String(text) = &value else {
            return Err(InputValueError::expected_type(value));
        };
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| DateTime(t.timestamp_millis()))
            .map_err(|_| {
                InputValueError::custom(
                    "expected an RFC 3339 date-time such as 2026-01-31T12:00:00Z",
                )
            })
    }

    fn to_value(&self) -> Value {
        match Utc.timestamp_millis_opt(self.0).single() {
            Some(t) => Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => Value::Null,
        }
    }
}

impl DateTime {
    pub fn from_ms(ms: Option<i64>) -> Option<DateTime> {
        ms.map(DateTime)
    }
}
