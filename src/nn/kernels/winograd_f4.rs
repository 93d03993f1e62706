//! The 3×3 convolution's forward pass and its adjoint (the data gradient) by Winograd's
//! F(4×4, 3×3) (Lavin & Gray 2016): each 4×4 output tile costs 36 multiplies per channel pair
//! where F(2×2, 3×3) costs 64 and direct convolution 144, so the channel-mixing GEMMs do 4×
//! fewer flops than im2col instead of 2.25×. Measured (`tweedie bench`, alternating with the
//! F(2×2, 3×3) build): eval and VJPs of the paper's network on 80×80 images about 10–15%
//! faster; a training step on 40×40 images 9% faster (four alternating rounds, 2026-12-03,
//! once the kernel transforms and output buffers no longer ran serially — before that it had
//! measured 15% slower). The weight gradient too ([`backward_weight`]), block by block like
//! the forward pass (as one GEMM per ξ over the whole batch it had measured no faster than
//! F(2×2, 3×3)'s blocked one). Layers whose sides are not multiples of 4 stay with
//! [`super::winograd`] ([`suits`]; not measured: padding to whole tiles would turn 7×7 into
//! 8×8, 14×14 into 16×16).
//!
//! Rounding: these transforms have entries up to 8 (Aᵀ) and 1/24 (G), not only ±1 and ±½, so the
//! result is not within a few ulps of direct summation as F(2×2, 3×3)'s is. Measured on random
//! data in [−1, 1] (tests below, 1 to 256 input channels): the largest error of an output is
//! 0.1–3·10⁻⁶ of Σ|x||w| over its terms, the tests allow 10⁻⁵; of a weight-gradient entry
//! 0.4–1.6·10⁻⁶ of Σ|x||dy| over its terms, and 1.3·10⁻⁵ on one-tile (4×4) images, whose edge
//! taps sum 9 terms. The points 0, ±1, ±2 and ∞ (Lavin & Gray's) keep the transforms' entries
//! small.
//!
//! Layout, as in [`super::winograd`]: the batch's tile rows are cut into blocks (several images
//! when they are small); a block's transformed input is `[ξ][c_in][tile]` and its products
//! `[ξ][c_out][tile]` (ξ the 36 positions of the 6×6 Winograd domain), transformed kernels
//! `[c_out][ξ][c_in]`.

use super::buffer::par_filled;
use super::winograd::{
    add_block_products, check, runs_mut, strided_rows, sum_in_order, ConvShape, SharedOut,
    BLOCK_FLOATS, MIN_BLOCK_TILES, PARTIAL_SUMS,
};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Positions of the 6×6 Winograd domain.
const XI: usize = 36;

/// Bᵀ applied to one column of six values (the input transform, row by row).
/// Bᵀ = [[4,0,−5,0,1,0], [0,−4,−4,1,1,0], [0,4,−4,−1,1,0], [0,−2,−1,2,1,0], [0,2,−1,−2,1,0],
/// [0,4,0,−5,0,1]].
#[inline(always)]
fn bt(d: [f32; 6]) -> [f32; 6] {
    let [d0, d1, d2, d3, d4, d5] = d;
    let (a, b) = (d4 - 4.0 * d2, d3 - 4.0 * d1);
    let (c, e) = (d4 - d2, 2.0 * (d3 - d1));
    [
        4.0 * d0 - 5.0 * d2 + d4,
        a + b,
        a - b,
        c + e,
        c - e,
        4.0 * d1 - 5.0 * d3 + d5,
    ]
}

/// Aᵀ applied to six values (the output transform). Aᵀ = [[1,1,1,1,1,0], [0,1,−1,2,−2,0],
/// [0,1,1,4,4,0], [0,1,−1,8,−8,1]].
#[inline(always)]
fn at(m: [f32; 6]) -> [f32; 4] {
    let [m0, m1, m2, m3, m4, m5] = m;
    let (s12, d12, s34, d34) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4);
    [
        m0 + s12 + s34,
        d12 + 2.0 * d34,
        s12 + 4.0 * s34,
        d12 + 8.0 * d34 + m5,
    ]
}

/// A applied to four values (the output gradient's transform, the adjoint of [`at`]):
/// A = Aᵀ transposed, rows [1,0,0,0], [1,1,1,1], [1,−1,1,−1], [1,2,4,8], [1,−2,4,−8], [0,0,0,1].
#[inline(always)]
fn a(e: [f32; 4]) -> [f32; 6] {
    let [e0, e1, e2, e3] = e;
    let (s02, s13) = (e0 + e2, e1 + e3);
    let (s4, s8) = (e0 + 4.0 * e2, 2.0 * e1 + 8.0 * e3);
    [e0, s02 + s13, s02 - s13, s4 + s8, s4 - s8, e3]
}

/// Gᵀ applied to six values (the weight gradient's way back from the Winograd domain, the
/// adjoint of [`g_slices`]).
#[inline(always)]
fn gt(d: [f32; 6]) -> [f32; 3] {
    let [d0, d1, d2, d3, d4, d5] = d;
    let (sixth, twelfth, quarter) = (1.0f32 / 6.0, 1.0f32 / 12.0, 0.25f32);
    let (s12, s34) = (d1 + d2, d3 + d4);
    [
        quarter * (d0 + sixth * s34) - sixth * s12,
        sixth * (d2 - d1) + twelfth * (d3 - d4),
        sixth * (s34 - s12) + d5,
    ]
}

