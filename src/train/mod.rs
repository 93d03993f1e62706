//! Blind training of a bias-free denoiser (Mohan et al. 2020; Kadkhodaie et al. 2024):
//! y = x + σz with σ drawn per image from [σ_min, σ_max] ([`SigmaSampling`]), the network
//! predicts the noise, loss ‖net(y) − (y − x)‖² summed over pixels, weighted by a function of σ
//! ([`LossWeighting`]) and averaged over the batch, Adam with a learning-rate plan over the
//! run's steps ([`LrSchedule`]), and optionally an exponential moving average of the weights
//! ([`crate::nn::ema`]) kept beside them.
//!
//! Extending a finished run (`steps` raised on resume) re-plans the schedule over the new total:
//! the steps already taken stay as they were, and the rest follow the plan the run would have
//! had, had it been started with the new total (cosine: lr(t) for the new T; step halving: the
//! halving period scaled by new/old steps, see [`TrainConfig::extend`]).
//!
//! Everything random is counter-based ([`crate::rng`]): the images of step s come from the
//! permutation of their epoch, the noise of step s from stream (seed, TrainNoise, s). So a run
//! resumed from a checkpoint at step k continues exactly as the uninterrupted run would.
//!
//! The module is laid out by concept: [`config`] (what a run is asked to do: data, recipe,
//! schedules), [`stopping`] (when a run has converged), [`record`] (the run folder and what it
//! records), and the trainer (restore, step, validate, checkpoint).

pub mod config;
pub mod record;
pub mod stopping;
mod trainer;

pub use config::*;
pub use stopping::{StopReason, StopRule, Stopped};
pub use trainer::*;

#[cfg(test)]
mod tests {
    use super::trainer::check_memory;
    use super::*;
    use crate::nn::checkpoint;
    use crate::rng::{stream, Purpose};
    use crate::train::record::{RunDir, RunState};
    use burn::optim::AdamConfig;

    fn plan(schedule: LrSchedule, steps: u64) -> TrainConfig {
        let mut cfg: TrainConfig = serde_json::from_value(old_config_json()).unwrap();
        cfg.lr_schedule = schedule;
        cfg.steps = steps;
        cfg.lr_halve_every = steps / 4;
        cfg.lr_warmup = 10;
        cfg
    }

    #[test]
    fn cosine_plan_warms_up_decays_and_is_replanned_by_an_extension() {
        let cfg = plan(LrSchedule::Cosine, 100);
        assert!((cfg.lr_at(0) - cfg.lr / 10.0).abs() < 1e-12);
        assert!((cfg.lr_at(9) - cfg.lr).abs() < 1e-12);
        assert!(cfg.lr_at(55) < cfg.lr_at(20) && cfg.lr_at(99) < 0.01 * cfg.lr);
        let longer = cfg.extend(200);
        assert_eq!(longer.steps, 200);
        // step 100 of a 200-step plan: lr at (90/190) of the cosine, far from 0
        assert!(longer.lr_at(100) > 0.4 * cfg.lr);
        // the halving period scales with the run
        let step = plan(LrSchedule::Step, 100).extend(200);
        assert_eq!(step.lr_halve_every, 50);
        assert_eq!(
            plan(LrSchedule::Step, 100).extend(100),
            plan(LrSchedule::Step, 100)
        );
    }

    #[test]
    fn sigma_draws_stay_in_range() {
        let mut rng = stream(0, Purpose::TrainNoise, 0);
        for sampling in [
            SigmaSampling::Uniform,
            SigmaSampling::LogUniform,
            SigmaSampling::Mixture,
        ] {
            let draws: Vec<f32> = (0..2000)
                .map(|_| sampling.draw(&mut rng, 0.0, 0.5))
                .collect();
            assert!(
                draws.iter().all(|s| (0.0..=0.5).contains(s)),
                "{sampling:?}"
            );
            let low = draws.iter().filter(|s| **s < 0.05).count();
            match sampling {
                // a tenth of the range below 0.05 uniformly; log-uniform puts 58% there
                SigmaSampling::Uniform => assert!(low < 300, "{low}"),
                SigmaSampling::LogUniform => assert!(low > 1000, "{low}"),
                SigmaSampling::Mixture => assert!((400..900).contains(&low), "{low}"),
            }
        }
    }

