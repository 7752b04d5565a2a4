//! Temperature and battery from Linux sysfs. The root is a parameter so tests can lay out a
//! fake tree; missing or unreadable files mean "no such sensor", never an error.

use std::fs;
use std::path::{Path, PathBuf};

/// The hottest thermal zone, in °C.
pub fn temperature_c(sys: &Path) -> Option<f32> {
    let zones = fs::read_dir(sys.join("class/thermal")).ok()?;
    zones
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("thermal_zone"))
        .filter_map(|e| read_trimmed(&e.path().join("temp"))?.parse::<f32>().ok())
        .map(|milli| milli / 1000.0)
        // Drivers report absurd values for absent sensors (e.g. -273 °C); ignore them.
        .filter(|c| (-60.0..=200.0).contains(c))
        .reduce(f32::max)
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Battery {
    pub percent: Option<u8>,
    pub charging: Option<bool>,
    /// What the battery delivers while discharging, W: the whole system's draw on battery.
    /// `power_now`, or `current_now` × `voltage_now` where the driver reports those instead.
    pub discharge_watts: Option<f32>,
}

/// The first power supply of type `Battery`.
pub fn battery(sys: &Path) -> Battery {
    let Ok(supplies) = fs::read_dir(sys.join("class/power_supply")) else {
        return Battery::default();
    };
    let mut paths: Vec<PathBuf> = supplies.flatten().map(|e| e.path()).collect();
    paths.sort();
    for dir in paths {
        if read_trimmed(&dir.join("type")).as_deref() != Some("Battery") {
            continue;
        }
        let percent = read_trimmed(&dir.join("capacity"))
            .and_then(|s| s.parse::<u16>().ok())
            .map(|p| p.min(100) as u8);
        let status = read_trimmed(&dir.join("status"));
        let charging = status.as_deref().map(|s| s == "Charging");
        let discharge_watts = if status.as_deref() == Some("Discharging") {
            discharge_watts(&dir)
        } else {
            None
        };
        return Battery {
            percent,
            charging,
            discharge_watts,
        };
    }
    Battery::default()
}

/// Micro-units in sysfs; some drivers report negative values while discharging.
fn discharge_watts(dir: &Path) -> Option<f32> {
    let micro = |name: &str| {
        read_trimmed(&dir.join(name))?
            .parse::<i64>()
            .ok()
            .map(|v| v.unsigned_abs() as f64)
    };
    let watts = match micro("power_now") {
        Some(uw) => uw / 1e6,
        None => micro("current_now")? * micro("voltage_now")? / 1e12,
    };
    // Zero is a driver that does not measure; hundreds of watts is not a battery-powered node.
    (watts > 0.0 && watts < 500.0).then_some(watts as f32)
}

/// `/proc/device-tree/model` (NUL-terminated on a Pi).
pub fn device_tree_model(proc_root: &Path) -> Option<String> {
    let raw = fs::read(proc_root.join("device-tree/model")).ok()?;
    Some(
        String::from_utf8_lossy(&raw)
            .trim_end_matches('\0')
            .trim()
            .to_string(),
    )
}

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::super::fixture::put;
    use super::*;

    #[test]
    fn reads_hottest_zone_and_skips_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(temperature_c(root), None);
        put(root, "class/thermal/thermal_zone0/temp", "41500\n");
        put(root, "class/thermal/thermal_zone1/temp", "52000\n");
        put(root, "class/thermal/thermal_zone2/temp", "garbage");
        put(root, "class/thermal/thermal_zone3/temp", "-273000");
        put(root, "class/thermal/cooling_device0/temp", "99000");
        assert_eq!(temperature_c(root), Some(52.0));
    }

    #[test]
    fn reads_the_battery_not_the_mains_supply() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(battery(root), Battery::default());
        put(root, "class/power_supply/AC/type", "Mains\n");
        put(root, "class/power_supply/BAT0/type", "Battery\n");
        put(root, "class/power_supply/BAT0/capacity", "87\n");
        put(root, "class/power_supply/BAT0/status", "Charging\n");
        assert_eq!(
            battery(root),
            Battery {
                percent: Some(87),
                charging: Some(true),
                discharge_watts: None,
            }
        );
        put(root, "class/power_supply/BAT0/capacity", "250");
        put(root, "class/power_supply/BAT0/status", "Discharging");
        assert_eq!(battery(root).percent, Some(100));
        assert_eq!(battery(root).charging, Some(false));
    }

    #[test]
    fn discharge_power_from_power_now_or_current_times_voltage() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        put(root, "class/power_supply/BAT0/type", "Battery");
        put(root, "class/power_supply/BAT0/status", "Discharging");
        assert_eq!(battery(root).discharge_watts, None, "no power files");
        put(root, "class/power_supply/BAT0/current_now", "-1500000"); // 1.5 A, signed
        put(root, "class/power_supply/BAT0/voltage_now", "3700000"); // 3.7 V
        let w = battery(root).discharge_watts.unwrap();
        assert!((w - 5.55).abs() < 1e-4, "{w}");
        put(root, "class/power_supply/BAT0/power_now", "7250000");
        assert_eq!(battery(root).discharge_watts, Some(7.25), "power_now first");
        put(root, "class/power_supply/BAT0/power_now", "0");
        assert_eq!(
            battery(root).discharge_watts,
            None,
            "a driver that does not measure"
        );
        put(root, "class/power_supply/BAT0/power_now", "7250000");
        put(root, "class/power_supply/BAT0/status", "Charging");
        assert_eq!(
            battery(root).discharge_watts,
            None,
            "charging: not the system's draw"
        );
    }

    #[test]
    fn model_string_loses_its_nul() {
        let dir = tempfile::tempdir().unwrap();
        put(
            dir.path(),
            "device-tree/model",
            "Raspberry Pi 4 Model B Rev 1.4\0",
        );
        assert_eq!(
            device_tree_model(dir.path()).as_deref(),
            Some("Raspberry Pi 4 Model B Rev 1.4")
        );
    }
}
