//! One MQTT 5 session over whatever byte stream the caller opened: the ESP32's embassy-net
//! TCP socket, or std TCP in the host simulator. rust-mqtt does the packets; this module adds
//! what rust-mqtt leaves to its user (keep-alive pings and the reconnect decision) and wires
//! the board's reports and commands to it.

use crate::board::{Action, Board, OFFLINE, Outgoing};
use crate::update::{Slot, Step};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::num::NonZero;
use embassy_futures::select::{Either, select};
use rust_mqtt::Bytes;
use rust_mqtt::buffer::AllocBuffer;
use rust_mqtt::client::Client;
use rust_mqtt::client::event::Event;
use rust_mqtt::client::options::{
    ConnectOptions, DisconnectOptions, PublicationOptions, SubscriptionOptions, TopicReference,
    WillOptions,
};
use rust_mqtt::config::KeepAlive;
use rust_mqtt::io::Transport;
use rust_mqtt::types::{MqttBinary, MqttString, TopicFilter, TopicName};
use swarm_bus::FirmwarePhase;

/// The board's clock. `now_ms` is monotonic; `unix_ms` is wall-clock time if known.
pub trait Clock {
    fn now_ms(&self) -> u64;
    fn unix_ms(&self) -> Option<u64>;
    fn sleep_until(&self, at_ms: u64) -> impl core::future::Future<Output = ()>;
}

/// What the session needs from the board besides the network.
pub trait Hardware {
    /// The battery pin in mV, or `None` on mains power.
    fn battery_pin_mv(&mut self) -> Option<u16>;
    fn charging(&mut self) -> bool;
    fn identify(&mut self, secs: u32);
    /// Where the board says what happened: serial on the ESP32, tracing on the host.
    fn note(&mut self, note: Note<'_>);
    /// The OTA slot an update is written to.
    fn slot(&mut self) -> &mut dyn Slot;
    /// The image on trial rejoined the swarm: keep it (on the ESP32, mark its OTA slot valid).
    fn confirm_image(&mut self) -> Result<(), String>;
}

#[derive(Debug)]
pub enum Note<'a> {
    Connected,
    CommandObeyed {
        payload_len: usize,
    },
    CommandRejected {
        reason: &'a str,
    },
    /// A report cycle went out: bytes on the wire and ms awake since the cycle began.
    Cycle {
        bytes: usize,
        publications: u32,
    },
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    /// The connection or the broker failed; reconnect after the link's backoff.
    Lost(String),
    /// Deep-sleep this long (a command, or the cadence), then start over.
    Sleep {
        ms: u64,
    },
    Reboot,
}

/// How long to wait for a PINGRESP or for the acknowledgements before sleeping.
const ACK_WAIT_MS: u64 = 5_000;
const CONNECT_TIMEOUT_MS: u64 = 10_000;
/// Commands of a few bytes, and update chunks of up to `update::MAX_CHUNK`.
const MAX_PACKET_BYTES: u32 = 4096;
/// QoS 1 publications in flight at once: the broker may allow fewer (its receive maximum).
const SEND_MAXIMUM: usize = 4;
/// The backlog is replayed while fewer than this many publications await acknowledgement,
/// so a live report always finds room in the quota.
const REPLAY_IN_FLIGHT: u32 = 2;

/// Two subscriptions: `cmd` and `ota`.
type MqttClient<'c, N> = Client<'c, 'c, N, AllocBuffer, 2, 4, SEND_MAXIMUM, 1, 0, 0, 0>;

