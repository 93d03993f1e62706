//! Stochastic coarse-to-fine gradient ascent: Algorithm 1 (synthesis) and Algorithm 2 (linear
//! inverse problems) of Kadkhodaie & Simoncelli, *Solving linear inverse problems using the
//! prior implicit in a denoiser* (NeurIPS 2021), the sampler of the GAHB paper.
//!
//! From y₀ = m + σ₀z, each step takes the denoiser residual d = f(y) − y (for an inverse
//! problem: its free part plus the pull towards the measurement), estimates the remaining noise
//! σₜ = ‖d‖/√D, and moves y ← y + hₜd + γₜz with hₜ = h₀t/(1 + h₀(t − 1)) and
//! γₜ = σₜ√((1 − βhₜ)² − (1 − hₜ)²): the injected noise keeps the effective noise at
//! (1 − βhₜ)σₜ, so β sets how much of it is removed per step. It stops when σₜ < σ_L and
//! returns f(y).
//!
//! Sample k draws its initial and injected noise from stream (seed, Sample, k), and each
//! sample stops on its own σₜ, so a sample does not depend on batch size: two denoisers run from
//! the same seed start from the same noise (the paired comparison of the GAHB paper).

use super::operators::Measurement;
use super::SamplingError;
use crate::config::{check, InvalidField};
use crate::data::Images;
use crate::denoise::Denoiser;
use crate::progress::Progress;
use crate::rng::{stream, Purpose};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// Parameters of the ascent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AscentParams {
    /// Initial step size h₀ (0.01 in the paper).
    pub h0: f64,
    /// Fraction β of the noise removed per step (0.1 for synthesis in the GAHB paper; larger is
    /// faster and less stochastic).
    pub beta: f64,
    /// Initial noise level σ₀.
    pub sigma0: f64,
    /// Stop when the estimated noise σₜ falls below σ_L.
    pub sigma_final: f64,
    /// Mean m of the initial image.
    pub init_mean: f64,
    /// Step cap; samples that reach it are returned with [`Outcome::StepCap`].
    pub max_steps: usize,
    /// Record y every this many steps (0: never).
    pub snapshot_every: usize,
    /// Images denoised together.
    pub batch: usize,
}

impl Default for AscentParams {
    fn default() -> Self {
        Self {
            h0: 0.01,
            beta: 0.1,
            sigma0: 1.0,
            sigma_final: 0.01,
            init_mean: 0.5,
            max_steps: 3000,
            snapshot_every: 0,
            batch: 64,
        }
    }
}

impl AscentParams {
    /// The defaults for solving inverse problems: β = 0.01, ten times the noise injected per
    /// step, as Kadkhodaie & Simoncelli's own code uses for every inverse problem. Measured with
    /// an imported BSD400 BF-CNN inpainting a 24×24 box in four 64×64 crops: 17.9 / 26.1 / 22.8 /
    /// 38.5 dB against 15.2 / 17.7 / 16.8 / 22.8 dB with the sampling default β = 0.1 (the box
    /// filled with bright strokes), for about twice the steps (docs/results/2026-12-05-import.md).
    pub fn for_restoration() -> Self {
        Self {
            beta: 0.01,
            ..Self::default()
        }
    }

    /// Checks ranges before sampling.
    pub fn validate(&self) -> Result<(), InvalidField> {
        check(
            self.h0 > 0.0 && self.h0 <= 1.0,
            "sampler.h0",
            self.h0,
            "must be in (0, 1]",
        )?;
        check(
            self.beta > 0.0 && self.beta <= 1.0,
            "sampler.beta",
            self.beta,
            "must be in (0, 1]",
        )?;
        check(
            self.sigma0 > 0.0 && self.sigma0.is_finite(),
            "sampler.sigma0",
            self.sigma0,
            "must be positive",
        )?;
        check(
            self.sigma_final > 0.0 && self.sigma_final < self.sigma0,
            "sampler.sigma_final",
            self.sigma_final,
            format!("must be in (0, sigma0 = {})", self.sigma0),
        )?;
        check(
            self.max_steps > 0,
            "sampler.max_steps",
            self.max_steps,
            "must be ≥ 1",
        )?;
        check(self.batch > 0, "sampler.batch", self.batch, "must be ≥ 1")
    }

