//! Who has history: members only, by their liveliness tokens. A stray peer's well-formed
//! samples would otherwise take key slots until they are a day old.
//!
//! The storage manager builds the storage itself, so the set is the process's: the node that
//! opens the history feeds it from its liveliness watch. Until one does (zenohd with this
//! volume, or a bench), every key is admitted, as the storage manager's other volumes do.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{LazyLock, RwLock};
use swarm_bus::{SwarmKey, SwarmKeys};

/// Members watched at most: far above any swarm's `limits.max_members`.
pub const MAX_MEMBERS: usize = 65_536;

#[derive(Debug, Default)]
pub struct Members {
    /// Node keys, `swarm/<s>/node/<id>`.
    present: RwLock<HashSet<String>>,
    watched: AtomicBool,
    /// Joins not recorded because the set was full.
    pub full: AtomicU64,
}

static MEMBERS: LazyLock<Members> = LazyLock::new(Members::default);

/// The process's set, which the history volume asks.
pub fn members() -> &'static Members {
    &MEMBERS
}

impl Members {
    /// From now on only members' samples are kept.
    pub fn watch(&self) {
        self.watched.store(true, Relaxed);
    }

    /// A liveliness token appeared on `node_key`.
    pub fn joined(&self, node_key: String) {
        let mut present = self.present.write().unwrap_or_else(|e| e.into_inner());
        if present.len() >= MAX_MEMBERS && !present.contains(&node_key) {
            self.full.fetch_add(1, Relaxed);
            return;
        }
        present.insert(node_key);
    }

    /// The token on `node_key` went.
    pub fn left(&self, node_key: &str) {
        self.present
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(node_key);
    }

    /// Whether a sample on `key` may be kept: its node holds a token, or nobody watches.
    pub fn admits(&self, key: &str) -> bool {
        if !self.watched.load(Relaxed) {
            return true;
        }
        let Ok(parsed) = key.parse::<SwarmKey>() else {
            return false;
        };
        let Some(id) = parsed.node_id() else {
            return false;
        };
        let node_key = SwarmKeys::new(parsed.swarm().clone()).node(id);
        self.present
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&node_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_members_are_admitted_once_watched() {
        let m = Members::default();
        let key = "swarm/lab/node/n1/energy";
        assert!(m.admits(key), "nobody watches: the volume keeps any key");
        m.watch();
        assert!(!m.admits(key));
        m.joined("swarm/lab/node/n1".into());
        assert!(m.admits(key));
        assert!(
            !m.admits("swarm/other/node/n1/energy"),
            "another swarm's n1"
        );
        assert!(!m.admits("swarm/lab/node/n2/energy"));
        assert!(!m.admits("not/a/swarm/key"));
        m.left("swarm/lab/node/n1");
        assert!(!m.admits(key), "gone");
    }

    #[test]
    fn the_set_is_bounded() {
        let m = Members::default();
        for i in 0..MAX_MEMBERS + 3 {
            m.joined(format!("swarm/lab/node/n{i}"));
        }
        assert_eq!(m.full.load(Relaxed), 3);
        m.joined("swarm/lab/node/n0".into());
        assert_eq!(m.full.load(Relaxed), 3, "one already there is no new entry");
    }
}
