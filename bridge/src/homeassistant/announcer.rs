//! Which members Home Assistant knows, and what to publish when the mesh changes. Sans-IO:
//! the adapter feeds it what zenoh and MQTT say and publishes what it returns.
//!
//! - A member exists for Home Assistant once its liveliness token does; nothing else creates
//!   one, and the table is bounded.
//! - A sensor is announced the first time the member reports a value for it, so a PC never
//!   shows an empty battery.
//! - Values go out as one non-retained JSON state per member; configs and availability are
//!   retained. Home Assistant's birth message brings everything out again, at most once a tick.
//! - A member absent for `forget_after_ms` has its configs cleared (empty retained messages),
//!   which removes the device from Home Assistant.
//! - A gateway that restarts finds on an external broker the availability it retained for
//!   members in its earlier run. Those that do not come back within `REMEMBER_GRACE_MS` are
//!   said offline, and forgotten like any member gone: a member that left while the gateway
//!   was down is not shown available forever. They never keep a live member out of the table.

use super::sensors::{DeviceFacts, Sensor, config, config_topic};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use swarm_bus::{CadenceMode, Energy, Heartbeat, NodeId, NodeState, SwarmKeys};

/// A message for the MQTT broker.
#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    pub topic: String,
    pub payload: String,
    pub retain: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Joined(NodeId),
    Left(NodeId),
    Energy(NodeId, Energy),
    Heartbeat(NodeId, Heartbeat),
    State(NodeId, NodeState),
    /// Home Assistant said `online` on its status topic.
    Birth,
    /// A member's availability, retained on the broker by an earlier run of the gateway.
    Remembered(NodeId),
    /// Once a second or so: births are answered and the long-gone forgotten here.
    Tick,
}

/// Why an input changed nothing; the adapter counts these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A value for an id with no liveliness token.
    NotMember,
    /// A token while `max_members` are known.
    Full,
    /// A reading outside what any device could report (NaN, negative energy…); the rest of
    /// its sample is used.
    BadValue,
}

#[derive(Debug, Default)]
struct Member {
    present: bool,
    /// When its token went, while it is away.
    left_ms: Option<u64>,
    facts: DeviceFacts,
    values: BTreeMap<Sensor, Value>,
    announced: BTreeSet<Sensor>,
    /// Known from an earlier run's retained availability: which sensors that run announced
    /// is unknown, so forgetting it clears every one.
    remembered: bool,
    /// Not yet seen live in this run: said offline once the grace has passed.
    unconfirmed_since: Option<u64>,
}

/// How long a member remembered from an earlier run has to show its token before it is said
/// offline: a restarted gateway hears the tokens within a second or two.
pub const REMEMBER_GRACE_MS: u64 = 10_000;

pub struct Announcer {
    keys: SwarmKeys,
    prefix: String,
    max_members: usize,
    forget_after_ms: u64,
    members: BTreeMap<NodeId, Member>,
    birth_pending: bool,
    refusals: Vec<Refusal>,
}

/// Largest power any member reports, W: a value past it is a broken sensor or a forgery.
const MAX_WATTS: f32 = 100_000.0;

impl Announcer {
    pub fn new(keys: SwarmKeys, prefix: String, max_members: usize, forget_after_ms: u64) -> Self {
        Self {
            keys,
            prefix,
            max_members,
            forget_after_ms,
            members: BTreeMap::new(),
            birth_pending: false,
            refusals: Vec::new(),
        }
    }

    /// Refusals since the last call.
    pub fn take_refusals(&mut self) -> Vec<Refusal> {
        std::mem::take(&mut self.refusals)
    }

    pub fn known(&self) -> usize {
        self.members.len()
    }

