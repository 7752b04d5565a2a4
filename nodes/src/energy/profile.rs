//! Built-in device power profiles: idle and full-load watts at the wall.
//!
//! Figures are approximate whole-board draw with no peripherals:
//! Pi Zero 2 W, Pi 3B+ and Pi 4 from the pidramble.com power-consumption benchmarks
//! (idle / 4-core stress at 5.1 V); Pi 5 from Jeff Geerling's Pi 5 measurements;
//! the generic x86 box is a small-form-factor PC estimate. Override with
//! `energy.idle_watts` / `energy.max_watts` when you have measured your own.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    pub name: &'static str,
    pub idle_watts: f32,
    pub max_watts: f32,
}

pub const PROFILES: &[Profile] = &[
    Profile {
        name: "pi-zero-2w",
        idle_watts: 0.6,
        max_watts: 3.0,
    },
    Profile {
        name: "pi3b-plus",
        idle_watts: 1.9,
        max_watts: 5.1,
    },
    Profile {
        name: "pi4",
        idle_watts: 2.7,
        max_watts: 6.4,
    },
    Profile {
        name: "pi5",
        idle_watts: 2.7,
        max_watts: 8.8,
    },
    Profile {
        name: "generic-x86",
        idle_watts: 10.0,
        max_watts: 65.0,
    },
];

pub fn by_name(name: &str) -> Option<Profile> {
    PROFILES.iter().copied().find(|p| p.name == name)
}

pub fn names() -> String {
    PROFILES
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Picks a profile from the device-tree model string (`/proc/device-tree/model` on a Pi).
pub fn detect(device_tree_model: Option<&str>) -> Profile {
    let model = device_tree_model.unwrap_or("");
    let name = if model.contains("Raspberry Pi 5") {
        "pi5"
    } else if model.contains("Raspberry Pi 4") {
        "pi4"
    } else if model.contains("Raspberry Pi 3 Model B Plus") {
        "pi3b-plus"
    } else if model.contains("Raspberry Pi Zero 2") {
        "pi-zero-2w"
    } else {
        "generic-x86"
    };
    by_name(name).unwrap_or(PROFILES[PROFILES.len() - 1])
}

/// The profile the settings ask for, with overrides applied.
pub fn resolve(
    settings: &super::settings::EnergySettings,
    device_tree_model: Option<&str>,
) -> Profile {
    let mut p = by_name(&settings.profile).unwrap_or_else(|| detect(device_tree_model));
    if let Some(w) = settings.idle_watts {
        p.idle_watts = w;
    }
    if let Some(w) = settings.max_watts {
        p.max_watts = w;
    }
    p.max_watts = p.max_watts.max(p.idle_watts);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_pi_models_and_falls_back() {
        assert_eq!(detect(Some("Raspberry Pi 4 Model B Rev 1.4\0")).name, "pi4");
        assert_eq!(detect(Some("Raspberry Pi 5 Model B Rev 1.0")).name, "pi5");
        assert_eq!(
            detect(Some("Raspberry Pi Zero 2 W Rev 1.0")).name,
            "pi-zero-2w"
        );
        assert_eq!(detect(None).name, "generic-x86");
    }

    #[test]
    fn every_profile_models_a_plausible_draw_at_every_load() {
        for p in PROFILES {
            // Board-level draw: Pis between half a watt and a 15 W supply, the PC under 200 W.
            let ceiling = if p.name.starts_with("pi") {
                15.0
            } else {
                200.0
            };
            assert!(0.5 <= p.idle_watts && p.idle_watts < p.max_watts, "{p:?}");
            assert!(p.max_watts <= ceiling, "{p:?}");
            let meter = crate::energy::meter::Meter::new(*p, 100.0, 0.0);
            let mut before = 0.0;
            for load in 0..=10 {
                let w = meter.watts_at(load as f32 / 10.0);
                assert!(
                    (p.idle_watts..=p.max_watts).contains(&w),
                    "{p:?} at {load}0 %: {w}"
                );
                assert!(w >= before, "{p:?}: more load, less power");
                before = w;
                // Work per joule rises with load on a linear model, to 100 % flat out.
                let eff = swarm_bus::efficiency_pct(load as f32 / 10.0, p.max_watts, w);
                assert!(eff.is_some_and(|e| e <= 100), "{p:?}");
            }
            assert_eq!(
                swarm_bus::efficiency_pct(1.0, p.max_watts, p.max_watts),
                Some(100)
            );
            assert_eq!(
                swarm_bus::efficiency_pct(0.0, p.max_watts, p.idle_watts),
                Some(0)
            );
        }
    }

    #[test]
    fn overrides_win_and_max_never_below_idle() {
        let mut s = crate::energy::settings::EnergySettings {
            profile: "pi4".into(),
            idle_watts: Some(9.0),
            ..Default::default()
        };
        let p = resolve(&s, None);
        assert_eq!((p.idle_watts, p.max_watts), (9.0, 9.0));
        s.max_watts = Some(12.0);
        assert_eq!(resolve(&s, None).max_watts, 12.0);
    }
}
