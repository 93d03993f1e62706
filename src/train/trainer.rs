//! The training loop: restore from the checkpoint (or initialise), step, roll back on a
//! non-finite loss, validate and log, checkpoint, and stop at the end of the plan or when the
//! stopping rule says the run has converged.

use super::config::*;
use super::stopping::{Decision, LossPoint, Plateau, StopReason, Stopped};

use crate::analysis::metrics::{denoising_table, DenoisingRow};
use crate::config::InvalidField;
use crate::data::{split, DataError, Images};
use crate::denoise::{DenoiseError, Learned};
use crate::device::DeviceError;
use crate::nn::checkpoint::{self, CheckpointError, TrainState};
use crate::nn::{Mode, NetConfig};
use crate::progress::Progress;
use crate::rng::{derive, stream, Purpose};
use crate::train::record::{MetricsLine, Origin, RunDir, RunRecord, RunState};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use rand::seq::SliceRandom;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// Errors of training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Bad data.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Saving or loading weights.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Device unavailable.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// Validation failed.
    #[error(transparent)]
    Denoise(#[from] DenoiseError),
    /// A setting out of range.
    #[error("invalid training setting")]
    Invalid(#[from] InvalidField),
    /// The data given were resolved from other settings than the configuration's.
    #[error("the training data were resolved from other data settings than the run's")]
    DataMismatch,
    /// The folder already holds a run and resuming was not asked for.
    #[error("{0} already holds a run; resume it or choose another folder")]
    Exists(PathBuf),
    /// The network's channels differ from the images'.
    #[error("the network is configured for {net} channel(s) but the images have {images}")]
    Channels {
        /// The network's image channels.
        net: usize,
        /// The images'.
        images: usize,
    },
    /// The batch would not fit in memory.
    #[error(transparent)]
    Memory(#[from] crate::resources::Shortfall),
    /// The GPU refused the batch for lack of memory.
    #[error(transparent)]
    DeviceMemory(Box<crate::resources::DeviceShortfall>),
    /// A checkpoint made with another seed or network.
    #[error("{0} was made with another seed or network; resume with the run's own config.json")]
    ForeignCheckpoint(PathBuf),
    /// The training images differ from those the run was trained on.
    #[error(
        "the training images differ from those {run} was trained on (fingerprint {now} vs {then})"
    )]
    DataChanged {
        /// The run folder.
        run: PathBuf,
        /// The fingerprint of the images now.
        now: String,
        /// The one in the run's record.
        then: String,
    },
    /// An imported network where a trained one is needed.
    #[error("{0} holds an imported network: it has no training record or training data")]
    Imported(PathBuf),
    /// The run has no final weights yet.
    #[error("{0} has no model.safetensors yet: finish training (resume it)")]
    Unfinished(PathBuf),
    /// File system error.
    #[error("{path}: {source}{}", crate::io::advice(source))]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// SIGINT or SIGTERM: a checkpoint was written at `step`.
    #[error("interrupted at step {step}; checkpoint written in {run}: resume the run to continue")]
    Interrupted {
        /// The run folder.
        run: PathBuf,
        /// The step checkpointed.
        step: u64,
    },
    /// Another process is writing the run folder.
    #[error(transparent)]
    Locked(#[from] crate::lock::LockError),
    /// The loss became NaN or infinite.
    #[error("loss became {loss} at step {step}; the last checkpoint is intact: lower the learning rate and resume")]
    Diverged {
        /// The step.
        step: u64,
        /// The loss value.
        loss: f32,
    },
}

/// What a training session reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainReport {
    /// Steps done in total.
    pub steps: u64,
    /// Step training started from (0, or the checkpoint's).
    pub resumed_from: u64,
    /// Mean loss over the last logging window.
    pub final_loss: f64,
    /// Validation at the end.
    pub validation: Vec<DenoisingRow>,
    /// Training throughput (images per second, this session).
    pub images_per_second: f64,
    /// Where and why training ended (`None`: this session stopped before the end, resumable).
    pub stopped: Option<Stopped>,
}

/// The stopping rule's measure of one set of denoising rows: the mean of MSE/σ² over the
/// validation σ's, so that every noise level counts alike.
pub fn watched_loss(rows: &[DenoisingRow]) -> f64 {
    rows.iter()
        .map(|r| r.mse / (r.sigma as f64).powi(2))
        .sum::<f64>()
        / rows.len().max(1) as f64
}

