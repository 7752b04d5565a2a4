//! Firmware updates over the mesh (docs/protocol.md#firmware-updates): every decision about
//! an offered image — take it or refuse it, which chunk comes next, resume, verify, switch,
//! confirm or roll back. The board binary only moves bytes to and from flash (`Slot`) and
//! keeps the boot choice (the ESP-IDF OTA data partition).
//!
//! An update runs: offer → chunks, in order, each acknowledged by a report naming the next
//! byte expected → the whole slot read back and its SHA-256 checked against the offer → the
//! slot marked to boot next, on trial → reboot → the new image confirms itself once it has
//! rejoined the swarm (`Trial`) → or, if it does not within the deadline, or resets before,
//! the previous image boots again.

use alloc::format;
use alloc::string::{String, ToString};
use sha2::{Digest as _, Sha256};
use swarm_bus::{Digest, FirmwareChunk, FirmwareOffer, FirmwarePhase, FirmwareReport};

/// The ESP image header's chip id of an ESP32-C3.
pub const CHIP_ESP32C3: u16 = 5;
/// The largest chunk a board takes: it fits the session's 4 KiB packet limit with room.
pub const MAX_CHUNK: u32 = 2048;
/// How long a new image has to rejoin the swarm before the previous one boots again.
pub const TRIAL_DEADLINE_MS: u64 = 120_000;
/// When a hardware watchdog resets a board whose new image is still unconfirmed: past the
/// deadline, so the trial's own check decides first and the watchdog catches only an image
/// that hangs before it can.
pub const TRIAL_WATCHDOG_MS: u64 = TRIAL_DEADLINE_MS + 30_000;

/// The other OTA slot, where an update is written.
pub trait Slot {
    /// Bytes the slot holds.
    fn capacity(&self) -> u32;
    /// Writes at `offset`. Offsets come in order from 0, so an implementation erases each
    /// flash sector as the first write reaches it.
    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), String>;
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), String>;
    /// Boots this slot next, on trial.
    fn activate(&mut self) -> Result<(), String>;
}

/// The image the board runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub version: String,
    /// Unknown for an image flashed by USB.
    pub sha256: Option<[u8; 32]>,
    pub slot: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    version: String,
    sha256: [u8; 32],
    size: u32,
    chunk_bytes: u32,
}

/// What the session does after an update message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing to say (a stale chunk of another offer).
    Quiet,
    /// Send the report (`Updater::report`): the pusher's acknowledgement.
    Report,
    /// The image is written, checked and marked: report, then reboot into it.
    Reboot,
}

#[derive(Debug, Clone)]
pub struct Updater {
    running: Running,
    chip: u16,
    phase: FirmwarePhase,
    target: Option<Target>,
    next: u32,
    reason: Option<String>,
    /// Chunks of no current offer, or beyond its size.
    pub stale_chunks: u32,
    /// Chunks that were not the next expected (a lost one before them).
    pub out_of_order: u32,
}

impl Updater {
    pub fn new(running: Running, chip: u16) -> Self {
        Self {
            running,
            chip,
            phase: FirmwarePhase::Idle,
            target: None,
            next: 0,
            reason: None,
            stale_chunks: 0,
            out_of_order: 0,
        }
    }

    pub fn running(&self) -> &Running {
        &self.running
    }

    pub fn phase(&self) -> FirmwarePhase {
        self.phase
    }

    /// An update is coming in: the board stays awake for it.
    pub fn busy(&self) -> bool {
        matches!(
            self.phase,
            FirmwarePhase::Receiving | FirmwarePhase::Rebooting
        )
    }

    /// The board's report now.
    pub fn report(&self) -> FirmwareReport {
        let target = self.target.as_ref();
        FirmwareReport {
            version: self.running.version.clone(),
            image_sha256: Digest(self.running.sha256.map(|s| s.to_vec()).unwrap_or_default()),
            slot: self.running.slot,
            phase: self.phase,
            update_sha256: Digest(target.map(|t| t.sha256.to_vec()).unwrap_or_default()),
            next_offset: self.next,
            size: target.map_or(0, |t| t.size),
            reason: self.reason.clone(),
        }
    }

