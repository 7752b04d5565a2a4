use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::Cursor;

use super::FilterIdx;

use super::{
    scheduler::{PauseReason, Tracker},
    ConnectionEvents,
};

pub struct Graveyard {
    connections: HashMap<String, SavedState>,
    /// swarm-mesh patch: at most this many sessions are kept; past it the one saved first goes.
    /// Any client could leave a session under a new client id with every connection, and
    /// sessions that never expire (3.1.1) stayed until the broker stopped.
    capacity: usize,
    saved: u64,
}

impl Graveyard {
    pub fn new(capacity: usize) -> Graveyard {
        Graveyard {
            connections: HashMap::new(),
            capacity: capacity.max(1),
            saved: 0,
        }
    }

    /// Add a new connection.
    /// Return tracker of previous connection if connection id already exists
    pub fn retrieve(&mut self, id: &str) -> Option<SavedState> {
        // swarm-mesh patch: an expired session is gone [MQTT-4.1.0-2].
        self.connections
            .remove(id)
            .filter(|saved| saved.expires.is_none_or(|at| at > Instant::now()))
    }

    /// Save connection tracker
    #[allow(clippy::too_many_arguments)]
    pub fn save_state(
        &mut self,
        mut tracker: Tracker,
        subscriptions: HashSet<String>,
        metrics: ConnectionEvents,
        unacked_pubrels: VecDeque<u16>,
        recorded: HashSet<u16>,
        resend: Vec<(u16, FilterIdx, Cursor)>,
        subscription_ids: HashMap<String, usize>,
        kept_for: Option<Duration>,
    ) {
        tracker.pause(PauseReason::Busy);
        let id = tracker.id.clone();

        let session_state = SessionState {
            tracker,
            subscriptions,
            unacked_pubrels,
            recorded,
            resend,
            subscription_ids,
        };

        // swarm-mesh patch: sessions that expired while nobody came back for them are
        // dropped here, so they do not pile up.
        let now = Instant::now();
        self.connections
            .retain(|_, saved| saved.expires.is_none_or(|at| at > now));
        self.saved += 1;
        self.connections.insert(
            id,
            SavedState {
                session_state: Some(session_state),
                metrics,
                expires: kept_for.and_then(|d| now.checked_add(d)),
                saved: self.saved,
            },
        );
        while self.connections.len() > self.capacity {
            let oldest = self
                .connections
                .iter()
                .min_by_key(|(_, s)| s.saved)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => self.connections.remove(&id),
                None => break,
            };
        }
    }
}

#[derive(Debug)]
pub struct SavedState {
    pub session_state: Option<SessionState>,
    pub metrics: ConnectionEvents,
    /// swarm-mesh patch: when the session ends, `None` never.
    pub expires: Option<Instant>,
    /// swarm-mesh patch: the order sessions were saved in, to drop the oldest.
    pub saved: u64,
}

#[derive(Debug)]
pub struct SessionState {
    pub tracker: Tracker,
    pub subscriptions: HashSet<String>,
    // used for pubrel in qos2
    pub unacked_pubrels: VecDeque<u16>,
    /// swarm-mesh patch: packet ids of QoS 2 messages received and waiting for their PUBREL.
    pub recorded: HashSet<u16>,
    /// swarm-mesh patch: messages sent and not acknowledged: packet id, log, place in it.
    pub resend: Vec<(u16, FilterIdx, Cursor)>,
    /// swarm-mesh patch: the MQTT 5 Subscription Identifiers of the subscriptions, which
    /// belong to them and so to the session [MQTT-3.3.4-3]; a resumed session lost them.
    pub subscription_ids: HashMap<String, usize>,
}