/// `a` on slices: `out[k][f] = A(inp[0][f], …, inp[3][f])[k]` for every f, vectorized as
/// [`bt_slices`].
fn a_slices(inp: [&[f32]; 4], out: [&mut [f32]; 6]) {
    let n = out[0].len();
    let [i0, i1, i2, i3] = inp.map(|s| &s[..n]);
    let [o0, o1, o2, o3, o4, o5] = out.map(|s| &mut s[..n]);
    for f in 0..n {
        let v = a([i0[f], i1[f], i2[f], i3[f]]);
        (o0[f], o1[f], o2[f], o3[f], o4[f], o5[f]) = (v[0], v[1], v[2], v[3], v[4], v[5]);
    }
}

/// G applied to the three taps of a kernel row or column, for all input channels at once:
/// `out[p][ci] = (G (inp[0][ci], inp[1][ci], inp[2][ci]))[p]`. G = [[¼,0,0], [−⅙,−⅙,−⅙],
/// [−⅙,⅙,−⅙], [1⁄24,1⁄12,⅙], [1⁄24,−1⁄12,⅙], [0,0,1]].
fn g_slices(inp: [&[f32]; 3], out: [&mut [f32]; 6]) {
    let n = out[0].len();
    let [i0, i1, i2] = inp.map(|s| &s[..n]);
    let [o0, o1, o2, o3, o4, o5] = out.map(|s| &mut s[..n]);
    let (sixth, twelfth, quarter) = (1.0f32 / 6.0, 1.0f32 / 12.0, 0.25f32);
    for f in 0..n {
        let (g0, g1, g2) = (i0[f], i1[f], i2[f]);
        // ¹⁄₂₄ g0 ± ¹⁄₁₂ g1 + ⅙ g2 = ⅙ (¼ g0 + g2) ± ¹⁄₁₂ g1
        let outer = sixth * (quarter * g0 + g2);
        o0[f] = quarter * g0;
        o1[f] = -sixth * (g0 + g1 + g2);
        o2[f] = -sixth * (g0 - g1 + g2);
        o3[f] = outer + twelfth * g1;
        o4[f] = outer - twelfth * g1;
        o5[f] = g2;
    }
}

/// `bt` on slices: `out[k][f] = Bᵀ(inp[0][f], …, inp[5][f])[k]` for every f. The slices are
/// named one by one and cut to one length so that the loop vectorizes.
fn bt_slices(inp: [&[f32]; 6], out: [&mut [f32]; 6]) {
    let n = out[0].len();
    let [i0, i1, i2, i3, i4, i5] = inp.map(|s| &s[..n]);
    let [o0, o1, o2, o3, o4, o5] = out.map(|s| &mut s[..n]);
    for f in 0..n {
        let v = bt([i0[f], i1[f], i2[f], i3[f], i4[f], i5[f]]);
        (o0[f], o1[f], o2[f], o3[f], o4[f], o5[f]) = (v[0], v[1], v[2], v[3], v[4], v[5]);
    }
}

/// `at` on slices: `out[k][f] = Aᵀ(inp[0][f], …, inp[5][f])[k]` for every f, vectorized as
/// [`bt_slices`].
fn at_slices(inp: [&[f32]; 6], out: [&mut [f32]; 4]) {
    let n = out[0].len();
    let [i0, i1, i2, i3, i4, i5] = inp.map(|s| &s[..n]);
    let [o0, o1, o2, o3] = out.map(|s| &mut s[..n]);
    for f in 0..n {
        let v = at([i0[f], i1[f], i2[f], i3[f], i4[f], i5[f]]);
        (o0[f], o1[f], o2[f], o3[f]) = (v[0], v[1], v[2], v[3]);
    }
}

/// Whether a convolution of this shape goes through F(4×4, 3×3): whole 4×4 tiles only.
pub fn suits(s: ConvShape) -> bool {
    s.h % 4 == 0 && s.w % 4 == 0
}

