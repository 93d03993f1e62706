//! IDX files (`*-idx3-ubyte[.gz]`), the format of MNIST and Fashion-MNIST.
//!
//! An IDX file is a big-endian header (two zero bytes, a type code, the number of dimensions,
//! then one u32 per dimension) followed by the values. Images are `u8` with 3 dimensions
//! (count, rows, columns); they become single-channel images scaled to [0, 1].

use super::{DataError, Images};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// Type code of unsigned bytes in the IDX header.
const IDX_U8: u8 = 0x08;

/// Reads an IDX image file, gzip-compressed or not (detected from the content).
pub fn load_idx(path: &Path) -> Result<Images, DataError> {
    let raw = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| corrupt(path, format!("bad gzip stream ({e}); re-download the file")))?;
        out
    } else {
        raw
    };
    parse_idx(&bytes).map_err(|reason| corrupt(path, reason))
}

fn corrupt(path: &Path, reason: String) -> DataError {
    DataError::Corrupt {
        path: path.to_path_buf(),
        reason,
    }
}

/// Parses decompressed IDX bytes into images in [0, 1].
fn parse_idx(bytes: &[u8]) -> Result<Images, String> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err("not an IDX file (bad magic number)".into());
    }
    if bytes[2] != IDX_U8 {
        return Err(format!(
            "IDX value type 0x{:02x} is not supported (only unsigned bytes, 0x08)",
            bytes[2]
        ));
    }
    let ndim = bytes[3] as usize;
    if ndim != 3 {
        return Err(format!(
            "IDX file has {ndim} dimensions; an image file has 3 (count, rows, columns) — is this a label file?"
        ));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err("truncated IDX header".into());
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let (n, h, w) = (dims[0], dims[1], dims[2]);
    let expected = n
        .checked_mul(h)
        .and_then(|v| v.checked_mul(w))
        .ok_or("IDX dimensions overflow")?;
    let body = &bytes[header..];
    if body.len() < expected {
        return Err(format!(
            "truncated: header promises {n} images of {h}x{w} ({expected} bytes) but only {} bytes follow",
            body.len()
        ));
    }
    if n == 0 || h == 0 || w == 0 {
        return Err("IDX file holds no images".into());
    }
    let data = body[..expected].iter().map(|&b| b as f32 / 255.0).collect();
    Ok(Images::new(data, [n, 1, h, w]))
}

/// Writes images as an uncompressed IDX file (values rounded to bytes). Used by tests and by
/// users who want to hand our synthetic data to other MNIST tools.
pub fn write_idx(images: &Images, path: &Path) -> std::io::Result<()> {
    let [n, c, h, w] = images.shape();
    assert_eq!(c, 1, "IDX holds single-channel images");
    let mut out = vec![0u8, 0, IDX_U8, 3];
    for d in [n, h, w] {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend(
        images
            .as_slice()
            .iter()
            .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8),
    );
    crate::io::write_atomic(path, &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Images {
        Images::new(
            (0..2 * 3 * 4).map(|v| v as f32 / 255.0).collect(),
            [2, 1, 3, 4],
        )
    }

    #[test]
    fn round_trip_plain_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("x-idx3-ubyte");
        write_idx(&sample(), &plain).unwrap();
        let back = load_idx(&plain).unwrap();
        assert_eq!(back.shape(), [2, 1, 3, 4]);
        assert!((back.as_slice()[5] - 5.0 / 255.0).abs() < 1e-7);

        let gz = dir.path().join("x-idx3-ubyte.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &std::fs::read(&plain).unwrap()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(load_idx(&gz).unwrap(), back);
    }

    #[test]
    fn truncated_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t-idx3-ubyte");
        write_idx(&sample(), &p).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 5]).unwrap();
        let msg = load_idx(&p).unwrap_err().to_string();
        assert!(
            msg.contains("t-idx3-ubyte") && msg.contains("truncated"),
            "{msg}"
        );
    }

    #[test]
    fn label_file_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("labels-idx1-ubyte");
        std::fs::write(&p, [0u8, 0, 8, 1, 0, 0, 0, 2, 3, 4]).unwrap();
        let msg = load_idx(&p).unwrap_err().to_string();
        assert!(msg.contains("dimensions"), "{msg}");
    }
}
