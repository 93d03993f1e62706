//! `.npy` arrays of images: shape (N, H, W) or (N, C, H, W), dtype `u8` (scaled by 1/255) or
//! `f32`/`f64` (taken as they are, expected in [0, 1]).

use super::{DataError, Images};
use npyz::{DType, TypeChar, WriterBuilder};
use std::path::Path;

/// Reads an image array from a `.npy` file.
pub fn load_npy(path: &Path) -> Result<Images, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let corrupt = |reason: String| DataError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| {
        let e = crate::io::one_line(&e.to_string());
        corrupt(format!("not a valid .npy file ({e})"))
    })?;
    if npy.order() != npyz::Order::C {
        return Err(corrupt(
            "Fortran-ordered array; save it with np.ascontiguousarray first".into(),
        ));
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let nchw = match shape[..] {
        [n, h, w] => [n, 1, h, w],
        [n, c, h, w] => [n, c, h, w],
        _ => {
            return Err(corrupt(format!(
                "array has shape {shape:?}; expected (N, H, W) or (N, C, H, W)"
            )))
        }
    };
    if nchw.contains(&0) {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            hint: format!("array shape {shape:?}"),
        });
    }
    let dtype = npy.dtype();
    let short = |e: std::io::Error| {
        let e = crate::io::one_line(&e.to_string());
        corrupt(format!("truncated or unreadable data ({e})"))
    };
    let data: Vec<f32> = match &dtype {
        DType::Plain(ts) => match (ts.type_char(), ts.size_field()) {
            (TypeChar::Uint, 1) => npy
                .into_vec::<u8>()
                .map_err(short)?
                .into_iter()
                .map(|b| b as f32 / 255.0)
                .collect(),
            (TypeChar::Float, 4) => npy.into_vec::<f32>().map_err(short)?,
            (TypeChar::Float, 8) => npy
                .into_vec::<f64>()
                .map_err(short)?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            _ => return Err(unsupported(path, &dtype)),
        },
        _ => return Err(unsupported(path, &dtype)),
    };
    if data.len() != nchw.iter().product::<usize>() {
        return Err(corrupt(
            "data length does not match the header's shape".into(),
        ));
    }
    let images = Images::new(data, nchw);
    if let Some(index) = images.first_non_finite() {
        return Err(DataError::NonFinite {
            path: path.to_path_buf(),
            index,
        });
    }
    Ok(images)
}

fn unsupported(path: &Path, dtype: &DType) -> DataError {
    DataError::Corrupt {
        path: path.to_path_buf(),
        reason: format!(
            "dtype {} is not supported; convert with .astype(np.uint8) or .astype(np.float32)",
            dtype.descr()
        ),
    }
}

/// Writes images as a little-endian `f32` array of shape (N, C, H, W), atomically.
pub fn write_npy(images: &Images, path: &Path) -> std::io::Result<()> {
    let shape: Vec<u64> = images.shape().iter().map(|&d| d as u64).collect();
    let mut buf = Vec::new();
    {
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&shape)
            .writer(&mut buf)
            .begin_nd()?;
        w.extend(images.as_slice().iter().copied())?;
        w.finish()?;
    }
    crate::io::write_atomic(path, &buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_round_trip_and_3d_u8() {
        let dir = tempfile::tempdir().unwrap();
        let imgs = Images::new((0..16).map(|v| v as f32 / 16.0).collect(), [2, 2, 2, 2]);
        let p = dir.path().join("a.npy");
        write_npy(&imgs, &p).unwrap();
        assert_eq!(load_npy(&p).unwrap(), imgs);

        let p8 = dir.path().join("b.npy");
        let mut buf = Vec::new();
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[3, 2, 2])
            .writer(&mut buf)
            .begin_nd()
            .unwrap();
        w.extend((0..12u8).map(|v| v * 20)).unwrap();
        w.finish().unwrap();
        std::fs::write(&p8, buf).unwrap();
        let b = load_npy(&p8).unwrap();
        assert_eq!(b.shape(), [3, 1, 2, 2]);
        assert!((b.as_slice()[1] - 20.0 / 255.0).abs() < 1e-7);
    }

    #[test]
    fn wrong_dtype_names_file_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ints.npy");
        let mut buf = Vec::new();
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[1, 2, 2])
            .writer(&mut buf)
            .begin_nd()
            .unwrap();
        w.extend([1i64, 2, 3, 4]).unwrap();
        w.finish().unwrap();
        std::fs::write(&p, buf).unwrap();
        let msg = load_npy(&p).unwrap_err().to_string();
        assert!(msg.contains("ints.npy") && msg.contains("astype"), "{msg}");
    }

    #[test]
    fn nan_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nan.npy");
        let imgs = Images::new(vec![0.0, f32::NAN, 0.0, 0.0], [1, 1, 2, 2]);
        write_npy(&imgs, &p).unwrap();
        let msg = load_npy(&p).unwrap_err().to_string();
        assert!(msg.contains("NaN"), "{msg}");
    }
}