/// y = conv(x, weight): `x` `[batch, c_in, h, w]`, `weight` `[c_out, c_in, 3, 3]`.
///
/// Blocks of tile rows (whole images when they are small) are transformed, multiplied and
/// transformed back while their buffers are in cache; blocks run in parallel, and so do the 36
/// GEMMs of a block when there are fewer blocks than threads (one small image).
pub fn forward(x: &[f32], weight: &[f32], s: ConvShape) -> Vec<f32> {
    check(x.len(), s.batch * s.c_in * s.h * s.w, "input");
    check(weight.len(), s.c_out * s.c_in * 9, "weight");
    let mut u = KERNELS.with_borrow_mut(std::mem::take);
    transform_weight(weight, s.c_out, s.c_in, &mut u);
    let blocks = Blocks::new(s);
    let parallel_gemms = blocks.count() < rayon::current_num_threads();
    let plane_len = s.h * s.w;
    let len = s.batch * s.c_out * plane_len;
    // Not zeroed: each block writes every float of its own bands.
    let mut y: Vec<f32> = Vec::with_capacity(len);
    let out = SharedOut(y.as_mut_ptr());
    let written = AtomicUsize::new(0);
    (0..blocks.count()).into_par_iter().for_each(|block| {
        let segments = blocks.segments(block);
        let tiles: usize = segments.iter().map(|seg| seg.rows.len() * blocks.tw).sum();
        // GEMM columns: never one, where faer takes a matrix-vector path that rounds
        // differently, so that an image's output would depend on the size of its batch
        let tb = tiles.max(2);
        let mut scratch = Scratch::default();
        let (mut v, mut m) = SCRATCH.with_borrow_mut(std::mem::take);
        // every element is overwritten below: by the transforms or the padding (v), by the
        // GEMMs (m)
        v.resize(XI * s.c_in * tb, 0.0);
        m.resize(XI * s.c_out * tb, 0.0);
        for row in v.chunks_exact_mut(tb) {
            row[tiles..].fill(0.0);
        }
        for seg in &segments {
            for c in 0..s.c_in {
                let plane = &x[(seg.image * s.c_in + c) * plane_len..][..plane_len];
                let offset = c * tb + seg.first_tile;
                scratch.input_tiles(plane, s, seg.rows.clone(), &mut v, s.c_in * tb, offset);
            }
        }
        let gemm = |xi: usize, dst: &mut [f32]| {
            let lhs = MatRef::from_row_major_slice_with_stride(
                &u[xi * s.c_in..][..(s.c_out - 1) * XI * s.c_in + s.c_in],
                s.c_out,
                s.c_in,
                XI * s.c_in,
            );
            let rhs =
                MatRef::from_row_major_slice(&v[xi * s.c_in * tb..][..s.c_in * tb], s.c_in, tb);
            let dst = MatMut::from_row_major_slice_mut(dst, s.c_out, tb);
            matmul(dst, Accum::Replace, lhs, rhs, 1.0f32, Par::Seq);
        };
        if parallel_gemms {
            m.par_chunks_mut(s.c_out * tb)
                .enumerate()
                .for_each(|(xi, dst)| gemm(xi, dst));
        } else {
            m.chunks_mut(s.c_out * tb)
                .enumerate()
                .for_each(|(xi, dst)| gemm(xi, dst));
        }
        for seg in &segments {
            // this segment's output rows: 4·rows.start up to 4·rows.end (cropped to h)
            let (y0, y1) = (4 * seg.rows.start, (4 * seg.rows.end).min(s.h));
            let len = seg.rows.len() * blocks.tw;
            for co in 0..s.c_out {
                // SAFETY: rows y0..y1 of plane (image, co) are written by this segment only:
                // segments cover disjoint tile rows, and the slice stays inside `y`.
                let band = unsafe {
                    out.band(
                        (seg.image * s.c_out + co) * plane_len + y0 * s.w,
                        (y1 - y0) * s.w,
                    )
                };
                let tiles: [&[f32]; XI] = std::array::from_fn(|xi| {
                    &m[xi * s.c_out * tb + co * tb + seg.first_tile..][..len]
                });
                scratch.output_tiles(&tiles, band, y1 - y0, s.w, blocks.tw);
            }
            written.fetch_add(s.c_out * (y1 - y0) * s.w, Ordering::Relaxed);
        }
        SCRATCH.set((v, m));
    });
    KERNELS.set(u);
    // SAFETY: the segments' bands are disjoint (above) and, as counted, cover all of `y`.
    unsafe { out.finish(&mut y, len, written.into_inner()) };
    y
}

/// ∂L/∂weight from the input `x` and ∂L/∂y: `[c_out, c_in, 3, 3]`, for shapes that [`suit`](suits)
/// F(4×4, 3×3). With y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A per tile, the gradient of the transformed
/// kernel at ξ is Σ over tiles of (A e Aᵀ)[ξ] (Bᵀ d B)[ξ] (e the tile's output gradient), one
/// GEMM per ξ, and the kernel's gradient is Gᵀ du G: 36 positions a 4×4 tile where F(2×2, 3×3)
/// has 16 a 2×2 tile, so 2.25 instead of 4 multiplies per pixel and channel pair, and as much
/// less transformed data to write and read.
pub fn backward_weight(x: &[f32], dy: &[f32], s: ConvShape) -> Vec<f32> {
    check(x.len(), s.batch * s.c_in * s.h * s.w, "input");
    check(dy.len(), s.batch * s.c_out * s.h * s.w, "output gradient");
    assert!(suits(s), "winograd_f4: {s:?} is not whole 4×4 tiles");
    let du = if XI * s.c_out * s.c_in <= BLOCK_FLOATS {
        weight_grad_blocked(x, dy, s)
    } else {
        weight_grad_whole(x, dy, s)
    };
    let pairs = s.c_out * s.c_in;
    par_filled(pairs * 9, 9 * s.c_in, |co, dw_co| {
        for (ci, out) in dw_co.chunks_exact_mut(9).enumerate() {
            let pair = co * s.c_in + ci;
            // Gᵀ d: column q of d, then each of its three rows through Gᵀ again
            let cols: [[f32; 3]; 6] = std::array::from_fn(|q| {
                gt(std::array::from_fn(|p| du[(6 * p + q) * pairs + pair]))
            });
            for i in 0..3 {
                let row = gt(cols.map(|c| c[i]));
                out[3 * i..3 * i + 3].copy_from_slice(&row);
            }
        }
    })
}

