//! A simulated board's two OTA slots and its boot choice, in RAM: what the ESP32-C3's flash
//! and bootloader do for `swarm-fw-core`'s updater (docs/protocol.md#firmware-updates).

use swarm_fw_core::update::{self, BootPlan, BootState, Running, Slot, Trial, Verdict};

/// The other slot, written by an update.
pub struct RamSlot {
    bytes: Vec<u8>,
    capacity: u32,
    activated: bool,
}

impl RamSlot {
    pub fn new(capacity: u32) -> Self {
        RamSlot {
            bytes: Vec::new(),
            capacity,
            activated: false,
        }
    }
}

impl Slot for RamSlot {
    fn capacity(&self) -> u32 {
        self.capacity
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), String> {
        let at = offset as usize;
        if at > self.bytes.len() {
            return Err(format!("a gap before {offset}"));
        }
        // A rewrite from `offset` on: the sectors from there are erased first.
        self.bytes.truncate(at);
        self.bytes.extend_from_slice(data);
        self.activated = false;
        Ok(())
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), String> {
        let at = offset as usize;
        let src = self
            .bytes
            .get(at..at + buf.len())
            .ok_or_else(|| format!("reading past the written {} bytes", self.bytes.len()))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn activate(&mut self) -> Result<(), String> {
        self.activated = true;
        Ok(())
    }
}

/// What a simulated board boots: the image it runs, and on trial, the one to go back to.
pub struct Boot {
    pub running: Running,
    /// During a trial: the previous image and the trial's deadline.
    pub trial: Option<(Running, Trial)>,
    /// This board's new images never rejoin (a broken build for it): the trial fails.
    pub broken: bool,
    state: BootState,
}

/// What the board does at a reboot.
pub enum Reboot {
    /// Same image (a `reboot` command).
    Same,
    /// Into the updated image, on trial.
    Updated,
}

impl Boot {
    pub fn new(running: Running, broken: bool) -> Self {
        Boot {
            running,
            trial: None,
            broken,
            state: BootState::Settled,
        }
    }

    /// A reboot with the updater's image switched to (`incoming`), or none.
    pub fn reboot(&mut self, incoming: Option<Running>, now_ms: u64, deadline_ms: u64) -> Reboot {
        let Some(next) = incoming else {
            return Reboot::Same;
        };
        let previous = std::mem::replace(&mut self.running, next);
        self.state = BootState::New;
        match update::plan(self.state) {
            BootPlan::StartTrial => {
                self.state = BootState::Tried;
                self.trial = Some((previous, Trial::start(now_ms, deadline_ms)));
            }
            BootPlan::Run | BootPlan::RollBack => {}
        }
        Reboot::Updated
    }

    /// The trial's verdict now; `rejoined` once the session confirmed.
    pub fn check(&self, now_ms: u64, rejoined: bool) -> Option<Verdict> {
        self.trial.as_ref().map(|(_, t)| t.check(now_ms, rejoined))
    }

    /// Keeps the image on trial.
    pub fn confirm(&mut self) {
        self.trial = None;
        self.state = BootState::Settled;
    }

    /// Boots the previous image again; returns the version that failed.
    pub fn roll_back(&mut self) -> Option<String> {
        let (previous, _) = self.trial.take()?;
        let failed = std::mem::replace(&mut self.running, previous);
        self.state = BootState::Settled;
        Some(failed.version)
    }
}
