//! The CPU backend behind the networks: burn backend extensions for `flex` (with and without
//! autodiff) whose kernels we wrote because burn's generic ones were the bottleneck — Winograd
//! 3×3 convolutions ([`conv`], [`winograd`] and [`winograd_f4`]), 2×2 upsampling as a GEMM
//! ([`upsample`]), the fused bias-free norm + ReLU ([`norm_relu`]) and 2×2 average pooling
//! ([`pool`]). On other devices each operation steps aside to burn's own. Private to `nn`: the
//! networks are the interface.

mod bilinear;
mod buffer;
pub(super) mod conv;
mod host;
pub(super) mod norm_relu;
pub(super) mod pool;
pub(super) mod upsample;
mod winograd;
mod winograd_f4;

/// What the kernels' tests share: inputs, the convolution's definition, thread pools.
#[cfg(test)]
mod testing {
    use super::winograd::ConvShape;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// `n` values uniform in [−1, 1) from `seed`.
    pub fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    /// The 3×3 convolution (zero padding 1) by direct summation in f64 — the definition — and,
    /// per output, Σ|x||w| (the scale that rounding errors are relative to).
    pub fn direct(x: &[f32], w: &[f32], s: ConvShape) -> (Vec<f64>, Vec<f64>) {
        let n = s.batch * s.c_out * s.h * s.w;
        let (mut y, mut scale) = (vec![0.0f64; n], vec![0.0f64; n]);
        for b in 0..s.batch {
            for co in 0..s.c_out {
                for r in 0..s.h {
                    for c in 0..s.w {
                        let (mut acc, mut abs) = (0.0f64, 0.0f64);
                        for ci in 0..s.c_in {
                            for kr in 0..3 {
                                for kc in 0..3 {
                                    let (ir, ic) = ((r + kr) as isize - 1, (c + kc) as isize - 1);
                                    if ir < 0 || ic < 0 || ir >= s.h as isize || ic >= s.w as isize
                                    {
                                        continue;
                                    }
                                    let xv = x[((b * s.c_in + ci) * s.h + ir as usize) * s.w
                                        + ic as usize]
                                        as f64;
                                    let wv = w[(co * s.c_in + ci) * 9 + kr * 3 + kc] as f64;
                                    acc += xv * wv;
                                    abs += (xv * wv).abs();
                                }
                            }
                        }
                        let i = ((b * s.c_out + co) * s.h + r) * s.w + c;
                        (y[i], scale[i]) = (acc, abs);
                    }
                }
            }
        }
        (y, scale)
    }

    /// The 3×3 convolution's weight gradient by direct summation in f64 — its definition,
    /// dw[co][ci][ky][kx] = Σ dy[b][co][y][x] · x[b][ci][y + ky − 1][x + kx − 1] — and, per
    /// entry, Σ|x||dy| over its terms (the scale that rounding errors are relative to).
    pub fn direct_weight_gradient(x: &[f32], dy: &[f32], s: ConvShape) -> (Vec<f64>, Vec<f64>) {
        let (h, w) = (s.h as isize, s.w as isize);
        let n = s.c_out * s.c_in * 9;
        let (mut dw, mut scale) = (vec![0.0f64; n], vec![0.0f64; n]);
        for co in 0..s.c_out {
            for ci in 0..s.c_in {
                for k in 0..9 {
                    let (ky, kx) = ((k / 3) as isize - 1, (k % 3) as isize - 1);
                    let (mut sum, mut abs) = (0.0f64, 0.0f64);
                    for b in 0..s.batch {
                        let xp = &x[(b * s.c_in + ci) * s.h * s.w..][..s.h * s.w];
                        let gp = &dy[(b * s.c_out + co) * s.h * s.w..][..s.h * s.w];
                        for y in 0..h {
                            for xx in 0..w {
                                let (sy, sx) = (y + ky, xx + kx);
                                if (0..h).contains(&sy) && (0..w).contains(&sx) {
                                    let t = gp[(y * w + xx) as usize] as f64
                                        * xp[(sy * w + sx) as usize] as f64;
                                    sum += t;
                                    abs += t.abs();
                                }
                            }
                        }
                    }
                    let i = (co * s.c_in + ci) * 9 + k;
                    (dw[i], scale[i]) = (sum, abs);
                }
            }
        }
        (dw, scale)
    }

    /// The largest |got − want| relative to its entry's `scale` (Σ of the terms' magnitudes).
    pub fn max_relative_error(got: &[f32], want: &[f64], scale: &[f64]) -> f64 {
        got.iter()
            .zip(want.iter().zip(scale))
            .map(|(g, (y, a))| (*g as f64 - y).abs() / a.max(1e-30))
            .fold(0.0, f64::max)
    }

    /// `f` run on a pool of `threads` threads (for thread-count invariance tests).
    pub fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool")
            .install(f)
    }
}