/// du[ξ] = Σ over tiles of g[ξ] (c_out × tiles) · v[ξ]ᵀ (tiles × c_in), `[ξ][c_out][c_in]`,
/// block by block (as [`forward`] cuts them) into at most [`PARTIAL_SUMS`] accumulators added
/// in a fixed order, so that the result does not depend on the thread count; for layers whose
/// accumulator is small.
fn weight_grad_blocked(x: &[f32], dy: &[f32], s: ConvShape) -> Vec<f32> {
    let blocks = Blocks::new(s);
    let count = blocks.count();
    let plane_len = s.h * s.w;
    let len = XI * s.c_out * s.c_in;
    let parts = count.min(PARTIAL_SUMS);
    let partials: Vec<Vec<f32>> = (0..parts)
        .into_par_iter()
        .map(|part| {
            let mut du = vec![0.0f32; len];
            let mut scratch = Scratch::default();
            let (mut v, mut g) = SCRATCH.with_borrow_mut(std::mem::take);
            for block in part * count / parts..(part + 1) * count / parts {
                let segments = blocks.segments(block);
                let tb: usize = segments.iter().map(|seg| seg.rows.len() * blocks.tw).sum();
                // every element is overwritten by the transforms
                v.resize(XI * s.c_in * tb, 0.0);
                g.resize(XI * s.c_out * tb, 0.0);
                for seg in &segments {
                    for c in 0..s.c_in {
                        let plane = &x[(seg.image * s.c_in + c) * plane_len..][..plane_len];
                        let offset = c * tb + seg.first_tile;
                        scratch.input_tiles(
                            plane,
                            s,
                            seg.rows.clone(),
                            &mut v,
                            s.c_in * tb,
                            offset,
                        );
                    }
                    for co in 0..s.c_out {
                        let plane = &dy[(seg.image * s.c_out + co) * plane_len..][..plane_len];
                        let offset = co * tb + seg.first_tile;
                        scratch.output_grad_tiles(
                            plane,
                            s,
                            seg.rows.clone(),
                            &mut g,
                            s.c_out * tb,
                            offset,
                        );
                    }
                }
                add_block_products(&mut du, &g, &v, s, tb);
            }
            SCRATCH.set((v, g));
            du
        })
        .collect();
    sum_in_order(partials, len)
}

/// Images per chunk of [`weight_grad_whole`]: transformed data about four times the
/// accumulators' size (`XI·(c_in + c_out)` floats per tile against `XI·c_in·c_out`).
fn whole_chunk_images(s: ConvShape) -> usize {
    let per_image = (s.h / 4) * (s.w / 4);
    (4 * s.c_in * s.c_out / ((s.c_in + s.c_out) * per_image)).clamp(1, s.batch)
}

/// [`weight_grad_blocked`] for deep layers, whose accumulators would not fit in cache: chunks
/// of whole images transformed at once (`[channel][ξ][tile]`, in parallel over channels), then
/// one GEMM per ξ over the chunk's tiles, in parallel over ξ, added to that ξ's accumulator
/// chunk after chunk (a fixed order: the result does not depend on the thread count). A chunk
/// holds about four times the accumulators' size of transformed data, so that reading and
/// writing them once a chunk costs less than the transforms: the whole batch at once (1.1·10⁷
/// floats, 44 MB, for 16 images of 40×40 with 128 and 64 channels) left the cache and was slower than
/// F(2×2, 3×3)'s blocked gradient on that layer, and one image at a time was slower on the
/// 20×20 layers, whose accumulators are larger than an image's transforms.
fn weight_grad_whole(x: &[f32], dy: &[f32], s: ConvShape) -> Vec<f32> {
    let (th, tw) = (s.h / 4, s.w / 4);
    let (per_image, plane_len) = (th * tw, s.h * s.w);
    let pairs = s.c_out * s.c_in;
    let images = whole_chunk_images(s);
    let mut du = vec![0.0f32; XI * pairs];
    let (mut v, mut g) = (Vec::new(), Vec::new());
    for first in (0..s.batch).step_by(images) {
        let n = images.min(s.batch - first);
        let tiles = n * per_image;
        let transform = |buf: &mut Vec<f32>, src: &[f32], channels: usize, grad: bool| {
            // every element is overwritten by the transforms
            buf.resize(channels * XI * tiles, 0.0);
            buf.par_chunks_mut(XI * tiles).enumerate().for_each_init(
                Scratch::default,
                |scratch, (c, out)| {
                    for b in 0..n {
                        let plane = &src[((first + b) * channels + c) * plane_len..][..plane_len];
                        if grad {
                            scratch.output_grad_tiles(plane, s, 0..th, out, tiles, b * per_image);
                        } else {
                            scratch.input_tiles(plane, s, 0..th, out, tiles, b * per_image);
                        }
                    }
                },
            );
        };
        transform(&mut v, x, s.c_in, false);
        transform(&mut g, dy, s.c_out, true);
        du.par_chunks_mut(pairs)
            .enumerate()
            .for_each(|(xi, du_xi)| {
                let (lhs, rhs) = (
                    strided_rows::<XI>(&g, xi, s.c_out, tiles),
                    strided_rows::<XI>(&v, xi, s.c_in, tiles),
                );
                let dst = MatMut::from_row_major_slice_mut(du_xi, s.c_out, s.c_in);
                matmul(dst, Accum::Add, lhs, rhs.transpose(), 1.0f32, Par::Seq);
            });
    }
    du
}

