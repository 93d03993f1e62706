//! Figures of a set of samples: the grid, and for the ascent the σₜ trajectories.

use super::grid::{save_grid, FigureError, Scaling};
use super::plot::{save_line_plot, LinePlot, Scale, Series};
use crate::data::Images;
use crate::sampling::ascent::Trajectory;
use std::path::Path;

/// Writes `samples.png` and, when there are trajectories, `trajectory.png` (σₜ of the first
/// eight samples) into `out`.
pub fn write(out: &Path, images: &Images, trajectories: &[Trajectory]) -> Result<(), FigureError> {
    let cols = (images.len() as f64).sqrt().ceil() as usize;
    save_grid(
        images,
        cols.max(1),
        (96 / images.shape()[2]).max(1),
        Scaling::Clamp,
        &out.join("samples.png"),
    )?;
    if trajectories.is_empty() {
        return Ok(());
    }
    let series: Vec<Series> = trajectories
        .iter()
        .take(8)
        .enumerate()
        .map(|(k, t)| Series {
            label: format!("sample {k}"),
            points: t
                .sigma
                .iter()
                .enumerate()
                .map(|(i, s)| ((i + 1) as f64, *s as f64))
                .collect(),
        })
        .collect();
    save_line_plot(
        &LinePlot {
            title: "Effective noise σₜ = ‖f(y) − y‖/√D along the ascent".into(),
            x_label: "step t".into(),
            y_label: "σₜ".into(),
            x_scale: Scale::Linear,
            y_scale: Scale::Log,
        },
        &series,
        &out.join("trajectory.png"),
    )
}
