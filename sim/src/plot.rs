//! The sweep's picture: receive rate against swarm size, adaptive against fixed cadence, for
//! the leader and for a follower, on log–log axes.

use super::Report;
use plotters::prelude::*;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[error("drawing {path}: {reason}")]
pub struct PlotError {
    path: String,
    reason: String,
}

/// Which figure of an (adaptive, fixed) pair a line plots.
type Pick = fn(&(Report, Report)) -> f64;

/// Writes an SVG to `path` from `(adaptive, fixed)` report pairs, one per swarm size.
pub fn plot_sweep(runs: &[(Report, Report)], path: &Path) -> Result<(), PlotError> {
    let err = |e: &dyn std::fmt::Display| PlotError {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let sizes = runs.iter().map(|(a, _)| a.nodes as f64);
    let (lo, hi) = sizes.fold((f64::MAX, 1.0f64), |(lo, hi), n| (lo.min(n), hi.max(n)));
    let rates = runs.iter().flat_map(|(a, f)| {
        [
            a.leader_rx_per_s_mean,
            a.follower_rx_per_s_mean,
            f.leader_rx_per_s_mean,
            f.follower_rx_per_s_mean,
        ]
    });
    let top = rates.fold(1.0f64, f64::max) * 2.0;
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Messages received per node per second vs swarm size",
            ("sans-serif", 22),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (lo.min(hi) * 0.8..hi * 1.25).log_scale(),
            (0.1f64..top).log_scale(),
        )
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("nodes")
        .y_desc("messages received / s")
        .draw()
        .map_err(|e| err(&e))?;
    let lines: [(&str, RGBColor, Pick); 4] = [
        ("leader, adaptive", RED, |(a, _)| a.leader_rx_per_s_mean),
        ("follower, adaptive", BLUE, |(a, _)| {
            a.follower_rx_per_s_mean
        }),
        ("leader, fixed", MAGENTA, |(_, f)| f.leader_rx_per_s_mean),
        ("follower, fixed", CYAN, |(_, f)| f.follower_rx_per_s_mean),
    ];
    for (label, colour, value) in lines {
        let points: Vec<(f64, f64)> = runs
            .iter()
            .map(|r| (r.0.nodes as f64, value(r).max(0.1)))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 4, colour.filled())),
            )
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
