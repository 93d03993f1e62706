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

/// The line of a backend's error message that says the device ran out of memory (or could not
/// allocate a buffer that large), as cubecl and wgpu word it, or `None` for other failures. A GPU
/// states no free-memory figure a batch could be checked against beforehand, so its refusal is
/// what a planner has to go on.
pub fn out_of_memory_line(message: &str) -> Option<&str> {
    const SIGNS: [&str; 6] = [
        "can't allocate buffer",
        "out of device memory",
        "out of memory",
        "not enough memory left",
        "greater than the maximum buffer size",
        "the reservation behind it failed",
    ];
    message.lines().map(str::trim).find(|line| {
        let line = line.to_lowercase();
        SIGNS.iter().any(|s| line.contains(s))
    })
}

/// The largest batch, at most `batch`, that `fits` accepts, or `None` when not even one image
/// does: halving from `batch` until one fits, then bisecting between it and the smallest that
/// did not, so about 2·log₂(batch) trials at worst. `fits` is assumed monotone (what fits at b
/// fits below b); its errors (anything but running out of memory) end the search.
pub fn largest_fitting<E>(
    batch: usize,
    mut fits: impl FnMut(usize) -> Result<bool, E>,
) -> Result<Option<usize>, E> {
    let mut hi = batch.max(1);
    if fits(hi)? {
        return Ok(Some(hi));
    }
    let mut lo = hi / 2;
    while lo > 0 && !fits(lo)? {
        hi = lo;
        lo /= 2;
    }
    if lo == 0 {
        return Ok(None);
    }
    // lo fits, hi does not
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(Some(lo))
}

/// A batch a GPU refused for lack of memory, with the largest that it accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "a batch of {batch} {h}×{w} images does not fit in the memory of {device}{purpose} ({reason}); \
     {}",
    match fits {
        Some(fits) => format!("a batch of {fits} does: use --batch {fits} or less"),
        None => "no smaller batch ran after it either, down to one image: run again with a \
                 smaller --batch, or use a smaller network or smaller images"
            .into(),
    }
)]
pub struct DeviceShortfall {
    /// The device, in words.
    pub device: String,
    /// The batch asked for.
    pub batch: usize,
    /// Image height.
    pub h: usize,
    /// Image width.
    pub w: usize,
    /// The largest batch that ran, found by trying (`None`: none did).
    pub fits: Option<usize>,
    /// What the backend said, first line.
    pub reason: String,
    /// What the memory is for, as the message says it (" to train", or nothing).
    pub purpose: &'static str,
}

/// Keeps memory mimalloc has freed for reuse instead of returning it to the OS after a delay
/// (for programs whose global allocator is mimalloc: the binary, the Python extension):
/// a training step frees and reallocates the same large tensors, and with purging on, the
/// kernel's zeroing of the re-faulted pages cost 4–13% of a training step (`perf`; 87 669 page
/// faults for 12 training steps of the benchmark, 625 with purging off).
pub fn keep_freed_memory() {
    // mimalloc.h: `mi_option_purge_delay` is option 15 in v2 (default 10 ms) and in v3 (the
    // version libmimalloc-sys 0.1.49 builds by default; default 1000 ms, whatever its header
    // comment says)
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: plain FFI calls on an option index, no pointers involved.
    unsafe {
        // only if the index still names an option with one of purge_delay's defaults
        if matches!(libmimalloc_sys::mi_option_get(PURGE_DELAY), 10 | 1000) {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Arch, NetConfig};

    fn training_bytes(net: &NetConfig, batch: usize, h: usize, w: usize) -> u64 {
        net.training_bytes(batch, h, w)
    }

    fn inference_bytes(net: &NetConfig, batch: usize, h: usize, w: usize) -> u64 {
        net.inference_bytes(batch, h, w)
    }

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

    /// The search finds the exact threshold from any starting batch, in about 2·log₂(batch)
    /// trials, says `None` when nothing fits and passes other errors on untouched.
    #[test]
    fn the_largest_fitting_batch_is_found_by_halving_and_bisection() {
        for batch in [1, 2, 7, 64, 100, 128, 1000] {
            for limit in 0..=batch + 3 {
                let mut trials = 0;
                let found = largest_fitting::<()>(batch, |b| {
                    trials += 1;
                    Ok(b <= limit)
                })
                .unwrap();
                let expected = (limit > 0).then_some(limit.min(batch));
                assert_eq!(found, expected, "batch {batch}, limit {limit}");
                let log = (batch as f64).log2().ceil() as usize;
                assert!(trials <= 2 * log + 2, "{trials} trials for {batch}");
            }
        }
        let err = largest_fitting(64, |b| if b < 64 { Err(b) } else { Ok(false) });
        assert_eq!(err, Err(32));
    }

    /// The wordings cubecl and wgpu use for a refused allocation are recognized, other failures
    /// are not.
    #[test]
    fn out_of_memory_messages_are_recognized() {
        for m in [
            "An IO error happened\nCaused by:\n  can't allocate buffer of size: 67108864",
            "out of device memory allocating 1024 bytes",
            "In Device::create_buffer\n    Not enough memory left.",
            "Buffer size 8388608 is greater than the maximum buffer size (4194304)",
            "memory ManagedMemoryId { value: 3 } was never allocated: the reservation behind it failed",
        ] {
            assert!(out_of_memory_line(m).is_some_and(|l| m.ends_with(l)), "{m}");
        }
        for m in [
            "A compilation error happened during launch",
            "device lost",
            "",
        ] {
            assert_eq!(out_of_memory_line(m), None, "{m}");
        }
        let e = DeviceShortfall {
            device: "wgpu (a GPU)".into(),
            batch: 512,
            h: 64,
            w: 64,
            fits: Some(200),
            reason: "can't allocate buffer of size: 67108864".into(),
            purpose: " to train",
        };
        assert!(e.to_string().contains("use --batch 200 or less"), "{e}");
        let none = DeviceShortfall { fits: None, ..e };
        assert!(none.to_string().contains("no smaller batch ran"), "{none}");
    }
}