    /// The new image after a reboot into it, on trial until `Trial` confirms it.
    pub fn on_trial(running: Running, chip: u16) -> Self {
        Self {
            phase: FirmwarePhase::Trial,
            ..Self::new(running, chip)
        }
    }

    /// The trial ended: the new image is kept.
    pub fn confirmed(&mut self) {
        self.phase = FirmwarePhase::Confirmed;
        self.reason = None;
    }

    /// The previous image runs again after `version` did not come back healthy.
    pub fn rolled_back(running: Running, chip: u16, version: &str, why: &str) -> Self {
        Self {
            phase: FirmwarePhase::RolledBack,
            reason: Some(format!("{version}: {why}")),
            ..Self::new(running, chip)
        }
    }

    fn refuse(&mut self, why: String) -> Step {
        self.phase = FirmwarePhase::Refused;
        self.reason = Some(why);
        self.target = None;
        self.next = 0;
        Step::Report
    }

    pub fn on_offer(&mut self, offer: &FirmwareOffer, slot: &mut dyn Slot) -> Step {
        let Ok(sha256) = <[u8; 32]>::try_from(offer.sha256.as_bytes()) else {
            return self.refuse("an offer's SHA-256 must be 32 bytes".into());
        };
        if self.phase == FirmwarePhase::Rebooting {
            // Written and switched: the reboot is under way.
            return Step::Report;
        }
        if self.running.sha256 == Some(sha256) {
            // Already runs it: on trial, confirmed, or settled. The report says which.
            self.target = None;
            self.next = 0;
            if !matches!(self.phase, FirmwarePhase::Trial | FirmwarePhase::Confirmed) {
                self.phase = FirmwarePhase::Idle;
                self.reason = None;
            }
            return Step::Report;
        }
        if self.phase == FirmwarePhase::Receiving
            && self.target.as_ref().is_some_and(|t| t.sha256 == sha256)
        {
            // The same image again (a dropped connection, a pusher that restarted): resume.
            return Step::Report;
        }
        if offer.size == 0 || offer.size > slot.capacity() {
            return self.refuse(format!(
                "an image of {} bytes does not fit the slot's {}",
                offer.size,
                slot.capacity()
            ));
        }
        if offer.chunk_bytes == 0 || offer.chunk_bytes > MAX_CHUNK {
            return self.refuse(format!(
                "chunks of {} bytes: 1 to {MAX_CHUNK} are taken",
                offer.chunk_bytes
            ));
        }
        self.target = Some(Target {
            version: offer.version.clone(),
            sha256,
            size: offer.size,
            chunk_bytes: offer.chunk_bytes,
        });
        self.phase = FirmwarePhase::Receiving;
        self.next = 0;
        self.reason = None;
        Step::Report
    }

    pub fn on_chunk(&mut self, chunk: &FirmwareChunk, slot: &mut dyn Slot) -> Step {
        let Some(target) = self
            .target
            .clone()
            .filter(|_| self.phase == FirmwarePhase::Receiving)
        else {
            self.stale_chunks = self.stale_chunks.saturating_add(1);
            return Step::Quiet;
        };
        if chunk.image != FirmwareChunk::image_of(&target.sha256) {
            self.stale_chunks = self.stale_chunks.saturating_add(1);
            return Step::Quiet;
        }
        let data = chunk.data.as_bytes();
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let end = chunk.offset.checked_add(len);
        if len == 0 || len > target.chunk_bytes || end.is_none_or(|e| e > target.size) {
            self.stale_chunks = self.stale_chunks.saturating_add(1);
            return Step::Report;
        }
        if chunk.offset != self.next {
            // Tells the pusher where to go on from.
            self.out_of_order = self.out_of_order.saturating_add(1);
            return Step::Report;
        }
        if chunk.offset == 0
            && let Err(why) = self.check_header(data)
        {
            return self.refuse(why);
        }
        if let Err(e) = slot.write(chunk.offset, data) {
            return self.refuse(format!("writing flash at {}: {e}", chunk.offset));
        }
        self.next = chunk.offset + len;
        if self.next < target.size {
            return Step::Report;
        }
        match written_sha256(slot, target.size) {
            Ok(sha) if sha == target.sha256 => {}
            Ok(_) => {
                return self.refuse(
                    "the written image's SHA-256 differs from the offer's: not switched".into(),
                );
            }
            Err(e) => return self.refuse(format!("reading the image back: {e}")),
        }
        if let Err(e) = slot.activate() {
            return self.refuse(format!("marking the new image to boot: {e}"));
        }
        self.phase = FirmwarePhase::Rebooting;
        Step::Reboot
    }

