//! The board's life around the core: its link state machine over embassy-net, its MQTT session
//! on a TCP socket, and deep sleep when it asks. Every decision is the core's; this moves bytes
//! and reads the clock.

use embassy_net::{IpEndpoint, Stack, dns::DnsQueryType, tcp::TcpSocket};
use embassy_time::{Duration, Instant, Timer, with_deadline, with_timeout};
use esp_hal::rng::Rng;
use esp_println::println;
use swarm_fw_core::Board;
use swarm_fw_core::backlog::{self, Backlog};
use swarm_fw_core::backoff::Backoff;
use swarm_fw_core::link::{Link, LinkEvent, Stage, Step};
use swarm_fw_core::power::{EnergyMeter, PowerState};
use swarm_fw_core::session::{self, Clock, End, Hardware, Note};
use swarm_fw_core::time::{Carried as CarriedTime, TimeSync};
use swarm_fw_core::update::{self, BootPlan, Slot, Trial, Updater, Verdict};

use crate::ota::{Carried, Flash};
use crate::{battery::Battery, power::Power, settings, watchdog::TrialWatchdog};
use alloc::string::String;

/// Bound for DHCP, DNS and the TCP connect, so a dead network cannot stall the board.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// smoltcp aborts the socket when the peer stays silent this long (twice the keep-alive).
const SOCKET_TIMEOUT: Duration = Duration::from_secs(60);
/// One Ethernet MTU each way is plenty for reports of a hundred bytes.
const TCP_BUFFER: usize = 1536;

struct EspClock;

impl Clock for EspClock {
    fn now_ms(&self) -> u64 {
        Instant::now().as_millis()
    }

    /// No SNTP yet: energy samples carry 0 and the bridge's arrival time stands in.
    fn unix_ms(&self) -> Option<u64> {
        None
    }

    async fn sleep_until(&self, at_ms: u64) {
        Timer::at(Instant::from_millis(at_ms)).await
    }
}

struct EspHardware<'a> {
    battery: &'a mut Battery,
    flash: &'a mut Flash,
    connected: bool,
    /// The image on trial rejoined the swarm and is marked valid.
    confirmed: bool,
}

impl Hardware for EspHardware<'_> {
    fn slot(&mut self) -> &mut dyn Slot {
        self.flash
    }

    fn confirm_image(&mut self) -> Result<(), String> {
        self.flash.confirm()?;
        self.confirmed = true;
        println!("ota: the new image rejoined the swarm; confirmed");
        Ok(())
    }

    fn battery_pin_mv(&mut self) -> Option<u16> {
        self.battery.pin_mv()
    }

    fn charging(&mut self) -> bool {
        false
    }

    fn identify(&mut self, secs: u32) {
        println!("identify: {secs} s (no LED is wired on this board)");
    }

    fn note(&mut self, note: Note<'_>) {
        match note {
            Note::Connected => {
                self.connected = true;
                println!("mqtt: connected as {}", settings::NODE_ID);
            }
            Note::CommandObeyed { payload_len } => println!("cmd: obeyed ({payload_len} bytes)"),
            Note::CommandRejected { reason } => println!("cmd: rejected: {reason}"),
            Note::Cycle {
                bytes,
                publications,
            } => println!("report: {publications} publications, {bytes} bytes"),
        }
    }
}

/// RTC memory that outlives deep sleep: the energy meter's totals, the gateway's time carried
/// through the sleep, and the readings not yet delivered.
pub struct Kept {
    pub meter: &'static mut [u64; 4],
    pub time: &'static mut [u64; 2],
    pub backlog: &'static mut [u64; backlog::WORDS],
    pub ota: &'static mut [u64; 6],
}

