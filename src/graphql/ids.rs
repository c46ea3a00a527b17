//! Global ids: opaque, type-tagged, resolvable through `node(id:)`.

use async_graphql::ID;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::error::{AppError, bad_input};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    BulkTask,
    TaskItem,
    WebhookEndpoint,
    WebhookDelivery,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::BulkTask => "BulkTask",
            Kind::TaskItem => "TaskItem",
            Kind::WebhookEndpoint => "WebhookEndpoint",
            Kind::WebhookDelivery => "WebhookDelivery",
        }
    }
}

pub fn encode(kind: Kind, id: Uuid) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{}:{}", kind.tag(), id.simple())))
}

/// Reads any global id.
pub fn decode_any(id: &str) -> Result<(Kind, Uuid), AppError> {
    let malformed = || bad_input(format!("{id:?} is not a valid id"));
    let bytes = URL_SAFE_NO_PAD.decode(id).map_err(|_| malformed())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| malformed())?;
    let (tag, uuid) = text.split_once(':').ok_or_else(malformed)?;
    let kind = match tag {
        "BulkTask" => Kind::BulkTask,
        "TaskItem" => Kind::TaskItem,
        "WebhookEndpoint" => Kind::WebhookEndpoint,
        "WebhookDelivery" => Kind::WebhookDelivery,
        _ => return Err(malformed()),
    };
    let uuid = Uuid::try_parse(uuid).map_err(|_| malformed())?;
    Ok((kind, uuid))
}

/// Reads a global id that must be of `kind`.
pub fn decode(kind: Kind, id: &str) -> Result<Uuid, AppError> {
    match decode_any(id)? {
        (k, uuid) if k == kind => Ok(uuid),
        _ => Err(bad_input(format!("{id:?} is not a {} id", kind.tag()))),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ids_round_trip_and_keep_their_type() {
        let uuid = Uuid::now_v7();
        let id = encode(Kind::TaskItem, uuid);
        assert_eq!(decode(Kind::TaskItem, &id).unwrap(), uuid);
        assert!(decode(Kind::BulkTask, &id).is_err());
        assert!(decode_any("nope").is_err());
    }

    const KINDS: [Kind; 4] = [
        Kind::BulkTask,
        Kind::TaskItem,
        Kind::WebhookEndpoint,
        Kind::WebhookDelivery,
    ];

    fn kind() -> impl Strategy<Value = Kind> {
        proptest::sample::select(KINDS.to_vec())
    }

    fn uuid() -> impl Strategy<Value = Uuid> {
        any::<u128>().prop_map(Uuid::from_u128)
    }

    // Ids arrive from clients as any string; decoding must refuse, never panic.
    proptest! {
        #[test]
        fn decoding_any_text_never_panics(text in any::<String>()) {
            let _ = decode_any(&text);
            for k in KINDS {
                let _ = decode(k, &text);
            }
        }

        /// Valid base64 reaches the tag and UUID parsing behind it.
        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = decode_any(&URL_SAFE_NO_PAD.encode(&bytes));
        }

        /// A known tag with any text after it: only a UUID passes.
        #[test]
        fn a_tag_with_anything_after_it_is_checked(k in kind(), rest in ".{0,50}") {
            let id = URL_SAFE_NO_PAD.encode(format!("{}:{rest}", k.tag()));
            match decode_any(&id) {
                Ok((got, uuid)) => {
                    prop_assert_eq!(got, k);
                    prop_assert_eq!(Uuid::try_parse(&rest).ok(), Some(uuid));
                }
                Err(e) => prop_assert_eq!(e.code(), "BAD_USER_INPUT"),
            }
        }

        #[test]
        fn encode_then_decode_round_trips(k in kind(), id in uuid()) {
            let text = encode(k, id);
            prop_assert_eq!(decode_any(&text).unwrap(), (k, id));
            prop_assert_eq!(decode(k, &text).unwrap(), id);
            for other in KINDS.into_iter().filter(|o| *o != k) {
                prop_assert_eq!(decode(other, &text).unwrap_err().code(), "BAD_USER_INPUT");
            }
        }
    }
}
