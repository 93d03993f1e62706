//! 3×3 convolutions (stride 1, zero padding 1, no bias) by Winograd's minimal filtering
//! F(2×2, 3×3) (Lavin & Gray 2016): each 2×2 output tile costs 16 multiplies per channel pair
//! instead of 36, so the channel-mixing GEMMs do 2.25× fewer flops than im2col. These three
//! functions are the forward pass and both gradients of the BF-UNet's convolutions, on host
//! data in NCHW order; the backward passes reuse the same transforms, so all three run at the
//! same speed (burn's CPU backend computes the weight gradient as a convolution with an
//! image-sized kernel, which is where most of a training step went). Where a layer's sides are
//! multiples of 4 all three use F(4×4, 3×3) instead ([`super::winograd_f4`], measured faster
//! for training and inference alike).
//!
//! Layouts: transformed images are `[channel][ξ][tile]` (ξ the 16 positions of the 4×4
//! Winograd domain, tiles ordered batch, tile row, tile column), so each channel is
//! transformed independently and each ξ is one GEMM over strided rows; transformed kernels
//! are `[c_out][ξ][c_in]` (strided rows again), so they can be made in parallel over output
//! channels. Rounding: the transforms use ±1 and ±½ only; the result differs
//! from direct summation by a few ulps of the largest term (tested).

use super::buffer::par_filled;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Shape of a convolution: `[batch, c_in, h, w]` in, `[batch, c_out, h, w]` out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    /// Images in the batch.
    pub batch: usize,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Image height (input and output).
    pub h: usize,
    /// Image width (input and output).
    pub w: usize,
}

impl ConvShape {
    fn tiles_h(&self) -> usize {
        self.h.div_ceil(2)
    }
    fn tiles_w(&self) -> usize {
        self.w.div_ceil(2)
    }
    /// Number of 2×2 output tiles over the whole batch.
    fn tiles(&self) -> usize {
        self.batch * self.tiles_h() * self.tiles_w()
    }
    /// The shape of the data-gradient convolution: channels swapped.
    pub(super) fn transposed(&self) -> Self {
        Self {
            c_in: self.c_out,
            c_out: self.c_in,
            ..*self
        }
    }
}

/// y = conv(x, weight): `x` `[batch, c_in, h, w]`, `weight` `[c_out, c_in, 3, 3]`.
///
/// Works in blocks of whole tile rows, each transformed, multiplied and transformed back while
/// its buffers are still in cache; blocks run in parallel.
pub fn forward(x: &[f32], weight: &[f32], s: ConvShape) -> Vec<f32> {
    check(x.len(), s.batch * s.c_in * s.h * s.w, "input");
    check(weight.len(), s.c_out * s.c_in * 9, "weight");
    let tw = s.tiles_w();
    let u = transform_weight(weight, s.c_out, s.c_in);
    let blocks = Blocks::new(s);
    if blocks.too_narrow() {
        return forward_whole(x, &u, s);
    }
    let plane_len = s.h * s.w;
    let len = s.batch * s.c_out * plane_len;
    // Not zeroed: each block writes every float of its own bands.
    let mut y: Vec<f32> = Vec::with_capacity(len);
    let out = SharedOut(y.as_mut_ptr());
    let written = AtomicUsize::new(0);
    (0..blocks.count()).into_par_iter().for_each(|block| {
        let (b, rows) = blocks.get(block);
        let tb = rows.len() * tw;
        let (mut v, mut m) = SCRATCH.with_borrow_mut(std::mem::take);
        // every element is overwritten below: by the transform (v) and the GEMMs (m)
        m.resize(16 * s.c_out * tb, 0.0);
        let mut scratch = TileScratch::new(tw);
        transform_block(x, s.c_in, s, b, rows.clone(), &mut scratch, &mut v);
        for xi in 0..16 {
            let lhs = kernel_matrix(&u, xi, s);
            let rhs =
                MatRef::from_row_major_slice(&v[xi * s.c_in * tb..][..s.c_in * tb], s.c_in, tb);
            let dst = MatMut::from_row_major_slice_mut(
                &mut m[xi * s.c_out * tb..][..s.c_out * tb],
                s.c_out,
                tb,
            );
            matmul(dst, Accum::Replace, lhs, rhs, 1.0f32, Par::Seq);
        }
        // this block's output rows: 2·rows.start up to 2·rows.end (cropped to h)
        let (y0, y1) = (2 * rows.start, (2 * rows.end).min(s.h));
        for co in 0..s.c_out {
            // SAFETY: the rows y0..y1 of plane (b, co) are written by this block only:
            // blocks of one image cover disjoint tile rows, and the slice stays inside `y`.
            let band =
                unsafe { out.band((b * s.c_out + co) * plane_len + y0 * s.w, (y1 - y0) * s.w) };
            let tiles: [&[f32]; 16] =
                std::array::from_fn(|xi| &m[xi * s.c_out * tb + co * tb..][..tb]);
            scratch.output_tiles(&tiles, band, y1 - y0, s.w);
        }
        written.fetch_add(s.c_out * (y1 - y0) * s.w, Ordering::Relaxed);
        SCRATCH.set((v, m));
    });
    // SAFETY: the blocks' bands are disjoint (above) and, as counted, cover all of `y`.
    unsafe { out.finish(&mut y, len, written.into_inner()) };
    y
}

