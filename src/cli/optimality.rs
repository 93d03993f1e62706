//! `tweedie optimality`: networks against the optimum on families where it is known (see
//! [`tweedie::experiments::optimality`]); trains what is missing, measures, writes the report.

use super::progress::Terminal;
use super::train::{Steps, AUTO_CAP};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use tweedie::data::synthetic::{Boundary, Construction, GaussianField};
use tweedie::experiments::optimality::{self, Baseline, Config, OptimalityDir, Record, Row, Study};
use tweedie::nn::{Arch, NetConfig};
use tweedie::train::{DataConfig, LossWeighting, SigmaSampling, StopRule, TrainConfig};
use tweedie::DeviceSpec;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FamilyName {
    /// Gaussian fields, spectrum ∝ 1/|f|^γ (optimum: the Wiener filter).
    Gaussian,
    /// C^α images (optimal MSE ∝ σ^(2α/(α+1))).
    Calpha,
    /// Disks, a 5-dimensional manifold (optimum: numerical MMSE).
    Disks,
    /// A data set against the same set with shuffled pixels.
    Shuffled,
}

#[derive(Args, Debug)]
pub struct OptimalityArgs {
    /// The family [required unless --resume].
    #[arg(long, value_enum)]
    family: Option<FamilyName>,
    /// C^α: regularities α, comma-separated (one network each).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,5")]
    alphas: Vec<f64>,
    /// C^α: Gaussian processes with power-law spectra and area-sampled edges, or the first
    /// construction's B-spline sums with hard pixel edges (see `tweedie data synth --help`).
    #[arg(long, value_enum, default_value_t = Construction::Spectral)]
    construction: Construction,
    /// Gaussian: spectral exponent γ.
    #[arg(long, default_value_t = 2.0)]
    gamma: f64,
    /// Gaussian: open edges (default) or periodic ones (see `tweedie data synth --help`).
    #[arg(long, value_enum, default_value_t = Boundary::Open)]
    boundary: Boundary,
    /// Shuffled control: the data set (as for `tweedie train --data`).
    #[arg(long, default_value = "fashion-mnist")]
    data: String,
    /// Side of the synthetic images.
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Training images per network.
    #[arg(long, default_value_t = 10000)]
    train_images: usize,
    /// Noise levels of the MSE measurements.
    #[arg(long, value_delimiter = ',', value_parser = super::sigma_arg,
          default_value = "1/255,0.01,0.02,0.05,0.1,0.2,0.4")]
    sigmas: Vec<f32>,
    /// Held-out images per σ.
    #[arg(long, default_value_t = 256)]
    eval_count: usize,
    /// Noise levels at which the Jacobian is opened [default: 0.1; disks: 0.02,0.05,0.1,0.2,0.4].
    #[arg(long, value_delimiter = ',', value_parser = super::sigma_arg)]
    jacobian_sigmas: Option<Vec<f32>>,
    /// Eigenvectors kept and compared.
    #[arg(long, default_value_t = 32)]
    top: usize,
    /// C^α: the σ range of the slope fit, `lo,hi`.
    #[arg(long, value_delimiter = ',', value_parser = super::sigma_arg, default_value = "0.02,0.2")]
    fit_range: Vec<f32>,
    /// Disks: importance samples per image of the MMSE oracle.
    #[arg(long, default_value_t = 2000)]
    oracle_samples: usize,
    /// Architecture.
    #[arg(long, value_enum, default_value_t = Arch::BfUnet)]
    arch: Arch,
    /// BF-UNet scales.
    #[arg(long, default_value_t = 2)]
    blocks: usize,
    /// Feature channels.
    #[arg(long, default_value_t = 16)]
    channels: usize,
    /// BF-CNN layers.
    #[arg(long, default_value_t = 20)]
    layers: usize,
    /// Optimizer steps per network: a number, or `auto` (the default) to train each network
    /// until its validation losses stop improving, at most 20000 steps (`auto:CAP`).
    #[arg(long, value_parser = super::train::steps_arg)]
    steps: Option<Steps>,
    /// Images per step.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Initial Adam learning rate (the rest of the recipe is `tweedie train`'s default).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Largest training noise level (covers the measured σ).
    #[arg(long, default_value = "0.5", value_parser = super::sigma_arg)]
    sigma_max: f32,
    /// How each training image's σ is drawn (as `tweedie train --sigma-sampling`).
    #[arg(long, value_enum, default_value_t = SigmaSampling::Mixture)]
    sigma_sampling: SigmaSampling,
    /// Weight of each image's squared error by its noise level (as `tweedie train
    /// --loss-weighting`).
    #[arg(long, value_enum, default_value_t = LossWeighting::InvSigma)]
    loss_weighting: LossWeighting,
    /// Keep a moving average of the weights with this decay and measure it (0: none).
    #[arg(long, default_value_t = 0.0)]
    ema: f64,
    /// Tiny settings (16×16, 256 images, 80 steps of an 8-channel network, unless --steps
    /// says otherwise): a smoke test of the whole pipeline in seconds, not a result.
    #[arg(long)]
    quick: bool,
    /// Seed of data, networks, noise and oracle draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Device: auto, cpu, wgpu[:N], cuda[:N] or tch.
    #[arg(long, default_value = "auto")]
    device: DeviceSpec,
    /// Study folder.
    #[arg(long)]
    out: PathBuf,
    /// Continue the study in --out with its own configuration: finished networks are kept.
    #[arg(long)]
    resume: bool,
}