thread_local! {
    /// Each worker's block buffers, kept between calls (allocating them afresh costs page
    /// faults).
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = Default::default();
    /// The calling thread's transformed kernels, kept between calls for the same reason: at
    /// 4× the size of the weights, a fresh buffer each call cost about a tenth of the time in
    /// the kernel's page zeroing (perf, when training used this path).
    static KERNELS: std::cell::RefCell<Vec<f32>> = Default::default();
}

/// The tile rows of one image that a block holds, and where its tiles start in the block.
struct Segment {
    image: usize,
    rows: std::ops::Range<usize>,
    first_tile: usize,
}

/// How [`forward`] cuts the batch's tile rows (image after image) into blocks holding about
/// [`BLOCK_FLOATS`] of transformed input and output, and at least [`MIN_BLOCK_TILES`] tiles so
/// that the GEMMs are not too narrow (deep layers: few tiles, many channels).
struct Blocks {
    th: usize,
    tw: usize,
    rows_per_block: usize,
    total_rows: usize,
}

impl Blocks {
    fn new(s: ConvShape) -> Self {
        let (th, tw) = (s.h.div_ceil(4), s.w.div_ceil(4));
        let cache_rows = BLOCK_FLOATS / (XI * (s.c_in + s.c_out) * tw);
        let rows_per_block = cache_rows.max(MIN_BLOCK_TILES.div_ceil(tw)).max(1);
        Self {
            th,
            tw,
            rows_per_block,
            total_rows: s.batch * th,
        }
    }

    fn count(&self) -> usize {
        self.total_rows.div_ceil(self.rows_per_block)
    }

    /// Block `k` as segments of whole tile rows of successive images.
    fn segments(&self, k: usize) -> Vec<Segment> {
        let (start, end) = (
            k * self.rows_per_block,
            ((k + 1) * self.rows_per_block).min(self.total_rows),
        );
        let mut segments = Vec::new();
        let mut row = start;
        while row < end {
            let (image, first) = (row / self.th, row % self.th);
            let last = (first + end - row).min(self.th);
            segments.push(Segment {
                image,
                rows: first..last,
                first_tile: (row - start) * self.tw,
            });
            row += last - first;
        }
        segments
    }
}

/// Scratch of the transforms, reused across the planes of a block.
#[derive(Default)]
struct Scratch {
    /// Input: `[row phase][patch column][tile]` after dealing, then after the horizontal Bᵀ.
    dealt: Vec<f32>,
    /// Output: Aᵀ over the columns (`[row][column of the 6×6 tile][tile]`), then over the rows.
    rows: Vec<f32>,
    cols: Vec<f32>,
}

impl Scratch {
    /// Bᵀ d B for the tiles of tile rows `rows` of `plane` (6×6 patches of input rows
    /// 4t − 1 … 4t + 4, zero outside the image): value ξ of the tile in row `rows.start + t`,
    /// column j goes to `out[ξ·xi_stride + offset + t·tw + j]`.
    ///
    /// Each input row is dealt once into six arrays, one per patch column (column 4j + q − 1
    /// of the image for tile column j), and transformed horizontally; the patches' rows then
    /// come from the rows of phase 0…3 of their tile row and phases 0, 1 of the next, so the
    /// vertical transform is plain vector arithmetic over all the tiles at once.
    fn input_tiles(
        &mut self,
        plane: &[f32],
        s: ConvShape,
        rows: std::ops::Range<usize>,
        out: &mut [f32],
        xi_stride: usize,
        offset: usize,
    ) {
        let tw = s.w.div_ceil(4);
        let (len, plen) = (rows.len() * tw, (rows.len() + 1) * tw);
        // dealt[(6·k + q)·plen + t·tw + j] = image row 4(rows.start + t) + k − 1, column 4j + q − 1
        self.dealt.resize(24 * plen, 0.0);
        for t in 0..=rows.len() {
            for k in 0..4 {
                let y = (4 * (rows.start + t) + k)
                    .checked_sub(1)
                    .filter(|&y| y < s.h);
                let row = y.map(|y| &plane[y * s.w..][..s.w]);
                let cols: [&mut [f32]; 6] =
                    runs_mut(&mut self.dealt, 6 * k * plen + t * tw, plen, tw);
                deal_row(row, cols);
            }
        }
        for k in 0..4 {
            let block = &mut self.dealt[6 * k * plen..][..6 * plen];
            let [c0, c1, c2, c3, c4, c5]: [&mut [f32]; 6] = runs_mut(block, 0, plen, plen);
            for f in 0..plen {
                let v = bt([c0[f], c1[f], c2[f], c3[f], c4[f], c5[f]]);
                (c0[f], c1[f], c2[f], c3[f], c4[f], c5[f]) = (v[0], v[1], v[2], v[3], v[4], v[5]);
            }
        }
        let d = &self.dealt;
        // patch row ρ of every tile, horizontal position q: phase ρ of its row pair for ρ < 4,
        // phases 0 and 1 of the next tile row for ρ = 4, 5
        let at_row = |rho: usize, q: usize| -> &[f32] {
            let (k, next) = if rho < 4 { (rho, 0) } else { (rho - 4, tw) };
            &d[(6 * k + q) * plen + next..][..len]
        };
        for q in 0..6 {
            let inp: [&[f32]; 6] = std::array::from_fn(|rho| at_row(rho, q));
            // outputs ξ = 6p + q for p = 0…5
            let outs: [&mut [f32]; 6] = runs_mut(out, q * xi_stride + offset, 6 * xi_stride, len);
            bt_slices(inp, outs);
        }
    }

