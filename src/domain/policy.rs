//! Failure policies: a task fails on its own once its failures pass a count
//! or a rate, judged on the counters each change leaves (and acted on right
//! after that change commits, holding the task exclusively), and codes the
//! server (not each worker) declares not worth a retry.

use entity::bulk_task;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::admission::MAX_KEY;
use super::status::Counters;
use crate::error::{AppResult, bad_input, limit_exceeded};

/// Task-level error code of a task its failure policy stopped.
pub const FAILURE_THRESHOLD_EXCEEDED: &str = "FAILURE_THRESHOLD_EXCEEDED";
/// Final items the ratio waits for when the policy names no figure.
pub const DEFAULT_MIN_FINISHED: i32 = 20;
/// Most codes a policy may list.
const MAX_CODES: usize = 100;

/// A failure policy as the producer gave it; stored as JSON on the task.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailurePolicy {
    pub max_failed_items: Option<i32>,
    pub max_failure_ratio: Option<f64>,
    pub min_finished: i32,
    #[serde(default)]
    pub non_retryable_codes: Vec<String>,
}

/// Which threshold a task crossed, with the figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Breach {
    pub message: String,
    pub details: Value,
}

impl FailurePolicy {
    pub fn validate(&self) -> AppResult<()> {
        if self.max_failed_items.is_some_and(|n| n < 1) {
            return Err(bad_input("`maxFailedItems` must be at least 1"));
        }
        if self
            .max_failure_ratio
            .is_some_and(|r| !(r > 0.0 && r <= 1.0))
        {
            return Err(bad_input(
                "`maxFailureRatio` must be greater than 0 and at most 1",
            ));
        }
        if self.min_finished < 1 {
            return Err(bad_input("`minFinished` must be at least 1"));
        }
        if self.non_retryable_codes.len() > MAX_CODES {
            return Err(limit_exceeded(format!(
                "at most {MAX_CODES} `nonRetryableCodes`"
            )));
        }
        if self
            .non_retryable_codes
            .iter()
            .any(|c| c.is_empty() || c.len() > MAX_KEY)
        {
            return Err(bad_input(format!(
                "each of `nonRetryableCodes` must be 1 to {MAX_KEY} bytes"
            )));
        }
        Ok(())
    }

    /// The policy stored on `task`, if any. A stored text that does not
    /// parse (it was validated on the way in) counts as none.
    pub fn of(task: &bulk_task::Model) -> Option<FailurePolicy> {
        let text = task.failure_policy.as_deref()?;
        serde_json::from_str(text)
            .inspect_err(
                |e| tracing::warn!(task = %task.id, error = %e, "unreadable failure policy"),
            )
            .ok()
    }

    pub fn is_non_retryable(&self, code: &str) -> bool {
        self.non_retryable_codes.iter().any(|c| c == code)
    }

    /// Whether counters `c` cross a threshold: `maxFailedItems` FAILED, or
    /// FAILED / finished above `maxFailureRatio` once at least
    /// `minFinished` items are final.
    pub fn breach(&self, c: &Counters) -> Option<Breach> {
        let finished = c.finished();
        if let Some(limit) = self.max_failed_items
            && c.failed >= limit
        {
            return Some(Breach {
                message: format!(
                    "{} items failed, reaching the policy's maxFailedItems of {}",
                    c.failed, limit
                ),
                details: json!({
                    "threshold": "maxFailedItems",
                    "failed": c.failed,
                    "finished": finished,
                    "maxFailedItems": limit,
                }),
            });
        }
        if let Some(ratio) = self.max_failure_ratio
            && finished >= self.min_finished
            && f64::from(c.failed) > ratio * f64::from(finished)
        {
            return Some(Breach {
                message: format!(
                    "{} of {} finished items failed ({:.3}), above the policy's ratio {} (judged from {} finished items)",
                    c.failed,
                    finished,
                    f64::from(c.failed) / f64::from(finished),
                    ratio,
                    self.min_finished
                ),
                details: json!({
                    "threshold": "maxFailureRatio",
                    "failed": c.failed,
                    "finished": finished,
                    "maxFailureRatio": ratio,
                    "minFinished": self.min_finished,
                }),
            });
        }
        None
    }

    /// The policy as the API shows it.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::status::ItemStatus;

    fn counters(succeeded: i32, failed: i32) -> Counters {
        let mut c = Counters::default();
        c.admit(ItemStatus::Succeeded, succeeded);
        c.admit(ItemStatus::Failed, failed);
        c
    }

    #[test]
    fn the_ratio_waits_for_its_sample_and_must_be_exceeded() {
        let p = FailurePolicy {
            max_failure_ratio: Some(0.5),
            min_finished: 20,
            ..Default::default()
        };
        assert_eq!(p.breach(&counters(0, 1)), None);
        assert_eq!(p.breach(&counters(0, 19)), None);
        assert_eq!(p.breach(&counters(10, 10)), None);
        assert!(p.breach(&counters(9, 11)).is_some());
    }

    #[test]
    fn the_count_fires_at_its_figure() {
        let p = FailurePolicy {
            max_failed_items: Some(3),
            min_finished: 20,
            ..Default::default()
        };
        assert_eq!(p.breach(&counters(100, 2)), None);
        assert!(p.breach(&counters(0, 3)).is_some());
    }
}
