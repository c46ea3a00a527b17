//! Log output: to stderr, filtered by `RUST_LOG`, as text (coloured only on
//! a terminal) or, with `BULKWATCH_LOG_FORMAT=json`, one JSON object a line
//! for log collectors. Request spans carry the request id and any W3C
//! `traceparent` the client sent.

use std::io::IsTerminal;

pub fn init() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,async_graphql=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let json = std::env::var("BULKWATCH_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let _ = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
}