/// The stopping rule's losses logged in `metrics.jsonl` up to `step`, in order. A rollback's
/// event line restarts the history at the step it returned to: the lines logged between that
/// step and the failure belong to a path the run abandoned.
fn logged_losses(run: &RunDir, step: u64) -> Result<Vec<LossPoint>, TrainError> {
    let mut points: Vec<LossPoint> = Vec::new();
    // a missing log reads as empty
    let lines = crate::train::record::read_metrics(run).map_err(io(run.metrics()))?;
    for line in lines {
        if line.event.is_some() {
            points.retain(|p| p.step <= line.step);
        } else if let Some(p) = line.stopping.filter(|p| p.step <= step) {
            points.push(p);
        }
    }
    Ok(points)
}

/// The images of each step, epoch by epoch: a training set of N images is repeated to fill an
/// epoch (at least `min_epoch` images) and each epoch is shuffled by its own stream.
struct EpochOrder {
    n: usize,
    len: usize,
    seed: u64,
    cached: Option<(u64, Vec<usize>)>,
}

impl EpochOrder {
    fn new(n: usize, min_epoch: usize, seed: u64) -> Self {
        Self {
            n,
            len: split::epoch_len(n, min_epoch),
            seed,
            cached: None,
        }
    }

    /// Training-set index of the `p`-th image drawn since the start of training.
    fn image(&mut self, p: u64) -> usize {
        let epoch = p / self.len as u64;
        if self.cached.as_ref().map(|c| c.0) != Some(epoch) {
            let mut order: Vec<usize> = (0..self.len).map(|i| i % self.n).collect();
            order.shuffle(&mut stream(self.seed, Purpose::Epoch, epoch));
            self.cached = Some((epoch, order));
        }
        self.cached.as_ref().expect("filled above").1[(p % self.len as u64) as usize]
    }
}

/// The clean batch and its noise for step `step`.
fn batch_at(
    cfg: &TrainConfig,
    train: &Images,
    order: &mut EpochOrder,
    step: u64,
) -> (Images, Images, Vec<f32>) {
    let b = cfg.batch as u64;
    let idx: Vec<usize> = (0..b).map(|i| order.image(step * b + i)).collect();
    let x = train.select(&idx);
    let mut noise = Images::zeros(x.shape());
    let d = x.dim();
    let mut rng = stream(cfg.seed, Purpose::TrainNoise, step);
    let mut weights = Vec::with_capacity(cfg.batch);
    for img in noise.as_mut_slice().chunks_exact_mut(d) {
        let sigma = cfg
            .sigma_sampling
            .draw(&mut rng, cfg.sigma_min, cfg.sigma_max);
        weights.push(cfg.loss_weighting.weight(sigma, cfg.sigma_max));
        for v in img {
            let z: f32 = StandardNormal.sample(&mut rng);
            *v = sigma * z;
        }
    }
    (x, noise, weights)
}

fn io(path: PathBuf) -> impl FnOnce(std::io::Error) -> TrainError {
    move |source| TrainError::Io { path, source }
}

/// Tries a training step's forward and backward passes at `batch` on a GPU (`device`, with
/// autodiff) before training starts, and refuses a batch the device cannot hold, naming the
/// largest one it can (found by trying smaller ones, [`crate::resources::largest_fitting`]).
/// Nothing the run keeps is touched: the trials run on a network of their own (a forward pass
/// in training mode moves the norms' running statistics, which a clone would share), on a fixed
/// pattern rather than training data, and their gradients are dropped. On success this costs
/// one step (and compiles the step's kernels, which the first real step would have done).
pub fn check_device_batch(
    net: &NetConfig,
    device: &Device,
    batch: usize,
    [c, h, w]: [usize; 3],
    device_name: &str,
) -> Result<(), crate::resources::DeviceShortfall> {
    let net = net.init(device, 0);
    let mut reason = None;
    let trial = |b: usize| -> Result<bool, std::convert::Infallible> {
        let run = crate::device::within_memory(|| {
            let pattern = (0..b * c * h * w)
                .map(|i| (i % 251) as f32 / 251.0)
                .collect();
            let y = Images::new(pattern, [b, c, h, w]).to_tensor(device);
            let loss = (net.forward(y.clone(), Mode::Train) - y).square().sum();
            drop(loss.backward());
            loss.try_into_data()
        });
        if let Err(line) = run {
            reason.get_or_insert(line);
            device.memory_cleanup();
            return Ok(false);
        }
        Ok(true)
    };
    let Ok(fits) = crate::resources::largest_fitting(batch, trial);
    match (fits, reason) {
        (Some(f), _) if f >= batch => Ok(()),
        (fits, reason) => Err(crate::resources::DeviceShortfall {
            device: device_name.to_string(),
            batch,
            h,
            w,
            fits,
            reason: reason.unwrap_or_default(),
            purpose: " to train",
        }),
    }
}

