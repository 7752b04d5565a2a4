//! The board's OTA slots and boot choice for `swarm-fw-core`'s updater: bytes to and from the
//! inactive slot through esp-storage, and the OTA data partition's state through
//! esp-bootloader-esp-idf. Every decision is the core's (`swarm_fw_core::update`).

use alloc::format;
use alloc::string::String;
use esp_bootloader_esp_idf::ota::OtaImageState;
use esp_bootloader_esp_idf::ota_updater::OtaUpdater;
use esp_bootloader_esp_idf::partitions::{
    AppPartitionSubType, FlashStorage, PARTITION_TABLE_MAX_LEN,
};
use swarm_fw_core::update::{BootState, Running, Slot};

const SECTOR: u32 = 4096;

/// What RTC memory carries across the reset into a new image or back from it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Carried {
    Nothing,
    /// Rebooting into an image with this SHA-256, on trial.
    Incoming([u8; 32]),
    /// The running image, confirmed, with this SHA-256.
    Running([u8; 32]),
    /// The new image did not come back healthy; the previous one boots again.
    RolledBack {
        after_reset: bool,
    },
}

const MAGIC: u64 = 0x5377_4f74_6157_6473;

impl Carried {
    pub fn to_words(self) -> [u64; 6] {
        let (kind, sha) = match self {
            Carried::Nothing => (0, [0; 32]),
            Carried::Incoming(sha) => (1, sha),
            Carried::Running(sha) => (2, sha),
            Carried::RolledBack { after_reset } => (3 + u64::from(after_reset), [0; 32]),
        };
        let mut w = [0u64; 6];
        w[0] = kind;
        for (i, chunk) in sha.chunks(8).enumerate() {
            w[1 + i] = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        }
        w[5] = w[..5].iter().fold(MAGIC, |acc, x| acc.rotate_left(13) ^ x);
        w
    }

    pub fn from_words(w: &[u64; 6]) -> Carried {
        if w[..5].iter().fold(MAGIC, |acc, x| acc.rotate_left(13) ^ x) != w[5] {
            return Carried::Nothing;
        }
        let mut sha = [0u8; 32];
        for i in 0..4 {
            sha[i * 8..i * 8 + 8].copy_from_slice(&w[1 + i].to_le_bytes());
        }
        match w[0] {
            1 => Carried::Incoming(sha),
            2 => Carried::Running(sha),
            3 => Carried::RolledBack { after_reset: false },
            4 => Carried::RolledBack { after_reset: true },
            _ => Carried::Nothing,
        }
    }
}

pub struct Flash {
    storage: FlashStorage<'static>,
    table: [u8; PARTITION_TABLE_MAX_LEN],
    /// The inactive slot is erased up to here (bytes from its start).
    erased_to: u32,
    capacity: u32,
    /// The slot the board runs from (0 or 1), and the one an update goes to.
    pub running_slot: u8,
}

fn err(e: impl core::fmt::Debug) -> String {
    format!("{e:?}")
}

impl Flash {
    pub fn new(storage: FlashStorage<'static>) -> Self {
        let mut flash = Flash {
            storage,
            table: [0; PARTITION_TABLE_MAX_LEN],
            erased_to: 0,
            capacity: 0,
            running_slot: 0,
        };
        // After a USB flash the OTA data is blank ("factory"), and with no factory partition
        // esp-bootloader-esp-idf 0.6 would take the booted slot for the next one. espflash
        // writes the app to ota_0: say so, so the next slot is ota_1.
        if let Ok(mut ota) = OtaUpdater::new(&mut flash.storage, &mut flash.table)
            && ota.selected_partition() == Ok(AppPartitionSubType::Factory)
            && let Ok(mut data) = ota.ota_data()
        {
            let _ = data.set_current_app_partition(AppPartitionSubType::Ota0);
            let _ = data.set_current_ota_state(OtaImageState::Valid);
        }
        if let Ok(mut ota) = OtaUpdater::new(&mut flash.storage, &mut flash.table)
            && let Ok((region, next)) = ota.next_partition()
        {
            flash.capacity = u32::try_from(region.partition_size()).unwrap_or(0);
            flash.running_slot = u8::from(next == AppPartitionSubType::Ota0);
        }
        flash
    }

    /// How the running image came to boot.
    pub fn boot_state(&mut self) -> BootState {
        let Ok(mut ota) = OtaUpdater::new(&mut self.storage, &mut self.table) else {
            return BootState::Settled;
        };
        match ota.current_ota_state() {
            Ok(OtaImageState::New) => BootState::New,
            Ok(OtaImageState::PendingVerify) => BootState::Tried,
            _ => BootState::Settled,
        }
    }

    fn set_state(&mut self, state: OtaImageState) -> Result<(), String> {
        let mut ota = OtaUpdater::new(&mut self.storage, &mut self.table).map_err(err)?;
        ota.set_current_ota_state(state).map_err(err)
    }

    /// A new image's first boot: a reset from here on comes back as `Tried`.
    pub fn start_trial(&mut self) -> Result<(), String> {
        self.set_state(OtaImageState::PendingVerify)
    }

    pub fn confirm(&mut self) -> Result<(), String> {
        self.set_state(OtaImageState::Valid)
    }

    /// Marks the running image invalid and boots the other slot next.
    pub fn roll_back(&mut self) -> Result<(), String> {
        self.set_state(OtaImageState::Invalid)?;
        let mut ota = OtaUpdater::new(&mut self.storage, &mut self.table).map_err(err)?;
        ota.activate_next_partition().map_err(err)?;
        ota.set_current_ota_state(OtaImageState::Valid).map_err(err)
    }

    pub fn running(&self, sha256: Option<[u8; 32]>) -> Running {
        Running {
            version: String::from(env!("CARGO_PKG_VERSION")),
            sha256,
            slot: self.running_slot,
        }
    }
}

impl Slot for Flash {
    fn capacity(&self) -> u32 {
        self.capacity
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), String> {
        if offset == 0 {
            self.erased_to = 0;
        }
        let end = offset
            .checked_add(data.len() as u32)
            .ok_or("past the slot")?;
        let mut ota = OtaUpdater::new(&mut self.storage, &mut self.table).map_err(err)?;
        let (mut region, _) = ota.next_partition().map_err(err)?;
        if end > self.erased_to {
            let to = end.div_ceil(SECTOR) * SECTOR;
            region.erase(self.erased_to, to).map_err(err)?;
            self.erased_to = to;
        }
        region.write(offset, data).map_err(err)
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), String> {
        let mut ota = OtaUpdater::new(&mut self.storage, &mut self.table).map_err(err)?;
        let (mut region, _) = ota.next_partition().map_err(err)?;
        region.read(offset, buf).map_err(err)
    }

    fn activate(&mut self) -> Result<(), String> {
        let mut ota = OtaUpdater::new(&mut self.storage, &mut self.table).map_err(err)?;
        ota.activate_next_partition().map_err(err)?;
        ota.set_current_ota_state(OtaImageState::New).map_err(err)
    }
}
