//! Black-box tests: each starts the whole server on port 0 with a fresh
//! database and talks to it over HTTP like a client.

mod access;
mod audit;
mod batching;
mod contention;
mod control;
mod crash;
mod exports;
mod first_hour;
mod first_hour_keys;
mod helpers;
mod http;
mod isolation;
mod isolation_more;
mod mutations;
mod nats_bus;
mod operations;
mod ops;
mod queries;
mod rate_limits;
mod readme;
mod repeats;
mod results;
mod retention;
mod row_security;
mod subscriptions;
mod tenancy;
mod unavailable;
mod web;
mod webhook_backlog;
mod webhook_crash;
mod webhook_rollback;
mod webhook_support;
mod webhooks;
mod workers;
mod ws;