    /// The density integrates to 1 and predicts the share of draws in any interval.
    #[test]
    fn sigma_density_matches_the_draws() {
        let mut rng = stream(1, Purpose::TrainNoise, 0);
        let (min, max) = (0.0f64, 0.5f64);
        for sampling in [
            SigmaSampling::Uniform,
            SigmaSampling::LogUniform,
            SigmaSampling::Mixture,
        ] {
            let n = 20000;
            let draws: Vec<f64> = (0..n)
                .map(|_| sampling.draw(&mut rng, min as f32, max as f32) as f64)
                .collect();
            // midpoint rule on a log grid (the log-uniform part lives on [max/256, max])
            let integral = |lo: f64, hi: f64| {
                let k = 4000;
                let (a, b) = (lo.ln(), hi.ln());
                (0..k)
                    .map(|i| {
                        let s = (a + (i as f64 + 0.5) * (b - a) / k as f64).exp();
                        sampling.density(s, min, max) * s * (b - a) / k as f64
                    })
                    .sum::<f64>()
            };
            let total = integral(1e-9, max);
            assert!((total - 1.0).abs() < 1e-3, "{sampling:?}: ∫ = {total}");
            for (lo, hi) in [(0.001, 0.01), (0.01, 0.1), (0.1, 0.5)] {
                let share = draws.iter().filter(|&&s| s > lo && s <= hi).count() as f64 / n as f64;
                let expected = integral(lo, hi);
                assert!(
                    (share - expected).abs() < 0.015,
                    "{sampling:?} ({lo}, {hi}]: drawn {share:.3}, density {expected:.3}"
                );
            }
        }
    }

    #[test]
    fn loss_weights_are_one_at_sigma_max_and_fall_with_sigma_as_documented() {
        let (max, floor) = (0.5f32, 0.005f32);
        for s in [0.0f32, 0.01, 0.1, 0.5] {
            assert_eq!(LossWeighting::Uniform.weight(s, max), 1.0);
            let inv = LossWeighting::InvSigma.weight(s, max);
            assert!((inv - max / (s + floor)).abs() < 1e-3 * inv, "{s}: {inv}");
            let var = LossWeighting::InvVariance.weight(s, max);
            assert!((var - inv * inv).abs() < 1e-3 * var, "{s}: {var}");
        }
        assert!((LossWeighting::InvSigma.weight(max, max) - 1.0 / 1.01).abs() < 1e-6);
        assert!(
            LossWeighting::InvSigma.weight(0.1, max) > LossWeighting::InvSigma.weight(0.2, max)
        );
    }

