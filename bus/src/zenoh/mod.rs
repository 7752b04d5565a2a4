//! Zenoh helpers: sessions from settings, typed publish/subscribe, liveliness, queryables.
//! Every wire payload goes through `crate::codec`, so no caller touches bytes.

mod acl;
mod drops;
mod liveliness;
mod publish;
mod query;
mod queryable;
mod relay;
mod session;
mod subscribe;
mod tasks;
mod tls;

pub use acl::{Access, ROSTER_FILE, Roster};
pub use drops::{DropCounters, DropSnapshot, Refused, worth_logging};
pub use liveliness::{MemberEvent, MemberWatch, declare_token, watch_members};
pub use publish::{TypedPublisher, publish, publish_droppable};
pub use query::{QueryReply, ReplyFault, ask_with, query_cbor};
pub use queryable::{ReplyFormat, ServedQueryable, asks_history, serve};
pub use relay::{Relay, relay, relayed_selector};
pub use session::{SessionMode, ZenohSettings, open, open_observer, open_observer_waiting};
pub use subscribe::{
    Admit, REPLAYED, Received, TypedSubscriber, is_replayed, subscribe, subscribe_admitting,
    subscribe_swarm_level,
};
pub use tasks::{
    HeldQuery, HeldQueryable, TaskReceived, TaskSubscriber, ask_until, serve_held, subscribe_tasks,
    task_of,
};
pub use tls::{CA_CERT_FILE, TlsFiles, cert_file, key_file};

/// A zenoh call that failed, with what we were doing.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {message}")]
pub struct BusError {
    pub context: String,
    pub message: String,
}

impl BusError {
    pub(crate) fn msg(message: impl Into<String>) -> Self {
        Self {
            context: "zenoh settings".into(),
            message: message.into(),
        }
    }

    pub(crate) fn new(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Self {
            context: context.into(),
            message: err.to_string(),
        }
    }
}
