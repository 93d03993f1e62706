//! The training recipe's flags (learning-rate plan, noise levels and their draws, loss
//! weighting, weight averaging), shared by `train` and `generalization`.

use super::sigma_arg;
use clap::Args;
use tweedie::train::{LossWeighting, LrSchedule, SigmaSampling, TrainConfig};

/// How to train (see docs/training.md for the measurements behind the defaults).
#[derive(Args, Debug)]
pub struct RecipeArgs {
    /// Initial Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Learning-rate plan over the run's steps (with --steps auto: over its cap, and halved on
    /// each plateau of the validation losses) [default: cosine].
    #[arg(long, value_enum)]
    pub lr_schedule: Option<LrSchedule>,
    /// Step plan: halve the learning rate every this many steps [default: steps/4].
    #[arg(long)]
    pub lr_halve_every: Option<u64>,
    /// Cosine plan: steps of linear warm-up [default: steps/50].
    #[arg(long)]
    pub lr_warmup: Option<u64>,
    /// How each training image's σ is drawn from [--sigma-min, --sigma-max].
    #[arg(long, value_enum, default_value_t = SigmaSampling::Mixture)]
    pub sigma_sampling: SigmaSampling,
    /// Keep a moving average of the weights with this decay (0.999: about the last 1000 steps);
    /// eval, sample, denoise, restore and jacobian use it unless given --weights raw. 0: none.
    #[arg(long, default_value_t = 0.0)]
    pub ema: f64,
    /// Smallest training noise level (0.1 or 25/255).
    #[arg(long, default_value = "0", value_parser = sigma_arg)]
    pub sigma_min: f32,
    /// Largest training noise level.
    #[arg(long, default_value = "1", value_parser = sigma_arg)]
    pub sigma_max: f32,
    /// Weight of each image's squared error by its noise level: `uniform` is the paper's plain
    /// sum; `inv-sigma` (1/σ) keeps low noise levels from being drowned out on a short budget.
    #[arg(long, value_enum, default_value_t = LossWeighting::InvSigma)]
    pub loss_weighting: LossWeighting,
}

impl RecipeArgs {
    /// Sets the recipe's fields of `cfg`, planned over its `steps`.
    pub fn apply(&self, cfg: &mut TrainConfig) {
        let steps = cfg.steps;
        cfg.lr = self.lr;
        cfg.lr_halve_every = self.lr_halve_every.unwrap_or((steps / 4).max(1));
        cfg.lr_schedule = self.lr_schedule.unwrap_or(LrSchedule::Cosine);
        cfg.lr_warmup = match cfg.lr_schedule {
            LrSchedule::Cosine | LrSchedule::Plateau => self.lr_warmup.unwrap_or(steps / 50),
            LrSchedule::Step => 0,
        };
        cfg.sigma_sampling = self.sigma_sampling;
        cfg.ema = (self.ema != 0.0).then_some(self.ema);
        cfg.sigma_min = self.sigma_min;
        cfg.sigma_max = self.sigma_max;
        cfg.loss_weighting = self.loss_weighting;
    }
}
