//! Which MQTT subscriptions could receive a device's publication that the gate carries to the
//! mesh. The gate hands such publications to the uplink itself; rumqttd needs them only for an
//! MQTT subscriber whose filter matches, or to keep them (retained). A QoS 0 publication that
//! no filter here matches goes to the mesh only: under a flood, rumqttd's link and router
//! were a quarter of the bridge's CPU for messages nobody read from it.
//!
//! The gate sees every client's CONNECT, SUBSCRIBE and UNSUBSCRIBE, so it keeps the filters
//! by client id, as rumqttd keeps sessions. Where it cannot follow rumqttd it errs towards
//! "read": a persistent session's filters stay after its connection closes (rumqttd keeps them
//! until the session expires, which the gate does not see), and past `MAX_CLIENTS` clients
//! with filters, or `MAX_FILTERS` filters in all, every publication goes to rumqttd again,
//! for good.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use swarm_bus::SwarmKeys;

/// Clients with filters under the mesh's prefix that the gate follows.
pub const MAX_CLIENTS: usize = 4096;
/// Such filters the gate keeps, all clients together: a client without a login may
/// subscribe to as many as it likes.
pub const MAX_FILTERS: usize = 16_384;

pub struct MeshReaders {
    /// `swarm/<s>/node`, as topic levels: only a filter that can match below it matters.
    prefix: Vec<String>,
    /// Changes whenever a filter comes or goes, so a connection can keep its last answer.
    generation: AtomicU64,
    next_connection: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    clients: HashMap<String, Client>,
    /// Every client's filters without wildcards, counted.
    exact: HashMap<String, u32>,
    /// And those with one.
    wild: HashMap<String, u32>,
    /// Filters held, all clients together.
    filters: usize,
    /// Past `MAX_CLIENTS`: every publication is taken as read.
    overflowed: bool,
}

struct Client {
    /// The connection that last connected under this id.
    connection: u64,
    persistent: bool,
    filters: HashSet<String>,
}

/// One connection's hold on its client's filters; dropping it is the connection closing.
pub struct Reader {
    readers: Arc<MeshReaders>,
    client: String,
    connection: u64,
    persistent: bool,
    /// The last topic asked about, under which generation, and the answer.
    last: Option<(u64, Vec<u8>, bool)>,
}

impl MeshReaders {
    pub fn new(keys: &SwarmKeys) -> Self {
        let subtree = keys.node_subtree();
        let prefix = subtree
            .trim_end_matches("/**")
            .split('/')
            .map(str::to_string)
            .collect();
        Self {
            prefix,
            generation: AtomicU64::new(0),
            next_connection: AtomicU64::new(0),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// A client connected. `clean_start` ends the session it may have had (rumqttd discards
    /// it); `persistent` sessions outlive the connection. An empty client id (rumqttd makes
    /// one up) is a client of its own.
    pub fn connect(
        self: &Arc<Self>,
        client_id: &str,
        clean_start: bool,
        persistent: bool,
    ) -> Reader {
        let connection = self.next_connection.fetch_add(1, Relaxed);
        let client = if client_id.is_empty() {
            format!("\0{connection}")
        } else {
            client_id.to_string()
        };
        let mut inner = self.lock();
        if clean_start && let Some(old) = inner.clients.remove(&client) {
            inner.forget(&old.filters);
            self.changed();
        }
        if let Some(kept) = inner.clients.get_mut(&client) {
            kept.connection = connection;
            kept.persistent = persistent;
        }
        Reader {
            readers: self.clone(),
            client,
            connection,
            persistent,
            last: None,
        }
    }

    /// The filter can match a topic below `swarm/<s>/node`.
    fn matters(&self, filter: &str) -> bool {
        let mut levels = shared_filter(filter).split('/');
        for want in &self.prefix {
            match levels.next() {
                Some("#") => return true,
                Some(level) if level == "+" || level == want => {}
                _ => return false,
            }
        }
        levels.next().is_some()
    }

    /// Whether some subscription may receive a publication on `topic`.
    fn read(&self, topic: &str) -> bool {
        let inner = self.lock();
        inner.overflowed
            || inner.exact.contains_key(topic)
            || inner
                .wild
                .keys()
                .any(|f| rumqttd::protocol::matches(topic, shared_filter(f)))
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Relaxed);
    }

    /// A panic elsewhere while the lock was held leaves the table as it was: still usable.
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn wild(filter: &str) -> bool {
    filter.contains(['+', '#'])
}

/// A shared subscription's filter follows its group: `$share/<group>/<filter>`.
fn shared_filter(filter: &str) -> &str {
    match filter.strip_prefix("$share/") {
        Some(rest) => rest.split_once('/').map_or("", |(_, f)| f),
        None => filter,
    }
}

impl Inner {
    fn forget(&mut self, filters: &HashSet<String>) {
        self.filters = self.filters.saturating_sub(filters.len());
        for f in filters {
            let counts = if wild(f) {
                &mut self.wild
            } else {
                &mut self.exact
            };
            if let Some(n) = counts.get_mut(f.as_str()) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(f.as_str());
                }
            }
        }
    }
}

