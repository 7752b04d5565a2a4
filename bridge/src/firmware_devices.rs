//! Simulated boards that run the firmware's own core (`swarm-fw-core`) over std TCP: the same
//! connect state machine, MQTT 5 session, cadence, command checks and energy estimate as an
//! ESP32-C3, with Wi-Fi and DHCP taken as instant and a battery that drains on a schedule.

use crate::devices::device_ids;
use crate::firmware_slot::{Boot, RamSlot, Reboot};
use embedded_io_adapters::tokio_1::FromTokio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use swarm_bus::{NodeId, SwarmName};
use swarm_fw_core::backoff::Backoff;
use swarm_fw_core::link::{Link, LinkEvent, Stage, Step};
use swarm_fw_core::power::{EnergyMeter, PowerState};
use swarm_fw_core::session::{self, Clock, End, Hardware, Note};
use swarm_fw_core::update::{self, Running, Slot, Updater, Verdict};
use swarm_fw_core::{Board, Settings};
use tokio::net::TcpStream;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct FirmwareDeviceOptions {
    pub host: String,
    pub port: u16,
    pub swarm: SwarmName,
    pub prefix: String,
    pub count: usize,
    pub interval_ms: u32,
    pub keep_alive_s: u16,
    pub password: Option<String>,
    /// Deep-sleep between reports when the cadence is at least this long.
    pub deep_sleep_from_ms: Option<u32>,
    /// The battery pin at start (mV, behind the default 1:2 divider) and its fall per minute.
    pub battery_pin_mv: u16,
    pub drain_mv_per_min: u16,
    /// The version the boards run at start.
    pub version: String,
    /// Boards whose updated images never rejoin the swarm: their trials fail and roll back.
    pub broken_updates: Vec<NodeId>,
    /// How long a new image has to rejoin before the previous one boots again.
    pub trial_deadline_ms: u64,
    /// Bytes an OTA slot holds.
    pub slot_bytes: u32,
}

#[derive(Debug, Default)]
pub struct FirmwareDeviceCounters {
    pub sessions: AtomicU64,
    pub cycles: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub commands: AtomicU64,
    pub rejected_commands: AtomicU64,
}

struct HostClock {
    start: Instant,
}

impl Clock for HostClock {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// None, as on an ESP32-C3: a board's time comes from the gateway (`CommandOp::Time`).
    fn unix_ms(&self) -> Option<u64> {
        None
    }

    async fn sleep_until(&self, at_ms: u64) {
        tokio::time::sleep_until(self.start + Duration::from_millis(at_ms)).await;
    }
}

struct SimulatedHardware {
    id: NodeId,
    start: Instant,
    pin_mv: u16,
    drain_mv_per_min: u16,
    connected: bool,
    /// Printed for the first board only, so a hundred boards do not flood the terminal.
    verbose: bool,
    counters: Arc<FirmwareDeviceCounters>,
    slot: RamSlot,
    /// The image on trial rejoined and the session confirmed it.
    confirmed: bool,
}

impl Hardware for SimulatedHardware {
    fn slot(&mut self) -> &mut dyn Slot {
        &mut self.slot
    }

    fn confirm_image(&mut self) -> Result<(), String> {
        self.confirmed = true;
        tracing::info!(device = %self.id, "new image rejoined the swarm: confirmed");
        Ok(())
    }

    fn battery_pin_mv(&mut self) -> Option<u16> {
        let minutes = self.start.elapsed().as_secs() / 60;
        let drop = u64::from(self.drain_mv_per_min) * minutes;
        Some(
            self.pin_mv
                .saturating_sub(drop.min(u64::from(u16::MAX)) as u16),
        )
    }

    fn charging(&mut self) -> bool {
        false
    }

    fn identify(&mut self, secs: u32) {
        tracing::info!(device = %self.id, secs, "identify: the LED would blink now");
    }

