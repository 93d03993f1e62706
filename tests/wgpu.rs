//! The GPU code path (`--features wgpu`), tested without a GPU on a software Vulkan device
//! (Mesa's lavapipe, Debian `mesa-vulkan-drivers`): the same identities as on the CPU, a short
//! training that learns, samples that do not depend on the batch, and CPU and GPU agreeing on the
//! same weights. The device is `wgpu` (wgpu's choice: a real GPU where there is one) unless
//! `TWEEDIE_TEST_WGPU` names another (`wgpu:cpu`, `wgpu:1`, …).
#![cfg(feature = "wgpu")]

mod common;

use burn::tensor::Device;
use common::{disks, ok, s};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tweedie::data::load_npy;
use tweedie::nn::checkpoint::load_weights;
use tweedie::{DeviceSpec, Images, Mode, Network};

/// The device under test, as the CLI spells it.
fn spec() -> String {
    std::env::var("TWEEDIE_TEST_WGPU").unwrap_or_else(|_| "wgpu".into())
}

fn gpu() -> Device {
    spec()
        .parse::<DeviceSpec>()
        .unwrap()
        .device()
        .expect("a wgpu adapter (install mesa-vulkan-drivers for lavapipe)")
}

/// One run trained on the GPU for the whole file (training is the slow part on lavapipe).
fn trained() -> &'static Path {
    static RUN: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = disks(dir.path(), 64);
        let run = dir.path().join("run");
        ok(&[
            "train",
            "--data",
            s(&data),
            "--blocks",
            "2",
            "--channels",
            "8",
            "--batch",
            "8",
            "--steps",
            "60",
            "--val-count",
            "8",
            "--val-sigmas",
            "0.1",
            "--device",
            &spec(),
            "--out",
            s(&run),
        ]);
        (dir, run)
    })
    .1
}

fn network(device: &Device) -> Network {
    load_weights(&trained().join("model.safetensors"), device)
        .unwrap()
        .0
}

fn noisy() -> Images {
    let dir = trained().parent().unwrap();
    let x = load_npy(&dir.join("disks.npy")).unwrap();
    tweedie::analysis::metrics::add_noise(&x.take(2), 0.1, 3)
}

fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den.max(1e-30)).sqrt()
}

/// A run trained on the GPU learned (its validation PSNR rose) and is an ordinary run folder: the CPU
/// build of the same binary loads and evaluates it.
#[test]
fn a_run_trained_on_the_gpu_learns_and_the_cpu_evaluates_it() {
    let run = trained();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // the loss of single steps is noisy (σ drawn per image); validation at σ = 0.1 is not
    let psnr = |l: &serde_json::Value| l["validation"][0]["psnr"].as_f64().unwrap();
    let (first, last) = (psnr(&lines[0]), psnr(lines.last().unwrap()));
    assert!(last > first + 1.0, "validation PSNR {first} → {last} dB");
    ok(&[
        "eval",
        "--run",
        s(run),
        "--device",
        "cpu",
        "--count",
        "8",
        "--sigmas",
        "0.1,0.2",
    ]);
    let eval = common::json(&run.join("eval.json"));
    for row in eval["test"].as_array().unwrap() {
        let (psnr, noisy) = (
            row["psnr"].as_f64().unwrap(),
            row["input_psnr"].as_f64().unwrap(),
        );
        assert!(psnr > noisy, "{row}");
    }
}

/// The same weights give the same denoiser on the CPU and on the GPU (float rounding apart).
#[test]
fn cpu_and_gpu_agree_on_the_same_weights() {
    let (cpu, gpu) = (Device::flex(), gpu());
    let y = noisy();
    let on = |d: &Device| Images::from_tensor(network(d).denoise(y.to_tensor(d), Mode::Eval));
    let e = rel_err(on(&gpu).as_slice(), on(&cpu).as_slice());
    assert!(e < 1e-5, "relative difference {e}");
}

