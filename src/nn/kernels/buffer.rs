//! New output buffers, zeroed where they are written.
//!
//! `vec![0.0; len]` zeroes the whole buffer on the calling thread before the parallel kernel
//! that overwrites it starts: in a training step of the paper's network that serial memset (and
//! the page clearing behind fresh allocations) was the largest part of the time the two worker
//! threads spent waiting (`perf`, per thread). Here each chunk is zeroed by the thread that
//! fills it, just before it does, while the chunk is in that core's cache.

use rayon::prelude::*;
use std::mem::MaybeUninit;

/// A buffer of `len` floats whose consecutive chunks of `chunk` floats (the last may be shorter)
/// are written in parallel by `fill(index, chunk)`; each chunk starts zeroed.
pub(super) fn par_filled(
    len: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let mut buf: Vec<f32> = Vec::with_capacity(len);
    buf.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .for_each(|(i, part)| fill(i, zeroed(part)));
    // SAFETY: the chunks cover 0..len and `zeroed` initialized every one of them.
    unsafe { buf.set_len(len) };
    buf
}

/// `part` set to zero, as initialized floats.
fn zeroed(part: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    part.fill(MaybeUninit::new(0.0));
    // SAFETY: every element was just initialized, and f32 has the layout of MaybeUninit<f32>.
    unsafe { &mut *(part as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_indexed_in_order_and_start_zeroed() {
        for (len, chunk) in [(0, 4), (1, 4), (10, 3), (12, 4), (1000, 7)] {
            let buf = par_filled(len, chunk, |i, part| {
                assert!(part.iter().all(|v| *v == 0.0));
                for (k, v) in part.iter_mut().enumerate() {
                    *v = (i * chunk + k) as f32;
                }
            });
            assert_eq!(buf.len(), len);
            assert!(buf.iter().enumerate().all(|(k, v)| *v == k as f32));
        }
    }

    #[test]
    fn unwritten_values_are_zero() {
        let buf = par_filled(100, 8, |i, part| part[0] = i as f32 + 1.0);
        assert_eq!(buf.iter().filter(|v| **v != 0.0).count(), 13);
        assert_eq!(buf[8], 2.0);
        assert_eq!(buf[9], 0.0);
    }
}