    /// The image being written, once switched to: what the board will run after the reboot.
    pub fn incoming(&self, next_slot: u8) -> Option<Running> {
        let t = self
            .target
            .as_ref()
            .filter(|_| self.phase == FirmwarePhase::Rebooting)?;
        Some(Running {
            version: t.version.clone(),
            sha256: Some(t.sha256),
            slot: next_slot,
        })
    }

    fn check_header(&self, data: &[u8]) -> Result<(), String> {
        let Some(chip) = crate::image::chip_id(data) else {
            return Err("not an ESP image (no 0xE9 header)".into());
        };
        if chip != self.chip {
            return Err(format!(
                "an image for chip id {chip}; this board is chip id {}",
                self.chip
            ));
        }
        Ok(())
    }
}

/// The slot read back, not the bytes as they came: what will boot is what is checked.
fn written_sha256(slot: &mut dyn Slot, size: u32) -> Result<[u8; 32], String> {
    let mut hasher = Sha256::new();
    let mut buf = [0u8; 256];
    let mut at = 0;
    while at < size {
        let n = (size - at).min(buf.len() as u32) as usize;
        slot.read(at, &mut buf[..n])?;
        hasher.update(&buf[..n]);
        at += n as u32;
    }
    Ok(hasher.finalize().into())
}

/// SHA-256 of bytes, for the host side of the tests and the simulated boards.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// How the running image came to boot, from the boot choice the binary keeps (on the ESP32,
/// the OTA data partition's state of the running slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootState {
    /// Confirmed, or never updated (flashed by USB).
    Settled,
    /// First boot of a new image.
    New,
    /// A new image that booted before and was not confirmed: it reset during its trial.
    Tried,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootPlan {
    Run,
    /// Mark the image as tried (so a reset comes back as `Tried`) and start a `Trial`.
    StartTrial,
    /// Mark it invalid, boot the previous image.
    RollBack,
}

pub fn plan(state: BootState) -> BootPlan {
    match state {
        BootState::Settled => BootPlan::Run,
        BootState::New => BootPlan::StartTrial,
        BootState::Tried => BootPlan::RollBack,
    }
}

/// A new image's first run: kept once it rejoins the swarm, rolled back past the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trial {
    deadline_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Wait,
    Confirm,
    RollBack,
}

impl Trial {
    pub fn start(now_ms: u64, deadline_ms: u64) -> Self {
        Trial {
            deadline_ms: now_ms.saturating_add(deadline_ms),
        }
    }

    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms
    }

    /// `rejoined`: the broker acknowledged the board's `online` in a session.
    pub fn check(&self, now_ms: u64, rejoined: bool) -> Verdict {
        if rejoined {
            Verdict::Confirm
        } else if now_ms >= self.deadline_ms {
            Verdict::RollBack
        } else {
            Verdict::Wait
        }
    }
}

/// Why a trial failed, for the previous image to report.
pub fn trial_failure(verdict_after_reset: bool) -> &'static str {
    if verdict_after_reset {
        "it reset before rejoining the swarm"
    } else {
        "it did not rejoin the swarm before the deadline"
    }
}