fn config(a: &OptimalityArgs, dir: &OptimalityDir) -> Result<Config> {
    if a.resume {
        if !dir.config().exists() {
            bail!(
                "{} holds no optimality study yet: start it with --family",
                dir.root().display()
            );
        }
        let text = std::fs::read_to_string(dir.config())
            .with_context(|| format!("reading {}", dir.config().display()))?;
        let mut cfg: Config = serde_json::from_str(&text)
            .with_context(|| format!("parsing {}", dir.config().display()))?;
        cfg.train.device = a.device;
        return Ok(cfg);
    }
    if dir.config().exists() {
        bail!(
            "{} already holds an optimality study; pass --resume to continue it or choose another --out",
            dir.root().display()
        );
    }
    let Some(family) = a.family else {
        bail!("--family is required (gaussian, calpha, disks or shuffled)");
    };
    let study = match family {
        FamilyName::Gaussian => Study::Gaussian {
            field: GaussianField {
                gamma: a.gamma,
                boundary: a.boundary,
                ..GaussianField::default()
            },
        },
        FamilyName::Calpha => Study::CAlpha {
            alphas: a.alphas.clone(),
            construction: a.construction,
        },
        FamilyName::Disks => Study::Disks,
        FamilyName::Shuffled => Study::Shuffled {
            data: a.data.clone(),
        },
    };
    let [lo, hi] = a.fit_range[..] else {
        bail!("--fit-range takes two noise levels, lo,hi");
    };
    let jacobian_sigmas = a.jacobian_sigmas.clone().unwrap_or_else(|| match family {
        FamilyName::Disks => vec![0.02, 0.05, 0.1, 0.2, 0.4],
        _ => vec![0.1],
    });
    let plan = a.steps.unwrap_or(Steps::Auto(AUTO_CAP));
    let steps = plan.cap();
    let net = NetConfig {
        arch: a.arch,
        image_channels: 1,
        channels: a.channels,
        blocks: a.blocks,
        layers: a.layers,
    };
    let mut data = DataConfig::new("");
    data.split.split_seed = a.seed;
    let mut cfg = Config {
        study,
        size: a.size,
        train_images: a.train_images,
        train: TrainConfig::new(data, net, steps, a.batch, a.seed, a.device),
        sigmas: a.sigmas.clone(),
        eval_count: a.eval_count,
        jacobian_sigmas,
        top: a.top,
        fit_range: [lo, hi],
        oracle_samples: a.oracle_samples,
        baseline: Baseline::default(),
        seed: a.seed,
    };
    let mut plan = Some(plan);
    if a.quick {
        quick(&mut cfg);
        // an explicit --steps still holds
        plan = a.steps;
        if let Some(steps) = a.steps {
            cfg.train.steps = steps.cap();
        }
    }
    // the plan follows the (possibly quick) number of steps
    let t = &cfg.train;
    let mut train = TrainConfig::new(
        t.data.clone(),
        t.net.clone(),
        t.steps,
        t.batch,
        a.seed,
        a.device,
    );
    train.lr = a.lr;
    train.sigma_max = a.sigma_max;
    train.ema = (a.ema != 0.0).then_some(a.ema);
    train.sigma_sampling = a.sigma_sampling;
    train.loss_weighting = a.loss_weighting;
    train.val_count = t.val_count;
    train.min_epoch = t.min_epoch;
    if let Some(Steps::Auto(cap)) = plan {
        train = train.until_converged(StopRule::default(), cap);
    }
    cfg.train = train;
    Ok(cfg)
}

