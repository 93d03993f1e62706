//! `tweedie optimality`'s flags turned into the study's [`Config`]: a new study from the flags
//! (the family's defaults, `--quick`'s smoke-test settings, training to convergence unless
//! `--steps` is a number), or a resumed one from its folder.

use super::{FamilyName, OptimalityArgs};
use crate::cli::train::{Steps, AUTO_CAP};
use anyhow::{bail, Result};
use tweedie::data::synthetic::GaussianField;
use tweedie::experiments::optimality::{Baseline, Config, OptimalityDir, Study};
use tweedie::nn::NetConfig;
use tweedie::train::{DataConfig, StopRule, TrainConfig};

pub(super) fn config(a: &OptimalityArgs, dir: &OptimalityDir) -> Result<Config> {
    if a.resume {
        let mut cfg = dir.resume()?;
        cfg.train.device = a.device;
        return Ok(cfg);
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
        cfg.quick();
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
    Ok(dir.start(cfg)?)
}
