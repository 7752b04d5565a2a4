//! Which readings the Home Assistant link takes: those of members, on each key at most one a
//! second. It judges in zenoh's callback, before a sample is queued or decoded: a flood of
//! samples from devices that are not members (the bridge bench's, a stray board's) cost the
//! link a decode and a refusal each, a fifth of a flooded bridge's CPU, and a member that
//! floods its readings would have had every changed value sent on to Home Assistant, which
//! shows a value, not a stream.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use swarm_bus::{NodeId, SwarmKeys};

/// The least time between two samples taken on one key. Members report energy every 5-10 s
/// and a leader heartbeats twice a second: only a flood, or a role that changes twice within
/// it, loses anything here, and that for at most this long.
pub const MIN_GAP: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Take,
    /// No member holds this key: no liveliness token, or past `max_members`.
    NotMember,
    /// Within `MIN_GAP` of the last one taken on this key.
    Thinned,
}

pub struct MemberSampling {
    keys: SwarmKeys,
    max_members: usize,
    /// Each member's energy and heartbeat keys, and when a sample was last taken on each.
    keyed: Mutex<HashMap<String, Option<Instant>>>,
}

impl MemberSampling {
    pub fn new(keys: SwarmKeys, max_members: usize) -> Self {
        Self {
            keys,
            max_members,
            keyed: Mutex::new(HashMap::new()),
        }
    }

    fn member_keys(&self, id: &NodeId) -> [String; 2] {
        [self.keys.energy(id), self.keys.heartbeat(id)]
    }

    /// A member's token appeared; past `max_members` it is not taken (the announcer refuses
    /// it as `ha_full` too).
    pub fn joined(&self, id: &NodeId) {
        let [energy, heartbeat] = self.member_keys(id);
        let mut keyed = self.lock();
        if !keyed.contains_key(&energy) && keyed.len() / 2 >= self.max_members {
            return;
        }
        keyed.entry(energy).or_insert(None);
        keyed.entry(heartbeat).or_insert(None);
    }

    pub fn left(&self, id: &NodeId) {
        let mut keyed = self.lock();
        for key in self.member_keys(id) {
            keyed.remove(&key);
        }
    }

    pub fn judge(&self, key: &str, now: Instant) -> Verdict {
        let mut keyed = self.lock();
        let Some(last) = keyed.get_mut(key) else {
            return Verdict::NotMember;
        };
        if last.is_some_and(|t| now.saturating_duration_since(t) < MIN_GAP) {
            return Verdict::Thinned;
        }
        *last = Some(now);
        Verdict::Take
    }

    /// A panic elsewhere while the lock was held leaves the table as it was: still usable.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<Instant>>> {
        self.keyed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_bus::SwarmName;

    fn sampling(max: usize) -> (MemberSampling, SwarmKeys) {
        let keys = SwarmKeys::new(SwarmName::new("ha").expect("name"));
        (MemberSampling::new(keys.clone(), max), keys)
    }

    fn id(s: &str) -> NodeId {
        NodeId::new(s).expect("id")
    }

    #[test]
    fn only_members_readings_are_taken() {
        let (s, keys) = sampling(8);
        let t = Instant::now();
        assert_eq!(s.judge(&keys.energy(&id("a")), t), Verdict::NotMember);
        s.joined(&id("a"));
        assert_eq!(s.judge(&keys.energy(&id("a")), t), Verdict::Take);
        assert_eq!(s.judge(&keys.heartbeat(&id("a")), t), Verdict::Take);
        assert_eq!(s.judge(&keys.energy(&id("b")), t), Verdict::NotMember);
        // A key of the member's that the link does not read.
        assert_eq!(s.judge(&keys.state(&id("a")), t), Verdict::NotMember);
        s.left(&id("a"));
        let later = t + 2 * MIN_GAP;
        assert_eq!(s.judge(&keys.energy(&id("a")), later), Verdict::NotMember);
    }

    #[test]
    fn a_flooding_member_is_taken_once_a_gap_on_each_key() {
        let (s, keys) = sampling(8);
        let t0 = Instant::now();
        s.joined(&id("a"));
        let energy = keys.energy(&id("a"));
        let taken = (0..10_000u64)
            .map(|i| t0 + Duration::from_micros(i * 500)) // 2,000 a second for 5 s
            .filter(|&t| s.judge(&energy, t) == Verdict::Take)
            .count();
        assert_eq!(taken, 5);
        // The heartbeat key has its own gap.
        assert_eq!(
            s.judge(&keys.heartbeat(&id("a")), t0 + Duration::from_millis(100)),
            Verdict::Take
        );
        // A clock read out of order (two callback threads) is within the gap, never a panic.
        assert_eq!(s.judge(&energy, t0), Verdict::Thinned);
    }

    #[test]
    fn the_table_is_bounded_by_max_members_and_a_rejoin_keeps_its_place() {
        let (s, keys) = sampling(2);
        let t = Instant::now();
        for n in ["a", "b", "c"] {
            s.joined(&id(n));
        }
        assert_eq!(s.judge(&keys.energy(&id("c")), t), Verdict::NotMember);
        s.joined(&id("a"));
        assert_eq!(s.lock().len(), 4);
        s.left(&id("a"));
        s.joined(&id("c"));
        assert_eq!(s.judge(&keys.energy(&id("c")), t), Verdict::Take);
    }
}
