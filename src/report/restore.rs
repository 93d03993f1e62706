//! Figures of one restoration: the measurement Mᵀc, the restoration, and the three side by
//! side with the reference when there is one.

use super::grid::{save_grid, save_image, FigureError, Scaling};
use crate::data::Images;
use std::path::Path;

/// Writes `{stem}-measurement.png`, `{stem}-restored.png` and `{stem}-compare.png` into `out`.
pub fn write(
    out: &Path,
    stem: &str,
    measurement: &Images,
    restored: &Images,
    reference: Option<&Images>,
) -> Result<(), FigureError> {
    save_image(measurement, &out.join(format!("{stem}-measurement.png")))?;
    save_image(restored, &out.join(format!("{stem}-restored.png")))?;
    let mut tiles = vec![measurement.clone(), restored.clone()];
    tiles.extend(reference.cloned());
    let zoom = (128 / restored.shape()[2]).max(1);
    save_grid(
        &Images::concat(&tiles),
        tiles.len(),
        zoom,
        Scaling::Clamp,
        &out.join(format!("{stem}-compare.png")),
    )
}