/// Bias-free on the GPU: f(a·y) = a·f(y); and the linearized network is the Jacobian:
/// J(y)·y = net(y), its adjoint equal to reverse-mode autodiff through the network.
#[test]
fn gpu_identities_homogeneity_jacobian_and_exact_vjp() {
    let device = gpu();
    let net = network(&device);
    let y = noisy().take(1);
    let f = Images::from_tensor(net.denoise(y.to_tensor(&device), Mode::Eval));
    for a in [0.25f32, 3.0] {
        let ay = Images::new(y.as_slice().iter().map(|v| v * a).collect(), y.shape());
        let f_ay = Images::from_tensor(net.denoise(ay.to_tensor(&device), Mode::Eval));
        let af: Vec<f32> = f.as_slice().iter().map(|v| v * a).collect();
        let e = rel_err(f_ay.as_slice(), &af);
        assert!(e < 1e-5, "a = {a}: relative error {e}");
    }

    let lin = net.linearize(y.to_tensor(&device));
    let jy = Images::from_tensor(lin.jvp(y.to_tensor(&device)));
    let out = Images::from_tensor(lin.output().clone());
    let e = rel_err(jy.as_slice(), out.as_slice());
    assert!(e < 1e-5, "‖Jy − net(y)‖/‖net(y)‖ = {e}");

    let vs = noisy();
    let vs = Images::new(vs.as_slice().iter().map(|v| v - 0.5).collect(), vs.shape());
    let ours = Images::from_tensor(lin.vjp(vs.to_tensor(&device)));
    let adev = device.clone().autodiff();
    let anet = network(&adev);
    let k = vs.len();
    let y_rep = y.to_tensor(&adev).repeat_dim(0, k).require_grad();
    let out = anet.forward(y_rep.clone(), Mode::Eval);
    let grads = (out * vs.to_tensor(&adev)).sum().backward();
    let want = Images::from_tensor(y_rep.grad(&grads).expect("tracked"));
    let e = rel_err(ours.as_slice(), want.as_slice());
    assert!(e < 1e-5, "VJP against autodiff: relative error {e}");
}

/// A sample depends on its seed and index only, not on how many are drawn together.
#[test]
fn gpu_samples_do_not_depend_on_the_batch() {
    let run = trained();
    let dir = tempfile::tempdir().unwrap();
    let draw = |batch: &str| -> Images {
        let out = dir.path().join(format!("b{batch}"));
        ok(&[
            "sample",
            "--run",
            s(run),
            "--count",
            "4",
            "--batch",
            batch,
            "--seed",
            "2",
            "--max-steps",
            "60",
            "--device",
            &spec(),
            "--out",
            s(&out),
        ]);
        load_npy(&out.join("samples.npy")).unwrap()
    };
    let (one, four) = (draw("1"), draw("4"));
    let e = rel_err(one.as_slice(), four.as_slice());
    assert!(e < 1e-5, "batch 1 vs 4: relative difference {e}");
}

/// Lavapipe with every buffer capped at 8 MiB: a device of its own (a runtime apart from the
/// shared one), on which a modest batch runs out of memory the way a large one does on a real
/// GPU. (A cap of 4 MiB is below the pages the allocator wants, and refuses everything.) `None`,
/// said on stderr, where there is no software Vulkan device.
fn capped_gpu() -> Option<Device> {
    let device = capped_lavapipe(8 << 20);
    if device.is_none() {
        eprintln!("no software Vulkan device: skipped");
    }
    device
}

fn capped_lavapipe(cap: u64) -> Option<Device> {
    use burn::tensor::wgpu::{wgpu, WgpuSetup};
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        force_fallback_adapter: true,
        ..Default::default()
    }))
    .ok()?;
    let mut limits = adapter.limits();
    limits.max_buffer_size = cap;
    limits.max_storage_buffer_binding_size = cap.min(limits.max_storage_buffer_binding_size);
    let (device, queue) = block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: limits,
        required_features: adapter.features(),
        ..Default::default()
    }))
    .ok()?;
    let backend = adapter.get_info().backend;
    let setup = WgpuSetup {
        instance,
        adapter,
        device,
        queue,
        backend,
    };
    Device::wgpu_options().setup(setup).init().ok()
}

