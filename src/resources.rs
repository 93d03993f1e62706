//! What the machine can hold: commands that may need a lot of memory estimate it before
//! allocating and refuse with the estimate and an alternative, rather than being killed by the
//! kernel half-way.

/// Memory the system can still give without swapping (`MemAvailable` of `/proc/meminfo`);
/// `None` where that is not known.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Bytes in GiB, for messages.
pub fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Bytes a training step needs for a batch of `batch` `h`×`w` images beyond the process's base:
/// two f32 values per activation (the forward value kept for the backward pass, and its
/// gradient). Measured on the CPU backend (peak resident memory over batches of 16 to 128 at
/// 64×64, BF-UNet 2 × 16 to 3 × 64): within 5% of the measured peak once the process's base
/// and the weights with their gradients and Adam moments (16 bytes per parameter) are added.
pub fn training_bytes(net: &crate::nn::NetConfig, batch: usize, h: usize, w: usize) -> u64 {
    8 * batch as u64 * net.activations(h, w)
}

/// Bytes an eval-mode pass (sampling, restoring, denoising) needs for a batch: at most one f32
/// per activation (no gradients, and burn frees each value once used, so this is an upper
/// bound).
pub fn inference_bytes(net: &crate::nn::NetConfig, batch: usize, h: usize, w: usize) -> u64 {
    4 * batch as u64 * net.activations(h, w)
}

/// A batch that does not fit: what it would need, what there is, and the largest that fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "a batch of {batch} {h}×{w} images needs about {}{purpose} and {} is available; use --batch \
     {fits} or less",
    gib(*need),
    gib(*available)
)]
pub struct Shortfall {
    /// The batch asked for.
    pub batch: usize,
    /// Image height.
    pub h: usize,
    /// Image width.
    pub w: usize,
    /// Estimated bytes.
    pub need: u64,
    /// Bytes available.
    pub available: u64,
    /// The largest batch that fits.
    pub fits: usize,
    /// What the memory is for, as the message says it (" to train", or nothing).
    pub purpose: &'static str,
}

/// Refuses a batch of `h`×`w` images at `per_image` bytes each that would not fit in
/// `available` bytes (`None`: not known, not checked).
pub fn check_batch(
    per_image: u64,
    batch: usize,
    [h, w]: [usize; 2],
    available: Option<u64>,
    purpose: &'static str,
) -> Result<(), Shortfall> {
    let need = per_image * batch as u64;
    match available {
        Some(available) if need > available => Err(Shortfall {
            batch,
            h,
            w,
            need,
            available,
            fits: (available / per_image.max(1)) as usize,
            purpose,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Arch, NetConfig};

    fn unet(blocks: usize, channels: usize) -> NetConfig {
        NetConfig {
            arch: Arch::BfUnet,
            image_channels: 1,
            channels,
            blocks,
            layers: 0,
        }
    }

    /// The estimate grows with what sets the memory: linearly in the batch and the pixels, and
    /// in the width; the largest batch that fits is the last one under the limit.
    #[test]
    fn training_memory_scales_with_batch_pixels_and_width() {
        let net = unet(3, 64);
        let one = training_bytes(&net, 1, 64, 64);
        assert_eq!(training_bytes(&net, 10, 64, 64), 10 * one);
        let big = training_bytes(&net, 1, 128, 128);
        assert!(
            (big as f64 / one as f64 - 4.0).abs() < 0.01,
            "{big} vs {one}"
        );
        assert!(training_bytes(&unet(3, 32), 1, 64, 64) < one);
        // the paper's network at 80×80: a few tens of MB per image
        assert!((10 << 20..100 << 20).contains(&training_bytes(&net, 1, 80, 80)));
        let fits = check_batch(one, 128, [64, 64], Some(100 * one + one / 2), "")
            .unwrap_err()
            .fits;
        assert_eq!(fits, 100);
    }

    /// Eval-mode passes need half of training's bytes per image; a batch over the limit is
    /// refused with one that fits, and that one passes; unknown memory is not checked.
    #[test]
    fn inference_batches_are_checked_against_memory() {
        let net = unet(3, 64);
        let one = inference_bytes(&net, 1, 80, 80);
        assert_eq!(2 * one, training_bytes(&net, 1, 80, 80));
        let err = check_batch(one, 64, [80, 80], Some(10 * one), "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("--batch 10 or less"), "{err}");
        assert!(check_batch(one, 10, [80, 80], Some(10 * one), "").is_ok());
        assert!(check_batch(one, 1 << 20, [80, 80], None, "").is_ok());
    }
}