impl Default for Running {
    fn default() -> Self {
        Running {
            version: "unknown".to_string(),
            sha256: None,
            slot: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use swarm_bus::Payload;

    /// A slot in RAM that can fail on cue.
    struct RamSlot {
        bytes: Vec<u8>,
        capacity: u32,
        activated: bool,
        fail_write_at: Option<u32>,
        flip_bit_at: Option<u32>,
    }

    impl RamSlot {
        fn new(capacity: u32) -> Self {
            RamSlot {
                bytes: Vec::new(),
                capacity,
                activated: false,
                fail_write_at: None,
                flip_bit_at: None,
            }
        }
    }

    impl Slot for RamSlot {
        fn capacity(&self) -> u32 {
            self.capacity
        }

        fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), String> {
            if self.fail_write_at == Some(offset) {
                return Err("flash error".into());
            }
            self.bytes.truncate(offset as usize);
            self.bytes.extend_from_slice(data);
            if let Some(at) = self.flip_bit_at
                && (offset..offset + data.len() as u32).contains(&at)
            {
                self.bytes[at as usize] ^= 0x10;
            }
            Ok(())
        }

        fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), String> {
            let at = offset as usize;
            let src = self.bytes.get(at..at + buf.len()).ok_or("past the end")?;
            buf.copy_from_slice(src);
            Ok(())
        }

        fn activate(&mut self) -> Result<(), String> {
            self.activated = true;
            Ok(())
        }
    }

    fn image(len: usize, chip: u16) -> Vec<u8> {
        crate::image::sample("0.2.0", chip, len)
    }

    fn offer(bytes: &[u8], chunk: u32) -> FirmwareOffer {
        FirmwareOffer {
            version: "0.2.0".into(),
            sha256: Digest(sha256(bytes).to_vec()),
            size: bytes.len() as u32,
            chunk_bytes: chunk,
        }
    }

    fn chunk(bytes: &[u8], offset: u32, chunk: u32) -> FirmwareChunk {
        let end = (offset + chunk).min(bytes.len() as u32);
        FirmwareChunk {
            image: FirmwareChunk::image_of(&sha256(bytes)),
            offset,
            data: Payload(bytes[offset as usize..end as usize].to_vec()),
        }
    }

    fn updater() -> Updater {
        Updater::new(
            Running {
                version: "0.1.0".into(),
                sha256: Some([1; 32]),
                slot: 0,
            },
            CHIP_ESP32C3,
        )
    }

    /// Sends chunks from `from` to the end; the step after the last.
    fn send_all(u: &mut Updater, slot: &mut RamSlot, bytes: &[u8], from: u32) -> Step {
        let mut step = Step::Report;
        let mut at = from;
        while at < bytes.len() as u32 {
            step = u.on_chunk(&chunk(bytes, at, 1000), slot);
            if step != Step::Report || u.phase() != FirmwarePhase::Receiving {
                return step;
            }
            at = u.report().next_offset;
        }
        step
    }

    #[test]
    fn an_image_goes_in_chunk_by_chunk_is_checked_and_switched_to() {
        let bytes = image(5_500, CHIP_ESP32C3);
        let mut slot = RamSlot::new(10_000);
        let mut u = updater();
        assert_eq!(u.on_offer(&offer(&bytes, 1000), &mut slot), Step::Report);
        let r = u.report();
        assert_eq!(
            (r.phase, r.next_offset, r.size),
            (FirmwarePhase::Receiving, 0, 5_500)
        );
        assert!(u.busy());
        assert_eq!(send_all(&mut u, &mut slot, &bytes, 0), Step::Reboot);
        assert!(slot.activated);
        assert_eq!(u.phase(), FirmwarePhase::Rebooting);
        let next = u.incoming(1).unwrap();
        assert_eq!(
            (next.version.as_str(), next.sha256),
            ("0.2.0", Some(sha256(&bytes)))
        );
    }