    /// Data resolved from other settings than the run's are refused before anything trains.
    #[test]
    fn train_on_refuses_data_resolved_from_other_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = tiny_disks(dir.path());
        let mut json = old_config_json();
        json["data"]["source"] = path.display().to_string().into();
        json["device"] = "cpu".into();
        let cfg: TrainConfig = serde_json::from_value(json).unwrap();
        let mut other = cfg.data.clone();
        other.split.train_size = Some(4);
        let data = other.resolve().unwrap();
        let run = RunDir::new(dir.path().join("run"));
        let err = train_on(
            &cfg,
            data,
            &run,
            Session::default(),
            &crate::progress::Silent,
        )
        .err();
        assert!(matches!(&err, Some(TrainError::DataMismatch)), "{err:?}");
        assert!(!run.config().exists(), "nothing is written");
    }

    thread_local! {
        static NAN_AT: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
    }

    /// The loss of `step`, or NaN once at the step a test chose (training runs on its caller's
    /// thread, so the choice is the calling test's alone).
    pub(super) fn inject_nan(step: u64, loss: f32) -> f32 {
        NAN_AT.with(|at| {
            if at.get() == Some(step) {
                at.set(None);
                f32::NAN
            } else {
                loss
            }
        })
    }

    /// A NaN loss stops a run with its last checkpoint intact, or, with `OnNan::Rollback`,
    /// returns to that checkpoint at half the learning rate and finishes; the rollback is in
    /// `metrics.jsonl` and the halved rate in the checkpoint.
    #[test]
    fn a_nan_loss_stops_or_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = tiny_disks(dir.path());
        let mut json = old_config_json();
        json["data"]["source"] = path.display().to_string().into();
        json["data"]["split"]["train_size"] = serde_json::Value::Null;
        json["steps"] = 12.into();
        let cfg: TrainConfig = serde_json::from_value(json).unwrap();
        let silent = &crate::progress::Silent;

        let stop = RunDir::new(dir.path().join("stop"));
        NAN_AT.with(|at| at.set(Some(7)));
        let err = train(&cfg, &stop, Session::default(), silent).unwrap_err();
        assert!(matches!(err, TrainError::Diverged { step: 7, .. }), "{err}");
        let device = cfg.device.device().unwrap().autodiff();
        let ck = checkpoint::load_checkpoint(&stop.checkpoint(), &device, AdamConfig::new().init())
            .unwrap();
        assert_eq!(ck.state.step, 5, "the last good checkpoint");
        assert!(!stop.model().exists());

        let roll = RunDir::new(dir.path().join("roll"));
        let cfg = TrainConfig {
            on_nan: OnNan::Rollback,
            ..cfg
        };
        NAN_AT.with(|at| at.set(Some(7)));
        let report = train(&cfg, &roll, Session::default(), silent).unwrap();
        assert_eq!(report.steps, 12);
        assert!(report.final_loss.is_finite());
        let lines = crate::train::record::read_metrics(&roll).unwrap();
        let events: Vec<_> = lines.iter().filter_map(|l| l.event.as_deref()).collect();
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(events[0].contains("rolled back to step 5"), "{}", events[0]);
        let ck = checkpoint::load_checkpoint(&roll.checkpoint(), &device, AdamConfig::new().init())
            .unwrap();
        assert_eq!((ck.state.step, ck.state.lr_scale), (12, 0.5));
        assert!(roll.model().exists());
    }

    /// A batch the machine cannot hold is refused with the batch that fits, which does fit.
    #[test]
    fn a_batch_larger_than_memory_is_refused_with_one_that_fits() {
        let mut json = old_config_json();
        json["batch"] = 256.into();
        let cfg: TrainConfig = serde_json::from_value(json).unwrap();
        let one = cfg.net.training_bytes(1, 64, 64);
        let available = 100 * one;
        let err = check_memory(&cfg, 64, 64, Some(available)).unwrap_err();
        let TrainError::Memory(crate::resources::Shortfall { fits, .. }) = err else {
            panic!("{err}")
        };
        assert_eq!(fits, 100);
        assert!(err.to_string().contains("--batch 100 or less"));
        let cfg = TrainConfig { batch: fits, ..cfg };
        assert!(check_memory(&cfg, 64, 64, Some(available)).is_ok());
        assert!(
            check_memory(&cfg, 64, 64, None).is_ok(),
            "unknown: not checked"
        );
    }

    /// A full disk at a checkpoint stops training with a message that says what to do; the
    /// previous checkpoint stays byte for byte, no temp file is left, and once there is room
    /// again the run resumes and finishes like one that never ran out.
    #[test]
    fn a_full_disk_keeps_the_last_checkpoint() {
        let (dir, cfg, whole) = tiny_run_and_config();
        let silent = &crate::progress::Silent;

        let run = RunDir::new(dir.path().join("run"));
        let half = Session {
            resume: false,
            stop_at: Some(5),
        };
        train(&cfg, &run, half, silent).unwrap();
        let before = std::fs::read(run.checkpoint()).unwrap();
        // config.json and the log line at step 10 fit; the checkpoint at step 10 does not
        crate::io::full_disk::fill_after(Some(2));
        let err = train(&cfg, &run, Session::resuming(true), silent);
        crate::io::full_disk::fill_after(None);
        let msg = err.unwrap_err().to_string();
        assert!(
            msg.contains("checkpoint.safetensors")
                && msg.contains("No space left")
                && msg.contains("--resume"),
            "{msg}"
        );
        assert_eq!(std::fs::read(run.checkpoint()).unwrap(), before);
        let stray: Vec<_> = std::fs::read_dir(run.root())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(stray.is_empty(), "{stray:?}");
        assert!(!run.model().exists());

        train(&cfg, &run, Session::resuming(true), silent).unwrap();
        assert_eq!(
            std::fs::read(run.model()).unwrap(),
            std::fs::read(whole.model()).unwrap()
        );
    }

    /// `model.safetensors` marks a finished run, so it is the last file written: a run that
    /// stops at any write (a full disk here; a kill alike) never looks finished without its
    /// stopping record, and resuming it ends where a run never stopped ends, byte for byte.
    #[test]
    fn a_run_stopped_at_any_write_resumes_to_the_same_end() {
        let (dir, cfg, whole) = tiny_run_and_config();
        let silent = &crate::progress::Silent;
        for writes in 0.. {
            let cut = RunDir::new(dir.path().join(format!("cut{writes}")));
            crate::io::full_disk::fill_after(Some(writes));
            let failed = train(&cfg, &cut, Session::default(), silent).is_err();
            crate::io::full_disk::fill_after(None);
            if !failed {
                break;
            }
            if cut.model().exists() {
                assert!(cut.stopped().exists(), "finished without stopped.json");
            }
            assert_ne!(cut.state(&cfg), RunState::Finished, "after {writes} writes");
            ensure_trained(&cfg, &cut, silent).unwrap();
            for file in [RunDir::model, RunDir::stopped] {
                assert_eq!(
                    std::fs::read(file(&cut)).unwrap(),
                    std::fs::read(file(&whole)).unwrap(),
                    "after {writes} writes"
                );
            }
        }
    }

    /// A folder with 40 disks of 8×8, a 10-step configuration training on all of them, and the
    /// run of that configuration in `whole/`, trained without interruption.
    fn tiny_run_and_config() -> (tempfile::TempDir, TrainConfig, RunDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = tiny_disks(dir.path());
        let mut json = old_config_json();
        json["data"]["source"] = path.display().to_string().into();
        json["data"]["split"]["train_size"] = serde_json::Value::Null;
        let cfg: TrainConfig = serde_json::from_value(json).unwrap();
        let whole = RunDir::new(dir.path().join("whole"));
        train(&cfg, &whole, Session::default(), &crate::progress::Silent).unwrap();
        (dir, cfg, whole)
    }

    /// 40 disks of 8×8 in `dir/disks.npy`.
    fn tiny_disks(dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("disks.npy");
        let imgs = crate::data::synthetic::Family::Disks(Default::default())
            .generate(8, 40, 1)
            .unwrap();
        crate::data::write_npy(&imgs, &path).unwrap();
        path
    }

    fn old_config_json() -> serde_json::Value {
        serde_json::json!({
            "data": {"source": "fashion-mnist", "gray": false, "size": null, "test_size": null,
                     "split": {"train_size": 10, "split": "a", "split_seed": 0, "dedup": null}},
            "net": {"arch": "bf-unet", "image_channels": 1, "channels": 8, "blocks": 2,
                    "layers": 20},
            "steps": 10, "batch": 4, "lr": 0.001, "lr_halve_every": 5, "sigma_min": 0.0,
            "sigma_max": 1.0, "seed": 0, "checkpoint_every": 5, "log_every": 5,
            "val_sigmas": [0.1], "val_count": 4, "min_epoch": 10, "device": "cpu"
        })
    }

    /// A `config.json` written before the field existed resumes with the objective it was
    /// trained with.
    #[test]
    fn configs_without_a_loss_weighting_read_as_uniform() {
        let mut json = old_config_json();
        let old: TrainConfig = serde_json::from_value(json.clone()).expect("old config");
        assert_eq!(old.loss_weighting, LossWeighting::Uniform);
        // and with the learning-rate plan, σ draws and (no) averaging it was trained with
        assert_eq!(old.lr_schedule, LrSchedule::Step);
        assert_eq!(old.sigma_sampling, SigmaSampling::Uniform);
        assert_eq!((old.lr_warmup, old.ema), (0, None));
        json["loss_weighting"] = "inv-sigma".into();
        let new: TrainConfig = serde_json::from_value(json).expect("new config");
        assert_eq!(new.loss_weighting, LossWeighting::InvSigma);
    }
}