    /// Aᵀ m A for the tiles of a band of output rows: `tiles[ξ][t·tw + j]` holds value ξ of the
    /// tile in tile row t, column j, written to rows 4t … 4t + 3 of `band` (`band_h` rows of
    /// width `w`, cropped).
    fn output_tiles(
        &mut self,
        tiles: &[&[f32]; XI],
        band: &mut [MaybeUninit<f32>],
        band_h: usize,
        w: usize,
        tw: usize,
    ) {
        let len = band_h.div_ceil(4) * tw;
        // rows[(6r + q)·len + f] = (Aᵀ m)[r][q] of tile f
        self.rows.resize(24 * len, 0.0);
        for q in 0..6 {
            let inp: [&[f32]; 6] = std::array::from_fn(|p| &tiles[6 * p + q][..len]);
            let outs: [&mut [f32]; 4] = runs_mut(&mut self.rows, q * len, 6 * len, len);
            at_slices(inp, outs);
        }
        self.cols.resize(4 * len, 0.0);
        for r in 0..4 {
            let inp: [&[f32]; 6] = std::array::from_fn(|q| &self.rows[(6 * r + q) * len..][..len]);
            let outs: [&mut [f32]; 4] = runs_mut(&mut self.cols, 0, len, len);
            at_slices(inp, outs);
            let [c0, c1, c2, c3]: [&[f32]; 4] =
                std::array::from_fn(|k| &self.cols[k * len..][..len]);
            for t in 0..len / tw {
                let y = 4 * t + r;
                if y >= band_h {
                    continue;
                }
                let row = &mut band[y * w..][..w];
                let (c0, c1, c2, c3) = (
                    &c0[t * tw..][..tw],
                    &c1[t * tw..][..tw],
                    &c2[t * tw..][..tw],
                    &c3[t * tw..][..tw],
                );
                let (quads, rest) = row.split_at_mut(w / 4 * 4);
                for ((((quad, a), b), c), d) in
                    quads.chunks_exact_mut(4).zip(c0).zip(c1).zip(c2).zip(c3)
                {
                    for (slot, v) in quad.iter_mut().zip([*a, *b, *c, *d]) {
                        slot.write(v);
                    }
                }
                let j = w / 4;
                for (v, col) in rest.iter_mut().zip([c0, c1, c2]) {
                    v.write(col[j]);
                }
            }
        }
    }

    /// A e Aᵀ for the 4×4 output-gradient tiles e of tile rows `rows` of `plane` (whole tiles:
    /// the shape [`suits`]), the adjoint of [`Self::output_tiles`], laid out as in
    /// [`Self::input_tiles`]: value ξ of the tile in row `rows.start + t`, column j goes to
    /// `out[ξ·xi_stride + offset + t·tw + j]`.
    fn output_grad_tiles(
        &mut self,
        plane: &[f32],
        s: ConvShape,
        rows: std::ops::Range<usize>,
        out: &mut [f32],
        xi_stride: usize,
        offset: usize,
    ) {
        let tw = s.w / 4;
        let len = rows.len() * tw;
        // dealt[(4r + q)·len + t·tw + j] = plane row 4(rows.start + t) + r, column 4j + q
        self.dealt.resize(16 * len, 0.0);
        for t in 0..rows.len() {
            for r in 0..4 {
                let y = 4 * (rows.start + t) + r;
                let row = &plane[y * s.w..][..s.w];
                let [c0, c1, c2, c3]: [&mut [f32]; 4] =
                    runs_mut(&mut self.dealt, 4 * r * len + t * tw, len, tw);
                for ((((quad, c0), c1), c2), c3) in row
                    .chunks_exact(4)
                    .zip(c0.iter_mut())
                    .zip(c1.iter_mut())
                    .zip(c2.iter_mut())
                    .zip(c3.iter_mut())
                {
                    (*c0, *c1, *c2, *c3) = (quad[0], quad[1], quad[2], quad[3]);
                }
            }
        }
        // rows[(6r + q)·len + f] = (e Aᵀ)[r][q] of tile f
        self.rows.resize(24 * len, 0.0);
        for r in 0..4 {
            let inp: [&[f32]; 4] = std::array::from_fn(|q| &self.dealt[(4 * r + q) * len..][..len]);
            a_slices(inp, runs_mut(&mut self.rows, 6 * r * len, len, len));
        }
        // A (e Aᵀ), column q: outputs ξ = 6p + q for p = 0…5
        for q in 0..6 {
            let inp: [&[f32]; 4] = std::array::from_fn(|r| &self.rows[(6 * r + q) * len..][..len]);
            a_slices(
                inp,
                runs_mut(out, q * xi_stride + offset, 6 * xi_stride, len),
            );
        }
    }
}