    pub fn handle(&mut self, now_ms: u64, input: Input) -> Vec<Publish> {
        match input {
            Input::Joined(id) => self.joined(id),
            Input::Left(id) => self.left(now_ms, &id),
            Input::Energy(id, e) => {
                let values = self.energy_values(&e);
                self.update(&id, values)
            }
            Input::Heartbeat(id, hb) => {
                let values = vec![(Sensor::Role, json!(hb.role.as_str()))];
                if let Some(m) = self.members.get_mut(&id) {
                    m.facts.class.get_or_insert(hb.class.as_str());
                }
                self.update(&id, values)
            }
            Input::State(id, state) => {
                let facts = DeviceFacts {
                    class: Some(state.class.as_str()),
                    version: Some(state.version.clone()),
                };
                // A device card that changed (a board updated) is announced again.
                let mut refreshed = Vec::new();
                if let Some(m) = self.members.get_mut(&id)
                    && m.facts != facts
                {
                    m.facts = facts;
                    refreshed.extend(m.announced.iter().copied());
                }
                let mut out: Vec<Publish> =
                    refreshed.into_iter().map(|s| self.config(&id, s)).collect();
                let values = vec![
                    (Sensor::Role, json!(state.role.as_str())),
                    (Sensor::Cadence, json!(mode_name(state.cadence_mode))),
                ];
                out.extend(self.update(&id, values));
                out
            }
            Input::Birth => {
                self.birth_pending = true;
                Vec::new()
            }
            Input::Remembered(id) => {
                self.remembered(now_ms, id);
                Vec::new()
            }
            Input::Tick => self.tick(now_ms),
        }
    }

    fn joined(&mut self, id: NodeId) -> Vec<Publish> {
        let mut out = Vec::new();
        if !self.members.contains_key(&id) && self.members.len() >= self.max_members {
            // A live member comes before one only remembered from an earlier run.
            let Some(stale) = self
                .members
                .iter()
                .find(|(_, m)| m.remembered && !m.present)
                .map(|(id, _)| id.clone())
            else {
                self.refusals.push(Refusal::Full);
                return Vec::new();
            };
            out.extend(self.forget(&stale));
        }
        let member = self.members.entry(id.clone()).or_default();
        member.present = true;
        member.left_ms = None;
        member.unconfirmed_since = None;
        out.push(self.availability(&id, true));
        out
    }

    fn remembered(&mut self, now_ms: u64, id: NodeId) {
        if self.members.contains_key(&id) {
            return;
        }
        if self.members.len() >= self.max_members {
            self.refusals.push(Refusal::Full);
            return;
        }
        self.members.insert(
            id,
            Member {
                left_ms: Some(now_ms),
                remembered: true,
                unconfirmed_since: Some(now_ms),
                ..Member::default()
            },
        );
    }

    fn left(&mut self, now_ms: u64, id: &NodeId) -> Vec<Publish> {
        let Some(member) = self.members.get_mut(id) else {
            return Vec::new();
        };
        member.present = false;
        member.left_ms = Some(now_ms);
        vec![self.availability(id, false)]
    }

    fn energy_values(&mut self, e: &Energy) -> Vec<(Sensor, Value)> {
        let mut values = Vec::new();
        let mut bad = false;
        let mut put = |sensor, ok: bool, value: Value| {
            if ok {
                values.push((sensor, value));
            } else {
                bad = true;
            }
        };
        put(
            Sensor::Power,
            e.watts.is_finite() && (0.0..=MAX_WATTS).contains(&e.watts),
            json!(round(e.watts, 3)),
        );
        put(
            Sensor::Energy,
            e.wh_total.is_finite() && e.wh_total >= 0.0,
            json!(round(e.wh_total / 1000.0, 6)),
        );
        put(
            Sensor::Co2,
            e.co2_g.is_finite() && e.co2_g >= 0.0,
            json!(round(e.co2_g, 3)),
        );
        if let Some(t) = e.temp_c {
            put(
                Sensor::Temperature,
                t.is_finite() && (-100.0..=200.0).contains(&t),
                json!(round(t, 2)),
            );
        }
        if let Some(b) = e.battery_pct {
            put(Sensor::Battery, b <= 100, json!(b));
        }
        if bad {
            self.refusals.push(Refusal::BadValue);
        }
        values
    }

