//! The NATS JetStream bridge. A change writes its event to the outbox table
//! in its own transaction; after the commit this instance delivers it to its
//! own subscribers and wakes its relay, which publishes outbox rows to one
//! stream and deletes them. Every instance follows the stream with an
//! ordered consumer and delivers the events other instances made.
//!
//! Nothing committed is lost: a row stays in the outbox until the stream has
//! acknowledged it, and any instance's relay publishes what an instance that
//! died after its commit left behind. One relay publishes at a time (an
//! advisory lock); a row published twice after a crash is dropped by the
//! stream's duplicate window, by its message id.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::push::OrderedConfig;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use futures_util::StreamExt;
use tokio::sync::Notify;
use uuid::Uuid;

use super::{EventBus, NatsBus, TaskEvent};
use crate::store::{Db, change_outbox};

/// Outbox rows one relay pass publishes at most.
const RELAY_BATCH: u64 = 500;
/// How long the relay waits when nothing wakes it: the backstop that
/// publishes what an instance that died after its commit left behind.
const RELAY_POLL: Duration = Duration::from_millis(500);
/// How long the stream keeps events: followers that reconnect within it
/// miss nothing; after it they resync from the database.
const STREAM_MAX_AGE: Duration = Duration::from_secs(600);
/// Within it, a message id published twice is stored once.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Wait before connecting or following again after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// This instance's side of the outbox: its id, which marks the events it
/// delivers itself, and the relay's wake-up.
pub(super) struct Outbox {
    origin: Uuid,
    wake: Arc<Notify>,
}

impl Outbox {
    pub(super) fn new() -> Outbox {
        Outbox {
            origin: Uuid::now_v7(),
            wake: Arc::new(Notify::new()),
        }
    }

    pub(super) fn origin(&self) -> Uuid {
        self.origin
    }

    /// A change committed: publish it now rather than at the next poll.
    pub(super) fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Connects in the background (retrying, like the LISTEN bridge), then runs
/// the relay and the follower for as long as the server runs.
pub(super) fn start(bus: EventBus, outbox: &Outbox, nats: NatsBus) {
    let (wake, origin) = (outbox.wake.clone(), outbox.origin);
    tokio::spawn(async move {
        let (client, stream) = loop {
            match connect(&nats).await {
                Ok(connected) => break connected,
                Err(e) => {
                    tracing::warn!(url = %nats.url, error = %e, "the NATS change bus cannot connect; retrying");
                    tokio::time::sleep(RETRY).await;
                }
            }
        };
        let context = jetstream::new(client.clone());
        tokio::spawn(relay(bus.db().clone(), context, nats.subject.clone(), wake));
        loop {
            if let Err(e) = follow(&bus, origin, &client, &stream, &nats.subject).await {
                tracing::warn!(error = %e, "the NATS change bus lost its stream; following again");
            }
            tokio::time::sleep(RETRY).await;
        }
    });
}

async fn connect(
    nats: &NatsBus,
) -> Result<(async_nats::Client, stream::Stream), async_nats::Error> {
    let client = async_nats::connect(nats.url.as_str()).await?;
    let stream = jetstream::new(client.clone())
        .get_or_create_stream(stream::Config {
            name: stream_name(&nats.subject),
            subjects: vec![nats.subject.clone()],
            max_age: STREAM_MAX_AGE,
            duplicate_window: DUPLICATE_WINDOW,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    Ok((client, stream))
}

/// Stream names allow no dots: `bulkwatch.events` is `bulkwatch_events`.
fn stream_name(subject: &str) -> String {
    subject.replace('.', "_")
}

/// Delivers every event another instance made, from now on. A follower
/// that starts (again) first resyncs, so that changes published while no
/// follower ran are read again from the database.
async fn follow(
    bus: &EventBus,
    origin: Uuid,
    client: &async_nats::Client,
    stream: &stream::Stream,
    subject: &str,
) -> Result<(), async_nats::Error> {
    let consumer = stream
        .create_consumer(OrderedConfig {
            deliver_subject: client.new_inbox(),
            deliver_policy: DeliverPolicy::New,
            filter_subject: subject.to_owned(),
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    bus.resync();
    while let Some(message) = messages.next().await {
        let message = message?;
        match serde_json::from_slice::<TaskEvent>(&message.payload) {
            // Delivered by this instance at its commit.
            Ok(event) if event.origin == Some(origin) => {}
            Ok(event) => bus.deliver(Arc::new(event)),
            Err(e) => tracing::warn!(error = %e, "unreadable event on the NATS change bus"),
        }
    }
    Ok(())
}

/// Publishes outbox rows whenever a commit wakes it, and every poll.
async fn relay(db: Db, context: jetstream::Context, subject: String, wake: Arc<Notify>) {
    loop {
        let _ = tokio::time::timeout(RELAY_POLL, wake.notified()).await;
        loop {
            match relay_once(&db, &context, &subject).await {
                Ok(published) if published as u64 == RELAY_BATCH => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "the NATS change bus cannot publish; retrying");
                    tokio::time::sleep(RETRY).await;
                    break;
                }
            }
        }
    }
}

/// One batch: take rows, publish them, wait for the stream's acks, delete
/// them. A failure before the delete leaves the rows for the next pass.
async fn relay_once(
    db: &Db,
    context: &jetstream::Context,
    subject: &str,
) -> Result<usize, async_nats::Error> {
    let tx = db.system_begin().await?;
    if !change_outbox::lead(&tx).await? {
        return Ok(0);
    }
    let rows = change_outbox::take(&tx, RELAY_BATCH).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut acks = Vec::with_capacity(rows.len());
    for row in &rows {
        let message = PublishMessage::build()
            .payload(row.payload.clone().into())
            .message_id(format!("{}-{}", row.id, row.created_at));
        acks.push(context.send_publish(subject.to_owned(), message).await?);
    }
    for ack in acks {
        ack.await?;
    }
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    change_outbox::remove(&tx, &ids).await?;
    tx.commit().await?;
    Ok(rows.len())
}