    fn note(&mut self, note: Note<'_>) {
        match note {
            Note::Connected => {
                self.connected = true;
                self.counters.sessions.fetch_add(1, Relaxed);
                tracing::info!(device = %self.id, "MQTT session up");
            }
            Note::CommandObeyed { payload_len } => {
                self.counters.commands.fetch_add(1, Relaxed);
                tracing::info!(device = %self.id, payload_len, "command obeyed");
            }
            Note::CommandRejected { reason } => {
                self.counters.rejected_commands.fetch_add(1, Relaxed);
                tracing::warn!(device = %self.id, "command rejected: {reason}");
            }
            Note::Cycle {
                bytes,
                publications,
            } => {
                self.counters.cycles.fetch_add(1, Relaxed);
                self.counters.bytes_sent.fetch_add(bytes as u64, Relaxed);
                if self.verbose {
                    println!(
                        "{}: report cycle, {publications} publications, {bytes} bytes",
                        self.id
                    );
                }
            }
        }
    }
}

/// Runs the boards until the future is dropped.
pub async fn run(
    opts: FirmwareDeviceOptions,
    counters: Arc<FirmwareDeviceCounters>,
) -> Result<(), swarm_bus::NameError> {
    let ids = device_ids(&opts.prefix, opts.count)?;
    // The core's futures are not `Send` (no_std traits), so the boards share one thread.
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            let mut boards = Vec::new();
            for (i, id) in ids.into_iter().enumerate() {
                boards.push(tokio::task::spawn_local(board(
                    opts.clone(),
                    id,
                    i == 0,
                    counters.clone(),
                )));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            for b in boards {
                let _ = b.await;
            }
        })
        .await;
    Ok(())
}

/// The board after a reboot into `running`: what RTC memory keeps (the meter, the backlog)
/// survives; the rest starts over.
fn rebooted(settings: &Settings, running: &Running, old: Board) -> Board {
    let mut s = settings.clone();
    s.version = running.version.clone();
    let mut board = Board::new(s, old.meter);
    board.backlog = old.backlog;
    board.update = Updater::new(running.clone(), settings.chip);
    board
}

fn settings(opts: &FirmwareDeviceOptions, id: NodeId) -> Settings {
    let mut s = Settings::new(opts.swarm.clone(), id.clone());
    s.version = opts.version.clone();
    s.keep_alive_s = opts.keep_alive_s;
    s.cadence.base_ms = opts.interval_ms;
    s.cadence.min_ms = s.cadence.min_ms.min(opts.interval_ms);
    s.deep_sleep_from_ms = opts.deep_sleep_from_ms;
    if let Some(p) = &opts.password {
        s.user = Some(id.as_str().into());
        s.password = Some(p.clone());
    }
    s
}

