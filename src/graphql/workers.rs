//! The worker's mutations: claim items with a lease, renew it.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use super::ids::{self, Kind};
use super::types::TaskItem;
use super::{Need, caller, state};
use crate::domain::keys::Scope;
use crate::domain::leases::{self, ClaimRequest};

#[derive(Default)]
pub struct WorkerMutation;

/// What to claim: pending items of one task, or of any unfinished task of the given types.
#[derive(InputObject, Clone, Debug)]
pub struct ClaimTaskItemsInput {
    /// Claim from this task only.
    pub task_id: Option<ID>,
    /// Claim from unfinished tasks of these types, oldest first.
    pub types: Option<Vec<String>>,
    /// Most items to claim, 1 to 1000.
    pub limit: i32,
    /// How long the lease lasts, 1 to 3600 seconds (default 60).
    pub lease_seconds: Option<i32>,
    /// The worker's name, shown on the items.
    pub worker_id: Option<String>,
}

/// Which leases to extend.
#[derive(InputObject, Clone, Debug)]
pub struct RenewLeasesInput {
    /// Tokens from `claimTaskItems`, at most 1000.
    pub lease_tokens: Vec<String>,
    /// New lease length from now, 1 to 3600 seconds (default 60).
    pub lease_seconds: Option<i32>,
}

/// An item now held by the caller.
#[derive(SimpleObject)]
pub struct ClaimedItem {
    /// The item, RUNNING, with its payload.
    pub item: TaskItem,
    /// Pass it with every report and renewal of this item; shown only here.
    pub lease_token: String,
}

/// The result of `claimTaskItems`.
#[derive(SimpleObject)]
pub struct ClaimTaskItemsPayload {
    /// The claimed items, oldest first; empty when nothing is pending.
    pub items: Vec<ClaimedItem>,
}

/// The result of `renewLeases`.
#[derive(SimpleObject)]
pub struct RenewLeasesPayload {
    /// Leases extended.
    pub renewed: i32,
    /// Tokens no longer valid (expired, reported, or unknown): stop working on those items.
    pub expired: Vec<String>,
}

#[Object]
impl WorkerMutation {
    /// Claims pending items: each becomes RUNNING under a lease with a fresh token.
    #[graphql(guard = "Need(Scope::ItemsReport)")]
    async fn claim_task_items(
        &self,
        ctx: &Context<'_>,
        input: ClaimTaskItemsInput,
    ) -> Result<ClaimTaskItemsPayload> {
        let s = state(ctx)?;
        let request = ClaimRequest {
            task_id: input
                .task_id
                .map(|id| ids::decode(Kind::BulkTask, &id))
                .transpose()?,
            types: input.types,
            limit: input.limit,
            lease_seconds: input.lease_seconds,
            worker_id: input.worker_id,
        };
        let claimed = leases::claim(&s.db, &s.events, caller(ctx)?, request).await?;
        Ok(ClaimTaskItemsPayload {
            items: claimed
                .into_iter()
                .map(|c| ClaimedItem {
                    item: TaskItem::new(c.item),
                    lease_token: c.lease_token,
                })
                .collect(),
        })
    }

    /// Extends live leases, and names the ones that are gone.
    #[graphql(guard = "Need(Scope::ItemsReport)")]
    async fn renew_leases(
        &self,
        ctx: &Context<'_>,
        input: RenewLeasesInput,
    ) -> Result<RenewLeasesPayload> {
        let s = state(ctx)?;
        let out =
            leases::renew(&s.db, caller(ctx)?, input.lease_tokens, input.lease_seconds).await?;
        Ok(RenewLeasesPayload {
            renewed: out.renewed,
            expired: out.expired,
        })
    }
}