thread_local! {
    /// Each worker's block buffers, kept between calls: allocating them afresh cost more in
    /// page faults than the transforms themselves.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = Default::default();
}

/// [`forward`] for deep layers (many channels, few tiles), where blocks that fit in cache
/// would be too narrow for efficient GEMMs: one GEMM per ξ over all tiles, in parallel over ξ.
fn forward_whole(x: &[f32], u: &[f32], s: ConvShape) -> Vec<f32> {
    let (th, tw, t) = (s.tiles_h(), s.tiles_w(), s.tiles());
    let v = transform_input(x, s.batch, s.c_in, s.h, s.w);
    let m = par_filled(16 * s.c_out * t, s.c_out * t, |xi, m_xi| {
        let lhs = kernel_matrix(u, xi, s);
        let rhs = strided_rows::<16>(&v, xi, s.c_in, t);
        let dst = MatMut::from_row_major_slice_mut(m_xi, s.c_out, t);
        matmul(dst, Accum::Replace, lhs, rhs, 1.0f32, Par::Seq);
    });
    let plane_len = s.h * s.w;
    par_filled(s.batch * s.c_out * plane_len, plane_len, |idx, plane| {
        let (b, co) = (idx / s.c_out, idx % s.c_out);
        let base = co * t + b * th * tw;
        let tiles: [&[f32]; 16] =
            std::array::from_fn(|xi| &m[xi * s.c_out * t + base..][..th * tw]);
        TileScratch::new(tw).output_tiles(&tiles, as_uninit(plane), s.h, s.w);
    })
}

/// The transformed kernels of ξ, `[c_out][16][c_in]` (see [`transform_weight`]), as a
/// `c_out × c_in` matrix.
fn kernel_matrix(u: &[f32], xi: usize, s: ConvShape) -> MatRef<'_, f32> {
    let len = (s.c_out - 1) * 16 * s.c_in + s.c_in;
    MatRef::from_row_major_slice_with_stride(&u[xi * s.c_in..][..len], s.c_out, s.c_in, 16 * s.c_in)
}

/// Below this many tiles a cache-sized block makes GEMMs too narrow; see [`forward_whole`].
pub(super) const MIN_BLOCK_TILES: usize = 64;

/// How [`forward`] and [`weight_grad_blocked`] cut the batch into blocks of whole tile rows
/// holding about [`BLOCK_FLOATS`] of transformed input and output each (at least one row).
struct Blocks {
    th: usize,
    rows_per_block: usize,
    per_image: usize,
    batch: usize,
    tw: usize,
}

impl Blocks {
    fn new(s: ConvShape) -> Self {
        let (th, tw) = (s.tiles_h(), s.tiles_w());
        let rows_per_block = (BLOCK_FLOATS / (16 * (s.c_in + s.c_out) * tw)).clamp(1, th);
        Self {
            th,
            rows_per_block,
            per_image: th.div_ceil(rows_per_block),
            batch: s.batch,
            tw,
        }
    }

    /// Whether cache-sized blocks would make GEMMs too narrow (see [`forward_whole`]): also
    /// when a whole small image fits in a block (the BF-UNet's middle block has 3×3 tiles an
    /// image, GEMMs of 9 columns; over the batch they have 144).
    fn too_narrow(&self) -> bool {
        self.rows_per_block * self.tw < MIN_BLOCK_TILES
    }

    fn count(&self) -> usize {
        self.batch * self.per_image
    }

    /// Block `k`: its image and its tile rows.
    fn get(&self, k: usize) -> (usize, std::ops::Range<usize>) {
        let (b, blk) = (k / self.per_image, k % self.per_image);
        let start = blk * self.rows_per_block;
        (b, start..(start + self.rows_per_block).min(self.th))
    }
}

/// Bᵀ d B for tile rows `rows` of image `b` of `x` (`channels` planes of `s.h × s.w`) into
/// `v`, laid out `[ξ][channel][tile of the block]`.
fn transform_block(
    x: &[f32],
    channels: usize,
    s: ConvShape,
    b: usize,
    rows: std::ops::Range<usize>,
    scratch: &mut TileScratch,
    v: &mut Vec<f32>,
) {
    let (tw, plane_len) = (s.tiles_w(), s.h * s.w);
    let tb = rows.len() * tw;
    v.resize(16 * channels * tb, 0.0);
    for c in 0..channels {
        let plane = &x[(b * channels + c) * plane_len..][..plane_len];
        scratch.input_tiles(plane, s.h, s.w, rows.clone(), v, channels * tb, c * tb);
    }
}

/// Floats of transformed input and output a block aims to hold (1 MiB).
pub(super) const BLOCK_FLOATS: usize = 1 << 18;