async fn board(
    opts: FirmwareDeviceOptions,
    id: NodeId,
    verbose: bool,
    counters: Arc<FirmwareDeviceCounters>,
) {
    let clock = HostClock {
        start: Instant::now(),
    };
    let mut hw = SimulatedHardware {
        id: id.clone(),
        start: clock.start,
        pin_mv: opts.battery_pin_mv,
        drain_mv_per_min: opts.drain_mv_per_min,
        connected: false,
        verbose,
        counters,
        slot: RamSlot::new(opts.slot_bytes),
        confirmed: false,
    };
    let settings = settings(&opts, id.clone());
    let backoff = Backoff::new(settings.backoff_min_ms, settings.backoff_max_ms);
    let mut link = Link::new(backoff.clone());
    let chip = settings.chip;
    let mut boot = Boot::new(
        Running {
            version: settings.version.clone(),
            sha256: None,
            slot: 0,
        },
        opts.broken_updates.contains(&id),
    );
    let mut board = Board::new(settings.clone(), EnergyMeter::default());
    board.meter.enter(PowerState::CpuActive, 0);
    let mut random = u32::from_le_bytes(rand::random::<[u8; 4]>());
    let mut awake_before = 0;
    loop {
        random = random.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let now = clock.now_ms();
        match boot.check(now, hw.confirmed) {
            Some(Verdict::Confirm) => boot.confirm(),
            Some(Verdict::RollBack) => {
                if let Some(failed) = boot.roll_back() {
                    tracing::warn!(device = %id, "{failed} did not rejoin in time: rolled back");
                    let why = update::trial_failure(false);
                    board = rebooted(&settings, &boot.running, board);
                    board.update = Updater::rolled_back(boot.running.clone(), chip, &failed, why);
                    link = Link::new(backoff.clone());
                }
            }
            // A broken image: it never gets as far as the broker.
            Some(Verdict::Wait) if boot.broken => {
                if let Some((_, trial)) = &boot.trial {
                    clock.sleep_until(trial.deadline_ms()).await;
                }
                continue;
            }
            Some(Verdict::Wait) | None => {}
        }
        // With no session, readings go on into the backlog.
        board.measure_offline(now);
        match link.next(now) {
            // The host has no radio to bring up.
            Step::JoinWifi => link.on(LinkEvent::Reached(Stage::Wifi), now, random),
            Step::WaitForIp => link.on(LinkEvent::Reached(Stage::Ip), now, random),
            Step::Wait { until_ms } => {
                let reading = board.next_offline_due_ms().unwrap_or(u64::MAX);
                clock.sleep_until(until_ms.min(reading)).await
            }
            Step::OpenTcp => match TcpStream::connect((opts.host.as_str(), opts.port)).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    link.on(LinkEvent::Reached(Stage::Tcp), now, random);
                    hw.connected = false;
                    let end =
                        session::serve(&mut board, FromTokio::new(stream), &clock, &mut hw).await;
                    let now = clock.now_ms();
                    if hw.connected {
                        link.on(LinkEvent::Reached(Stage::Mqtt), now, random);
                    }
                    match end {
                        End::Lost(why) => {
                            tracing::debug!(device = %id, "session ended: {why}");
                            let event = if hw.connected {
                                LinkEvent::SessionLost
                            } else {
                                LinkEvent::Failed(Stage::Mqtt)
                            };
                            link.on(event, now, random);
                        }
                        End::Sleep { ms } => {
                            board.meter.settle(now);
                            let awake = board.meter.radio_ms + board.meter.cpu_ms;
                            if verbose {
                                println!(
                                    "{id}: awake {} ms this cycle, deep sleep for {ms} ms",
                                    awake - awake_before
                                );
                            }
                            awake_before = awake;
                            board.meter.enter(PowerState::DeepSleep, now);
                            clock.sleep_until(now + ms).await;
                            board.meter.enter(PowerState::CpuActive, clock.now_ms());
                            // Waking from deep sleep is a boot: the radio starts cold.
                            link = Link::new(backoff.clone());
                        }
                        End::Reboot => {
                            let incoming = board.update.incoming(1 - boot.running.slot.min(1));
                            let deadline = opts.trial_deadline_ms;
                            if let Reboot::Updated = boot.reboot(incoming, now, deadline) {
                                tracing::info!(device = %id, version = boot.running.version, "rebooting into the update, on trial");
                                board = rebooted(&settings, &boot.running, board);
                                board.update = Updater::on_trial(boot.running.clone(), chip);
                                hw.slot = RamSlot::new(opts.slot_bytes);
                                hw.confirmed = false;
                            } else {
                                tracing::info!(device = %id, "rebooting");
                            }
                            link = Link::new(backoff.clone());
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(device = %id, "connecting: {e}");
                    link.on(LinkEvent::Failed(Stage::Tcp), now, random);
                }
            },
            // The session performs the handshake and serves; the link never asks for them
            // on its own here.
            Step::Handshake | Step::Serve => link = Link::new(backoff.clone()),
        }
    }
}
