//! An image file to push: its bytes, SHA-256 and version.

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use std::path::Path;
use swarm_fw_core::image::{app_version, chip_id};
use swarm_fw_core::update::CHIP_ESP32C3;

/// The largest image pushed: an OTA slot of the partition table (`firmware/partitions.csv`).
pub const MAX_IMAGE_BYTES: usize = 0x1E_0000;

pub struct Image {
    pub bytes: Vec<u8>,
    pub sha256: [u8; 32],
    pub version: String,
}

impl Image {
    /// Reads `path`; the version is `version`, else the one in the image's app descriptor.
    pub fn read(path: &Path, version: Option<String>) -> anyhow::Result<Image> {
        let bytes =
            std::fs::read(path).with_context(|| format!("reading the image {}", path.display()))?;
        Self::from_bytes(bytes, version).with_context(|| format!("{}", path.display()))
    }

    pub fn from_bytes(bytes: Vec<u8>, version: Option<String>) -> anyhow::Result<Image> {
        if bytes.is_empty() {
            bail!("the image is empty");
        }
        if bytes.len() > MAX_IMAGE_BYTES {
            bail!(
                "the image is {} bytes; an OTA slot holds {MAX_IMAGE_BYTES}",
                bytes.len()
            );
        }
        match chip_id(&bytes) {
            None => bail!(
                "not an ESP image (it does not start with 0xE9): make one with `espflash save-image`"
            ),
            Some(CHIP_ESP32C3) => {}
            // The board refuses it too; saying so here saves the transfer.
            Some(other) => bail!(
                "an image for chip id {other}; the boards are ESP32-C3 (chip id {CHIP_ESP32C3})"
            ),
        }
        let version = match version.or_else(|| app_version(&bytes)) {
            Some(v) if !v.is_empty() && v.len() <= 32 => v,
            Some(v) => bail!("version `{v}`: 1 to 32 characters"),
            None => bail!("the image has no app descriptor to read a version from; give --version"),
        };
        let sha256 = Sha256::digest(&bytes).into();
        Ok(Image {
            bytes,
            sha256,
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_fw_core::image::sample;

    fn test_image(version: &str, len: usize) -> Vec<u8> {
        sample(version, CHIP_ESP32C3, len)
    }

    #[test]
    fn the_version_comes_from_the_app_descriptor_or_the_flag() {
        let image = Image::from_bytes(test_image("0.2.0", 4096), None).unwrap();
        assert_eq!(image.version, "0.2.0");
        let named = Image::from_bytes(test_image("0.2.0", 4096), Some("rc1".into())).unwrap();
        assert_eq!(named.version, "rc1");
        let mut bare = test_image("x", 4096);
        bare[32] = 0;
        assert!(Image::from_bytes(bare, None).is_err());
        assert!(
            Image::from_bytes(sample("1", 9, 4096), None).is_err(),
            "another chip"
        );
        assert!(Image::from_bytes(b"#!/bin/sh".to_vec(), Some("1".into())).is_err());
        assert!(Image::from_bytes(test_image("1", MAX_IMAGE_BYTES + 1), None).is_err());
    }
}
