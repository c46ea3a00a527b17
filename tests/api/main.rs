//! Black-box tests: each starts the whole server on port 0 with a fresh
//! database and talks to it over HTTP like a client.

mod helpers;
mod mutations;
mod queries;
mod http;
mod workers;
mod tenancy;