/// Deals an image row (or zeros, for `None`) into six arrays of its tiles: `cols[q][j]` is
/// column 4j + q − 1 (zero outside the row). Columns 4j, …, 4j + 3 are the four phases of the
/// row (`cols[1..5]`, split off in one pass over whole quads, which vectorizes); `cols[0]` and
/// `cols[5]` are phases 3 and 0 shifted by one tile. Dealt tile by tile, six scalar copies each,
/// this had been about a third of the transform's time.
fn deal_row(row: Option<&[f32]>, cols: [&mut [f32]; 6]) {
    let Some(row) = row else {
        cols.into_iter().for_each(|c| c.fill(0.0));
        return;
    };
    let tw = cols[0].len();
    let [c0, c1, c2, c3, c4, c5] = cols;
    let (c1, c2, c3, c4, c5) = (
        &mut c1[..tw],
        &mut c2[..tw],
        &mut c3[..tw],
        &mut c4[..tw],
        &mut c5[..tw],
    );
    let quads = row.chunks_exact(4);
    let rest = quads.remainder();
    let whole = row.len() / 4;
    for ((((quad, a), b), c), d) in quads
        .zip(c1.iter_mut())
        .zip(c2.iter_mut())
        .zip(c3.iter_mut())
        .zip(c4.iter_mut())
    {
        (*a, *b, *c, *d) = (quad[0], quad[1], quad[2], quad[3]);
    }
    if whole < tw {
        let at = |k: usize| rest.get(k).copied().unwrap_or(0.0);
        (c1[whole], c2[whole], c3[whole], c4[whole]) = (at(0), at(1), at(2), at(3));
    }
    c0[0] = 0.0;
    c0[1..].copy_from_slice(&c4[..tw - 1]);
    c5[..tw - 1].copy_from_slice(&c1[1..]);
    c5[tw - 1] = 0.0;
}

