//! Turns CPU load over time into watts, cumulative Wh and grams of CO2. Pure: the caller passes
//! the clock, so tests drive it with simulated time.

use super::profile::Profile;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct Meter {
    profile: Profile,
    gco2_per_kwh: f32,
    wh_total: f64,
    last: Option<(Instant, f32)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub watts: f32,
    pub wh_total: f64,
    pub co2_g: f64,
}

impl Meter {
    pub fn new(profile: Profile, gco2_per_kwh: f32, wh_total: f64) -> Self {
        Self {
            profile,
            gco2_per_kwh,
            wh_total: if wh_total.is_finite() && wh_total >= 0.0 {
                wh_total
            } else {
                0.0
            },
            last: None,
        }
    }

    /// Power at a CPU utilisation in 0..=1: linear between the profile's idle and max watts.
    pub fn watts_at(&self, cpu: f32) -> f32 {
        let cpu = if cpu.is_finite() {
            cpu.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.profile.idle_watts + (self.profile.max_watts - self.profile.idle_watts) * cpu
    }

    /// Records a sample; energy since the previous one is the trapezoid of the two powers.
    pub fn sample(&mut self, now: Instant, cpu: f32) -> Reading {
        self.sample_watts(now, self.watts_at(cpu))
    }

    /// Records a measured power instead of the model's.
    pub fn sample_watts(&mut self, now: Instant, watts: f32) -> Reading {
        let watts = if watts.is_finite() {
            watts.max(0.0)
        } else {
            0.0
        };
        if let Some((then, before)) = self.last {
            let hours = now.saturating_duration_since(then).as_secs_f64() / 3600.0;
            self.wh_total += f64::from(watts + before) / 2.0 * hours;
        }
        self.last = Some((now, watts));
        Reading {
            watts,
            wh_total: self.wh_total,
            co2_g: self.wh_total / 1000.0 * f64::from(self.gco2_per_kwh),
        }
    }

    pub fn wh_total(&self) -> f64 {
        self.wh_total
    }

    /// The profile's full-load power: what the device's best work per joule costs.
    pub fn max_watts(&self) -> f32 {
        self.profile.max_watts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const PI4: Profile = Profile {
        name: "pi4",
        idle_watts: 2.0,
        max_watts: 6.0,
    };

    #[test]
    fn integrates_power_over_simulated_time() {
        let t0 = Instant::now();
        let mut m = Meter::new(PI4, 500.0, 1.0);
        assert_eq!(m.sample(t0, 0.0).wh_total, 1.0);
        // One hour at full load after an idle start: trapezoid (2 + 6) / 2 = 4 Wh.
        let r = m.sample(t0 + Duration::from_secs(3600), 1.0);
        assert_eq!(r.watts, 6.0);
        assert!((r.wh_total - 5.0).abs() < 1e-9);
        assert!((r.co2_g - 2.5).abs() < 1e-9);
    }

    #[test]
    fn bad_inputs_do_not_poison_the_total() {
        let t0 = Instant::now();
        let mut m = Meter::new(PI4, 500.0, f64::NAN);
        assert_eq!(m.watts_at(f32::NAN), 2.0);
        assert_eq!(m.watts_at(7.0), 6.0);
        m.sample(t0 + Duration::from_secs(10), 0.5);
        // A clock that goes backwards adds nothing.
        let r = m.sample(t0, 0.5);
        assert_eq!(r.wh_total, 0.0);
    }
}
