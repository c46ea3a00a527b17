//! Item and task lifecycles. A task's status is derived from its counters,
//! `sealed`, `cancel_requested`, `paused` and its task-level error; it is
//! never set by hand.

pub use entity::status::{ItemStatus, TaskStatus};

/// The counters on a task row. `total = pending + running + finished` always.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub total: i32,
    pub pending: i32,
    pub running: i32,
    pub succeeded: i32,
    pub failed: i32,
    pub skipped: i32,
    pub rejected: i32,
    pub cancelled: i32,
}

impl Counters {
    pub fn from_task(task: &entity::bulk_task::Model) -> Self {
        Counters {
            total: task.total,
            pending: task.pending,
            running: task.running,
            succeeded: task.succeeded,
            failed: task.failed,
            skipped: task.skipped,
            rejected: task.rejected,
            cancelled: task.cancelled,
        }
    }

    pub fn finished(&self) -> i32 {
        self.succeeded + self.failed + self.skipped + self.rejected + self.cancelled
    }

    fn slot(&mut self, status: ItemStatus) -> &mut i32 {
        match status {
            ItemStatus::Pending => &mut self.pending,
            ItemStatus::Running => &mut self.running,
            ItemStatus::Succeeded => &mut self.succeeded,
            ItemStatus::Failed => &mut self.failed,
            ItemStatus::Skipped => &mut self.skipped,
            ItemStatus::Rejected => &mut self.rejected,
            ItemStatus::Cancelled => &mut self.cancelled,
        }
    }

    /// Counts `n` newly admitted items in `status`.
    pub fn admit(&mut self, status: ItemStatus, n: i32) {
        self.total += n;
        *self.slot(status) += n;
    }

    /// Moves `n` items from one status to another.
    pub fn shift(&mut self, from: ItemStatus, to: ItemStatus, n: i32) {
        *self.slot(from) -= n;
        *self.slot(to) += n;
    }

    pub fn get(&self, status: ItemStatus) -> i32 {
        let mut copy = *self;
        *copy.slot(status)
    }

    /// finished / total; 1 for an empty sealed task, 0 for an empty open one.
    pub fn progress(&self, sealed: bool) -> f64 {
        if self.total == 0 {
            if sealed { 1.0 } else { 0.0 }
        } else {
            f64::from(self.finished()) / f64::from(self.total)
        }
    }
}

/// The status a task with these facts has. A pause shows only while the
/// task is not terminal: a paused task whose last items finish completes.
pub fn derive_status(
    c: &Counters,
    sealed: bool,
    cancel_requested: bool,
    has_error: bool,
    paused: bool,
) -> TaskStatus {
    if has_error {
        return TaskStatus::Failed;
    }
    if cancel_requested {
        return if c.running > 0 {
            TaskStatus::Cancelling
        } else {
            TaskStatus::Cancelled
        };
    }
    if sealed && c.pending == 0 && c.running == 0 {
        return if c.failed + c.rejected == 0 {
            TaskStatus::Completed
        } else if c.succeeded + c.skipped == 0 {
            TaskStatus::Failed
        } else {
            TaskStatus::CompletedWithFailures
        };
    }
    if paused {
        return TaskStatus::Paused;
    }
    if c.running + c.succeeded + c.failed + c.skipped > 0 {
        TaskStatus::Running
    } else {
        TaskStatus::Queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(pending: i32, running: i32, succeeded: i32, failed: i32) -> Counters {
        let mut c = Counters::default();
        c.admit(ItemStatus::Pending, pending);
        c.admit(ItemStatus::Running, running);
        c.admit(ItemStatus::Succeeded, succeeded);
        c.admit(ItemStatus::Failed, failed);
        c
    }

    #[test]
    fn empty_sealed_task_is_completed_and_open_one_is_queued() {
        let c = Counters::default();
        assert_eq!(
            derive_status(&c, true, false, false, false),
            TaskStatus::Completed
        );
        assert_eq!(
            derive_status(&c, false, false, false, false),
            TaskStatus::Queued
        );
        assert_eq!(c.progress(true), 1.0);
    }

    #[test]
    fn never_terminal_while_unsealed() {
        let c = counters(0, 0, 3, 0);
        assert_eq!(
            derive_status(&c, false, false, false, false),
            TaskStatus::Running
        );
    }

    #[test]
    fn outcomes_decide_the_terminal_status() {
        assert_eq!(
            derive_status(&counters(0, 0, 2, 1), true, false, false, false),
            TaskStatus::CompletedWithFailures
        );
        assert_eq!(
            derive_status(&counters(0, 0, 0, 3), true, false, false, false),
            TaskStatus::Failed
        );
        assert_eq!(
            derive_status(&counters(1, 0, 2, 1), true, false, false, false),
            TaskStatus::Running
        );
    }

    #[test]
    fn a_pause_shows_until_the_task_is_terminal() {
        assert_eq!(
            derive_status(&counters(3, 1, 0, 0), true, false, false, true),
            TaskStatus::Paused
        );
        assert_eq!(
            derive_status(&counters(0, 0, 2, 0), true, false, false, true),
            TaskStatus::Completed
        );
        assert_eq!(
            derive_status(&counters(3, 0, 0, 0), true, true, false, true),
            TaskStatus::Cancelled
        );
    }

    #[test]
    fn cancel_waits_for_running_items_and_error_wins() {
        assert_eq!(
            derive_status(&counters(0, 2, 0, 0), true, true, false, false),
            TaskStatus::Cancelling
        );
        assert_eq!(
            derive_status(&counters(0, 0, 1, 0), true, true, false, false),
            TaskStatus::Cancelled
        );
        assert_eq!(
            derive_status(&counters(0, 2, 0, 0), true, true, true, false),
            TaskStatus::Failed
        );
    }
}
