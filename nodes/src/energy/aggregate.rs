//! The swarm's energy: the sum of every member's latest sample, as its leader publishes it on
//! `swarm/<s>/energy`. Pure, so the test feeds it members and checks the arithmetic.

use swarm_bus::{DeviceClass, Energy, NodeId, Share, SwarmEnergy};

/// One member's latest sample, with its class when a heartbeat has told it.
pub struct Member<'a> {
    pub class: Option<DeviceClass>,
    pub energy: &'a Energy,
}

/// Who sums, and with what carbon intensity.
pub struct Summer {
    pub leader: NodeId,
    pub term: u64,
    /// Charged to members that state energy but no CO2 of their own: bridged devices, whose
    /// bridge has no carbon intensity to apply.
    pub gco2_per_kwh: f32,
}

impl Summer {
    pub fn sum<'a>(
        &self,
        ts_ms: u64,
        members: impl IntoIterator<Item = Member<'a>>,
    ) -> SwarmEnergy {
        let mut total = SwarmEnergy {
            ts_ms,
            leader: self.leader.clone(),
            term: self.term,
            nodes: 0,
            watts: 0.0,
            wh_total: 0.0,
            co2_g: 0.0,
            by_class: Vec::new(),
            by_source: Vec::new(),
            eff_pct: None,
        };
        // f64 while adding, so a thousand small figures do not lose their tails.
        let (mut watts, mut wh, mut co2) = (0.0f64, 0.0f64, 0.0f64);
        let (mut rated_watts, mut useful) = (0.0f64, 0.0f64);
        for m in members {
            let e = m.energy;
            let w = finite_or_zero(e.watts);
            let member_wh = finite_or_zero(e.wh_total);
            total.nodes += 1;
            watts += w;
            wh += member_wh;
            co2 += match finite_or_zero(e.co2_g) {
                0.0 => member_wh / 1000.0 * f64::from(self.gco2_per_kwh),
                own => own,
            };
            if let Some(eff) = e.eff_pct {
                rated_watts += w;
                useful += w * f64::from(eff.min(100));
            }
            if let Some(class) = m.class {
                add(&mut total.by_class, class, w);
            }
            add(&mut total.by_source, e.source, w);
        }
        total.watts = watts as f32;
        total.wh_total = wh as f32;
        total.co2_g = co2 as f32;
        total.eff_pct = (rated_watts > 0.0).then(|| (useful / rated_watts).round() as u8);
        total.by_class.sort_by_key(|s| s.kind);
        total.by_source.sort_by_key(|s| s.kind);
        total
    }
}

fn finite_or_zero(v: f32) -> f64 {
    if v.is_finite() && v >= 0.0 {
        f64::from(v)
    } else {
        0.0
    }
}

fn add<K: PartialEq + Copy>(shares: &mut Vec<Share<K>>, kind: K, watts: f64) {
    match shares.iter_mut().find(|s| s.kind == kind) {
        Some(s) => {
            s.nodes += 1;
            s.watts = (f64::from(s.watts) + watts) as f32;
        }
        None => shares.push(Share {
            kind,
            nodes: 1,
            watts: watts as f32,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_bus::PowerSource;

    fn sample(watts: f32, source: PowerSource, wh: f32, co2: f32, eff: Option<u8>) -> Energy {
        Energy {
            watts,
            source,
            wh_total: wh,
            co2_g: co2,
            eff_pct: eff,
            ..swarm_bus::samples::energy()
        }
    }

    fn summer() -> Summer {
        Summer {
            leader: NodeId::new("pi-a").unwrap(),
            term: 3,
            gco2_per_kwh: 500.0,
        }
    }

    #[test]
    fn the_total_is_the_sum_of_the_members() {
        let a = sample(4.0, PowerSource::Rapl, 10.0, 5.0, Some(50));
        let b = sample(2.0, PowerSource::Model, 4.0, 2.0, Some(20));
        // A bridged board: no CO2 of its own, no rating, no heartbeat heard yet.
        let board = sample(0.5, PowerSource::Device, 2.0, 0.0, None);
        let total = summer().sum(
            99,
            [
                Member {
                    class: Some(DeviceClass::Full),
                    energy: &a,
                },
                Member {
                    class: Some(DeviceClass::Full),
                    energy: &b,
                },
                Member {
                    class: None,
                    energy: &board,
                },
            ],
        );
        assert_eq!((total.nodes, total.watts, total.wh_total), (3, 6.5, 16.0));
        // 5 + 2 of their own, and the board's 2 Wh at 500 g/kWh.
        assert_eq!(total.co2_g, 8.0);
        // Weighted by watts: (4 × 50 + 2 × 20) / 6 = 40.
        assert_eq!(total.eff_pct, Some(40));
        assert_eq!(
            total.by_class,
            vec![Share {
                kind: DeviceClass::Full,
                nodes: 2,
                watts: 6.0
            }]
        );
        let sources: Vec<_> = total
            .by_source
            .iter()
            .map(|s| (s.kind, s.nodes, s.watts))
            .collect();
        assert_eq!(
            sources,
            vec![
                (PowerSource::Model, 1, 2.0),
                (PowerSource::Rapl, 1, 4.0),
                (PowerSource::Device, 1, 0.5)
            ]
        );
        assert_eq!(
            (total.leader.as_str(), total.term, total.ts_ms),
            ("pi-a", 3, 99)
        );
    }

    #[test]
    fn garbage_figures_count_as_nothing() {
        let bad = sample(f32::NAN, PowerSource::Model, -5.0, f32::INFINITY, None);
        let total = summer().sum(
            1,
            [Member {
                class: Some(DeviceClass::Standard),
                energy: &bad,
            }],
        );
        assert_eq!(
            (total.nodes, total.watts, total.wh_total, total.co2_g),
            (1, 0.0, 0.0, 0.0)
        );
        assert_eq!(total.eff_pct, None);
    }

    #[test]
    fn nobody_sums_to_zero() {
        let total = summer().sum(1, []);
        assert_eq!((total.nodes, total.watts), (0, 0.0));
        assert!(total.by_class.is_empty() && total.by_source.is_empty());
    }
}