/// G g Gᵀ for every 3×3 kernel: `[c_out, c_in, 3, 3]` → `[c_out][36][c_in]`, in parallel over
/// output channels and vectorized over input channels (this runs on every call; pair by pair
/// it took a tenth of a forward pass).
fn transform_weight(weight: &[f32], c_out: usize, c_in: usize, u: &mut Vec<f32>) {
    // every element is overwritten below
    u.resize(c_out * XI * c_in, 0.0);
    u.par_chunks_mut(XI * c_in).enumerate().for_each_init(
        || (vec![0.0f32; 9 * c_in], vec![0.0f32; 18 * c_in]),
        |(taps, gk), (co, u_co)| {
            // taps[k·c_in + ci]: tap k of kernel (co, ci)
            for (ci, kernel) in weight[co * c_in * 9..][..c_in * 9]
                .chunks_exact(9)
                .enumerate()
            {
                for (k, v) in kernel.iter().enumerate() {
                    taps[k * c_in + ci] = *v;
                }
            }
            // G k, column c: gk[(3p + c)·c_in + ci]
            for c in 0..3 {
                let inp = [0, 3, 6].map(|r| &taps[(r + c) * c_in..][..c_in]);
                g_slices(inp, runs_mut(gk, c * c_in, 3 * c_in, c_in));
            }
            // (G k) Gᵀ, row p: u_co[(6p + q)·c_in + ci]
            for p in 0..6 {
                let inp = [0, 1, 2].map(|c| &gk[(3 * p + c) * c_in..][..c_in]);
                g_slices(inp, runs_mut(u_co, 6 * p * c_in, c_in, c_in));
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        direct, direct_weight_gradient, max_relative_error, on_threads, random,
    };
    use super::*;

    /// The largest error relative to Σ|x||w| of its output.
    fn relative_error(s: ConvShape, seed: u64) -> f64 {
        let x = random(s.batch * s.c_in * s.h * s.w, seed);
        let w = random(s.c_out * s.c_in * 9, seed + 1000);
        let got = forward(&x, &w, s);
        let (want, scale) = direct(&x, &w, s);
        max_relative_error(&got, &want, &scale)
    }

    fn shape(batch: usize, c_in: usize, c_out: usize, h: usize, w: usize) -> ConvShape {
        ConvShape {
            batch,
            c_in,
            c_out,
            h,
            w,
        }
    }

    /// The 1-D identity the 2-D algorithm is built on: Aᵀ[(G k) ⊙ (Bᵀ d)] = the four outputs of
    /// the correlation of d with k.
    #[test]
    fn one_dimensional_f4_is_a_correlation() {
        let (d, k) = ([0.3f32, -1.2, 0.7, 2.0, -0.4, 0.9], [0.5f32, -0.25, 1.5]);
        let bd = bt(d);
        let mut gk = [[0.0f32; 1]; 6];
        g_slices(
            k.map(|v| [v]).each_ref().map(|a| &a[..]),
            gk.each_mut().map(|a| &mut a[..]),
        );
        let gk = gk.map(|[v]| v);
        let got = at(std::array::from_fn(|i| bd[i] * gk[i]));
        for (i, v) in got.into_iter().enumerate() {
            let want: f32 = (0..3).map(|j| d[i + j] * k[j]).sum();
            assert!((v - want).abs() < 1e-5, "output {i}: {v} vs {want}");
        }
    }

    /// Sizes that are and are not multiples of 4, 1×1 images, several images per block.
    #[test]
    fn forward_matches_direct_summation_on_all_remainders() {
        let shapes = [
            shape(2, 3, 5, 8, 8),
            shape(1, 4, 2, 7, 5),
            shape(3, 1, 3, 1, 2),
            shape(2, 2, 3, 9, 10),
            shape(5, 3, 2, 6, 11),
            shape(1, 1, 1, 1, 1),
        ];
        for (k, s) in shapes.into_iter().enumerate() {
            let err = relative_error(s, k as u64);
            assert!(err < 1e-5, "{s:?}: relative error {err}");
        }
    }

    /// A shallow wide layer cut into several blocks per image (the last one short), and a deep
    /// small one whose blocks hold several images (and, for one image, parallel GEMMs).
    #[test]
    fn forward_matches_direct_summation_in_blocks() {
        let wide = shape(2, 64, 64, 38, 40);
        let blocks = Blocks::new(wide);
        assert!(blocks.rows_per_block < blocks.th && blocks.th % blocks.rows_per_block != 0);
        let deep = shape(16, 128, 64, 10, 10);
        let blocks = Blocks::new(deep);
        assert!(blocks.rows_per_block > blocks.th && blocks.count() > 1);
        for (k, s) in [wide, deep, shape(1, 256, 128, 10, 10)]
            .into_iter()
            .enumerate()
        {
            let err = relative_error(s, 10 + k as u64);
            assert!(err < 1e-5, "{s:?}: relative error {err}");
        }
    }

    /// The weight gradient's largest error relative to Σ|x||dy| over its terms, against its
    /// definition in f64.
    fn weight_gradient_error(s: ConvShape, seed: u64) -> f64 {
        let x = random(s.batch * s.c_in * s.h * s.w, seed);
        let dy = random(s.batch * s.c_out * s.h * s.w, seed + 1000);
        let got = backward_weight(&x, &dy, s);
        let (want, scale) = direct_weight_gradient(&x, &dy, s);
        max_relative_error(&got, &want, &scale)
    }

    /// Small layers, a wide one cut into several blocks per image (blocked path), blocks
    /// holding several images, and deep ones whose accumulators take the whole-batch path.
    #[test]
    fn weight_gradient_matches_direct_summation() {
        let shapes = [
            shape(2, 3, 5, 8, 8),
            shape(1, 1, 2, 4, 4),
            shape(3, 2, 4, 4, 12),
            shape(2, 64, 32, 44, 40),
            shape(16, 16, 8, 8, 8),
            shape(2, 128, 64, 8, 8),
            shape(3, 96, 96, 40, 40),
            shape(1, 96, 96, 4, 4),
        ];
        let blocks = Blocks::new(shapes[3]);
        assert!(blocks.rows_per_block < blocks.th && blocks.th % blocks.rows_per_block != 0);
        assert!(Blocks::new(shapes[4]).rows_per_block > 2);
        // the blocked path up to 64 × 32 channels, the whole-image one from 128 × 64
        const { assert!(XI * 128 * 64 > BLOCK_FLOATS && XI * 64 * 32 <= BLOCK_FLOATS) };
        // the whole-image path in chunks of one image (the 40×40 layer), in one chunk (8×8)
        assert_eq!(whole_chunk_images(shapes[6]), 1);
        assert_eq!(whole_chunk_images(shapes[5]), shapes[5].batch);
        for (k, s) in shapes.into_iter().enumerate() {
            let err = weight_gradient_error(s, 20 + k as u64);
            // measured 0.4–1.6·10⁻⁶, and 1.3·10⁻⁵ for one-tile images (4×4), whose edge taps
            // have 9 terms against the 36 values of the Winograd domain
            let tol = if s.h * s.w == 16 { 5e-5 } else { 1e-5 };
            assert!(err < tol, "{s:?}: relative error {err}");
        }
    }

    /// The weight gradient is bit-identical whatever the number of threads, on both paths.
    #[test]
    fn weight_gradient_does_not_depend_on_the_thread_count() {
        for s in [shape(3, 32, 48, 40, 40), shape(3, 96, 96, 40, 40)] {
            let x = random(s.batch * s.c_in * s.h * s.w, 90);
            let dy = random(s.batch * s.c_out * s.h * s.w, 91);
            let run = |threads| on_threads(threads, || backward_weight(&x, &dy, s));
            assert!(
                run(1) == run(3),
                "{s:?}: results differ between 1 and 3 threads"
            );
        }
    }

    /// Bit-identical whatever the number of threads (training must be reproducible).
    #[test]
    fn forward_does_not_depend_on_the_thread_count() {
        let s = shape(3, 32, 48, 40, 40);
        let (x, w) = (
            random(s.batch * s.c_in * s.h * s.w, 70),
            random(s.c_out * s.c_in * 9, 72),
        );
        let run = |threads| on_threads(threads, || forward(&x, &w, s));
        assert!(run(1) == run(3), "results differ between 1 and 3 threads");
    }

    /// An image's output is bit-identical alone and in a batch (the sampler's batch-size
    /// invariance rests on it), also for images of one tile, whose GEMMs would have one column.
    #[test]
    fn an_image_does_not_depend_on_its_batch() {
        for (c_in, c_out, h) in [(32, 32, 4), (16, 32, 8), (64, 64, 40), (128, 256, 10)] {
            let s4 = shape(4, c_in, c_out, h, h);
            let (x, w) = (random(4 * c_in * h * h, 80), random(c_out * c_in * 9, 81));
            let y4 = forward(&x, &w, s4);
            for b in 0..4 {
                let y1 = forward(
                    &x[b * c_in * h * h..][..c_in * h * h],
                    &w,
                    shape(1, c_in, c_out, h, h),
                );
                assert!(
                    y1 == y4[b * c_out * h * h..][..c_out * h * h],
                    "{s4:?}: image {b} differs"
                );
            }
        }
    }
}