/// Connects on `net` and serves until the session ends. The board keeps its cadence, meter and
/// sequence numbers across sessions.
pub async fn serve<N: Transport, C: Clock, H: Hardware>(
    board: &mut Board,
    net: N,
    clock: &C,
    hw: &mut H,
) -> End {
    let mut buffer = AllocBuffer;
    let mut client: MqttClient<'_, N> = Client::new(&mut buffer);
    let settings = board.settings().clone();
    let topics = board.topics().clone();
    let (Some(will_topic), Some(cmd_filter), Some(ota_filter)) = (
        MqttString::try_from(topics.status.as_str())
            .ok()
            .and_then(TopicName::new),
        MqttString::try_from(topics.cmd.as_str())
            .ok()
            .and_then(TopicFilter::new),
        MqttString::try_from(topics.ota.as_str())
            .ok()
            .and_then(TopicFilter::new),
    ) else {
        return End::Lost(format!(
            "topic `{}` is not a valid MQTT topic",
            topics.status
        ));
    };
    let Ok(offline) = MqttBinary::try_from(OFFLINE) else {
        return End::Lost("will payload".into());
    };
    let keep_alive_s = settings.keep_alive_s.max(5);
    let Some(keep_alive) = NonZero::new(keep_alive_s) else {
        return End::Lost("keep-alive".into());
    };
    let mut options = ConnectOptions::new()
        .clean_start()
        .keep_alive(KeepAlive::Seconds(keep_alive))
        .will(
            WillOptions::new(will_topic, offline)
                .at_least_once()
                .retain(),
        );
    if let Some(user) = settings
        .user
        .as_deref()
        .and_then(|u| MqttString::try_from(u).ok())
    {
        options = options.user_name(user);
    }
    if let Some(pass) = settings
        .password
        .as_deref()
        .and_then(|p| MqttBinary::try_from(p).ok())
    {
        options = options.password(pass);
    }
    let client_id = MqttString::try_from(settings.node.as_str()).ok();
    // Incoming packets are commands and update chunks; a broker may not make the board
    // allocate for more.
    if let Some(max) = NonZero::new(MAX_PACKET_BYTES) {
        options = options.maximum_packet_size(max);
    }
    let give_up = clock.now_ms() + CONNECT_TIMEOUT_MS;
    match select(
        client.connect(net, &options, client_id),
        clock.sleep_until(give_up),
    )
    .await
    {
        Either::First(Ok(_)) => {}
        Either::First(Err(e)) => return End::Lost(format!("MQTT connect: {e:?}")),
        Either::Second(()) => return End::Lost("no CONNACK within 10 s".into()),
    }
    hw.note(Note::Connected);
    board.observe_battery(hw.battery_pin_mv(), hw.charging());
    // Listening before saying `online`: the bridge sends the commands it held for a sleeping
    // board as soon as it hears `online`, and the broker has the subscription once it acks.
    let subscription = SubscriptionOptions::new().at_least_once();
    for filter in [cmd_filter, ota_filter] {
        if let Err(e) = client.subscribe(filter, &subscription).await {
            return End::Lost(format!("subscribe: {e:?}"));
        }
    }
    let give_up = clock.now_ms() + ACK_WAIT_MS;
    let mut subacks = 0;
    while subacks < 2 {
        let header = match select(client.poll_header(), clock.sleep_until(give_up)).await {
            Either::First(Ok(h)) => h,
            Either::First(Err(e)) => return End::Lost(format!("reading: {e:?}")),
            Either::Second(()) => return End::Lost("no SUBACK within 5 s".into()),
        };
        match client.poll_body(header).await {
            Ok(Event::Suback(_)) => subacks += 1,
            Ok(_) => {}
            Err(e) => return End::Lost(format!("reading: {e:?}")),
        }
    }
    let now = clock.now_ms();
    board.on_connected(now);
    for o in [board.online(), board.firmware_report()] {
        if let Err(e) = publish(&mut client, &o).await {
            board.on_disconnected(now);
            return End::Lost(e);
        }
    }
    // A new image on trial is kept once the broker has taken its `online`.
    let mut rejoined = false;
    let half_keep_alive = u64::from(keep_alive_s) * 500;
    let mut last_sent = now;
    let mut ping_sent: Option<u64> = None;
    // The online status and every energy report ask for PUBACK; sleep waits for them.
    let mut unacked: u32 = 1;
    let mut acks_since: u64 = now;
    // Backlog readings on their way, by packet id: acknowledged, they leave the backlog.
    let mut in_flight: Vec<(u16, u32)> = Vec::with_capacity(SEND_MAXIMUM);
    loop {
        let now = clock.now_ms();
        if board.next_due_ms().is_some_and(|at| now >= at) {
            board.observe_battery(hw.battery_pin_mv(), hw.charging());
        }
        let due = board.due(now, clock.unix_ms());
        if !due.is_empty() {
            for o in &due {
                match publish(&mut client, o).await {
                    Ok(id) => track(&mut in_flight, id, o),
                    Err(e) => {
                        board.on_disconnected(clock.now_ms());
                        return End::Lost(e);
                    }
                }
                if o.acked {
                    unacked += 1;
                }
            }
            last_sent = now;
            acks_since = now;
            let figures = board.take_cycle();
            hw.note(Note::Cycle {
                bytes: figures.bytes_sent,
                publications: figures.publications,
            });
        }
        // The backlog goes out a little at a time, oldest first, leaving the broker's quota
        // for the live reports.
        while unacked < REPLAY_IN_FLIGHT {
            let seqs: Vec<u32> = in_flight.iter().map(|(_, seq)| *seq).collect();
            let Some(o) = board.replay(now, &seqs) else {
                break;
            };
            match publish(&mut client, &o).await {
                Ok(id) => track(&mut in_flight, id, &o),
                Err(e) => {
                    board.on_disconnected(clock.now_ms());
                    return End::Lost(e);
                }
            }
            unacked += 1;
            last_sent = now;
            acks_since = now;
        }
        let settled = unacked == 0 && board.backlog.is_empty();
        if let Some(ms) = board.sleep_after_reports(now)
            && (settled || now >= acks_since + ACK_WAIT_MS)
        {
            say_asleep(&mut client, board, clock.now_ms(), ms).await;
            board.on_disconnected(now);
            board.observe_battery(hw.battery_pin_mv(), hw.charging());
            return End::Sleep { ms };
        }
        if let Some(sent) = ping_sent
            && now >= sent + ACK_WAIT_MS.max(half_keep_alive)
        {
            board.on_disconnected(now);
            return End::Lost("no PINGRESP: the broker is gone".into());
        }
        if ping_sent.is_none() && now >= last_sent + half_keep_alive {
            if let Err(e) = client.ping().await {
                board.on_disconnected(now);
                return End::Lost(format!("ping: {e:?}"));
            }
            ping_sent = Some(now);
            last_sent = now;
        }
        let mut wake = last_sent + half_keep_alive;
        if let Some(due) = board.next_due_ms() {
            wake = wake.min(due);
        }
        if let Some(sent) = ping_sent {
            wake = wake.min(sent + ACK_WAIT_MS.max(half_keep_alive));
        }
        if unacked > 0 && board.sleep_after_reports(now).is_some() {
            wake = wake.min(acks_since + ACK_WAIT_MS);
        }
        let header = match select(client.poll_header(), clock.sleep_until(wake)).await {
            Either::First(Ok(h)) => h,
            Either::First(Err(e)) => {
                board.on_disconnected(clock.now_ms());
                return End::Lost(format!("reading: {e:?}"));
            }
            Either::Second(()) => continue,
        };
        // Copied out: the event borrows the client's buffer, and acting may publish.
        let command = match client.poll_body(header).await {
            Ok(Event::Publish(p)) => {
                let is_update = match &p.topic {
                    TopicReference::Name(t) | TopicReference::Mapping(t, _) => {
                        AsRef::<str>::as_ref(t.as_ref()) == topics.ota
                    }
                    TopicReference::Alias(_) => false,
                };
                if is_update {
                    let payload = Vec::from(&*p.message);
                    let step = match board.on_update(&payload, hw.slot()) {
                        Ok(step) => step,
                        Err(rejection) => {
                            hw.note(Note::CommandRejected {
                                reason: &rejection.0,
                            });
                            Step::Quiet
                        }
                    };
                    if step != Step::Quiet
                        && let Err(e) = publish(&mut client, &board.firmware_report()).await
                    {
                        board.on_disconnected(clock.now_ms());
                        return End::Lost(e);
                    }
                    if step == Step::Reboot {
                        board.on_disconnected(clock.now_ms());
                        return End::Reboot;
                    }
                    None
                } else {
                    Some(Vec::from(&*p.message))
                }
            }
            Ok(Event::Pingresp) => {
                ping_sent = None;
                None
            }
            Ok(Event::PublishAcknowledged(ack)) => {
                unacked = unacked.saturating_sub(1);
                acks_since = clock.now_ms();
                delivered(board, &mut in_flight, ack.packet_identifier.get().get());
                if !rejoined {
                    rejoined = true;
                    if board.update.phase() == FirmwarePhase::Trial {
                        match hw.confirm_image() {
                            Ok(()) => board.update.confirmed(),
                            Err(why) => hw.note(Note::CommandRejected { reason: &why }),
                        }
                        if let Err(e) = publish(&mut client, &board.firmware_report()).await {
                            board.on_disconnected(clock.now_ms());
                            return End::Lost(e);
                        }
                    }
                }
                None
            }
            // A broker that refuses a reading will refuse it again: it leaves the backlog too.
            Ok(Event::PublishRejected(ack)) => {
                unacked = unacked.saturating_sub(1);
                delivered(board, &mut in_flight, ack.packet_identifier.get().get());
                None
            }
            Ok(_) => None,
            Err(e) => {
                board.on_disconnected(clock.now_ms());
                return End::Lost(format!("reading: {e:?}"));
            }
        };
        let Some(payload) = command else { continue };
        match board.on_command(&payload, clock.now_ms()) {
            Ok(action) => {
                hw.note(Note::CommandObeyed {
                    payload_len: payload.len(),
                });
                match action {
                    Action::Continue => {}
                    Action::Identify { secs } => hw.identify(secs),
                    Action::Sleep { ms } => {
                        say_asleep(&mut client, board, clock.now_ms(), ms).await;
                        board.on_disconnected(clock.now_ms());
                        return End::Sleep { ms };
                    }
                    Action::Reboot => return End::Reboot,
                }
            }
            Err(rejection) => hw.note(Note::CommandRejected {
                reason: &rejection.0,
            }),
        }
    }
}

