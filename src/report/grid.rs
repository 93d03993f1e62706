//! Images to PNG: single images and grids of tiles (samples, eigenvectors, side-by-side
//! comparisons), via the `image` crate.

use crate::data::Images;
use std::path::Path;

/// How tile values map to gray levels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scaling {
    /// Clamp to [0, 1] (images).
    Clamp,
    /// Stretch each tile's own range to [0, 1] (eigenvectors, residuals).
    PerTile,
    /// Symmetric around 0, each tile divided by its max |value| (signed basis functions).
    Signed,
}

/// Errors writing figures.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    /// File system or encoding error.
    #[error("cannot write {path}: {reason}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The reason.
        reason: String,
    },
}

fn write_err(path: &Path, e: impl std::fmt::Display) -> FigureError {
    FigureError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn tile_values(img: &[f32], scaling: Scaling) -> Vec<f32> {
    match scaling {
        Scaling::Clamp => img.iter().map(|v| v.clamp(0.0, 1.0)).collect(),
        Scaling::PerTile => {
            let lo = img.iter().cloned().fold(f32::INFINITY, f32::min);
            let hi = img.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let r = (hi - lo).max(1e-12);
            img.iter().map(|v| (v - lo) / r).collect()
        }
        Scaling::Signed => {
            let m = img.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
            img.iter().map(|v| 0.5 + 0.5 * v / m).collect()
        }
    }
}

/// Lays out `images` in rows of `cols` tiles with a 1-pixel border and writes an 8-bit PNG
/// (gray for 1 channel, RGB for 3), each tile scaled up by the integer `zoom`.
pub fn save_grid(
    images: &Images,
    cols: usize,
    zoom: usize,
    scaling: Scaling,
    path: &Path,
) -> Result<(), FigureError> {
    let [n, c, h, w] = images.shape();
    let cols = cols.clamp(1, n.max(1));
    let rows = n.div_ceil(cols).max(1);
    let zoom = zoom.max(1);
    let (th, tw) = (h * zoom, w * zoom);
    let (gh, gw) = (rows * (th + 1) + 1, cols * (tw + 1) + 1);
    let mut canvas = vec![255u8; gh * gw * 3];
    for i in 0..n {
        let vals = tile_values(images.image(i), scaling);
        let (r0, c0) = ((i / cols) * (th + 1) + 1, (i % cols) * (tw + 1) + 1);
        for y in 0..th {
            for x in 0..tw {
                let p = (y / zoom) * w + x / zoom;
                for ch in 0..3 {
                    let v = vals[if c == 3 { ch * h * w + p } else { p }];
                    canvas[((r0 + y) * gw + c0 + x) * 3 + ch] = (v * 255.0).round() as u8;
                }
            }
        }
    }
    let mut buf = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut buf);
    let img = image::RgbImage::from_raw(gw as u32, gh as u32, canvas).expect("canvas size");
    let dynimg = if c == 3 {
        image::DynamicImage::ImageRgb8(img)
    } else {
        image::DynamicImage::ImageRgb8(img).grayscale()
    };
    dynimg
        .write_with_encoder(encoder)
        .map_err(|e| write_err(path, e))?;
    crate::io::write_atomic(path, &buf).map_err(|e| write_err(path, e))
}

/// Writes one image (the first of the batch) as a PNG at its own size, values clamped to [0, 1].
pub fn save_image(images: &Images, path: &Path) -> Result<(), FigureError> {
    let [_, c, h, w] = images.shape();
    let vals = tile_values(images.image(0), Scaling::Clamp);
    let to8 = |v: f32| (v * 255.0).round() as u8;
    let dynimg = if c == 3 {
        let mut px = vec![0u8; h * w * 3];
        for p in 0..h * w {
            for ch in 0..3 {
                px[p * 3 + ch] = to8(vals[ch * h * w + p]);
            }
        }
        image::DynamicImage::ImageRgb8(
            image::RgbImage::from_raw(w as u32, h as u32, px).expect("size"),
        )
    } else {
        let px: Vec<u8> = vals.iter().map(|&v| to8(v)).collect();
        image::DynamicImage::ImageLuma8(
            image::GrayImage::from_raw(w as u32, h as u32, px).expect("size"),
        )
    };
    let format = image::ImageFormat::from_path(path).unwrap_or(image::ImageFormat::Png);
    let mut buf = std::io::Cursor::new(Vec::new());
    dynimg
        .write_to(&mut buf, format)
        .map_err(|e| write_err(path, e))?;
    crate::io::write_atomic(path, buf.get_ref()).map_err(|e| write_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_has_expected_size_and_values() {
        let dir = tempfile::tempdir().unwrap();
        let imgs = Images::new(vec![0.0, 1.0, 1.0, 0.0, 0.5, 0.5, 0.5, 0.5], [2, 1, 2, 2]);
        let p = dir.path().join("g.png");
        save_grid(&imgs, 2, 2, Scaling::Clamp, &p).unwrap();
        let back = image::open(&p).unwrap().to_luma8();
        assert_eq!((back.width(), back.height()), (2 * 5 + 1, 5 + 1));
        assert_eq!(back.get_pixel(1, 1).0[0], 0);
        assert_eq!(back.get_pixel(3, 1).0[0], 255);
        let one = dir.path().join("one.png");
        save_image(&imgs, &one).unwrap();
        assert_eq!(image::open(&one).unwrap().width(), 2);
    }
}
