//! Mutation fuzzing of the readers of untrusted files — IDX, .npy, safetensors weights and
//! training checkpoints, PyTorch checkpoints (zip and legacy pickle), run configs: valid files
//! with seeded random byte flips, truncations, header edits and insertions, and pure noise.
//! Every reader must return without panicking, and every error it returns must be one line
//! naming the file; a finding becomes a case of the bad-input corpus. Seeded, so a failure
//! reproduces: the message names the seed and the mutation.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use tweedie::data::synthetic::{Disks, Family};

/// A damaged copy of `good`.
fn mutate(good: &[u8], rng: &mut ChaCha8Rng) -> (Vec<u8>, String) {
    let mut b = good.to_vec();
    let what = match rng.random_range(0..6) {
        0 => {
            let n = rng.random_range(0..b.len());
            b.truncate(n);
            format!("truncated to {n}")
        }
        1 => {
            let k = rng.random_range(1..8);
            for _ in 0..k {
                let i = rng.random_range(0..b.len());
                b[i] ^= 1 << rng.random_range(0..8);
            }
            format!("{k} bit flips")
        }
        2 => {
            // the header region, where sizes live
            let i = rng.random_range(0..b.len().min(128));
            b[i] = rng.random();
            format!("header byte {i}")
        }
        3 => {
            let i = rng.random_range(0..b.len().min(128));
            for v in b.iter_mut().skip(i).take(8) {
                *v = 0xff;
            }
            format!("0xff × 8 at {i}")
        }
        4 => {
            let i = rng.random_range(0..b.len());
            let extra: Vec<u8> = (0..rng.random_range(1..64)).map(|_| rng.random()).collect();
            b.splice(i..i, extra);
            format!("insertion at {i}")
        }
        _ => {
            let n = rng.random_range(0..256);
            b = (0..n).map(|_| rng.random()).collect();
            format!("{n} random bytes")
        }
    };
    (b, what)
}

/// Feeds `rounds` mutations of `good` to `read` (through a file at `path`); panics name them,
/// and so do errors that span lines or do not name the file.
fn fuzz<E: std::fmt::Display>(
    name: &str,
    good: &[u8],
    path: &Path,
    rounds: u64,
    read: impl Fn(&Path) -> Result<(), E>,
) {
    let file = path.file_name().unwrap().to_string_lossy().to_string();
    for seed in 0..rounds {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (bytes, what) = mutate(good, &mut rng);
        std::fs::write(path, &bytes).unwrap();
        let result = catch_unwind(AssertUnwindSafe(|| read(path)));
        match result {
            Err(_) => panic!("{name}: seed {seed} ({what}) panicked"),
            Ok(Err(e)) => {
                let msg = e.to_string();
                assert!(
                    !msg.contains('\n') && msg.contains(&file),
                    "{name}: seed {seed} ({what}): the error is not one line naming {file}: {msg}"
                );
            }
            Ok(Ok(())) => {}
        }
    }
}

#[test]
fn damaged_files_never_panic_a_reader() {
    std::panic::set_hook(Box::new(|i| {
        // the assertion reports; keep the log short (the readers' caught panics say nothing)
        if let Some(s) = i.payload().downcast_ref::<String>() {
            if s.contains("seed") {
                eprintln!("{s}");
            }
        }
    }));
    let tmp = tempfile::tempdir().unwrap();
    let images = Family::Disks(Disks {}).generate(8, 6, 1).unwrap();

    let npy = tmp.path().join("good.npy");
    tweedie::data::write_npy(&images, &npy).unwrap();
    let good = std::fs::read(&npy).unwrap();
    fuzz("npy", &good, &tmp.path().join("x.npy"), 400, |p| {
        tweedie::data::load_npy(p).map(drop)
    });

    let idx = tmp.path().join("good-idx3-ubyte");
    tweedie::data::write_idx(&images, &idx).unwrap();
    let good = std::fs::read(&idx).unwrap();
    fuzz("idx", &good, &tmp.path().join("x-idx3-ubyte"), 400, |p| {
        tweedie::data::load_idx(p).map(drop)
    });

    let device = tweedie::DeviceSpec::Cpu.device().unwrap();
    let cfg = tweedie::nn::NetConfig {
        arch: tweedie::nn::Arch::BfUnet,
        image_channels: 1,
        channels: 4,
        blocks: 1,
        layers: 3,
    };
    let weights = tmp.path().join("good.safetensors");
    tweedie::nn::checkpoint::save_weights(&cfg.init(&device, 0), &cfg, &weights).unwrap();
    let good = std::fs::read(&weights).unwrap();
    fuzz(
        "safetensors",
        &good,
        &tmp.path().join("x.safetensors"),
        300,
        |p| tweedie::nn::checkpoint::load_weights(p, &device).map(drop),
    );

    // a training checkpoint: weights, Adam's moments and the training state in one file
    let ckpt = tmp.path().join("good-checkpoint.safetensors");
    let net = cfg.init(&device, 0);
    let optim = || -> burn::optim::ModuleOptimizer { burn::optim::AdamConfig::new().init() };
    let state = tweedie::nn::checkpoint::TrainState {
        step: 3,
        seed: 0,
        lr_scale: 1.0,
    };
    tweedie::nn::checkpoint::save_checkpoint(&net, None, &cfg, &optim(), state, &ckpt).unwrap();
    let good = std::fs::read(&ckpt).unwrap();
    fuzz(
        "checkpoint",
        &good,
        &tmp.path().join("x-checkpoint.safetensors"),
        200,
        |p| tweedie::nn::checkpoint::load_checkpoint(p, &device, optim()).map(drop),
    );

    // PyTorch checkpoints, both containers (the fixtures of tests/import.rs)
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch");
    for (file, arch) in [
        ("uip-gray-zip.pt", tweedie::nn::import::SourceArch::BfCnn),
        (
            "dncnn-gray-legacy.pt",
            tweedie::nn::import::SourceArch::BfDncnn,
        ),
    ] {
        let good = std::fs::read(fixtures.join(file)).unwrap();
        fuzz(
            file,
            &good,
            &tmp.path().join(format!("x-{file}")),
            300,
            |p| tweedie::nn::import::import(p, arch, &device).map(drop),
        );
    }

    let config = serde_json::json!({"config": {"steps": 10}, "tweedie_version": "0.1.0"});
    let good = serde_json::to_vec(&config).unwrap();
    fuzz("config", &good, &tmp.path().join("config.json"), 300, |p| {
        let run = tweedie::train::record::RunDir::new(p.parent().unwrap());
        tweedie::train::load_network(&run, &device, tweedie::train::Weights::Ema).map(drop)
    });
    let _ = std::panic::take_hook();
}