/// Before a deep sleep: the board says when it wakes, then leaves with a DISCONNECT, which
/// tells the broker not to publish its Last-Will (`offline`): asleep is not gone. Best
/// effort: a board that cannot say it is offline for the bridge, as before.
async fn say_asleep<N: Transport>(
    client: &mut MqttClient<'_, N>,
    board: &mut Board,
    now_ms: u64,
    ms: u64,
) {
    for o in board.asleep(now_ms, ms) {
        if publish(client, &o).await.is_err() {
            return;
        }
    }
    let _ = client.disconnect(&DisconnectOptions::new()).await;
}

/// Remembers which backlog reading a QoS 1 publication carries.
fn track(in_flight: &mut Vec<(u16, u32)>, packet: Option<u16>, o: &Outgoing) {
    if let (Some(packet), Some(seq)) = (packet, o.reading) {
        in_flight.retain(|(p, _)| *p != packet);
        in_flight.push((packet, seq));
    }
}

fn delivered(board: &mut Board, in_flight: &mut Vec<(u16, u32)>, packet: u16) {
    if let Some(i) = in_flight.iter().position(|(p, _)| *p == packet) {
        let (_, seq) = in_flight.swap_remove(i);
        board.backlog.acked(seq);
    }
}

/// Sends `o`; its packet id when it asks for an acknowledgement.
async fn publish<N: Transport>(
    client: &mut MqttClient<'_, N>,
    o: &Outgoing,
) -> Result<Option<u16>, String> {
    let Some(topic) = MqttString::try_from(o.topic.as_str())
        .ok()
        .and_then(TopicName::new)
    else {
        return Err(format!("topic `{}` is not a valid MQTT topic", o.topic));
    };
    let mut options = PublicationOptions::new(TopicReference::Name(topic));
    if o.acked {
        options = options.at_least_once();
    }
    if o.retain {
        options = options.retain();
    }
    client
        .publish(&options, Bytes::from(o.payload.as_slice()))
        .await
        .map(|id| id.map(|id| id.get().get()))
        .map_err(|e| format!("publishing on {}: {e:?}", o.topic))
}