    #[test]
    fn a_dropped_connection_resumes_at_any_chunk() {
        let bytes = image(4_200, CHIP_ESP32C3);
        for stop_after in 1..5u32 {
            let mut slot = RamSlot::new(10_000);
            let mut u = updater();
            u.on_offer(&offer(&bytes, 1000), &mut slot);
            for i in 0..stop_after {
                u.on_chunk(&chunk(&bytes, i * 1000, 1000), &mut slot);
            }
            // The pusher comes back and offers the same image: the board says where it is.
            assert_eq!(u.on_offer(&offer(&bytes, 1000), &mut slot), Step::Report);
            let resume_at = u.report().next_offset;
            assert_eq!(resume_at, stop_after * 1000);
            assert_eq!(send_all(&mut u, &mut slot, &bytes, resume_at), Step::Reboot);
        }
    }

    #[test]
    fn a_lost_chunk_is_reported_not_skipped() {
        let bytes = image(3_000, CHIP_ESP32C3);
        let mut slot = RamSlot::new(10_000);
        let mut u = updater();
        u.on_offer(&offer(&bytes, 1000), &mut slot);
        u.on_chunk(&chunk(&bytes, 0, 1000), &mut slot);
        // 1000 lost: 2000 arrives.
        assert_eq!(
            u.on_chunk(&chunk(&bytes, 2000, 1000), &mut slot),
            Step::Report
        );
        assert_eq!((u.report().next_offset, u.out_of_order), (1000, 1));
        // A chunk of another image, or after the update, is stale.
        let other = image(3_000, CHIP_ESP32C3 + 1);
        assert_eq!(
            u.on_chunk(&chunk(&other, 1000, 1000), &mut slot),
            Step::Quiet
        );
        assert_eq!(u.stale_chunks, 1);
    }

    #[test]
    fn chunks_empty_oversized_or_past_the_image_write_nothing() {
        let bytes = image(3_000, CHIP_ESP32C3);
        let mut slot = RamSlot::new(10_000);
        let mut u = updater();
        u.on_offer(&offer(&bytes, 1000), &mut slot);
        u.on_chunk(&chunk(&bytes, 0, 1000), &mut slot);
        let image = FirmwareChunk::image_of(&sha256(&bytes));
        let bad = |offset: u32, len: usize| FirmwareChunk {
            image,
            offset,
            data: Payload(vec![0xAA; len]),
        };
        let cases = [
            (1000, 0, "empty"),
            (1000, 1001, "longer than the offer's chunks"),
            (2500, 1000, "past the image's end"),
            (u32::MAX - 10, 1000, "an offset that overflows"),
        ];
        for (n, (offset, len, what)) in cases.into_iter().enumerate() {
            assert_eq!(
                u.on_chunk(&bad(offset, len), &mut slot),
                Step::Report,
                "{what}"
            );
            assert_eq!(u.stale_chunks, n as u32 + 1, "{what} counted");
            assert_eq!(u.report().next_offset, 1000, "{what}: nothing written");
            assert_eq!(slot.bytes.len(), 1000, "{what}: nothing written");
        }
        // The transfer goes on from where it stood.
        assert_eq!(send_all(&mut u, &mut slot, &bytes, 1000), Step::Reboot);
        assert_eq!(&slot.bytes[..3000], &bytes[..]);
    }

    #[test]
    fn a_corrupted_chunk_or_a_wrong_hash_switches_nothing() {
        let bytes = image(3_000, CHIP_ESP32C3);
        let mut slot = RamSlot::new(10_000);
        slot.flip_bit_at = Some(1_500);
        let mut u = updater();
        u.on_offer(&offer(&bytes, 1000), &mut slot);
        assert_eq!(send_all(&mut u, &mut slot, &bytes, 0), Step::Report);
        let r = u.report();
        assert_eq!(r.phase, FirmwarePhase::Refused);
        assert!(r.reason.unwrap().contains("SHA-256"), "named");
        assert!(!slot.activated);
        assert!(!u.busy());
        // An offer whose hash is not the image's: the same.
        let mut slot = RamSlot::new(10_000);
        let mut lie = offer(&bytes, 1000);
        lie.sha256 = Digest(vec![9; 32]);
        u.on_offer(&lie, &mut slot);
        let mut at = 0;
        while at < 3_000 {
            let mut c = chunk(&bytes, at, 1000);
            c.image = FirmwareChunk::image_of(&[9; 32]);
            u.on_chunk(&c, &mut slot);
            at += 1000;
        }
        assert_eq!(u.phase(), FirmwarePhase::Refused);
        assert!(!slot.activated);
    }