/// `values` as slots that output transforms overwrite (they write only initialized values).
pub(super) fn as_uninit(values: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: same layout; the slots are only ever written with initialized floats.
    unsafe { &mut *(values as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// The output buffer shared by parallel blocks that write disjoint rows of it.
#[derive(Clone, Copy)]
pub(super) struct SharedOut(pub(super) *mut f32);
// SAFETY: used only for writes to disjoint ranges (see `forward`, `winograd_f4::forward`).
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}
impl SharedOut {
    /// `len` floats from `offset`, uninitialized: the caller writes every one of them (the
    /// output transforms do, row by row; zeroing them first had cost 6–8% of a small network's
    /// step in memsets).
    ///
    /// # Safety
    /// The range lies inside the buffer's capacity and no other live slice overlaps it.
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn band(&self, offset: usize, len: usize) -> &mut [MaybeUninit<f32>] {
        // SAFETY: as the caller promises; MaybeUninit needs no initialization.
        unsafe {
            std::slice::from_raw_parts_mut(self.0.add(offset).cast::<MaybeUninit<f32>>(), len)
        }
    }

    /// Marks the first `len` floats of `buf` (whose pointer this is) initialized, given that
    /// `written` of them were written through [`Self::band`].
    ///
    /// # Safety
    /// `written` counts floats of disjoint bands inside `..len`, so it equals `len` only when
    /// the bands covered all of it.
    pub(super) unsafe fn finish(self, buf: &mut Vec<f32>, len: usize, written: usize) {
        assert_eq!(buf.as_mut_ptr(), self.0, "winograd: another buffer");
        assert!(len <= buf.capacity(), "winograd: output beyond the buffer");
        assert_eq!(
            written, len,
            "winograd: the blocks left part of the output unwritten"
        );
        // SAFETY: as the caller promises, every float of ..len was written.
        unsafe { buf.set_len(len) };
    }
}

/// Scratch for transforming the tiles of several tile rows of one plane at once.
///
/// The plane's values are first dealt into contiguous arrays by row parity and column offset
/// (`deal_row`), so that each transform is a few passes of plain vector arithmetic over all the
/// block's tiles. Looping tile row by tile row instead left the vector units mostly idle: deep
/// layers have 3 to 10 tiles per row, fewer than one 16-float register.
struct TileScratch {
    tw: usize,
    /// Dealt input: 8 (input) or 4 (output gradient) arrays of tiles.
    dealt: Vec<f32>,
    /// Output transform: the even and odd output columns of one output row per tile.
    cols: Vec<f32>,
}

impl TileScratch {
    fn new(tw: usize) -> Self {
        Self {
            tw,
            dealt: Vec::new(),
            cols: Vec::new(),
        }
    }

    /// Bᵀ d B for the tiles of tile rows `rows` of `plane` (4×4 patches of input rows
    /// 2i−1…2i+2, zero outside the image): the value ξ of the tile in row `rows.start + t`,
    /// column j goes to `out[ξ·xi_stride + offset + t·tw + j]`.
    /// Bᵀ = [[1,0,−1,0],[0,1,1,0],[0,−1,1,0],[0,1,0,−1]].
    #[allow(clippy::too_many_arguments)]
    fn input_tiles(
        &mut self,
        plane: &[f32],
        h: usize,
        w: usize,
        rows: std::ops::Range<usize>,
        out: &mut [f32],
        xi_stride: usize,
        offset: usize,
    ) {
        let tw = self.tw;
        let (len, plen) = (rows.len() * tw, (rows.len() + 1) * tw);
        // dealt[4ρ + q][t·tw + j] = padded row 2(rows.start + t) + ρ, padded column 2j + q,
        // where padded row/column k is the image's k − 1: the patch of tile (t, j) is rows
        // ρ = 0, 1 of pair t and of pair t + 1, columns q = 0…3.
        self.dealt.resize(8 * plen, 0.0);
        for t in 0..=rows.len() {
            for rho in 0..2 {
                let y = (2 * (rows.start + t) + rho)
                    .checked_sub(1)
                    .filter(|&y| y < h);
                let row = y.map(|y| &plane[y * w..][..w]);
                let start = 4 * rho * plen + t * tw;
                let [q0, q1, q2, q3] = runs_mut(&mut self.dealt, start, plen, tw);
                deal_row(row, q1, q2);
                // q0[j] is column 2j − 1 = q2[j − 1]; q3[j] is column 2j + 2 = q1[j + 1]
                q0[0] = 0.0;
                q0[1..].copy_from_slice(&q2[..tw - 1]);
                q3[..tw - 1].copy_from_slice(&q1[1..]);
                q3[tw - 1] = 0.0;
            }
        }
        let d = &self.dealt;
        let at = |rho: usize, pair: usize| -> [&[f32]; 4] {
            std::array::from_fn(|q| &d[(4 * rho + q) * plen + pair * tw..][..len])
        };
        // patch rows 0…3: (ρ, pair) = (0, t), (1, t), (0, t + 1), (1, t + 1)
        let (r0, r1, r2, r3) = (at(0, 0), at(1, 0), at(0, 1), at(1, 1));
        let sub = |a: f32, b: f32| a - b;
        let run = |k: usize| 4 * k * xi_stride + offset;
        bt_row_then_columns(r0, r2, sub, runs_mut(out, run(0), xi_stride, len));
        bt_row_then_columns(r1, r2, |a, b| a + b, runs_mut(out, run(1), xi_stride, len));
        bt_row_then_columns(r2, r1, sub, runs_mut(out, run(2), xi_stride, len));
        bt_row_then_columns(r1, r3, sub, runs_mut(out, run(3), xi_stride, len));
    }

    /// Aᵀ m A for the tiles of a band of output rows: `tiles[ξ][t·tw + j]` holds value ξ of the
    /// tile in tile row t, column j, written to rows 2t, 2t + 1 of `band` (`band_h` rows of
    /// width `w`, cropped). Aᵀ = [[1,1,1,0],[0,1,−1,−1]].
    fn output_tiles(
        &mut self,
        tiles: &[&[f32]; 16],
        band: &mut [MaybeUninit<f32>],
        band_h: usize,
        w: usize,
    ) {
        let tw = self.tw;
        let len = band_h.div_ceil(2) * tw;
        self.cols.resize(2 * len, 0.0);
        let m: [&[f32]; 16] = std::array::from_fn(|xi| &tiles[xi][..len]);
        for r in 0..2 {
            let (even, odd) = self.cols.split_at_mut(len);
            // row r of Aᵀ m: s[b] for the four columns b
            let s = |b: usize, f: usize| -> f32 {
                if r == 0 {
                    m[b][f] + m[4 + b][f] + m[8 + b][f]
                } else {
                    m[4 + b][f] - m[8 + b][f] - m[12 + b][f]
                }
            };
            for (f, (e, o)) in even.iter_mut().zip(odd.iter_mut()).enumerate() {
                let (s0, s1, s2, s3) = (s(0, f), s(1, f), s(2, f), s(3, f));
                *e = s0 + s1 + s2;
                *o = s1 - s2 - s3;
            }
            for t in 0..len / tw {
                let y = 2 * t + r;
                if y >= band_h {
                    continue;
                }
                let row = &mut band[y * w..][..w];
                let (e, o) = (&even[t * tw..][..tw], &odd[t * tw..][..tw]);
                let (pairs, last) = row.split_at_mut(w / 2 * 2);
                for ((pair, e), o) in pairs.chunks_exact_mut(2).zip(e).zip(o) {
                    pair[0].write(*e);
                    pair[1].write(*o);
                }
                if let Some(v) = last.first_mut() {
                    v.write(e[tw - 1]);
                }
            }
        }
    }

    /// A e Aᵀ for the 2×2 output-gradient tiles e of tile rows `rows` of `plane` (zero outside
    /// the image), the adjoint of [`Self::output_tiles`], laid out as in [`Self::input_tiles`].
    /// With A = [[1,0],[1,1],[1,−1],[0,−1]] and e = [[a,b],[c,d]], row 0 of e Aᵀ is
    /// p = (a, a+b, a−b, −b), row 1 is q = (c, c+d, c−d, −d), and the four rows of the result
    /// are p, p+q, p−q, −q.
    #[allow(clippy::too_many_arguments)]
    fn output_grad_tiles(
        &mut self,
        plane: &[f32],
        h: usize,
        w: usize,
        rows: std::ops::Range<usize>,
        out: &mut [f32],
        xi_stride: usize,
        offset: usize,
    ) {
        let tw = self.tw;
        let len = rows.len() * tw;
        // dealt[2r + q][t·tw + j] = plane row 2(rows.start + t) + r, column 2j + q
        self.dealt.resize(4 * len, 0.0);
        for t in 0..rows.len() {
            for r in 0..2 {
                let y = 2 * (rows.start + t) + r;
                let row = (y < h).then(|| &plane[y * w..][..w]);
                let [even, odd] = runs_mut(&mut self.dealt, 2 * r * len + t * tw, len, tw);
                deal_row(row, even, odd);
            }
        }
        let [a, b, c, d]: [&[f32]; 4] = std::array::from_fn(|k| &self.dealt[k * len..][..len]);
        let run = |k: usize| 4 * k * xi_stride + offset;
        let p = |f: usize| [a[f], a[f] + b[f], a[f] - b[f], -b[f]];
        let q = |f: usize| [c[f], c[f] + d[f], c[f] - d[f], -d[f]];
        let rows_of_result: [&dyn Fn(usize) -> [f32; 4]; 4] = [
            &p,
            &|f| {
                let (p, q) = (p(f), q(f));
                std::array::from_fn(|k| p[k] + q[k])
            },
            &|f| {
                let (p, q) = (p(f), q(f));
                std::array::from_fn(|k| p[k] - q[k])
            },
            &|f| q(f).map(|v| -v),
        ];
        for (k, row) in rows_of_result.iter().enumerate() {
            let [o0, o1, o2, o3] = runs_mut(out, run(k), xi_stride, len);
            for f in 0..len {
                let v = row(f);
                o0[f] = v[0];
                o1[f] = v[1];
                o2[f] = v[2];
                o3[f] = v[3];
            }
        }
    }
}

/// Deals an image row (or zeros, for `None`) into its even columns and its odd columns (zero
/// past the end of an odd-width row).
fn deal_row(row: Option<&[f32]>, even: &mut [f32], odd: &mut [f32]) {
    let Some(row) = row else {
        even.fill(0.0);
        odd.fill(0.0);
        return;
    };
    let pairs = row.chunks_exact(2);
    if let [last] = pairs.remainder() {
        even[row.len() / 2] = *last;
        odd[row.len() / 2] = 0.0;
    }
    for ((pair, e), o) in pairs.zip(even.iter_mut()).zip(odd.iter_mut()) {
        *e = pair[0];
        *o = pair[1];
    }
}

/// Row k of Bᵀ d B for all tiles at once: `w[q] = op(l[q], r[q])` is row k of Bᵀ d (column q
/// of the patch), then the four outputs are the columns of w B.
fn bt_row_then_columns(
    l: [&[f32]; 4],
    r: [&[f32]; 4],
    op: impl Fn(f32, f32) -> f32,
    out: [&mut [f32]; 4],
) {
    let [o0, o1, o2, o3] = out;
    let n = o0.len();
    let (o1, o2, o3) = (&mut o1[..n], &mut o2[..n], &mut o3[..n]);
    let [l0, l1, l2, l3] = l.map(|s| &s[..n]);
    let [r0, r1, r2, r3] = r.map(|s| &s[..n]);
    for f in 0..n {
        let (w0, w1, w2, w3) = (
            op(l0[f], r0[f]),
            op(l1[f], r1[f]),
            op(l2[f], r2[f]),
            op(l3[f], r3[f]),
        );
        o0[f] = w0 - w2;
        o1[f] = w1 + w2;
        o2[f] = w2 - w1;
        o3[f] = w1 - w3;
    }
}

/// `K` disjoint runs of `len` floats of `buf`, `stride` apart from `start`.
pub(super) fn runs_mut<const K: usize>(
    buf: &mut [f32],
    start: usize,
    stride: usize,
    len: usize,
) -> [&mut [f32]; K] {
    let mut chunks = buf[start..].chunks_mut(stride);
    std::array::from_fn(|_| &mut chunks.next().expect("run inside the buffer")[..len])
}

/// ∂L/∂x from ∂L/∂y: the adjoint of [`forward`], a convolution with the kernel flipped in space
/// and its channel axes swapped.
pub fn backward_data(dy: &[f32], weight: &[f32], s: ConvShape) -> Vec<f32> {
    forward(dy, &flipped(weight, s), s.transposed())
}

/// The kernel of the data-gradient convolution: `weight` flipped in space, channel axes
/// swapped (`[c_in, c_out, 3, 3]`).
pub(super) fn flipped(weight: &[f32], s: ConvShape) -> Vec<f32> {
    par_filled(weight.len(), s.c_out * 9, |ci, flipped| {
        for (co, kernel) in flipped.chunks_exact_mut(9).enumerate() {
            for (k, v) in kernel.iter_mut().rev().enumerate() {
                *v = weight[(co * s.c_in + ci) * 9 + k];
            }
        }
    })
}

/// ∂L/∂weight from the input `x` and ∂L/∂y: `[c_out, c_in, 3, 3]`.
pub fn backward_weight(x: &[f32], dy: &[f32], s: ConvShape) -> Vec<f32> {
    check(x.len(), s.batch * s.c_in * s.h * s.w, "input");
    check(dy.len(), s.batch * s.c_out * s.h * s.w, "output gradient");
    let du = if 16 * s.c_out * s.c_in <= BLOCK_FLOATS {
        weight_grad_blocked(x, dy, s)
    } else {
        weight_grad_whole(x, dy, s)
    };
    // dg = Gᵀ du G for each channel pair.
    par_filled(s.c_out * s.c_in * 9, 9 * s.c_in, |co, dw_co| {
        for (ci, out) in dw_co.chunks_exact_mut(9).enumerate() {
            weight_grad_pair(&du, co * s.c_in + ci, s, out);
        }
    })
}

/// dg = Gᵀ du G for the channel pair `pair` (`co · c_in + ci`) into `out`.
fn weight_grad_pair(du: &[f32], pair: usize, s: ConvShape, out: &mut [f32]) {
    let mut d = [[0.0f32; 4]; 4];
    for (xi, v) in d.iter_mut().flatten().enumerate() {
        *v = du[xi * s.c_out * s.c_in + pair];
    }
    // (Gᵀ d G)[i][j] with G = [[1,0,0],[½,½,½],[½,−½,½],[0,0,1]]
    let mut tmp = [[0.0f32; 4]; 3]; // Gᵀ d: 3×4
    for col in 0..4 {
        let (a, b, c, e) = (d[0][col], d[1][col], d[2][col], d[3][col]);
        tmp[0][col] = a + 0.5 * (b + c);
        tmp[1][col] = 0.5 * (b - c);
        tmp[2][col] = 0.5 * (b + c) + e;
    }
    for (row, t) in tmp.iter().enumerate() {
        let (a, b, c, e) = (t[0], t[1], t[2], t[3]);
        out[row * 3] = a + 0.5 * (b + c);
        out[row * 3 + 1] = 0.5 * (b - c);
        out[row * 3 + 2] = 0.5 * (b + c) + e;
    }
}

/// du[ξ] = Σ over tiles of g[ξ] (c_out × tiles) · v[ξ]ᵀ (tiles × c_in), accumulated block by
/// block (blocks of whole tile rows, as in [`forward`]) into [`PARTIAL_SUMS`] accumulators;
/// for layers whose `[16][c_out][c_in]` accumulator is small.
fn weight_grad_blocked(x: &[f32], dy: &[f32], s: ConvShape) -> Vec<f32> {
    let tw = s.tiles_w();
    let geometry = Blocks::new(s);
    let blocks = geometry.count();
    let plane_len = s.h * s.w;
    let len = 16 * s.c_out * s.c_in;
    // A fixed number of partial sums, added in a fixed order: the gradient must not depend on
    // how rayon happens to split the work, or training would not be reproducible.
    let parts = blocks.min(PARTIAL_SUMS);
    let partials: Vec<Vec<f32>> = (0..parts)
        .into_par_iter()
        .map(|part| {
            let mut du = vec![0.0f32; len];
            for block in part * blocks / parts..(part + 1) * blocks / parts {
                let (b, rows) = geometry.get(block);
                let tb = rows.len() * tw;
                let (mut v, mut g) = SCRATCH.with_borrow_mut(std::mem::take);
                g.resize(16 * s.c_out * tb, 0.0);
                let mut scratch = TileScratch::new(tw);
                transform_block(x, s.c_in, s, b, rows.clone(), &mut scratch, &mut v);
                for co in 0..s.c_out {
                    let plane = &dy[(b * s.c_out + co) * plane_len..][..plane_len];
                    let (xi_stride, offset) = (s.c_out * tb, co * tb);
                    scratch.output_grad_tiles(
                        plane,
                        s.h,
                        s.w,
                        rows.clone(),
                        &mut g,
                        xi_stride,
                        offset,
                    );
                }
                add_block_products(&mut du, &g, &v, s, tb);
                SCRATCH.set((v, g));
            }
            du
        })
        .collect();
    sum_in_order(partials, len)
}

/// du[ξ] += g[ξ] (c_out × tiles) · v[ξ]ᵀ (tiles × c_in) for every position ξ of a block's
/// transformed output gradient `g` (`[ξ][c_out][tile]`) and input `v` (`[ξ][c_in][tile]`),
/// `tiles` tiles each; `du` is `[ξ][c_out][c_in]`. Both Winograd sizes' blocked weight
/// gradients.
pub(super) fn add_block_products(du: &mut [f32], g: &[f32], v: &[f32], s: ConvShape, tiles: usize) {
    let pairs = s.c_out * s.c_in;
    for (xi, du_xi) in du.chunks_exact_mut(pairs).enumerate() {
        let lhs = MatRef::from_row_major_slice(
            &g[xi * s.c_out * tiles..][..s.c_out * tiles],
            s.c_out,
            tiles,
        );
        let rhs = MatRef::from_row_major_slice(
            &v[xi * s.c_in * tiles..][..s.c_in * tiles],
            s.c_in,
            tiles,
        );
        let dst = MatMut::from_row_major_slice_mut(du_xi, s.c_out, s.c_in);
        matmul(dst, Accum::Add, lhs, rhs.transpose(), 1.0f32, Par::Seq);
    }
}

/// The partial sums added in their fixed order (zeros of `len` when there are none): a
/// gradient must not depend on how rayon happens to split the work, or training would not be
/// reproducible.
pub(super) fn sum_in_order(partials: Vec<Vec<f32>>, len: usize) -> Vec<f32> {
    let mut partials = partials.into_iter();
    let mut sum = partials.next().unwrap_or_else(|| vec![0.0f32; len]);
    for p in partials {
        sum.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
    }
    sum
}

/// Partial sums of the blocked weight gradients (a constant, for reproducibility).
pub(super) const PARTIAL_SUMS: usize = 8;

/// [`weight_grad_blocked`] for deep layers: whole transforms, one GEMM per ξ over all tiles.
fn weight_grad_whole(x: &[f32], dy: &[f32], s: ConvShape) -> Vec<f32> {
    let t = s.tiles();
    let v = transform_input(x, s.batch, s.c_in, s.h, s.w);
    let g = transform_output_grad(dy, s);
    par_filled(16 * s.c_out * s.c_in, s.c_out * s.c_in, |xi, du_xi| {
        let lhs = strided_rows::<16>(&g, xi, s.c_out, t);
        let rhs = strided_rows::<16>(&v, xi, s.c_in, t).transpose();
        let dst = MatMut::from_row_major_slice_mut(du_xi, s.c_out, s.c_in);
        matmul(dst, Accum::Replace, lhs, rhs, 1.0f32, Par::Seq);
    })
}

pub(super) fn check(len: usize, expected: usize, what: &str) {
    assert_eq!(len, expected, "winograd: {what} has the wrong length");
}

/// Rows `[c][ξ][·]` of a `[channels][POSITIONS][tiles]` buffer as a `channels × tiles` matrix
/// (`POSITIONS`: 16 here, 36 for F(4×4, 3×3)).
pub(super) fn strided_rows<const POSITIONS: usize>(
    buf: &[f32],
    xi: usize,
    channels: usize,
    tiles: usize,
) -> MatRef<'_, f32> {
    let len = (channels - 1) * POSITIONS * tiles + tiles;
    MatRef::from_row_major_slice_with_stride(
        &buf[xi * tiles..][..len],
        channels,
        tiles,
        POSITIONS * tiles,
    )
}

/// Bᵀ d B for every 4×4 input patch: `[batch, c, h, w]` → `[c][16][tiles]`.
fn transform_input(x: &[f32], batch: usize, c: usize, h: usize, w: usize) -> Vec<f32> {
    let (th, tw) = (h.div_ceil(2), w.div_ceil(2));
    let t = batch * th * tw;
    par_filled(c * 16 * t, 16 * t, |ch, vc| {
        let mut scratch = TileScratch::new(tw);
        for b in 0..batch {
            let plane = &x[(b * c + ch) * h * w..(b * c + ch + 1) * h * w];
            scratch.input_tiles(plane, h, w, 0..th, vc, t, b * th * tw);
        }
    })
}

/// G g Gᵀ for every 3×3 kernel: `[c_out, c_in, 3, 3]` → `[c_out][16][c_in]`, in parallel over
/// output channels (done pair by pair on the calling thread, with the `[16][c_out][c_in]` layout
/// the GEMMs would read without a stride, it kept the workers waiting).
fn transform_weight(weight: &[f32], c_out: usize, c_in: usize) -> Vec<f32> {
    par_filled(c_out * 16 * c_in, 16 * c_in, |co, u| {
        for ci in 0..c_in {
            transform_kernel(&weight[(co * c_in + ci) * 9..][..9], &mut u[ci..], c_in);
        }
    })
}

/// G g Gᵀ for one 3×3 kernel `g`: value ξ to `u[ξ · stride]`.
fn transform_kernel(g: &[f32], u: &mut [f32], stride: usize) {
    let mut tmp = [[0.0f32; 3]; 4]; // G g: 4×3
    for col in 0..3 {
        let (a, b, c) = (g[col], g[3 + col], g[6 + col]);
        tmp[0][col] = a;
        tmp[1][col] = 0.5 * (a + b + c);
        tmp[2][col] = 0.5 * (a - b + c);
        tmp[3][col] = c;
    }
    for (row, t) in tmp.iter().enumerate() {
        let (a, b, c) = (t[0], t[1], t[2]);
        let vals = [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
        for (col, v) in vals.into_iter().enumerate() {
            u[(row * 4 + col) * stride] = v;
        }
    }
}

/// A g Aᵀ for every 2×2 tile of the output gradient (zero outside the image): the adjoint of
/// [`TileScratch::output_tiles`], `[batch, c_out, h, w]` → `[c_out][16][tiles]`.
fn transform_output_grad(dy: &[f32], s: ConvShape) -> Vec<f32> {
    let (th, tw, t) = (s.tiles_h(), s.tiles_w(), s.tiles());
    let plane_len = s.h * s.w;
    par_filled(s.c_out * 16 * t, 16 * t, |co, gc| {
        let mut scratch = TileScratch::new(tw);
        for b in 0..s.batch {
            let plane = &dy[(b * s.c_out + co) * plane_len..][..plane_len];
            scratch.output_grad_tiles(plane, s.h, s.w, 0..th, gc, t, b * th * tw);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{direct_weight_gradient, max_relative_error, on_threads, random};
    use super::*;

    /// Direct summation in f64, the definition.
    fn direct(x: &[f32], w: &[f32], s: ConvShape) -> Vec<f64> {
        super::super::testing::direct(x, w, s).0
    }

    fn max_err(a: &[f32], b: &[f64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - y).abs())
            .fold(0.0, f64::max)
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    /// ⟨conv(x), dy⟩, ⟨x, backward_data(dy)⟩ and ⟨w, backward_weight(x, dy)⟩ for random x, w,
    /// dy drawn from `seeds`: equal when both gradients are the adjoints.
    fn adjoint_pairings(s: ConvShape, seeds: [u64; 3]) -> (f64, f64, f64) {
        let x = random(s.batch * s.c_in * s.h * s.w, seeds[0]);
        let w = random(s.c_out * s.c_in * 9, seeds[1]);
        let dy = random(s.batch * s.c_out * s.h * s.w, seeds[2]);
        (
            dot(&forward(&x, &w, s), &dy),
            dot(&x, &backward_data(&dy, &w, s)),
            dot(&w, &backward_weight(&x, &dy, s)),
        )
    }

    /// Shapes that take the other code paths: several blocks per image (shallow, wide image)
    /// and whole-image transforms (deep, small image).
    #[test]
    fn gradients_are_adjoints_on_blocked_and_whole_paths() {
        let shapes = [
            ConvShape {
                batch: 2,
                c_in: 64,
                c_out: 64,
                h: 38,
                w: 40,
            },
            ConvShape {
                batch: 2,
                c_in: 128,
                c_out: 160,
                h: 10,
                w: 10,
            },
        ];
        assert!(16 * shapes[0].c_in * shapes[0].c_out <= BLOCK_FLOATS);
        assert!(16 * shapes[1].c_in * shapes[1].c_out > BLOCK_FLOATS);
        for (k, s) in shapes.into_iter().enumerate() {
            let (loss, via_x, via_w) = adjoint_pairings(s, [40, 50, 60].map(|b| b + k as u64));
            let tol = 1e-4 * loss.abs().max(1.0);
            assert!((loss - via_x).abs() < tol, "{s:?}: {loss} vs {via_x}");
            assert!((loss - via_w).abs() < tol, "{s:?}: {loss} vs {via_w}");
        }
    }

    /// Bit-identical results whatever the number of threads: training must be reproducible.
    #[test]
    fn gradients_do_not_depend_on_the_thread_count() {
        let s = ConvShape {
            batch: 3,
            c_in: 32,
            c_out: 48,
            h: 40,
            w: 40,
        };
        let x = random(s.batch * s.c_in * s.h * s.w, 70);
        let dy = random(s.batch * s.c_out * s.h * s.w, 71);
        let w = random(s.c_out * s.c_in * 9, 72);
        let run = |threads| {
            on_threads(threads, || {
                (backward_weight(&x, &dy, s), forward(&x, &w, s))
            })
        };
        assert!(run(1) == run(3), "results differ between 1 and 3 threads");
    }

    const SHAPES: [ConvShape; 3] = [
        ConvShape {
            batch: 2,
            c_in: 3,
            c_out: 5,
            h: 8,
            w: 8,
        },
        ConvShape {
            batch: 1,
            c_in: 4,
            c_out: 2,
            h: 7,
            w: 5,
        },
        ConvShape {
            batch: 3,
            c_in: 1,
            c_out: 3,
            h: 1,
            w: 2,
        },
    ];

    #[test]
    fn forward_matches_direct_summation_on_even_and_odd_sizes() {
        for (k, s) in SHAPES.into_iter().enumerate() {
            let x = random(s.batch * s.c_in * s.h * s.w, k as u64);
            let w = random(s.c_out * s.c_in * 9, 100 + k as u64);
            let err = max_err(&forward(&x, &w, s), &direct(&x, &w, s));
            assert!(err < 1e-5, "{s:?}: max error {err}");
        }
    }

    /// Wide enough that `forward` splits each image into several blocks, the last one short.
    #[test]
    fn forward_in_several_blocks_matches_direct_summation() {
        let s = ConvShape {
            batch: 2,
            c_in: 64,
            c_out: 64,
            h: 38,
            w: 40,
        };
        let tw = s.tiles_w();
        let rows_per_block = BLOCK_FLOATS / (16 * (s.c_in + s.c_out) * tw);
        assert!(rows_per_block < s.tiles_h() && s.tiles_h() % rows_per_block != 0);
        let x = random(s.batch * s.c_in * s.h * s.w, 1);
        let w = random(s.c_out * s.c_in * 9, 2);
        let err = max_err(&forward(&x, &w, s), &direct(&x, &w, s));
        assert!(err < 1e-4, "max error {err}");
    }

    /// Deep and small: too few tiles for cache-sized blocks, so one GEMM per ξ over all tiles.
    #[test]
    fn forward_of_a_deep_layer_matches_direct_summation() {
        let s = ConvShape {
            batch: 1,
            c_in: 512,
            c_out: 256,
            h: 10,
            w: 10,
        };
        let rows_per_block = BLOCK_FLOATS / (16 * (s.c_in + s.c_out) * s.tiles_w());
        assert!(rows_per_block * s.tiles_w() < MIN_BLOCK_TILES && rows_per_block < s.tiles_h());
        let x = random(s.batch * s.c_in * s.h * s.w, 3);
        let w = random(s.c_out * s.c_in * 9, 4);
        let err = max_err(&forward(&x, &w, s), &direct(&x, &w, s));
        assert!(err < 1e-4, "max error {err}");
    }

    /// ⟨conv(x), dy⟩ = ⟨x, backward_data(dy)⟩ = ⟨w, backward_weight(x, dy)⟩: both gradients are
    /// exact adjoints (the loss is bilinear in x and w).
    #[test]
    fn gradients_are_the_adjoints_of_the_forward_pass() {
        for (k, s) in SHAPES.into_iter().enumerate() {
            let (loss, via_x, via_w) = adjoint_pairings(s, [10, 20, 30].map(|b| b + k as u64));
            let tol = 1e-4 * (1.0 + loss.abs());
            assert!((loss - via_x).abs() < tol, "{s:?}: {loss} vs {via_x}");
            assert!((loss - via_w).abs() < tol, "{s:?}: {loss} vs {via_w}");
        }
    }

    /// The weight gradient against its definition in f64, entry by entry, relative to Σ|x||dy|
    /// over each entry's terms: a small layer with odd sides, a wide one in several blocks
    /// (blocked path) and a deep one whose accumulator takes the whole-batch path.
    #[test]
    fn weight_gradient_matches_direct_summation() {
        let shapes = [
            ConvShape {
                batch: 2,
                c_in: 2,
                c_out: 3,
                h: 5,
                w: 6,
            },
            ConvShape {
                batch: 1,
                c_in: 64,
                c_out: 64,
                h: 40,
                w: 38,
            },
            ConvShape {
                batch: 2,
                c_in: 136,
                c_out: 128,
                h: 6,
                w: 5,
            },
        ];
        assert!(
            Blocks::new(shapes[1]).count() > shapes[1].batch,
            "several blocks per image"
        );
        assert!(
            16 * shapes[2].c_out * shapes[2].c_in > BLOCK_FLOATS,
            "whole-batch path"
        );
        for (k, s) in shapes.into_iter().enumerate() {
            let x = random(s.batch * s.c_in * s.h * s.w, 7 + k as u64);
            let dy = random(s.batch * s.c_out * s.h * s.w, 70 + k as u64);
            let got = backward_weight(&x, &dy, s);
            let (want, scale) = direct_weight_gradient(&x, &dy, s);
            let err = max_relative_error(&got, &want, &scale);
            assert!(err < 1e-5, "{s:?}: relative error {err}");
        }
    }
}