/// wgpu's native futures are ready when first polled; this waits for them without a runtime.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

/// `n` values in [0, 1): a fixed pattern, different for each `k`.
fn pattern(n: usize, k: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * k) % 97) as f32 / 97.0).collect()
}

fn small_unet() -> tweedie::NetConfig {
    tweedie::NetConfig {
        arch: tweedie::nn::Arch::BfUnet,
        image_channels: 1,
        channels: 8,
        blocks: 2,
        layers: 0,
    }
}

/// A training batch the device cannot hold is refused before training with the largest one it
/// can, found by trying; that one then runs. With buffers capped at 8 MiB, the 8-channel
/// network's largest tensor on 16×16 images (the skip concatenation, 16 KiB an image) allows
/// at most 512.
#[test]
fn a_training_batch_the_gpu_cannot_hold_is_refused_with_one_it_can() {
    let Some(gpu) = capped_gpu() else { return };
    let adev = gpu.autodiff();
    let net = small_unet();
    let err =
        tweedie::train::check_device_batch(&net, &adev, 1024, [1, 16, 16], "capped").unwrap_err();
    let fits = err.fits.expect("a smaller batch runs");
    assert!((128..1024).contains(&fits), "{err}");
    assert!(err.reason.contains("allocate"), "{err}");
    assert!(
        err.to_string().contains(&format!("--batch {fits} or less")),
        "{err}"
    );
    tweedie::train::check_device_batch(&net, &adev, fits, [1, 16, 16], "capped").unwrap();
}

/// Denoising a set larger than the device holds at once: the batch shrinks until it runs, and
/// the result is the same as in small batches.
#[test]
fn denoising_on_the_gpu_shrinks_a_batch_it_cannot_hold() {
    use tweedie::Denoiser;
    let Some(gpu) = capped_gpu() else { return };
    let net = small_unet().init(&gpu, 0);
    let y = Images::new(pattern(1024 * 256, 37), [1024, 1, 16, 16]);
    let learned = tweedie::denoise::Learned::new(net.clone(), gpu.clone(), 1).with_batch(1024);
    let whole = learned.denoise(&y, None).unwrap();
    let fitted = learned
        .fitted_batch()
        .expect("the device refused 1024 images at once");
    assert!((64..1024).contains(&fitted), "{fitted}");
    let small = tweedie::denoise::Learned::new(net, gpu, 1).with_batch(64);
    let parts = small.denoise(&y, None).unwrap();
    assert!(rel_err(whole.as_slice(), parts.as_slice()) < 1e-5);
}

/// Jacobian-vector products on a set of vectors larger than the device holds at once: the set
/// is split until the parts run, with the same products as in small sets.
#[test]
fn vjps_on_the_gpu_split_a_set_it_cannot_hold() {
    use tweedie::denoise::Linearize;
    let Some(gpu) = capped_gpu() else { return };
    let net = small_unet().init(&gpu, 0);
    let learned = tweedie::denoise::Learned::new(net, gpu, 1);
    let y = Images::new(pattern(256, 7), [1, 1, 16, 16]);
    let vs = Images::new(pattern(1024 * 256, 13), [1024, 1, 16, 16]);
    let at = learned.linearize(&y, None).unwrap();
    let parts: Vec<Images> = (0..16)
        .map(|p| at.vjp(&vs.select(&(64 * p..64 * (p + 1)).collect::<Vec<_>>())))
        .collect();
    let whole = at.vjp(&vs);
    assert!(rel_err(whole.as_slice(), Images::concat(&parts).as_slice()) < 1e-5);
}
