//! What one MQTT publication from a device means for the mesh. Pure: no IO, no clock.

use crate::topic::{Scope, TopicError, topic_to_key};
use swarm_bus::{
    Decode, DecodeError, DeviceClass, Energy, FirmwareReport, Heartbeat, Leaf, Leave, NodeId,
    Presence, Role, SwarmKey, SwarmKeys, WireMessage,
};
use zenoh::key_expr::OwnedKeyExpr;

/// How a payload is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Cbor,
    Json,
}

/// A device message the bridge understood.
#[derive(Debug, Clone, PartialEq)]
pub enum Telemetry {
    Heartbeat(Heartbeat),
    Energy(Energy),
    /// A reading taken while the board could not publish, sent late with the time it was
    /// taken: it goes on the board's `energy` key, marked as replayed.
    Replay(Energy),
    Leave(Leave),
    /// What firmware it runs and how an update goes.
    Firmware(FirmwareReport),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// Forward `payload` unchanged to `key`.
    Telemetry {
        id: NodeId,
        key: OwnedKeyExpr,
        format: Format,
        msg: Telemetry,
    },
    /// The retained `status` topic: online, offline (the Last-Will) or asleep.
    Presence { id: NodeId, presence: Presence },
    /// A command on its way down to a device, seen again on the uplink: not for the mesh.
    Command,
}

/// Why a publication was not carried. `device` is set when the topic names one, so the drop
/// can be counted against it and logged with its name.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("topic is not a key the mesh can carry: {0}")]
    BadTopic(#[from] TopicError),
    #[error("topic is not a swarm node key: {0}")]
    NotNodeKey(String),
    #[error("topic belongs to swarm `{0}`")]
    OtherSwarm(String),
    #[error("topic is outside the bridge's scope/allow/deny lists")]
    OutOfScope,
    #[error("`{}` is not something a device sends", leaf.as_str())]
    NotFromDevices { device: NodeId, leaf: Leaf },
    #[error("malformed {} ({format:?}): {reason}", leaf.as_str())]
    Malformed {
        device: NodeId,
        leaf: Leaf,
        format: Format,
        reason: String,
    },
    #[error("status must be `online`, `offline` or `asleep <seconds, at most a week>`")]
    BadStatus { device: NodeId },
    /// Devices never speak for the election (docs/bridge.md#what-a-device-may-say).
    #[error("{} claims a part in the election: {claim}", leaf.as_str())]
    ElectionClaim {
        device: NodeId,
        leaf: Leaf,
        claim: &'static str,
    },
}

impl Refusal {
    pub fn device(&self) -> Option<&NodeId> {
        match self {
            Refusal::NotFromDevices { device, .. }
            | Refusal::Malformed { device, .. }
            | Refusal::BadStatus { device }
            | Refusal::ElectionClaim { device, .. } => Some(device),
            _ => None,
        }
    }

    /// Short label for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::BadTopic(_) | Refusal::NotNodeKey(_) => "bad_topic",
            Refusal::OtherSwarm(_) => "other_swarm",
            Refusal::OutOfScope => "out_of_scope",
            Refusal::NotFromDevices { .. } => "not_from_devices",
            Refusal::Malformed { .. } => "malformed",
            Refusal::BadStatus { .. } => "bad_status",
            Refusal::ElectionClaim { .. } => "device_claim",
        }
    }
}

/// The rules for reading device publications of one swarm.
/// Topics remembered at most; past it the memory starts over, so invented topics cannot grow it.
const MAX_ROUTES: usize = 50_000;

type Route = Result<(NodeId, Leaf, OwnedKeyExpr), Refusal>;

pub struct Ingest {
    routes: std::collections::HashMap<String, Route>,
    keys: SwarmKeys,
    scope: Scope,
    json_devices: Vec<NodeId>,
}

impl Ingest {
    pub fn new(keys: SwarmKeys, scope: Scope, json_devices: Vec<NodeId>) -> Self {
        Self {
            routes: std::collections::HashMap::new(),
            keys,
            scope,
            json_devices,
        }
    }

    pub fn keys(&self) -> &SwarmKeys {
        &self.keys
    }

    /// The same rules with an empty route memory, for another reader.
    pub fn fresh(&self) -> Self {
        Self::new(
            self.keys.clone(),
            self.scope.clone(),
            self.json_devices.clone(),
        )
    }