/// Runs until deep sleep or reset.
pub async fn run(
    stack: Stack<'static>,
    mut battery: Battery,
    mut power: Power,
    mut flash: Flash,
    mut watchdog: TrialWatchdog,
    kept: Kept,
) -> ! {
    let Kept {
        meter: rtc_words,
        time: time_words,
        backlog: backlog_words,
        ota: ota_words,
    } = kept;
    let Some(settings) = settings::core_settings() else {
        // build.rs checks the names with the same rules, so only a hand-edited build gets here.
        println!("SWARM or NODE_ID is not a valid swarm name; not starting");
        loop {
            Timer::after(Duration::from_secs(3600)).await;
        }
    };
    let clock = EspClock;
    let backoff = Backoff::new(settings.backoff_min_ms, settings.backoff_max_ms);
    let meter = EnergyMeter::from_words(*rtc_words).unwrap_or_default();
    let mut board = Board::new(settings, meter);
    board.meter.enter(PowerState::CpuActive, clock.now_ms());
    // Taken once: a reset that is not a wake from this sleep must not find it again.
    if let Some(carried) = CarriedTime::from_words(*time_words) {
        board.time = TimeSync::resume(carried, clock.now_ms());
    }
    *time_words = [0; 2];
    board.backlog = Backlog::from_words(backlog_words);
    *backlog_words = [0; backlog::WORDS];
    let chip = board.settings().chip;
    let carried = Carried::from_words(ota_words);
    let mut trial = None;
    board.update = match update::plan(flash.boot_state()) {
        BootPlan::Run => {
            let sha = match carried {
                Carried::Running(sha) => Some(sha),
                _ => None,
            };
            let running = flash.running(sha);
            match carried {
                Carried::RolledBack { after_reset } => {
                    *ota_words = Carried::Nothing.to_words();
                    let why = update::trial_failure(after_reset);
                    println!("ota: the update was rolled back: {why}");
                    Updater::rolled_back(running, chip, "the update", why)
                }
                _ => Updater::new(running, chip),
            }
        }
        BootPlan::StartTrial => {
            let sha = match carried {
                Carried::Incoming(sha) => Some(sha),
                _ => None,
            };
            if let Err(e) = flash.start_trial() {
                println!("ota: marking the trial: {e}");
            }
            trial = Some(Trial::start(clock.now_ms(), update::TRIAL_DEADLINE_MS));
            watchdog.arm(update::TRIAL_WATCHDOG_MS);
            println!("ota: a new image, on trial until it rejoins the swarm");
            Updater::on_trial(flash.running(sha), chip)
        }
        BootPlan::RollBack => {
            // It reset during its trial: back to the previous image.
            println!("ota: the new image reset before it was confirmed; rolling back");
            if let Err(e) = flash.roll_back() {
                println!("ota: rolling back: {e}");
            }
            *ota_words = Carried::RolledBack { after_reset: true }.to_words();
            esp_hal::system::software_reset()
        }
    };
    let mut confirmed = false;
    let mut link = Link::new(backoff.clone());
    let rng = Rng::new();
    let mut rx_buffer = [0u8; TCP_BUFFER];
    let mut tx_buffer = [0u8; TCP_BUFFER];
    loop {
        let now = clock.now_ms();
        let random = rng.random();
        if let Some(t) = trial {
            match t.check(now, confirmed) {
                Verdict::Confirm => {
                    trial = None;
                    watchdog.disarm();
                    if let Some(sha) = board.update.running().sha256 {
                        *ota_words = Carried::Running(sha).to_words();
                    }
                }
                Verdict::RollBack => {
                    println!("ota: the new image did not rejoin the swarm in time; rolling back");
                    if let Err(e) = flash.roll_back() {
                        println!("ota: rolling back: {e}");
                    }
                    *ota_words = Carried::RolledBack { after_reset: false }.to_words();
                    *rtc_words = board.meter.to_words();
                    *backlog_words = board.backlog.to_words();
                    esp_hal::system::software_reset()
                }
                Verdict::Wait => {}
            }
        }
        // With no session, readings go on into the backlog.
        board.measure_offline(now);
        // Waiting out a backoff or about to join anyway: nothing to fall back from.
        let past_wifi = !matches!(link.next(now), Step::JoinWifi | Step::Wait { .. });
        if past_wifi && !stack.is_link_up() {
            link.on(LinkEvent::WifiLost, now, random);
        }
        match link.next(now) {
            // The Wi-Fi task associates on its own; this waits for it.
            Step::JoinWifi => {
                let reading = board.next_offline_due_ms().unwrap_or(u64::MAX);
                // Woken for a reading: taken at the top of the loop, then back to waiting.
                if with_deadline(Instant::from_millis(reading), stack.wait_link_up())
                    .await
                    .is_ok()
                {
                    link.on(LinkEvent::Reached(Stage::Wifi), clock.now_ms(), random);
                }
            }
            Step::WaitForIp => {
                let event = match with_timeout(STEP_TIMEOUT, stack.wait_config_up()).await {
                    Ok(()) => LinkEvent::Reached(Stage::Ip),
                    Err(_) => LinkEvent::Failed(Stage::Ip),
                };
                link.on(event, clock.now_ms(), random);
            }
            Step::Wait { until_ms } => {
                let reading = board.next_offline_due_ms().unwrap_or(u64::MAX);
                Timer::at(Instant::from_millis(until_ms.min(reading))).await
            }
            Step::OpenTcp => {
                let mut socket = TcpSocket::new(stack, &mut rx_buffer, &mut tx_buffer);
                socket.set_timeout(Some(SOCKET_TIMEOUT));
                if let Err(why) = open(stack, &mut socket).await {
                    println!("mqtt: {why}");
                    link.on(LinkEvent::Failed(Stage::Tcp), clock.now_ms(), random);
                    continue;
                }
                link.on(LinkEvent::Reached(Stage::Tcp), clock.now_ms(), random);
                board.meter.enter(PowerState::RadioOn, clock.now_ms());
                let mut hw = EspHardware {
                    battery: &mut battery,
                    flash: &mut flash,
                    connected: false,
                    confirmed: false,
                };
                let end = session::serve(&mut board, &mut socket, &clock, &mut hw).await;
                let connected = hw.connected;
                confirmed |= hw.confirmed;
                if matches!(end, End::Sleep { .. }) {
                    // The session said `asleep` and sent DISCONNECT: let them leave first.
                    let _ = with_timeout(Duration::from_secs(1), socket.flush()).await;
                }
                // A reset, not a FIN: the broker drops the session (and publishes the will, unless
                // the board disconnected cleanly) now rather than after its keep-alive, and never
                // holds a half-open connection.
                socket.abort();
                let _ = with_timeout(Duration::from_secs(1), socket.flush()).await;
                drop(socket);
                let now = clock.now_ms();
                if connected {
                    link.on(LinkEvent::Reached(Stage::Mqtt), now, random);
                }
                match end {
                    End::Lost(why) => {
                        println!("mqtt: session ended: {why}");
                        let event = if connected {
                            LinkEvent::SessionLost
                        } else {
                            LinkEvent::Failed(Stage::Mqtt)
                        };
                        link.on(event, now, random);
                    }
                    End::Sleep { ms } => {
                        // Booked before sleeping: RAM outside RTC memory does not survive it.
                        board.meter.enter(PowerState::DeepSleep, now);
                        board.meter.settle(now);
                        board.meter.add_sleep(ms);
                        *rtc_words = board.meter.to_words();
                        if let Some(carried) = board.time.carry(now, ms) {
                            *time_words = carried.to_words();
                        }
                        *backlog_words = board.backlog.to_words();
                        power.deep_sleep(ms)
                    }
                    End::Reboot => {
                        *rtc_words = board.meter.to_words();
                        *backlog_words = board.backlog.to_words();
                        // Into a checked and switched update: its SHA-256 goes along.
                        if let Some(sha) = board.update.incoming(0).and_then(|r| r.sha256) {
                            *ota_words = Carried::Incoming(sha).to_words();
                        }
                        esp_hal::system::software_reset()
                    }
                }
            }
            // `session::serve` does the handshake and the serving in one call.
            Step::Handshake | Step::Serve => link = Link::new(backoff.clone()),
        }
    }
}

/// Resolves MQTT_HOST (embassy-net answers IPv4 literals without a query) and connects.
async fn open(stack: Stack<'static>, socket: &mut TcpSocket<'_>) -> Result<(), &'static str> {
    let addresses = with_timeout(
        STEP_TIMEOUT,
        stack.dns_query(settings::MQTT_HOST, DnsQueryType::A),
    )
    .await
    .map_err(|_| "DNS timed out")?
    .map_err(|_| "DNS query failed")?;
    let address = addresses.first().ok_or("MQTT_HOST has no A record")?;
    let endpoint = IpEndpoint::new(*address, settings::MQTT_PORT);
    with_timeout(STEP_TIMEOUT, socket.connect(endpoint))
        .await
        .map_err(|_| "TCP connect timed out")?
        .map_err(|_| "TCP connect refused")
}
