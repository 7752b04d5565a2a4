//! What an ESP32 app image says about itself: the header's chip id and the app descriptor's
//! version (`esp_app_desc_t`, which `esp_bootloader_esp_idf::esp_app_desc!` fills).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// An ESP image starts with this byte.
pub const MAGIC: u8 = 0xE9;
/// `esp_app_desc_t`'s magic word, right after the image header (24 bytes) and the first
/// segment's header (8).
const APP_DESC_MAGIC: u32 = 0xABCD_5432;
const APP_DESC_AT: usize = 24 + 8;
/// The version field: after the magic, the secure version and two reserved words.
const VERSION_AT: usize = APP_DESC_AT + 16;

/// The chip id in the image header, if `bytes` start like an ESP image.
pub fn chip_id(bytes: &[u8]) -> Option<u16> {
    if bytes.first() != Some(&MAGIC) {
        return None;
    }
    Some(u16::from_le_bytes([*bytes.get(12)?, *bytes.get(13)?]))
}

/// The version string of the image's app descriptor, if it has one.
pub fn app_version(bytes: &[u8]) -> Option<String> {
    let magic = bytes.get(APP_DESC_AT..APP_DESC_AT + 4)?;
    if u32::from_le_bytes(magic.try_into().ok()?) != APP_DESC_MAGIC {
        return None;
    }
    let field = bytes.get(VERSION_AT..VERSION_AT + 32)?;
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    Some(core::str::from_utf8(&field[..end]).ok()?.to_string())
}

/// A stand-in ESP image of `len` bytes for chip id `chip` with an app descriptor naming
/// `version`: for tests and the bench, where no real image is at hand.
pub fn sample(version: &str, chip: u16, len: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..len.max(96)).map(|i| (i * 31 % 253) as u8).collect();
    bytes[0] = MAGIC;
    bytes[12..14].copy_from_slice(&chip.to_le_bytes());
    bytes[APP_DESC_AT..APP_DESC_AT + 4].copy_from_slice(&APP_DESC_MAGIC.to_le_bytes());
    let field = &mut bytes[VERSION_AT..VERSION_AT + 32];
    field.fill(0);
    let v = &version.as_bytes()[..version.len().min(31)];
    field[..v.len()].copy_from_slice(v);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_image_says_its_chip_and_version() {
        let bytes = sample("0.2.0", 5, 4096);
        assert_eq!(
            (chip_id(&bytes), app_version(&bytes).as_deref()),
            (Some(5), Some("0.2.0"))
        );
        assert_eq!(chip_id(b"#!"), None);
        let mut bare = bytes.clone();
        bare[APP_DESC_AT] = 0;
        assert_eq!(app_version(&bare), None);
        assert_eq!(app_version(&bytes[..40]), None, "too short");
    }
}