/// Refuses a batch whose training would not fit in `available` bytes (`None`: unknown).
pub(super) fn check_memory(
    cfg: &TrainConfig,
    h: usize,
    w: usize,
    available: Option<u64>,
) -> Result<(), TrainError> {
    let per_image = cfg.net.training_bytes(1, h, w);
    crate::resources::check_batch(per_image, cfg.batch, [h, w], available, " to train")?;
    Ok(())
}

/// How one call to [`train`] treats the run folder and how far it goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Session {
    /// Continue from `checkpoint.safetensors`; without it a folder that already holds a run is
    /// refused.
    pub resume: bool,
    /// Stop after this step (checkpointed, resumable) instead of at the end of the plan: a
    /// run split over several jobs follows the same plan, and ends bit for bit where an
    /// uninterrupted one would.
    pub stop_at: Option<u64>,
}

impl Session {
    /// A whole run from the start (`resume = false`) or from its checkpoint.
    pub fn resuming(resume: bool) -> Self {
        Self {
            resume,
            stop_at: None,
        }
    }
}

/// Trains (or resumes, when the session says so) and writes the run folder.
pub fn train(
    cfg: &TrainConfig,
    run: &RunDir,
    session: Session,
    progress: &dyn Progress,
) -> Result<TrainReport, TrainError> {
    cfg.validate()?;
    train_on(cfg, cfg.data.resolve()?, run, session, progress)
}