    /// New values for a member: configs for sensors seen for the first time, then its state.
    fn update(&mut self, id: &NodeId, values: Vec<(Sensor, Value)>) -> Vec<Publish> {
        let Some(member) = self.members.get_mut(id) else {
            self.refusals.push(Refusal::NotMember);
            return Vec::new();
        };
        let mut changed = false;
        let mut fresh = Vec::new();
        for (sensor, value) in values {
            if member.values.get(&sensor) != Some(&value) {
                changed = true;
                member.values.insert(sensor, value);
            }
            if member.announced.insert(sensor) {
                fresh.push(sensor);
            }
        }
        let mut out: Vec<Publish> = fresh.into_iter().map(|s| self.config(id, s)).collect();
        // Heartbeats repeat the role many times a minute; only a change is worth a message.
        if changed {
            out.extend(self.state(id));
        }
        out
    }

    fn tick(&mut self, now_ms: u64) -> Vec<Publish> {
        let mut out = Vec::new();
        let gone: Vec<NodeId> = self
            .members
            .iter()
            .filter(|(_, m)| {
                m.left_ms
                    .is_some_and(|t| now_ms.saturating_sub(t) >= self.forget_after_ms)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            out.extend(self.forget(&id));
        }
        let unconfirmed: Vec<NodeId> = self
            .members
            .iter()
            .filter(|(_, m)| {
                m.unconfirmed_since
                    .is_some_and(|t| now_ms.saturating_sub(t) >= REMEMBER_GRACE_MS)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in unconfirmed {
            if let Some(m) = self.members.get_mut(&id) {
                m.unconfirmed_since = None;
            }
            out.push(self.availability(&id, false));
        }
        if std::mem::take(&mut self.birth_pending) {
            out.extend(self.everything());
        }
        out
    }

    /// Every retained message and state, as after a Home Assistant restart.
    pub fn everything(&self) -> Vec<Publish> {
        let mut out = Vec::new();
        for (id, member) in &self.members {
            out.extend(member.announced.iter().map(|s| self.config(id, *s)));
            out.push(self.availability(id, member.present));
            out.extend(self.state(id));
        }
        out
    }

    /// Empty retained messages on every topic Home Assistant holds for the member.
    fn forget(&mut self, id: &NodeId) -> Vec<Publish> {
        let Some(member) = self.members.remove(id) else {
            return Vec::new();
        };
        let clear = |topic| Publish {
            topic,
            payload: String::new(),
            retain: true,
        };
        let sensors: Vec<Sensor> = if member.remembered {
            Sensor::ALL.to_vec()
        } else {
            member.announced.iter().copied().collect()
        };
        let mut out: Vec<Publish> = sensors
            .into_iter()
            .map(|s| clear(config_topic(&self.prefix, &self.keys, id, s)))
            .collect();
        out.push(clear(self.keys.ha_availability(id)));
        out
    }

    fn config(&self, id: &NodeId, sensor: Sensor) -> Publish {
        let facts = self
            .members
            .get(id)
            .map(|m| m.facts.clone())
            .unwrap_or_default();
        Publish {
            topic: config_topic(&self.prefix, &self.keys, id, sensor),
            payload: config(&self.keys, id, &facts, sensor).to_string(),
            retain: true,
        }
    }

    fn availability(&self, id: &NodeId, present: bool) -> Publish {
        Publish {
            topic: self.keys.ha_availability(id),
            payload: if present { "online" } else { "offline" }.into(),
            retain: true,
        }
    }

    fn state(&self, id: &NodeId) -> Option<Publish> {
        let member = self.members.get(id)?;
        if member.values.is_empty() {
            return None;
        }
        let fields: Map<String, Value> = member
            .values
            .iter()
            .map(|(s, v)| (s.field().to_string(), v.clone()))
            .collect();
        Some(Publish {
            topic: self.keys.ha_state(id),
            payload: Value::Object(fields).to_string(),
            retain: false,
        })
    }
}

fn mode_name(mode: CadenceMode) -> &'static str {
    mode.as_str()
}

/// Rounded for the state message: f32 noise in the 8th digit only costs bytes.
fn round(v: f32, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (f64::from(v) * scale).round() / scale
}

#[cfg(test)]
#[path = "announcer_tests.rs"]
mod tests;
