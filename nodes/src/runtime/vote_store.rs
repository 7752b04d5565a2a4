//! The election's durable state (term, vote, voter set) in the state directory.

use crate::atomic_file;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use swarm_bus::NodeId;
use swarm_node::election::Persisted;

#[derive(Debug, thiserror::Error)]
pub enum VoteStoreError {
    #[error("reading {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// Starting over from term 0 could cast a second vote in a term already voted in, so a
    /// damaged file stops the node instead of being silently replaced.
    #[error(
        "{path} is damaged ({cause}); it holds this node's votes. If the node has been stopped \
         for longer than one election timeout it is safe to delete it"
    )]
    Damaged {
        path: PathBuf,
        cause: serde_json::Error,
    },
    /// A term past the protocol's ceiling (a forged term stored by an older release, or a
    /// hand edit): peers refuse it, so the node could never vote or lead again.
    #[error(
        "{path} holds term {term}, above the highest term the protocol accepts ({max}); this \
         node could never take part in an election. Stop every node of the swarm, delete this \
         file on each, and start them again: the swarm elects afresh from term 0 \
         (docs/protocol.md#admission)"
    )]
    TermOutOfRange { path: PathBuf, term: u64, max: u64 },
    #[error("writing {path}: {cause}")]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    term: u64,
    voted_for: Option<NodeId>,
    voters: Vec<NodeId>,
}

pub struct VoteStore {
    path: PathBuf,
    current: Persisted,
}

impl VoteStore {
    pub const FILE: &'static str = "election.json";

    /// Loads what an earlier run stored; nothing stored yet is term 0 with no vote.
    pub fn open(state_dir: &Path) -> Result<Self, VoteStoreError> {
        let path = state_dir.join(Self::FILE);
        let disk = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<OnDisk>(&bytes).map_err(|cause| {
                VoteStoreError::Damaged {
                    path: path.clone(),
                    cause,
                }
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => OnDisk::default(),
            Err(cause) => return Err(VoteStoreError::Read { path, cause }),
        };
        if disk.term > swarm_bus::MAX_TERM {
            return Err(VoteStoreError::TermOutOfRange {
                path,
                term: disk.term,
                max: swarm_bus::MAX_TERM,
            });
        }
        let current = Persisted {
            term: disk.term,
            voted_for: disk.voted_for,
            voters: disk.voters,
        };
        Ok(Self { path, current })
    }

    pub fn loaded(&self) -> &Persisted {
        &self.current
    }

    pub fn vote(&mut self, term: u64, voted_for: NodeId) -> Result<(), VoteStoreError> {
        self.current.term = term;
        self.current.voted_for = Some(voted_for);
        self.save()
    }

    pub fn voters(&mut self, voters: Vec<NodeId>) -> Result<(), VoteStoreError> {
        self.current.voters = voters;
        self.save()
    }

    /// Synced to disk before returning: the vote it records is sent right after.
    fn save(&self) -> Result<(), VoteStoreError> {
        let disk = OnDisk {
            term: self.current.term,
            voted_for: self.current.voted_for.clone(),
            voters: self.current.voters.clone(),
        };
        let bytes = serde_json::to_vec(&disk).map_err(|e| VoteStoreError::Write {
            path: self.path.clone(),
            cause: e.into(),
        })?;
        atomic_file::write(&self.path, &bytes).map_err(|cause| VoteStoreError::Write {
            path: self.path.clone(),
            cause,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn a_vote_survives_a_restart_and_a_damaged_file_stops_the_node() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = VoteStore::open(dir.path()).unwrap();
        assert_eq!(store.loaded(), &Persisted::default());
        store.voters(vec![id("a"), id("b")]).unwrap();
        store.vote(7, id("a")).unwrap();
        let again = VoteStore::open(dir.path()).unwrap();
        assert_eq!(
            again.loaded(),
            &Persisted {
                term: 7,
                voted_for: Some(id("a")),
                voters: vec![id("a"), id("b")],
            }
        );
        std::fs::write(
            dir.path().join(VoteStore::FILE),
            b"{\"term\": 7, \"voted_for\": \"A!\"",
        )
        .unwrap();
        let err = VoteStore::open(dir.path()).err().unwrap();
        assert!(err.to_string().contains("damaged"), "{err}");
    }

    #[test]
    fn a_stored_term_past_the_ceiling_stops_the_node_with_the_way_out() {
        let dir = tempfile::tempdir().unwrap();
        let wedged = format!(
            "{{\"term\": {}, \"voted_for\": null, \"voters\": []}}",
            u64::MAX
        );
        std::fs::write(dir.path().join(VoteStore::FILE), wedged).unwrap();
        let err = VoteStore::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("18446744073709551615"), "{err}");
        assert!(err.contains("delete this file"), "{err}");
        let ceiling = format!(
            "{{\"term\": {}, \"voted_for\": null, \"voters\": []}}",
            swarm_bus::MAX_TERM
        );
        std::fs::write(dir.path().join(VoteStore::FILE), ceiling).unwrap();
        assert_eq!(
            VoteStore::open(dir.path()).unwrap().loaded().term,
            swarm_bus::MAX_TERM
        );
    }
}