    /// `route` with a memory of topics already judged: a device sends on the same few topics,
    /// and parsing a key costs more than the rest of the message.
    pub fn classify(&mut self, topic: &str, payload: &[u8]) -> Result<Inbound, Refusal> {
        let route = match self.routes.get(topic) {
            Some(r) => r.clone(),
            None => {
                let r = self.route(topic);
                if self.routes.len() >= MAX_ROUTES {
                    self.routes.clear();
                }
                self.routes.insert(topic.to_string(), r.clone());
                r
            }
        };
        let (id, leaf, key) = route?;
        self.read(id, leaf, key, payload)
    }

    fn route(&self, topic: &str) -> Result<(NodeId, Leaf, OwnedKeyExpr), Refusal> {
        let key = topic_to_key(topic)?;
        let parsed: SwarmKey = key
            .as_str()
            .parse()
            .map_err(|e: swarm_bus::keys::KeyError| Refusal::NotNodeKey(e.to_string()))?;
        if parsed.swarm() != self.keys.swarm() {
            return Err(Refusal::OtherSwarm(parsed.swarm().to_string()));
        }
        let SwarmKey::NodeLeaf { id, leaf, .. } = parsed else {
            return Err(Refusal::NotNodeKey(topic.into()));
        };
        if !self.scope.admits(&key) {
            return Err(Refusal::OutOfScope);
        }
        Ok((id, leaf, key))
    }

    fn read(
        &self,
        id: NodeId,
        leaf: Leaf,
        key: OwnedKeyExpr,
        payload: &[u8],
    ) -> Result<Inbound, Refusal> {
        let format = if self.json_devices.contains(&id) {
            Format::Json
        } else {
            Format::Cbor
        };
        let malformed = |reason: String| Refusal::Malformed {
            device: id.clone(),
            leaf,
            format,
            reason,
        };
        let msg = match leaf {
            Leaf::Status => {
                return match Presence::parse(payload) {
                    Some(presence) => Ok(Inbound::Presence { id, presence }),
                    None => Err(Refusal::BadStatus { device: id }),
                };
            }
            Leaf::Heartbeat => Telemetry::Heartbeat(read(payload, format).map_err(malformed)?),
            Leaf::Energy => Telemetry::Energy(read(payload, format).map_err(malformed)?),
            Leaf::Replay => {
                let energy = read(payload, format).map_err(malformed)?;
                let key = OwnedKeyExpr::try_from(self.keys.energy(&id))
                    .map_err(|e| malformed(e.to_string()))?;
                return Ok(Inbound::Telemetry {
                    id,
                    key,
                    format,
                    msg: Telemetry::Replay(energy),
                });
            }
            Leaf::Leave => Telemetry::Leave(read(payload, format).map_err(malformed)?),
            Leaf::Firmware => Telemetry::Firmware(read(payload, format).map_err(malformed)?),
            // Commands and updates on their way down, seen again on the uplink.
            Leaf::Cmd | Leaf::Ota => return Ok(Inbound::Command),
            // Devices never vote (in elections or on proposals), the bridge answers `state`
            // for them, and they neither run tasks nor hold the task table.
            Leaf::Vote | Leaf::State | Leaf::Worker | Leaf::Tasks | Leaf::Ballot => {
                return Err(Refusal::NotFromDevices { device: id, leaf });
            }
        };
        if let Some(claim) = election_claim(&msg) {
            return Err(Refusal::ElectionClaim {
                device: id,
                leaf,
                claim,
            });
        }
        Ok(Inbound::Telemetry {
            id,
            key,
            format,
            msg,
        })
    }
}

/// What a device message claims beyond what a device may say: it is class `minimal`, an
/// observer at term 0 that follows nobody and counts no voters. Refused rather than rewritten,
/// so what the bridge carries is byte for byte what the device sent.
fn election_claim(msg: &Telemetry) -> Option<&'static str> {
    match msg {
        Telemetry::Heartbeat(hb) => {
            if hb.class != DeviceClass::Minimal {
                Some("a class other than minimal")
            } else if hb.role != Role::Observer {
                Some("a role other than observer")
            } else if hb.term != 0 {
                Some("a term")
            } else if hb.leader.is_some() {
                Some("a leader")
            } else if hb.voters.is_some() {
                Some("a count of voters")
            } else {
                None
            }
        }
        Telemetry::Leave(leave) if leave.term != 0 => Some("a term"),
        Telemetry::Leave(_)
        | Telemetry::Energy(_)
        | Telemetry::Replay(_)
        | Telemetry::Firmware(_) => None,
    }
}