/// [`train`] on training data already resolved from `cfg.data` (loading a large image folder
/// twice, once to size the network and once to train, took as long as loading it).
pub fn train_on(
    cfg: &TrainConfig,
    data: TrainingData,
    run: &RunDir,
    session: Session,
    progress: &dyn Progress,
) -> Result<TrainReport, TrainError> {
    cfg.validate()?;
    let resume = session.resume;
    let end = session.stop_at.map_or(cfg.steps, |s| s.min(cfg.steps));
    if data.config != cfg.data {
        return Err(TrainError::DataMismatch);
    }
    let _lock = crate::lock::FolderLock::acquire(run.root())?;
    let has_run = run.config().exists();
    if has_run && !resume {
        return Err(TrainError::Exists(run.root().to_path_buf()));
    }
    let [c, h, w] = data.train.image_shape();
    if c != cfg.net.image_channels {
        return Err(TrainError::Channels {
            net: cfg.net.image_channels,
            images: c,
        });
    }
    let device = cfg.device.device()?;
    // host memory is the limit on the CPU, checked by estimate; a GPU states none, so there
    // the batch is tried (below, after the checkpoint checks)
    let host = crate::device::is_host(&device);
    if host {
        check_memory(cfg, h, w, crate::resources::available_memory())?;
    }
    let adev = device.clone().autodiff();
    let fresh_optim = || AdamConfig::new().init();

    let checkpoint_path = run.checkpoint();
    // the checkpoint, or the initial state: what a resume starts from and a rollback returns to
    let restore = || -> Result<_, TrainError> {
        let (net, optim, state, saved_ema): (_, ModuleOptimizer, _, _) = if checkpoint_path.exists()
        {
            let ck = checkpoint::load_checkpoint(&checkpoint_path, &adev, fresh_optim())?;
            if ck.state.seed != cfg.seed || ck.config != cfg.net {
                return Err(TrainError::ForeignCheckpoint(checkpoint_path.clone()));
            }
            (ck.net, ck.optim, ck.state, ck.ema.map(|e| e.valid()))
        } else {
            let state = TrainState {
                step: 0,
                seed: cfg.seed,
                lr_scale: 1.0,
            };
            (cfg.net.init(&adev, cfg.seed), fresh_optim(), state, None)
        };
        // the moving average starts from the weights it is first taken of
        let ema = cfg.ema.map(|_| saved_ema.unwrap_or_else(|| net.valid()));
        Ok((net, optim, state, ema))
    };
    if !resume && checkpoint_path.exists() {
        // a folder without config.json but with a checkpoint: not ours to continue
        return Err(TrainError::Exists(run.root().to_path_buf()));
    }
    let (mut net, mut optim, state, mut ema) = restore()?;
    let (start, mut lr_scale) = (state.step, state.lr_scale);
    if !host && start < end {
        check_device_batch(
            &cfg.net,
            &adev,
            cfg.batch,
            [c, h, w],
            &cfg.device.describe(),
        )
        .map_err(|e| TrainError::DeviceMemory(Box::new(e)))?;
    }

    let record = RunRecord {
        config: cfg.clone(),
        tweedie_version: env!("CARGO_PKG_VERSION").into(),
        data_fingerprint: data.dataset.fingerprint.clone(),
        train_fingerprint: data.train.fingerprint(),
        train_images: data.train.len(),
        image_shape: [c, h, w],
        num_params: net.param_count(),
    };
    if has_run {
        let old: RunRecord = run.read_config().map_err(io(run.config()))?;
        if old.train_fingerprint != record.train_fingerprint {
            return Err(TrainError::DataChanged {
                run: run.root().to_path_buf(),
                now: record.train_fingerprint,
                then: old.train_fingerprint,
            });
        }
    }
    run.write_config(&record).map_err(io(run.config()))?;
    if resume {
        crate::train::record::truncate_metrics(run, start).map_err(io(run.metrics()))?;
    }

    let val = data.dataset.test.take(cfg.val_count);
    // the stopping rule's second signal: as many training images, with the same fixed noise
    let fit = data.train.take(cfg.val_count);
    let mut plateau = match cfg.stop {
        Some(rule) => Some(Plateau::replay(rule, logged_losses(run, start)?)),
        None => None,
    };
    // a run the rule has stopped is finished, whatever its cap
    let mut end = if plateau.as_ref().is_some_and(Plateau::stopped) {
        start
    } else {
        end
    };
    let mut order = EpochOrder::new(data.train.len(), cfg.min_epoch, cfg.seed);
    progress.log(&format!(
        "{:?}: {} parameters; {} steps of {} images on {}",
        cfg.net.arch,
        record.num_params,
        cfg.steps,
        cfg.batch,
        cfg.device.describe()
    ));
    progress.start("training", cfg.steps);
    progress.update(start, "");
    let started = Instant::now();
    let mut window_start = Instant::now();
    let (mut loss_sum, mut loss_n) = (0.0f64, 0u64);
    let mut last_loss = f64::NAN;
    let mut validation = Vec::new();

    let watch = crate::interrupt::Watch::start();
    let mut rollbacks = 0;
    let mut step = start;
    while step < end {
        let (x, noise, weights) = batch_at(cfg, &data.train, &mut order, step);
        let x = x.to_tensor(&adev);
        let noise = noise.to_tensor(&adev);
        let y = x + noise.clone();
        let residual = net.forward(y, Mode::Train);
        let error = (residual - noise).square();
        let error = match cfg.loss_weighting {
            LossWeighting::Uniform => error,
            _ => {
                let w = Tensor::<1>::from_floats(weights.as_slice(), &adev);
                error * w.reshape([cfg.batch, 1, 1, 1])
            }
        };
        let loss: Tensor<1> = error.sum().div_scalar(cfg.batch as f64);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        let lr = cfg.lr_at(step) * lr_scale;
        net = optim.step(lr, net, grads);
        if let (Some(beta), Some(average)) = (cfg.ema, ema.take()) {
            ema = Some(crate::nn::ema::update(
                average,
                &net.valid(),
                crate::nn::ema::decay_at(beta, step),
            ));
        }
        let l: f32 = loss.into_scalar();
        #[cfg(test)]
        let l = super::tests::inject_nan(step, l);
        if !l.is_finite() {
            if cfg.on_nan == OnNan::Stop || rollbacks == MAX_ROLLBACKS {
                return Err(TrainError::Diverged { step, loss: l });
            }
            rollbacks += 1;
            let (n, o, state, e) = restore()?;
            (net, optim, ema) = (n, o, e);
            if let Some(rule) = cfg.stop {
                plateau = Some(Plateau::replay(rule, logged_losses(run, state.step)?));
            }
            lr_scale = state.lr_scale * 0.5;
            let event = format!(
                "loss {l} at step {step}: rolled back to step {}, learning rate ×{lr_scale}",
                state.step
            );
            let line = MetricsLine {
                step: state.step,
                loss: if loss_n > 0 {
                    loss_sum / loss_n as f64
                } else {
                    0.0
                },
                lr: cfg.lr_at(state.step) * lr_scale,
                validation: Vec::new(),
                images_per_second: 0.0,
                event: Some(event.clone()),
                stopping: None,
            };
            crate::io::append_json_line(&run.metrics(), &line).map_err(io(run.metrics()))?;
            progress.log(&event);
            (loss_sum, loss_n) = (0.0, 0);
            step = state.step;
            continue;
        }
        loss_sum += l as f64;
        loss_n += 1;
        let done = step + 1;
        progress.update(done, &format!("loss {l:.3}"));

        if done % cfg.log_every == 0 || done == end {
            let secs = window_start.elapsed().as_secs_f64().max(1e-9);
            let ips = (loss_n as f64 * cfg.batch as f64) / secs;
            let weights = ema.clone().unwrap_or_else(|| net.valid());
            let learned = Learned::new(weights, device.clone(), c);
            validation = denoising_table(
                &learned,
                &val,
                &cfg.val_sigmas,
                derive(cfg.seed, Purpose::Validation, &[]),
            )?;
            last_loss = loss_sum / loss_n as f64;
            // the rule is watched on the plan's log steps only, so that a session stopped
            // elsewhere (--stop-at, a signal) logs nothing the uninterrupted run did not
            let mut stopping = None;
            if let Some(p) = plateau.as_mut().filter(|_| done % cfg.log_every == 0) {
                let fit_rows = denoising_table(
                    &learned,
                    &fit,
                    &cfg.val_sigmas,
                    derive(cfg.seed, Purpose::Validation, &[1]),
                )?;
                let point = LossPoint {
                    step: done,
                    held_out: watched_loss(&validation),
                    train: watched_loss(&fit_rows),
                };
                stopping = Some(point);
                match p.observe(point) {
                    Decision::Continue => {}
                    Decision::Decay => {
                        lr_scale *= 0.5;
                        progress.log(&format!(
                            "step {done}: losses on a plateau, learning rate halved (×{lr_scale})"
                        ));
                    }
                    Decision::Stop => {
                        progress.log(&format!("step {done}: converged (losses on a plateau)"));
                        end = done;
                    }
                }
            }
            let line = MetricsLine {
                step: done,
                loss: last_loss,
                lr,
                validation: validation.clone(),
                images_per_second: ips,
                event: None,
                stopping,
            };
            crate::io::append_json_line(&run.metrics(), &line).map_err(io(run.metrics()))?;
            progress.log(&format!(
                "step {done}: loss {last_loss:.4}, {}",
                validation
                    .iter()
                    .map(|r| format!(
                        "σ={:.3} PSNR {:.2} dB (noisy {:.2})",
                        r.sigma, r.psnr, r.input_psnr
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            (loss_sum, loss_n) = (0.0, 0);
            window_start = Instant::now();
        }
        if cfg.snapshots.contains(&done) {
            let path = run.snapshot(done);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
            }
            let weights = ema.clone().unwrap_or_else(|| net.valid());
            checkpoint::save_weights(&weights, &cfg.net, &path)?;
        }
        // a stop asked for by SIGINT/SIGTERM checkpoints here, like a scheduled one
        let interrupted = crate::interrupt::requested() && done < end;
        if done % cfg.checkpoint_every == 0 || done == end || interrupted {
            checkpoint::save_checkpoint(
                &net,
                ema.as_ref(),
                &cfg.net,
                &optim,
                TrainState {
                    step: done,
                    seed: cfg.seed,
                    lr_scale,
                },
                &checkpoint_path,
            )?;
        }
        if interrupted {
            progress.finish();
            return Err(TrainError::Interrupted {
                run: run.root().to_path_buf(),
                step: done,
            });
        }
        step = done;
    }
    drop(watch);
    progress.finish();
    let converged = plateau.as_ref().is_some_and(Plateau::stopped);
    let stopped = (end == cfg.steps || converged).then(|| Stopped {
        step: end,
        reason: match (converged, cfg.stop) {
            (true, _) => StopReason::Converged,
            (false, Some(_)) => StopReason::Cap,
            (false, None) => StopReason::Steps,
        },
        decays: plateau.as_ref().map_or(0, Plateau::decays),
        cap: cfg.steps,
    });
    if let Some(stopped) = &stopped {
        // `model.safetensors` marks a run finished (`RunDir::state`), so it is written last: a
        // process killed before it leaves a run that resumes, never one that looks finished
        // without its averaged weights or its stopping record
        if let Some(average) = &ema {
            checkpoint::save_weights(average, &cfg.net, &run.model_ema())?;
        }
        crate::io::write_json(&run.stopped(), stopped).map_err(io(run.stopped()))?;
        checkpoint::save_weights(&net.valid(), &cfg.net, &run.model())?;
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    Ok(TrainReport {
        steps: end.max(start),
        resumed_from: start,
        final_loss: last_loss,
        validation,
        images_per_second: end.saturating_sub(start) as f64 * cfg.batch as f64 / secs,
        stopped,
    })
}

/// Trains the run of `cfg` in `run` unless it is finished there: resumes a partial run, starts
/// over a folder that holds something else (another configuration, a deleted config). The
/// state found is returned. What studies build on: every one of their runs resumes alike.
pub fn ensure_trained(
    cfg: &TrainConfig,
    run: &RunDir,
    progress: &dyn Progress,
) -> Result<RunState, TrainError> {
    let state = run.state(cfg);
    match state {
        RunState::Finished => {
            // a run found under another data path (its study folder moved): the record now
            // names where the data are, so the run's own commands (eval, sample) find them
            let rec: RunRecord = run.read_config().map_err(io(run.config()))?;
            if rec.config.data.source != cfg.data.source {
                let config = TrainConfig {
                    data: cfg.data.clone(),
                    ..rec.config.clone()
                };
                let moved = RunRecord { config, ..rec };
                run.write_config(&moved).map_err(io(run.config()))?;
            }
            return Ok(state);
        }
        RunState::Missing if run.root().exists() => {
            std::fs::remove_dir_all(run.root()).map_err(io(run.root().to_path_buf()))?;
        }
        _ => {}
    }
    train(cfg, run, Session::resuming(true), progress)?;
    Ok(state)
}

/// Which weights of a run to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Weights {
    /// The moving average when the run keeps one (`model-ema.safetensors`), else the last
    /// weights.
    #[default]
    Ema,
    /// The last weights of training (`model.safetensors`).
    Raw,
}

/// Loads the trained network of a run folder as a blind denoiser on `device` (its moving
/// average of the weights when it keeps one; see [`load_weights`] to choose).
pub fn load_denoiser(run: &RunDir, device: &Device) -> Result<(Learned, RunRecord), TrainError> {
    load_weights(run, device, Weights::Ema)
}

/// Loads the chosen weights of a run folder trained by tweedie as a blind denoiser on
/// `device`, with its training record (an imported network has none: see [`load_network`]).
pub fn load_weights(
    run: &RunDir,
    device: &Device,
    weights: Weights,
) -> Result<(Learned, RunRecord), TrainError> {
    match load_network(run, device, weights)? {
        (net, Origin::Trained(record)) => Ok((net, *record)),
        (_, Origin::Imported(_)) => Err(TrainError::Imported(run.root().to_path_buf())),
    }
}

/// Loads the network of any run folder, trained or imported, as a blind denoiser on `device`.
pub fn load_network(
    run: &RunDir,
    device: &Device,
    weights: Weights,
) -> Result<(Learned, Origin), TrainError> {
    let origin = Origin::read(run).map_err(|source| TrainError::Io {
        path: run.config(),
        source,
    })?;
    if !run.model().exists() {
        return Err(TrainError::Unfinished(run.root().to_path_buf()));
    }
    let model = match weights {
        Weights::Ema if run.model_ema().exists() => run.model_ema(),
        _ => run.model(),
    };
    let (net, cfg) = checkpoint::load_weights(&model, device)?;
    Ok((
        Learned::new(net, device.clone(), cfg.image_channels),
        origin,
    ))
}
