//! `tweedie optimality`'s flags turned into the study's [`Config`]: a new study from the flags
//! (the family's defaults, `--quick`'s smoke-test settings, training to convergence unless
//! `--steps` is a number), or a resumed one from its folder.

use super::{FamilyName, OptimalityArgs};
use anyhow::{bail, Result};
use tweedie::data::synthetic::GaussianField;
use tweedie::experiments::optimality::{Config, OptimalityDir, Study};
use tweedie::nn::NetConfig;

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
    let net = NetConfig {
        arch: a.arch,
        image_channels: 1,
        channels: a.channels,
        blocks: a.blocks,
        layers: a.layers,
    };
    let mut cfg = Config::new(study, net, a.seed, a.device);
    cfg.size = a.size;
    cfg.train_images = a.train_images;
    cfg.sigmas = a.sigmas.clone();
    cfg.eval_count = a.eval_count;
    if let Some(sigmas) = &a.jacobian_sigmas {
        cfg.jacobian_sigmas = sigmas.clone();
    }
    cfg.top = a.top;
    cfg.fit_range = [lo, hi];
    cfg.oracle_samples = a.oracle_samples;
    let train = &mut cfg.train;
    train.batch = a.batch;
    train.lr = a.lr;
    train.sigma_max = a.sigma_max;
    train.ema = (a.ema != 0.0).then_some(a.ema);
    train.sigma_sampling = a.sigma_sampling;
    train.loss_weighting = a.loss_weighting;
    if a.quick {
        cfg.quick();
    }
    // an explicit --steps holds, --quick or not
    if let Some(steps) = a.steps {
        cfg.train = cfg.train.replan(steps);
    }
    Ok(dir.start(cfg)?)
}