    #[test]
    fn images_for_another_chip_too_large_or_oddly_chunked_are_refused_with_a_reason() {
        let mut slot = RamSlot::new(4_000);
        let mut u = updater();
        let big = image(4_001, CHIP_ESP32C3);
        u.on_offer(&offer(&big, 1000), &mut slot);
        assert!(
            u.report()
                .reason
                .unwrap()
                .contains("does not fit the slot's 4000")
        );
        let other = image(3_000, 9);
        u.on_offer(&offer(&other, 1000), &mut slot);
        u.on_chunk(&chunk(&other, 0, 1000), &mut slot);
        let r = u.report();
        assert_eq!(r.phase, FirmwarePhase::Refused);
        assert!(r.reason.unwrap().contains("chip id 9"));
        let mut text = image(3_000, CHIP_ESP32C3);
        text[0] = b'#';
        u.on_offer(&offer(&text, 1000), &mut slot);
        u.on_chunk(&chunk(&text, 0, 1000), &mut slot);
        assert!(u.report().reason.unwrap().contains("not an ESP image"));
        u.on_offer(&offer(&image(3_000, CHIP_ESP32C3), 4096), &mut slot);
        assert!(u.report().reason.unwrap().contains("chunks of 4096"));
        let mut short = offer(&image(3_000, CHIP_ESP32C3), 1000);
        short.sha256 = Digest(vec![1; 31]);
        u.on_offer(&short, &mut slot);
        assert!(u.report().reason.unwrap().contains("32 bytes"));
        assert!(slot.bytes.is_empty() || !slot.activated);
    }

    #[test]
    fn a_failing_flash_refuses_and_an_offer_of_the_running_image_is_a_no_op() {
        let bytes = image(3_000, CHIP_ESP32C3);
        let mut slot = RamSlot::new(10_000);
        slot.fail_write_at = Some(2000);
        let mut u = updater();
        u.on_offer(&offer(&bytes, 1000), &mut slot);
        send_all(&mut u, &mut slot, &bytes, 0);
        assert!(u.report().reason.unwrap().contains("writing flash at 2000"));
        let mut running = updater();
        running.running.sha256 = Some(sha256(&bytes));
        assert_eq!(
            running.on_offer(&offer(&bytes, 1000), &mut slot),
            Step::Report
        );
        assert_eq!(running.phase(), FirmwarePhase::Idle);
    }

    #[test]
    fn a_new_image_is_kept_only_once_it_rejoins_and_rolled_back_otherwise() {
        assert_eq!(plan(BootState::Settled), BootPlan::Run);
        assert_eq!(plan(BootState::New), BootPlan::StartTrial);
        // A power cut (or crash) between the switch and the confirmation: the image booted
        // once already and was never confirmed.
        assert_eq!(plan(BootState::Tried), BootPlan::RollBack);
        let trial = Trial::start(1_000, TRIAL_DEADLINE_MS);
        assert_eq!(trial.check(5_000, false), Verdict::Wait);
        assert_eq!(trial.check(5_000, true), Verdict::Confirm);
        // A board that never confirms.
        assert_eq!(
            trial.check(1_000 + TRIAL_DEADLINE_MS, false),
            Verdict::RollBack
        );
        let back = Updater::rolled_back(
            Running::default(),
            CHIP_ESP32C3,
            "0.2.0",
            trial_failure(false),
        );
        let r = back.report();
        assert_eq!(r.phase, FirmwarePhase::RolledBack);
        assert_eq!(
            r.reason.as_deref(),
            Some("0.2.0: it did not rejoin the swarm before the deadline")
        );
        let mut kept = Updater::on_trial(Running::default(), CHIP_ESP32C3);
        assert_eq!(kept.phase(), FirmwarePhase::Trial);
        kept.confirmed();
        assert_eq!(kept.phase(), FirmwarePhase::Confirmed);
    }
}