    /// hₜ for step t ≥ 1.
    pub fn h(&self, t: usize) -> f64 {
        let t = t as f64;
        self.h0 * t / (1.0 + self.h0 * (t - 1.0))
    }

    /// γₜ for step size h and noise estimate σ.
    pub fn gamma(&self, h: f64, sigma: f64) -> f64 {
        let v = (1.0 - self.beta * h).powi(2) - (1.0 - h).powi(2);
        sigma * v.max(0.0).sqrt()
    }
}

/// How a sample's ascent ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// σₜ fell below σ_L.
    Converged,
    /// The step cap was reached first.
    #[default]
    StepCap,
    /// σₜ grew past 10σ₀ or became non-finite: the denoiser pushes y away instead of towards
    /// images (typically a network used far outside the noise range it was trained on).
    Diverged,
    /// σₜ rose to [`STALL_FACTOR`] times the lowest value it had reached before getting below
    /// σ_L: the denoiser cannot remove noise below that level (a short-trained network has
    /// such a floor, different for each network), and past it the iterate drifts away from
    /// the images. The sample is the denoised image at the lowest σₜ.
    Stalled,
}

/// See [`Outcome::Stalled`]. Two: σₜ fluctuates by a few percent from step to step, and a
/// trajectory past its floor climbs steadily (we saw 0.021 → 10 over 150 steps).
pub const STALL_FACTOR: f64 = 2.0;

/// What happened to one sample.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Trajectory {
    /// σₜ at each step.
    pub sigma: Vec<f32>,
    /// hₜ at each step.
    pub h: Vec<f32>,
    /// Steps taken.
    pub steps: usize,
    /// How it ended.
    pub outcome: Outcome,
    /// (step, y) every `snapshot_every` steps.
    #[serde(skip)]
    pub snapshots: Vec<(usize, Vec<f32>)>,
}

/// The snapshots of every sample as one batch, `[samples × snapshots, c, h, w]`, samples whose
/// ascent ended earlier padded with their last snapshot; `None` when nothing was recorded.
pub fn snapshots(trajectories: &[Trajectory], shape: [usize; 3]) -> Option<Images> {
    let most = trajectories.iter().map(|t| t.snapshots.len()).max()?;
    if most == 0 {
        return None;
    }
    let [c, h, w] = shape;
    let mut data = Vec::with_capacity(trajectories.len() * most * c * h * w);
    for t in trajectories {
        for i in 0..most {
            match t.snapshots.get(i).or(t.snapshots.last()) {
                Some((_, y)) => data.extend_from_slice(y),
                None => data.extend(std::iter::repeat_n(f32::NAN, c * h * w)),
            }
        }
    }
    Some(Images::new(data, [trajectories.len() * most, c, h, w]))
}

/// Samples and their trajectories.
pub struct Output {
    /// The final denoised images f(y), `[count, c, h, w]`.
    pub images: Images,
    /// One trajectory per sample.
    pub trajectories: Vec<Trajectory>,
}

/// Draws `count` samples of shape `[c, h, w]` from the prior of `denoiser`; sample k uses
/// stream (seed, Sample, first + k).
pub fn sample(
    denoiser: &impl Denoiser,
    shape: [usize; 3],
    count: usize,
    first: u64,
    params: &AscentParams,
    seed: u64,
    progress: &dyn Progress,
) -> Result<Output, SamplingError> {
    run(denoiser, shape, count, first, params, seed, None, progress)
}

/// A linear constraint: the operator and one measurement per image.
#[derive(Clone, Copy)]
pub struct Constraint<'a> {
    /// The operator M.
    pub op: &'a dyn Measurement,
    /// c = M x for each image to restore.
    pub measurements: &'a [Vec<f32>],
}

