//! Percentiles of latency samples, and load generators (closed and open loop).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::Res;

/// Latency samples in milliseconds.
#[derive(Default, Clone)]
pub struct Samples {
    ms: Vec<f64>,
    sorted: bool,
}

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.ms.push(d.as_secs_f64() * 1000.0);
        self.sorted = false;
    }

    pub fn extend(&mut self, other: Samples) {
        self.ms.extend(other.ms);
        self.sorted = false;
    }

    pub fn len(&self) -> usize {
        self.ms.len()
    }

    /// The `q` quantile (0..=1), nearest rank.
    pub fn quantile(&mut self, q: f64) -> f64 {
        if self.ms.is_empty() {
            return f64::NAN;
        }
        if !self.sorted {
            self.ms.sort_by(|a, b| a.total_cmp(b));
            self.sorted = true;
        }
        let rank = ((q * self.ms.len() as f64).ceil() as usize).clamp(1, self.ms.len());
        self.ms[rank - 1]
    }

    pub fn p50(&mut self) -> f64 {
        self.quantile(0.50)
    }

    pub fn p99(&mut self) -> f64 {
        self.quantile(0.99)
    }
}

/// What a load run did.
pub struct Run {
    pub requests: usize,
    pub errors: usize,
    pub wall: Duration,
    pub latency: Samples,
}

impl Run {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64()
    }
}

/// `concurrency` loops, each sending the next request when the previous one
/// answered, for `duration`.
pub async fn closed_loop<F, Fut>(concurrency: usize, duration: Duration, f: F) -> Res<Run>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Res<()>> + Send + 'static,
{
    let f = Arc::new(f);
    let start = Instant::now();
    let end = start + duration;
    let mut set = JoinSet::new();
    for _ in 0..concurrency {
        let f = f.clone();
        set.spawn(async move {
            let (mut latency, mut errors) = (Samples::default(), 0usize);
            while Instant::now() < end {
                let t = Instant::now();
                match f().await {
                    Ok(()) => latency.push(t.elapsed()),
                    Err(e) => {
                        errors += 1;
                        if errors == 1 {
                            eprintln!("bench: request failed: {e}");
                        }
                    }
                }
            }
            (latency, errors)
        });
    }
    let (mut latency, mut errors) = (Samples::default(), 0);
    while let Some(r) = set.join_next().await {
        let (l, e) = r?;
        latency.extend(l);
        errors += e;
    }
    let wall = start.elapsed();
    Ok(Run {
        requests: latency.len(),
        errors,
        wall,
        latency,
    })
}

/// Sends at `rate` per second for `duration`, each request at its intended
/// time whether or not earlier ones answered; latency counts from the
/// intended send time, so a stalled server is not hidden (no coordinated
/// omission).
pub async fn open_loop<F, Fut>(rate: f64, duration: Duration, f: F) -> Res<Run>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Res<()>> + Send + 'static,
{
    let f = Arc::new(f);
    let n = (rate * duration.as_secs_f64()).round() as usize;
    let start = tokio::time::Instant::now() + Duration::from_millis(5);
    let mut set = JoinSet::new();
    for i in 0..n {
        let intended = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(intended).await;
        let f = f.clone();
        set.spawn(async move { f().await.map(|()| intended.elapsed()) });
    }
    let (mut latency, mut errors) = (Samples::default(), 0);
    while let Some(r) = set.join_next().await {
        match r? {
            Ok(d) => latency.push(d),
            Err(e) => {
                errors += 1;
                if errors == 1 {
                    eprintln!("bench: request failed: {e}");
                }
            }
        }
    }
    let wall = start.elapsed();
    Ok(Run {
        requests: latency.len(),
        errors,
        wall,
        latency,
    })
}