fn read<T: WireMessage>(payload: &[u8], format: Format) -> Result<T, String> {
    match format {
        Format::Cbor => T::decode_from(payload).map_err(|e: DecodeError| e.to_string()),
        Format::Json => serde_json::from_slice(payload).map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_bus::{SwarmName, encode, samples};

    fn ingest() -> Ingest {
        let keys = SwarmKeys::new(SwarmName::new("lab").unwrap());
        let scope = Scope::new(
            &["swarm/lab/node/**".into()],
            &[],
            &["swarm/lab/node/banned/**".into()],
        )
        .unwrap();
        Ingest::new(keys, scope, vec![NodeId::new("json-1").unwrap()])
    }

    #[test]
    fn a_replayed_reading_goes_on_the_boards_energy_key() {
        let bytes = encode(&samples::energy());
        let Ok(Inbound::Telemetry { id, key, msg, .. }) =
            ingest().classify("swarm/lab/node/esp-1/replay", &bytes)
        else {
            panic!("a replay is telemetry");
        };
        assert_eq!(id.as_str(), "esp-1");
        assert_eq!(key.as_str(), "swarm/lab/node/esp-1/energy");
        assert_eq!(msg, Telemetry::Replay(samples::energy()));
        let err = ingest()
            .classify("swarm/lab/node/esp-1/replay", b"\x01")
            .unwrap_err();
        assert_eq!(err.kind(), "malformed");
    }

    #[test]
    fn cbor_energy_is_forwarded_with_its_device() {
        let bytes = encode(&samples::energy());
        let got = ingest()
            .classify("swarm/lab/node/esp-1/energy", &bytes)
            .unwrap();
        let Inbound::Telemetry {
            id,
            key,
            format,
            msg,
        } = got
        else {
            panic!("expected telemetry")
        };
        assert_eq!(id.as_str(), "esp-1");
        assert_eq!(key.as_str(), "swarm/lab/node/esp-1/energy");
        assert_eq!(format, Format::Cbor);
        assert_eq!(msg, Telemetry::Energy(samples::energy()));
    }

    #[test]
    fn json_devices_send_json() {
        let board = crate::devices::board_heartbeat(4, std::time::Duration::from_millis(500));
        let text = serde_json::to_vec(&board).unwrap();
        let got = ingest()
            .classify("swarm/lab/node/json-1/heartbeat", &text)
            .unwrap();
        assert!(matches!(
            got,
            Inbound::Telemetry {
                format: Format::Json,
                msg: Telemetry::Heartbeat(_),
                ..
            }
        ));
        // The same JSON from a CBOR device is malformed.
        let err = ingest()
            .classify("swarm/lab/node/esp-1/heartbeat", &text)
            .unwrap_err();
        assert_eq!(err.kind(), "malformed");
        assert_eq!(err.device().unwrap().as_str(), "esp-1");
    }

    #[test]
    fn status_drives_presence() {
        let mut i = ingest();
        assert_eq!(
            i.classify("swarm/lab/node/esp-1/status", b"online")
                .unwrap(),
            Inbound::Presence {
                id: NodeId::new("esp-1").unwrap(),
                presence: Presence::Online
            }
        );
        assert_eq!(
            i.classify("swarm/lab/node/esp-1/status", b"offline")
                .unwrap(),
            Inbound::Presence {
                id: NodeId::new("esp-1").unwrap(),
                presence: Presence::Offline
            }
        );
        assert_eq!(
            i.classify("swarm/lab/node/esp-1/status", b"asleep 30")
                .unwrap(),
            Inbound::Presence {
                id: NodeId::new("esp-1").unwrap(),
                presence: Presence::Asleep { secs: 30 }
            }
        );
        assert_eq!(
            i.classify("swarm/lab/node/esp-1/status", b"maybe")
                .unwrap_err()
                .kind(),
            "bad_status"
        );
    }

    #[test]
    fn a_device_heartbeat_that_speaks_for_the_election_is_refused() {
        let mut i = ingest();
        let board = crate::devices::board_heartbeat(4, std::time::Duration::from_millis(500));
        assert!(
            i.classify("swarm/lab/node/esp-1/heartbeat", &encode(&board))
                .is_ok()
        );
        // The forged heartbeat of issue 22: leader, class minimal, term 2^64 - 1.
        let forged = Heartbeat {
            term: u64::MAX,
            role: Role::Leader,
            ..board.clone()
        };
        let claims = [
            forged,
            Heartbeat {
                term: 5,
                ..board.clone()
            },
            Heartbeat {
                class: DeviceClass::Full,
                ..board.clone()
            },
            Heartbeat {
                role: Role::Follower,
                ..board.clone()
            },
            Heartbeat {
                leader: Some(NodeId::new("n1").unwrap()),
                ..board.clone()
            },
            Heartbeat {
                voters: Some(3),
                ..board.clone()
            },
        ];
        for hb in claims {
            let err = i
                .classify("swarm/lab/node/esp-1/heartbeat", &encode(&hb))
                .unwrap_err();
            assert_eq!(err.kind(), "device_claim", "{hb:?}");
            assert_eq!(err.device().unwrap().as_str(), "esp-1");
        }
        let leave = encode(&Leave { term: 7 });
        let err = i
            .classify("swarm/lab/node/esp-1/leave", &leave)
            .unwrap_err();
        assert_eq!(err.kind(), "device_claim");
        assert!(
            i.classify("swarm/lab/node/esp-1/leave", &encode(&Leave { term: 0 }))
                .is_ok()
        );
    }

    #[test]
    fn firmware_reports_are_carried_and_updates_never_come_up_from_a_device() {
        let report = swarm_bus::FirmwareReport {
            version: "0.1.0".into(),
            image_sha256: swarm_bus::Digest::default(),
            slot: 0,
            phase: swarm_bus::FirmwarePhase::Idle,
            update_sha256: swarm_bus::Digest::default(),
            next_offset: 0,
            size: 0,
            reason: None,
        };
        let Ok(Inbound::Telemetry { msg, key, .. }) =
            ingest().classify("swarm/lab/node/esp-1/firmware", &encode(&report))
        else {
            panic!("a report is telemetry");
        };
        assert_eq!(key.as_str(), "swarm/lab/node/esp-1/firmware");
        assert_eq!(msg, Telemetry::Firmware(report));
        let err = ingest()
            .classify("swarm/lab/node/esp-1/firmware", &encode(&samples::energy()))
            .unwrap_err();
        assert_eq!(err.kind(), "malformed", "an energy sample is no report");
        // An update published by a device (to itself or another) is not carried into the mesh.
        assert_eq!(
            ingest().classify("swarm/lab/node/esp-2/ota", b"\x01"),
            Ok(Inbound::Command)
        );
    }

    #[test]
    fn refusals_name_their_reason() {
        assert_eq!(
            ingest().classify("swarm/lab/node/a/cmd", b""),
            Ok(Inbound::Command)
        );
        let mut i = ingest();
        let hb = encode(&samples::heartbeat(4));
        let mut kind = |topic: &str, payload: &[u8]| i.classify(topic, payload).unwrap_err().kind();
        assert_eq!(kind("swarm/other/node/a/heartbeat", &hb), "other_swarm");
        assert_eq!(kind("swarm/lab/node/banned/heartbeat", &hb), "out_of_scope");
        assert_eq!(kind("swarm/lab/node/a/vote", &hb), "not_from_devices");
        assert_eq!(kind("swarm/lab/leader", &hb), "bad_topic");
        assert_eq!(kind("home/kitchen/temp", &hb), "bad_topic");
        assert_eq!(
            kind("swarm/lab/node/a/heartbeat", b"\xff\x00garbage"),
            "malformed"
        );
        assert_eq!(kind("swarm/lab/node/a/energy", &hb), "malformed");
        // The same topic again comes from the memory of routes, with the same verdicts.
        assert_eq!(kind("swarm/lab/node/banned/heartbeat", &hb), "out_of_scope");
        assert_eq!(kind("swarm/lab/node/a/heartbeat", b"\xff"), "malformed");
    }
}
