//! Updates for MQTT boards over the mesh (docs/protocol.md#firmware-updates): an offer and the
//! image's chunks go down on `node/<id>/ota`, told apart by their tag; the board's report comes
//! up on `node/<id>/firmware`.

use crate::digest::Digest;
use crate::payload::Payload;
use alloc::string::String;

wire_enum! {
    /// Where a board's update stands.
    pub enum FirmwarePhase {
        /// Running its image; no update under way.
        Idle = 0 => "idle",
        /// Taking chunks of an offered image into its other slot.
        Receiving = 1 => "receiving",
        /// All of it written and its SHA-256 checked: rebooting into it.
        Rebooting = 2 => "rebooting",
        /// Booted the new image; it confirms once back in the swarm.
        Trial = 3 => "trial",
        /// The new image rejoined and is confirmed: the board keeps it.
        Confirmed = 4 => "confirmed",
        /// The new image did not come back healthy: the previous one runs again.
        RolledBack = 5 => "rolled_back",
        /// The offer or the image was refused (`reason` says why); nothing was switched.
        Refused = 6 => "refused",
    }
}

wire_message! {
    /// An update offered to a board: the image that will follow in chunks.
    pub struct FirmwareOffer = 20 {
        pub version: String,
        /// SHA-256 of the whole image (32 bytes).
        pub sha256: Digest,
        pub size: u32,
        /// Bytes in each chunk but the last.
        pub chunk_bytes: u32,
    }
}

wire_message! {
    /// A piece of an offered image.
    pub struct FirmwareChunk = 21 {
        /// The first 4 bytes of the image's SHA-256, read big-endian: which offer it belongs to.
        pub image: u32,
        pub offset: u32,
        pub data: Payload,
    }
}

wire_message! {
    /// What a board runs and how an update goes. Sent after each chunk taken (the pusher's
    /// acknowledgement), on each change of phase, and as the board comes online.
    pub struct FirmwareReport = 22 {
        /// The running image's version.
        pub version: String,
        /// The running image's SHA-256 when the board knows it (an image flashed by USB may
        /// not say); else empty.
        pub image_sha256: Digest,
        /// The OTA slot it runs from.
        pub slot: u8,
        pub phase: FirmwarePhase,
        /// The image offered, while receiving (and after, for the outcome); else empty.
        pub update_sha256: Digest,
        /// The next byte of the update it expects, and the update's size.
        pub next_offset: u32,
        pub size: u32,
        /// Why it refused or rolled back.
        pub reason: Option<String>,
    }
}

impl FirmwareChunk {
    /// The `image` number of an image with this SHA-256.
    pub fn image_of(sha256: &[u8]) -> u32 {
        let mut word = [0u8; 4];
        for (w, b) in word.iter_mut().zip(sha256) {
            *w = *b;
        }
        u32::from_be_bytes(word)
    }
}
