//! CPU time and resident memory from `/proc`: of the server process, of this
//! harness, and of the whole machine (the rest is the database, on
//! PostgreSQL, plus whatever else shares the machine).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process, in ticks.
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields are counted after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Busy ticks of the whole machine (everything but idle and iowait).
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    Some(total - v.get(3)? - v.get(4)?)
}

/// A `/proc/<pid>/status` field in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    kib_field(&format!("/proc/{pid}/status"), field)
}

/// A `/proc/<pid>/smaps_rollup` field in KiB: the process's memory by kind
/// (e.g. `AnonHugePages`, the part of RSS held as transparent huge pages).
pub fn rollup_kib(pid: u32, field: &str) -> Option<u64> {
    kib_field(&format!("/proc/{pid}/smaps_rollup"), field)
}

fn kib_field(file: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Samples the server's RSS in the background (its peak between two marks)
/// and reads CPU counters at marks.
pub struct Sampler {
    pid: u32,
    tck: f64,
    peak_rss: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Counters at one moment.
#[derive(Clone, Copy)]
pub struct Mark {
    at: Instant,
    server: u64,
    harness: u64,
    machine: u64,
}

/// What happened between two marks.
pub struct Usage {
    pub wall: f64,
    /// CPU seconds of the server process.
    pub server_cpu: f64,
    /// CPU seconds of this harness (client and baselines).
    pub harness_cpu: f64,
    /// CPU seconds of everything else on the machine (the PostgreSQL server, other tenants).
    pub other_cpu: f64,
    /// Highest server RSS seen since the previous `take_peak_rss`, KiB.
    pub peak_rss_kib: u64,
}

impl Sampler {
    pub fn start(pid: u32) -> Sampler {
        let peak_rss = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak_rss.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(rss) = status_kib(pid, "VmRSS") {
                    p.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Sampler {
            pid,
            tck: ticks_per_second(),
            peak_rss,
            stop,
            thread: Some(thread),
        }
    }

    pub fn mark(&self) -> Mark {
        Mark {
            at: Instant::now(),
            server: process_ticks(&self.pid.to_string()).unwrap_or(0),
            harness: process_ticks("self").unwrap_or(0),
            machine: machine_busy_ticks().unwrap_or(0),
        }
    }

    /// Usage since `from`; resets the RSS peak for the next phase.
    pub fn since(&self, from: Mark) -> Usage {
        let to = self.mark();
        let s = |a: u64, b: u64| b.saturating_sub(a) as f64 / self.tck;
        let server_cpu = s(from.server, to.server);
        let harness_cpu = s(from.harness, to.harness);
        let machine = s(from.machine, to.machine);
        let current = status_kib(self.pid, "VmRSS").unwrap_or(0);
        Usage {
            wall: to.at.duration_since(from.at).as_secs_f64(),
            server_cpu,
            harness_cpu,
            other_cpu: (machine - server_cpu - harness_cpu).max(0.0),
            peak_rss_kib: self.peak_rss.swap(current, Ordering::Relaxed).max(current),
        }
    }

    /// The server's lifetime peak RSS (VmHWM), KiB.
    pub fn hwm_kib(&self) -> u64 {
        status_kib(self.pid, "VmHWM").unwrap_or(0)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
