//! Folders of ordinary image files (PNG, JPEG, BMP, TIFF), read with the `image` crate.
//!
//! Files are read in sorted name order so a folder always yields the same batch. Images can be
//! converted to grayscale and centre-cropped to a square then resized, so a folder of photos of
//! different sizes (CelebA and the like) becomes one batch.

use super::{DataError, Images};
use image::imageops::FilterType;
use image::DynamicImage;
use std::path::{Path, PathBuf};

/// File extensions taken as images (lower case).
const EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "tif", "tiff"];

/// How to turn image files into one batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FolderOptions {
    /// Convert to one luminance channel (otherwise RGB, C = 3).
    pub gray: bool,
    /// Centre-crop to a square and resize to `size × size`; `None` keeps the files' size,
    /// which must then be the same for all.
    pub size: Option<usize>,
}

/// The image files of a folder, sorted by name.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_image_file(p))
        .collect();
    files.sort();
    Ok(files)
}

/// Whether a path has one of the image extensions we read.
pub fn is_image_file(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Reads every image file of `dir` into one batch.
pub fn load_folder(dir: &Path, opts: FolderOptions) -> Result<Images, DataError> {
    let files = image_files(dir)?;
    if files.is_empty() {
        return Err(DataError::Empty {
            path: dir.to_path_buf(),
            hint: format!("looked for files ending in {}", EXTENSIONS.join(", ")),
        });
    }
    let mut data = Vec::new();
    let mut first: Option<[usize; 3]> = None;
    for f in &files {
        let img = load_image(f, opts)?;
        let shape = img.image_shape();
        match first {
            None => first = Some(shape),
            Some(expected) if expected != shape => {
                return Err(DataError::ShapeMismatch {
                    path: f.clone(),
                    expected,
                    got: shape,
                })
            }
            _ => {}
        }
        data.extend(img.into_vec());
    }
    let [c, h, w] = first.expect("at least one file");
    Ok(Images::new(data, [files.len(), c, h, w]))
}

/// Reads one image file as a batch of one.
pub fn load_image(path: &Path, opts: FolderOptions) -> Result<Images, DataError> {
    let img = image::open(path).map_err(|e| DataError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("cannot decode image ({e}); check the file or remove it"),
    })?;
    let img = match opts.size {
        Some(s) => centre_crop_resize(img, s as u32),
        None => img,
    };
    Ok(from_dynamic(&img, opts.gray))
}

fn centre_crop_resize(img: DynamicImage, size: u32) -> DynamicImage {
    let (w, h) = (img.width(), img.height());
    let side = w.min(h);
    let cropped = img.crop_imm((w - side) / 2, (h - side) / 2, side, side);
    if side == size {
        cropped
    } else {
        cropped.resize_exact(size, size, FilterType::Lanczos3)
    }
}

/// Converts a decoded image to a `[1, C, H, W]` batch in [0, 1].
pub fn from_dynamic(img: &DynamicImage, gray: bool) -> Images {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if gray {
        let g = img.to_luma32f();
        Images::new(g.into_raw(), [1, 1, h, w])
    } else {
        let rgb = img.to_rgb32f().into_raw();
        // interleaved HWC -> planar CHW
        let mut data = vec![0.0; 3 * h * w];
        for (p, px) in rgb.chunks_exact(3).enumerate() {
            for (c, v) in px.iter().enumerate() {
                data[c * h * w + p] = *v;
            }
        }
        Images::new(data, [1, 3, h, w])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, w: u32, h: u32, v: u8) {
        image::GrayImage::from_pixel(w, h, image::Luma([v]))
            .save(path)
            .unwrap();
    }

    #[test]
    fn loads_sorted_gray_and_rgb() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("b.png"), 4, 4, 255);
        write_png(&dir.path().join("a.png"), 4, 4, 0);
        std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();
        let g = load_folder(
            dir.path(),
            FolderOptions {
                gray: true,
                size: None,
            },
        )
        .unwrap();
        assert_eq!(g.shape(), [2, 1, 4, 4]);
        assert_eq!(g.image(0)[0], 0.0);
        assert!((g.image(1)[0] - 1.0).abs() < 1e-6);
        let rgb = load_folder(
            dir.path(),
            FolderOptions {
                gray: false,
                size: Some(2),
            },
        )
        .unwrap();
        assert_eq!(rgb.shape(), [2, 3, 2, 2]);
    }

    #[test]
    fn corrupt_png_empty_folder_and_mixed_sizes_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let empty = load_folder(dir.path(), FolderOptions::default()).unwrap_err();
        assert!(empty.to_string().contains("no images"), "{empty}");

        write_png(&dir.path().join("a.png"), 4, 4, 10);
        write_png(&dir.path().join("b.png"), 5, 4, 10);
        let mixed = load_folder(dir.path(), FolderOptions::default()).unwrap_err();
        assert!(mixed.to_string().contains("--size"), "{mixed}");

        std::fs::write(dir.path().join("c.png"), b"\x89PNG\r\n\x1a\ngarbage").unwrap();
        let bad = load_folder(
            dir.path(),
            FolderOptions {
                gray: true,
                size: Some(4),
            },
        )
        .unwrap_err();
        assert!(bad.to_string().contains("c.png"), "{bad}");
    }
}