/// The smoke-test settings.
fn quick(cfg: &mut Config) {
    cfg.size = 16;
    cfg.train_images = 256;
    cfg.eval_count = 16;
    cfg.sigmas = vec![0.02, 0.05, 0.1, 0.2];
    cfg.jacobian_sigmas.truncate(2);
    cfg.top = 8;
    cfg.oracle_samples = 200;
    cfg.train.steps = 80;
    cfg.train.batch = 16;
    cfg.train.net.channels = 8;
    cfg.train.val_count = 16;
    cfg.train.min_epoch = 256;
}

pub fn run(a: OptimalityArgs) -> Result<()> {
    let dir = OptimalityDir::new(&a.out);
    let cfg = config(&a, &dir)?;
    cfg.validate()?;
    let progress = Terminal::new();
    let start = std::time::Instant::now();
    let record = optimality::run(&cfg, &dir, &progress)?;
    tweedie::report::optimality::write(&dir, &record)
        .with_context(|| format!("writing the report of {}", dir.root().display()))?;
    summary(&record);
    println!(
        "{:.0} s; study folder: {} (optimality.json, report.html)",
        start.elapsed().as_secs_f64(),
        dir.root().display()
    );
    Ok(())
}

fn summary(record: &Record) {
    let psnr = |m: f64| -10.0 * m.max(1e-20).log10();
    for arm in &record.arms {
        println!("{}:", arm.name);
        // C^α has no computed optimum; its lower bound (the contour told) stands in the column
        let bound = arm.rows.iter().any(|r| r.contour_known.is_some());
        let (label, reference): (&str, fn(&Row) -> Option<f64>) = if bound {
            ("told", |r| r.contour_known)
        } else {
            ("optimum", |r| r.optimum)
        };
        println!(
            "  {:>8} {:>9} {:>9} {:>9} {:>9} {:>10}",
            "σ",
            "network",
            label,
            "DCT",
            "noisy",
            format!("net/{}", &label[..3])
        );
        for r in &arm.rows {
            let opt = reference(r).map_or("—".into(), |o| format!("{:.2}", psnr(o)));
            let ratio = reference(r).map_or("—".into(), |o| format!("{:.3}", r.network / o));
            println!(
                "  {:>8.4} {:>9.2} {:>9} {:>9.2} {:>9.2} {:>10}",
                r.sigma,
                psnr(r.network),
                opt,
                psnr(r.baseline),
                psnr(r.noisy),
                ratio
            );
        }
        if let Some(s) = &arm.slope {
            if let Some(f) = s.network {
                println!(
                    "  slope {:.3} ± {:.3} (optimal α/(α+1) = {:.3}) over σ ∈ [{}, {}]",
                    f.slope, f.stderr, s.optimal, s.range[0], s.range[1]
                );
            }
            if let Some(f) = s.contour_known {
                println!(
                    "  slope with the contour told {:.3} ± {:.3}",
                    f.slope, f.stderr
                );
            }
        }
        for j in &arm.jacobian {
            let mut line = format!("  σ = {:.3}: tr J = {:.1}", j.sigma, j.trace);
            if let Some(t) = j.optimal_trace {
                line += &format!(" (Wiener filter {t:.1}");
                if let Some(h) = &j.homogeneous {
                    line += &format!(", bias-free bound {:.1}", h.trace);
                }
                line += ")";
            }
            if let (Some(net), Some(h)) = (j.eigenvalues.first(), &j.homogeneous) {
                let bound = h.eigenvalues.first().copied().unwrap_or(f64::NAN);
                line += &format!("; top eigenvalue {net:.3} (bias-free bound {bound:.3})");
            }
            println!("{line}");
        }
    }
}
