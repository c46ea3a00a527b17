//! Rate limits per organisation and per API key: requests per second and
//! GraphQL complexity per second, each a GCRA bucket (`governor`) whose
//! burst is one second's worth.
//!
//! The buckets live in this instance's memory. Behind a load balancer that
//! spreads an organisation's requests over N instances, it gets up to N
//! times each limit; set the limits to the share of one instance when that
//! matters. Sharing the buckets through the database would cost a write per
//! request, more than the limits are meant to save.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, NotUntil, Quota};
use uuid::Uuid;

use crate::config::Config;
use crate::domain::Principal;

/// Which limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKind {
    OrganisationRequests,
    KeyRequests,
    OrganisationComplexity,
}

impl LimitKind {
    const ALL: [LimitKind; 3] = [
        LimitKind::OrganisationRequests,
        LimitKind::KeyRequests,
        LimitKind::OrganisationComplexity,
    ];

    /// The `limit` label on `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            LimitKind::OrganisationRequests => "organisation_requests",
            LimitKind::KeyRequests => "key_requests",
            LimitKind::OrganisationComplexity => "organisation_complexity",
        }
    }
}

/// A request refused by a limit, and how long to wait before the next.
#[derive(Clone, Debug)]
pub struct RateLimited {
    pub kind: LimitKind,
    /// The limit, per second.
    pub per_second: u32,
    pub retry_after: Duration,
}

impl RateLimited {
    /// The `Retry-After` value: whole seconds, at least 1, rounded up so a
    /// client that waits that long is served.
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }
}

impl std::fmt::Display for RateLimited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (n, wait) = (self.per_second, self.retry_after_secs());
        match self.kind {
            LimitKind::OrganisationRequests => write!(
                f,
                "rate limited: the organisation is over its {n} requests per second \
                 (BULKWATCH_RATE_LIMIT_ORG_RPS); retry after {wait} s and spread requests out"
            ),
            LimitKind::KeyRequests => write!(
                f,
                "rate limited: this API key is over its {n} requests per second \
                 (BULKWATCH_RATE_LIMIT_KEY_RPS); retry after {wait} s and spread requests out"
            ),
            LimitKind::OrganisationComplexity => write!(
                f,
                "rate limited: the organisation is over its query complexity budget of {n} per second \
                 (BULKWATCH_RATE_LIMIT_ORG_COMPLEXITY); retry after {wait} s, and ask for smaller \
                 pages (first/last) or fewer nested lists"
            ),
        }
    }
}

/// One keyed bucket and the rate it was made with.
struct Bucket {
    limiter: DefaultKeyedRateLimiter<Uuid>,
    per_second: u32,
}

impl Bucket {
    /// None when the limit is 0 (off).
    fn new(per_second: u32) -> Option<Bucket> {
        let rate = NonZeroU32::new(per_second)?;
        Some(Bucket {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_second(rate)),
            per_second,
        })
    }
}

/// Every limit of this instance, and how often each refused.
pub struct Limits {
    org_requests: Option<Bucket>,
    key_requests: Option<Bucket>,
    org_complexity: Option<Bucket>,
    refused: [AtomicU64; 3],
    clock: DefaultClock,
}

impl Limits {
    pub fn new(config: &Config) -> Limits {
        Limits {
            org_requests: Bucket::new(config.rate_limit_org_rps),
            key_requests: Bucket::new(config.rate_limit_key_rps),
            org_complexity: Bucket::new(config.rate_limit_org_complexity),
            refused: Default::default(),
            clock: DefaultClock::default(),
        }
    }

    /// Charges one request to the caller's key, then to its organisation.
    /// The key goes first so that a runaway key is stopped by its own limit
    /// without spending its organisation's budget.
    pub fn admit(&self, caller: &Principal) -> Result<(), RateLimited> {
        let checks = [
            (&self.key_requests, caller.key_id, LimitKind::KeyRequests),
            (
                &self.org_requests,
                caller.organisation_id,
                LimitKind::OrganisationRequests,
            ),
        ];
        for (bucket, id, kind) in checks {
            if let Some(bucket) = bucket {
                bucket
                    .limiter
                    .check_key(&id)
                    .map_err(|not_until| self.refuse(kind, bucket, &not_until))?;
            }
        }
        Ok(())
    }

    /// Whether operations are charged their complexity at all.
    pub fn charges_complexity(&self) -> bool {
        self.org_complexity.is_some()
    }

    /// Charges a validated operation's complexity to the organisation.
    pub fn charge_complexity(
        &self,
        organisation: Uuid,
        complexity: usize,
    ) -> Result<(), RateLimited> {
        let kind = LimitKind::OrganisationComplexity;
        let Some(bucket) = &self.org_complexity else {
            return Ok(());
        };
        let cost = u32::try_from(complexity).unwrap_or(u32::MAX);
        let Some(cost) = NonZeroU32::new(cost) else {
            return Ok(());
        };
        match bucket.limiter.check_key_n(&organisation, cost) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(self.refuse(kind, bucket, &not_until)),
            // The config keeps the budget at least the highest complexity a
            // query may have, so this is a budget set below it by hand.
            Err(_) => {
                self.refused[kind as usize].fetch_add(1, Ordering::Relaxed);
                Err(RateLimited {
                    kind,
                    per_second: bucket.per_second,
                    retry_after: Duration::from_secs(1),
                })
            }
        }
    }

    fn refuse(
        &self,
        kind: LimitKind,
        bucket: &Bucket,
        not_until: &NotUntil<<DefaultClock as Clock>::Instant>,
    ) -> RateLimited {
        self.refused[kind as usize].fetch_add(1, Ordering::Relaxed);
        RateLimited {
            kind,
            per_second: bucket.per_second,
            retry_after: not_until.wait_time_from(self.clock.now()),
        }
    }

    /// Forgets callers whose buckets are full again, so the maps hold only
    /// the organisations and keys active in the last second.
    pub fn sweep(&self) {
        for bucket in [&self.org_requests, &self.key_requests, &self.org_complexity]
            .into_iter()
            .flatten()
        {
            bucket.limiter.retain_recent();
            bucket.limiter.shrink_to_fit();
        }
    }

    /// The refusal counters in Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP bulkwatch_rate_limited_total Requests refused by a rate limit, by limit.\n\
             # TYPE bulkwatch_rate_limited_total counter\n",
        );
        for kind in LimitKind::ALL {
            out.push_str(&format!(
                "bulkwatch_rate_limited_total{{limit=\"{}\"}} {}\n",
                kind.label(),
                self.refused[kind as usize].load(Ordering::Relaxed)
            ));
        }
        out
    }
}

/// Sweeps the limiters once a minute, forever.
pub async fn sweep(limits: std::sync::Arc<Limits>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        limits.sweep();
    }
}
