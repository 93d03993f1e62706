//! `tweedie train`'s flags turned into a [`TrainConfig`]: `--steps` (a count, or `auto` with its
//! cap), a fresh configuration from the flags and the data they name, or the run's own on
//! `--resume`.

use super::TrainArgs;
use anyhow::{bail, Context, Result};
use tweedie::data::SplitSpec;
use tweedie::nn::NetConfig;
use tweedie::train::record::{RunDir, RunRecord};
use tweedie::train::{DataConfig, Steps, StopRule, TrainConfig, TrainingData};

/// Parses `--steps`: `N`, `auto` or `auto:CAP` ([`Steps::parse`]).
pub fn steps_arg(s: &str) -> std::result::Result<Steps, String> {
    Steps::parse(s)
}

impl TrainArgs {
    /// The resolved configuration: from the flags (with the data it resolved), or from the
    /// run folder on --resume.
    pub(super) fn config(&self) -> Result<(TrainConfig, Option<TrainingData>)> {
        let run = RunDir::new(&self.out);
        if self.resume && run.config().exists() {
            let record: RunRecord = run
                .read_config()
                .with_context(|| format!("reading {}", run.config().display()))?;
            let mut cfg = match self.steps {
                Some(Steps::Fixed(steps)) | Some(Steps::Auto(steps)) => record.config.extend(steps),
                None => record.config,
            };
            cfg.device = self.device;
            return Ok((cfg, None));
        }
        let (cfg, data) = self.fresh_config_and_data(Steps::Fixed(2000))?;
        Ok((cfg, Some(data)))
    }

    /// The configuration the flags describe (ignoring any run in --out), with `default` steps
    /// when --steps is not given.
    pub fn fresh_config(&self, default: Steps) -> Result<TrainConfig> {
        Ok(self.fresh_config_and_data(default)?.0)
    }

    /// [`Self::fresh_config`] and the training data it resolved to size the network.
    fn fresh_config_and_data(&self, default: Steps) -> Result<(TrainConfig, TrainingData)> {
        let Some(source) = self.data.clone() else {
            bail!("--data is required (unless --resume finds a run in --out)");
        };
        let plan = self.steps.unwrap_or(default);
        let steps = plan.cap();
        let mut cfg = TrainConfig::new(
            DataConfig {
                source,
                gray: self.gray,
                size: self.size,
                test_size: self.test_size,
                split: SplitSpec {
                    train_size: self.train_size,
                    split: self.split,
                    split_seed: self.split_seed,
                    dedup: self.dedup,
                },
                shuffle_pixels: self.shuffle_pixels,
            },
            NetConfig {
                arch: self.arch,
                image_channels: 1,
                channels: self.channels,
                blocks: self.blocks,
                layers: self.layers,
            },
            steps,
            self.batch,
            self.seed,
            self.device,
        );
        cfg.checkpoint_every = self.checkpoint_every;
        cfg.on_nan = self.on_nan;
        cfg.val_sigmas = self.val_sigmas.clone();
        cfg.val_count = self.val_count;
        cfg.min_epoch = self.min_epoch;
        self.recipe.apply(&mut cfg);
        if let Steps::Auto(cap) = plan {
            let rule = StopRule {
                min_improvement: self.stop_min_improvement,
                patience: self.stop_patience,
                decays: self.stop_decays,
            };
            cfg = cfg.until_converged(rule, cap);
            // an explicit plan still holds (e.g. plateau: constant, halved on plateaus)
            if let Some(schedule) = self.recipe.lr_schedule {
                cfg.lr_schedule = schedule;
            }
            if let Some(warmup) = self.recipe.lr_warmup {
                cfg.lr_warmup = warmup;
            }
        }
        cfg.log_every = self.log_every.unwrap_or(cfg.log_every);
        // the network's channels follow the data
        let data = cfg.data.resolve()?;
        cfg.net.image_channels = data.train.shape()[1];
        Ok((cfg, data))
    }
}