impl Reader {
    /// The filters of a SUBSCRIBE the gate lets through.
    pub fn subscribe<'f>(&mut self, filters: impl IntoIterator<Item = &'f str>) {
        let readers = self.readers.clone();
        let mut inner = readers.lock();
        let mut added = false;
        for filter in filters.into_iter().filter(|f| readers.matters(f)) {
            if !inner.clients.contains_key(&self.client) {
                if inner.clients.len() >= MAX_CLIENTS {
                    inner.overflowed = true;
                    added = true;
                    break;
                }
                inner.clients.insert(
                    self.client.clone(),
                    Client {
                        connection: self.connection,
                        persistent: self.persistent,
                        filters: HashSet::new(),
                    },
                );
            }
            let held = inner
                .clients
                .get(&self.client)
                .is_some_and(|c| c.filters.contains(filter));
            if !held && inner.filters >= MAX_FILTERS {
                inner.overflowed = true;
                added = true;
                break;
            }
            let Some(client) = inner.clients.get_mut(&self.client) else {
                break;
            };
            if client.filters.insert(filter.to_string()) {
                inner.filters += 1;
                let counts = if wild(filter) {
                    &mut inner.wild
                } else {
                    &mut inner.exact
                };
                *counts.entry(filter.to_string()).or_insert(0) += 1;
                added = true;
            }
        }
        if added {
            readers.changed();
        }
    }

    /// The filters of an UNSUBSCRIBE.
    pub fn unsubscribe<'f>(&mut self, filters: impl IntoIterator<Item = &'f str>) {
        let readers = self.readers.clone();
        let mut inner = readers.lock();
        let Some(client) = inner.clients.get_mut(&self.client) else {
            return;
        };
        let gone: HashSet<String> = filters
            .into_iter()
            .filter(|f| client.filters.remove(*f))
            .map(str::to_string)
            .collect();
        if client.filters.is_empty() {
            inner.clients.remove(&self.client);
        }
        if !gone.is_empty() {
            inner.forget(&gone);
            readers.changed();
        }
    }

    /// Whether some MQTT subscriber may want a publication on `topic`. A flood repeats its
    /// topic: the answer is kept until a filter comes or goes.
    pub fn read(&mut self, topic: &[u8]) -> bool {
        let generation = self.readers.generation.load(Relaxed);
        if let Some((g, t, answer)) = &self.last
            && *g == generation
            && t.as_slice() == topic
        {
            return *answer;
        }
        let Ok(text) = std::str::from_utf8(topic) else {
            return true;
        };
        let answer = self.readers.read(text);
        self.last = Some((generation, topic.to_vec(), answer));
        answer
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let mut inner = self.readers.lock();
        let ours = inner
            .clients
            .get(&self.client)
            .is_some_and(|c| c.connection == self.connection && !c.persistent);
        if ours && let Some(client) = inner.clients.remove(&self.client) {
            inner.forget(&client.filters);
            self.readers.changed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_bus::SwarmName;

    const ENERGY: &[u8] = b"swarm/s/node/esp-0/energy";

    fn readers() -> Arc<MeshReaders> {
        Arc::new(MeshReaders::new(&SwarmKeys::new(
            SwarmName::new("s").expect("name"),
        )))
    }

    #[test]
    fn only_filters_that_can_match_below_the_node_prefix_matter() {
        let r = readers();
        for f in [
            "#",
            "swarm/#",
            "swarm/s/#",
            "swarm/+/node/#",
            "+/+/+/+/energy",
            "swarm/s/node/esp-0/energy",
            "swarm/s/node/+/cmd",
            "$share/g/swarm/s/node/#",
        ] {
            assert!(r.matters(f), "{f}");
        }
        for f in [
            "swarm/s/node",
            "swarm/other/node/#",
            "swarm/s/leader",
            "homeassistant/#",
            "+/+",
            "$share/g/homeassistant/#",
            "$share/broken",
        ] {
            assert!(!r.matters(f), "{f}");
        }
    }

    #[test]
    fn a_publication_is_read_while_a_matching_filter_is_held() {
        let r = readers();
        let mut device = r.connect("esp-0", true, false);
        assert!(!device.read(ENERGY));
        {
            let mut watcher = r.connect("watcher", true, false);
            watcher.subscribe(["homeassistant/#", "swarm/s/node/+/energy"]);
            assert!(device.read(ENERGY));
            assert!(!device.read(b"swarm/s/node/esp-0/temp"));
            watcher.unsubscribe(["swarm/s/node/+/energy"]);
            assert!(!device.read(ENERGY));
            watcher.subscribe(["swarm/s/node/esp-0/energy"]);
            assert!(device.read(ENERGY));
        }
        // The watcher's clean session ended with its connection.
        assert!(!device.read(ENERGY));
        assert!(r.lock().clients.is_empty());
    }

    #[test]
    fn a_persistent_sessions_filters_outlive_its_connection_until_a_clean_start() {
        let r = readers();
        let mut device = r.connect("esp-0", true, false);
        drop({
            let mut watcher = r.connect("watcher", false, true);
            watcher.subscribe(["swarm/#"]);
            watcher
        });
        assert!(device.read(ENERGY), "rumqttd still delivers to the session");
        // It comes back with its session: still read, and still after it goes again.
        drop(r.connect("watcher", false, true));
        assert!(device.read(ENERGY));
        // A clean start ends the session in rumqttd, and here.
        drop(r.connect("watcher", true, false));
        assert!(!device.read(ENERGY));
    }

    #[test]
    fn a_connection_taken_over_leaves_the_new_ones_filters_alone() {
        let r = readers();
        let mut device = r.connect("esp-0", true, false);
        let mut first = r.connect("watcher", false, false);
        first.subscribe(["swarm/s/node/#"]);
        // The same id connects again without a clean start: rumqttd takes the session over.
        let second = r.connect("watcher", false, false);
        drop(first);
        assert!(device.read(ENERGY));
        drop(second);
        assert!(!device.read(ENERGY));
    }

    #[test]
    fn past_the_bound_every_publication_is_read() {
        let r = readers();
        let mut device = r.connect("esp-0", true, false);
        let held: Vec<_> = (0..MAX_CLIENTS)
            .map(|n| {
                let mut c = r.connect(&format!("c{n}"), true, false);
                c.subscribe(["swarm/s/node/x/cmd"]);
                c
            })
            .collect();
        assert!(!device.read(ENERGY));
        let mut one_more = r.connect("late", true, false);
        one_more.subscribe(["swarm/s/node/y/cmd"]);
        assert!(device.read(ENERGY));
        drop(held);
        assert!(device.read(ENERGY), "the overflow holds for good");
    }

    #[test]
    fn past_the_filter_bound_every_publication_is_read() {
        let r = readers();
        let mut device = r.connect("esp-0", true, false);
        let mut greedy = r.connect("greedy", true, false);
        let filters: Vec<String> = (0..MAX_FILTERS)
            .map(|n| format!("swarm/s/node/x{n}/cmd"))
            .collect();
        greedy.subscribe(filters.iter().map(String::as_str));
        // Again: nothing new, so still within the bound.
        greedy.subscribe(filters.iter().take(10).map(String::as_str));
        assert!(!device.read(ENERGY));
        greedy.unsubscribe(["swarm/s/node/x0/cmd"]);
        greedy.subscribe(["swarm/s/node/y/cmd"]);
        assert!(!device.read(ENERGY), "one gone, one in: at the bound");
        greedy.subscribe(["swarm/s/node/z/cmd"]);
        assert!(device.read(ENERGY));
    }

    #[test]
    fn a_topic_that_is_not_utf8_is_taken_as_read() {
        let r = readers();
        let mut device = r.connect("", true, false);
        assert!(device.read(b"swarm/s/node/\xff/energy"));
    }
}