/// Restores one image per measurement: samples from the prior conditioned on M x = c
/// (Algorithm 2). The output satisfies the constraint exactly: its measured part is Mᵀc.
pub fn restore(
    denoiser: &impl Denoiser,
    shape: [usize; 3],
    constraint: Constraint<'_>,
    params: &AscentParams,
    seed: u64,
    progress: &dyn Progress,
) -> Result<Output, SamplingError> {
    let d: usize = shape.iter().product();
    if constraint.op.dim() != d {
        return Err(SamplingError::OperatorSize {
            operator: constraint.op.dim(),
            image: d,
        });
    }
    for c in constraint.measurements {
        if c.len() != constraint.op.measurements() {
            return Err(SamplingError::MeasurementSize {
                expected: constraint.op.measurements(),
                got: c.len(),
            });
        }
    }
    let n = constraint.measurements.len();
    run(
        denoiser,
        shape,
        n,
        0,
        params,
        seed,
        Some(constraint),
        progress,
    )
}

/// (I − P) a + Mᵀ c: replaces the measured part of `a` by the measurement.
fn impose(op: &dyn Measurement, a: &[f32], c: &[f32]) -> Vec<f32> {
    let pa = op.project(a);
    let mc = op.adjoint(c);
    a.iter()
        .zip(&pa)
        .zip(&mc)
        .map(|((a, p), m)| a - p + m)
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn run(
    denoiser: &impl Denoiser,
    shape: [usize; 3],
    count: usize,
    first: u64,
    params: &AscentParams,
    seed: u64,
    constraint: Option<Constraint<'_>>,
    progress: &dyn Progress,
) -> Result<Output, SamplingError> {
    params.validate()?;
    let [c, h, w] = shape;
    let d = c * h * w;
    let sqrt_d = (d as f64).sqrt();
    let mut rngs: Vec<ChaCha8Rng> = (0..count)
        .map(|k| stream(seed, Purpose::Sample, first + k as u64))
        .collect();
    // y₀ = m + σ₀ z (for inverse problems, with the measured part set to the measurement)
    let mut ys: Vec<Vec<f32>> = rngs
        .iter_mut()
        .map(|rng| {
            (0..d)
                .map(|_| {
                    let z: f64 = StandardNormal.sample(rng);
                    (params.init_mean + params.sigma0 * z) as f32
                })
                .collect()
        })
        .collect();
    if let Some(con) = constraint {
        for (y, m) in ys.iter_mut().zip(con.measurements) {
            *y = impose(con.op, y, m);
        }
    }
    let mut out: Vec<Option<Vec<f32>>> = vec![None; count];
    let mut traj: Vec<Trajectory> = vec![Trajectory::default(); count];
    let mut sigma_prev: Vec<f64> = vec![params.sigma0; count];
    // each sample's lowest σₜ so far and its denoised image there
    let mut best: Vec<(f64, Vec<f32>)> = vec![(f64::INFINITY, Vec::new()); count];
    let mut active: Vec<usize> = (0..count).collect();
    progress.start("sampling", count as u64);
    let mut t = 1usize;
    while !active.is_empty() {
        let mut still = Vec::with_capacity(active.len());
        // a blind denoiser takes whole batches; an oracle needs each sample's own σ estimate
        let batch = if denoiser.is_blind() { params.batch } else { 1 };
        for chunk in active.chunks(batch) {
            let sig = sigma_prev[chunk[0]];
            let batch_y: Vec<f32> = chunk.iter().flat_map(|&k| ys[k].iter().copied()).collect();
            let f = denoiser.denoise(
                &Images::new(batch_y, [chunk.len(), c, h, w]),
                Some(sig as f32),
            )?;
            for (j, &k) in chunk.iter().enumerate() {
                let fk = f.image(j);
                let y = &mut ys[k];
                let mut dir: Vec<f32> = fk.iter().zip(y.iter()).map(|(a, b)| a - b).collect();
                if let Some(con) = constraint {
                    // free part of the residual + pull of the measured part towards c
                    let pd = con.op.project(&dir);
                    let pull: Vec<f32> = {
                        let my = con.op.measure(y);
                        let diff: Vec<f32> = con.measurements[k]
                            .iter()
                            .zip(&my)
                            .map(|(a, b)| a - b)
                            .collect();
                        con.op.adjoint(&diff)
                    };
                    dir = dir
                        .iter()
                        .zip(&pd)
                        .zip(&pull)
                        .map(|((a, p), u)| a - p + u)
                        .collect();
                }
                let sigma_t = dir.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt() / sqrt_d;
                let tr = &mut traj[k];
                tr.sigma.push(sigma_t as f32);
                tr.steps = t;
                if sigma_t < best[k].0 {
                    best[k].0 = sigma_t;
                    best[k].1.clear();
                    best[k].1.extend_from_slice(fk);
                }
                let outcome = if sigma_t < params.sigma_final {
                    Some(Outcome::Converged)
                } else if !sigma_t.is_finite() || sigma_t > 10.0 * params.sigma0 {
                    Some(Outcome::Diverged)
                } else if sigma_t > STALL_FACTOR * best[k].0 {
                    Some(Outcome::Stalled)
                } else if t >= params.max_steps {
                    Some(Outcome::StepCap)
                } else {
                    None
                };
                if let Some(outcome) = outcome {
                    tr.outcome = outcome;
                    let fk = match outcome {
                        Outcome::Stalled => best[k].1.as_slice(),
                        _ => fk,
                    };
                    out[k] = Some(match constraint {
                        Some(con) => impose(con.op, fk, &con.measurements[k]),
                        None => fk.to_vec(),
                    });
                    progress.update((count - active.len() + 1) as u64, "");
                    continue;
                }
                let h_t = params.h(t);
                let gamma = params.gamma(h_t, sigma_t);
                tr.h.push(h_t as f32);
                let rng = &mut rngs[k];
                for (yv, dv) in y.iter_mut().zip(&dir) {
                    let z: f64 = StandardNormal.sample(rng);
                    *yv += (h_t * *dv as f64 + gamma * z) as f32;
                }
                sigma_prev[k] = sigma_t;
                if params.snapshot_every > 0 && t % params.snapshot_every == 0 {
                    tr.snapshots.push((t, y.clone()));
                }
                still.push(k);
            }
        }
        active = still;
        t += 1;
    }
    progress.finish();
    let data: Vec<f32> = out
        .into_iter()
        .flat_map(|o| o.expect("every sample finished"))
        .collect();
    Ok(Output {
        images: Images::new(data, [count, c, h, w]),
        trajectories: traj,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::{Family, GaussianField};
    use crate::denoise::{DenoiseError, Wiener};
    use crate::fourier;
    use crate::progress::Silent;
    use crate::sampling::operators::{BlockAverage, LowPass, Mask, RandomProjection};

    fn field() -> GaussianField {
        GaussianField::default().periodic()
    }

    fn fast() -> AscentParams {
        AscentParams {
            h0: 0.05,
            beta: 0.5,
            sigma0: 1.0,
            sigma_final: 0.01,
            batch: 8,
            ..Default::default()
        }
    }

    #[test]
    fn wiener_samples_have_the_field_spectrum() {
        // With the exact MMSE denoiser of a Gaussian field, samples must be draws from the field:
        // compare their average periodogram with the spectrum, band by band.
        let (n, count) = (16, 96);
        let f = field();
        let params = AscentParams {
            h0: 0.005,
            beta: 0.05,
            ..Default::default()
        };
        let out = sample(
            &Wiener::blind(f.clone()),
            [1, n, n],
            count,
            0,
            &params,
            3,
            &Silent,
        )
        .unwrap();
        assert!(out
            .trajectories
            .iter()
            .all(|t| t.outcome == Outcome::Converged));
        let p = f.spectrum(n, n);
        let mut est = vec![0.0f64; n * n];
        for k in 0..count {
            let centred: Vec<f32> = out.images.image(k).iter().map(|v| v - 0.5).collect();
            for (e, q) in est.iter_mut().zip(fourier::power(&centred, n, n)) {
                *e += q / count as f64;
            }
        }
        // Radial bands of width 2 cycles; each band pools m coefficients × count samples, so the
        // relative standard error of the band power is about 1/sqrt(m·count/2) (real fields
        // pair ±f). Allow 4 standard errors plus 10% for the algorithm's own bias: σₜ = ‖d‖/√D
        // underestimates the noise when many components are signal-dominated, as in a 1/f²
        // field, so slightly too little noise is injected (measured here: bands 5–8% low).
        for band in 0..4 {
            let (lo, hi) = (1.0 + 2.0 * band as f64, 3.0 + 2.0 * band as f64);
            let ids: Vec<usize> = (0..n * n)
                .filter(|&i| {
                    let r = fourier::radial_freq(i / n, i % n, n, n);
                    r >= lo && r < hi
                })
                .collect();
            let want: f64 = ids.iter().map(|&i| p[i]).sum();
            let got: f64 = ids.iter().map(|&i| est[i]).sum();
            let se = 1.0 / ((ids.len() * count) as f64 / 2.0).sqrt();
            let rel = (got - want).abs() / want;
            assert!(
                rel < 4.0 * se + 0.1,
                "band {lo}–{hi}: power {got:.3e} vs {want:.3e} (rel {rel:.3})"
            );
        }
    }

    #[test]
    fn samples_do_not_depend_on_batch_size_but_on_seed() {
        // the blind oracle is batched like a network, each image with its own σ estimate
        let wiener = Wiener::blind(field());
        let mut p = fast();
        p.batch = 1;
        let a = sample(&wiener, [1, 8, 8], 8, 0, &p, 5, &Silent)
            .unwrap()
            .images;
        p.batch = 8;
        let b = sample(&wiener, [1, 8, 8], 8, 0, &p, 5, &Silent)
            .unwrap()
            .images;
        // sample k alone, as the first of its own run
        let c = sample(&wiener, [1, 8, 8], 1, 3, &p, 5, &Silent)
            .unwrap()
            .images;
        let other = sample(&wiener, [1, 8, 8], 8, 0, &p, 6, &Silent)
            .unwrap()
            .images;
        for k in 0..8 {
            assert_eq!(
                a.image(k),
                b.image(k),
                "sample {k} differs between batch sizes"
            );
        }
        assert_eq!(c.image(0), a.image(3));
        assert_ne!(a, other);
    }

    /// Restores `clean` through `op` `repeats` times (different seeds); checks the constraint
    /// and returns (MSE of a single restoration, MSE of the average, MSE of Mᵀc), summed over
    /// images.
    fn restore_mse(op: &dyn Measurement, clean: &Images, repeats: u64) -> (f64, f64, f64) {
        let wiener = Wiener::blind(field());
        let [_, c, h, w] = clean.shape();
        let meas: Vec<Vec<f32>> = (0..clean.len())
            .map(|i| op.measure(clean.image(i)))
            .collect();
        let con = Constraint {
            op,
            measurements: &meas,
        };
        let runs: Vec<Images> = (0..repeats)
            .map(|seed| {
                restore(&wiener, [c, h, w], con, &fast(), seed, &Silent)
                    .unwrap()
                    .images
            })
            .collect();
        let (mut single, mut mean, mut naive) = (0.0, 0.0, 0.0);
        for (i, m) in meas.iter().enumerate() {
            let again = op.measure(runs[0].image(i));
            let err = again
                .iter()
                .zip(m)
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                err < 1e-4,
                "{}: constraint violated by {err}",
                op.describe()
            );
            let avg: Vec<f32> = (0..clean.dim())
                .map(|p| runs.iter().map(|r| r.image(i)[p]).sum::<f32>() / repeats as f32)
                .collect();
            single += crate::analysis::metrics::mse(runs[0].image(i), clean.image(i));
            mean += crate::analysis::metrics::mse(&avg, clean.image(i));
            naive += crate::analysis::metrics::mse(&op.adjoint(m), clean.image(i));
        }
        (single, mean, naive)
    }

    #[test]
    fn restoration_meets_the_measurement_and_beats_zero_filling() {
        let n = 16;
        let clean = Family::Gaussian(field()).generate(n, 4, 11).unwrap();
        let shape = [1, n, n];
        let ops: Vec<Box<dyn Measurement>> = vec![
            Box::new(Mask::box_hole(shape, 4, 4, 8, 8)),
            Box::new(Mask::random_pixels(shape, 0.7, 1).unwrap()),
            Box::new(RandomProjection::new(n * n, 0.2, 2).unwrap()),
        ];
        for op in &ops {
            let (single, _, naive) = restore_mse(op.as_ref(), &clean, 1);
            assert!(
                single < 0.5 * naive,
                "{}: restored MSE {single} vs naive {naive}",
                op.describe()
            );
        }
    }

    #[test]
    fn restorations_are_posterior_samples_for_smooth_measurements() {
        // For block averages and a low-pass band, Mᵀc is already close to the posterior mean of
        // a stationary Gaussian field (for the band: exactly, Fourier coefficients being
        // independent), and one posterior sample has about twice the MMSE. So a single
        // restoration may not beat Mᵀc, but the average of several must approach it.
        let n = 16;
        let clean = Family::Gaussian(field()).generate(n, 4, 11).unwrap();
        let shape = [1, n, n];
        let ops: Vec<Box<dyn Measurement>> = vec![
            Box::new(BlockAverage::new(shape, 4).unwrap()),
            Box::new(LowPass::new(shape, 3.0).unwrap()),
        ];
        for op in &ops {
            let (single, mean, naive) = restore_mse(op.as_ref(), &clean, 8);
            assert!(mean < single, "{}: averaging did not help", op.describe());
            assert!(
                mean < 1.3 * naive,
                "{}: mean of 8 restorations {mean} vs Mᵀc {naive}",
                op.describe()
            );
        }
    }

    /// A "denoiser" with a floor: it pulls every pixel to 0.5 except pixel 0, which it pushes
    /// away (f = 0.5 + 1.1·(y₀ − 0.5) there), so σₜ falls, bottoms out and climbs.
    struct Repelling;

    impl Denoiser for Repelling {
        fn denoise(&self, y: &Images, _: Option<f32>) -> Result<Images, DenoiseError> {
            let mut f = Images::zeros(y.shape());
            let d = y.dim();
            for (f, y) in f
                .as_mut_slice()
                .chunks_exact_mut(d)
                .zip(y.as_slice().chunks_exact(d))
            {
                f.fill(0.5);
                f[0] = 0.5 + 1.1 * (y[0] - 0.5);
            }
            Ok(f)
        }
        fn name(&self) -> String {
            "repelling".into()
        }
        fn is_blind(&self) -> bool {
            true
        }
    }

    #[test]
    fn samples_past_the_denoisers_floor_stall_and_keep_their_best_image() {
        let mut p = fast();
        p.sigma_final = 1e-4;
        let out = sample(&Repelling, [1, 8, 8], 4, 0, &p, 3, &Silent).unwrap();
        for (k, t) in out.trajectories.iter().enumerate() {
            assert_eq!(t.outcome, Outcome::Stalled, "sample {k}");
            let lowest = t.sigma.iter().copied().fold(f32::INFINITY, f32::min);
            let last = *t.sigma.last().unwrap();
            assert!(
                last > 2.0 * lowest && lowest as f64 > p.sigma_final,
                "{lowest} {last}"
            );
            // σₜ ≥ 0.1·|y₀ − ½|/√D, so the image at the lowest σₜ has |f₀ − ½| ≤ 11·√D·σ_min;
            // the last iterate, at σₜ > 2σ_min, is dominated by the growing y₀
            let f0 = out.images.image(k)[0];
            assert!(
                (f0 - 0.5).abs() <= 11.0 * 8.0 * lowest * 1.001,
                "{f0} vs {lowest}"
            );
            assert!(out.images.image(k)[1..].iter().all(|v| *v == 0.5));
        }
    }

    #[test]
    fn step_cap_marks_samples_unconverged() {
        let mut p = fast();
        p.max_steps = 3;
        let out = sample(&Wiener::blind(field()), [1, 8, 8], 2, 0, &p, 1, &Silent).unwrap();
        assert!(out
            .trajectories
            .iter()
            .all(|t| t.outcome == Outcome::StepCap && t.steps == 3));
        assert!(AscentParams {
            beta: 0.0,
            ..fast()
        }
        .validate()
        .is_err());
    }
}
