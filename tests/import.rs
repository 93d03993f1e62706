//! `tweedie import` against PyTorch: the fixtures under tests/fixtures/torch were written by
//! `bench/torch_import.py fixtures` (independent PyTorch definitions of each architecture,
//! random weights, both containers, the networks' outputs on fixed inputs).

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use tweedie::data::{load_npy, Images};
use tweedie::denoise::{Denoiser, Learned};
use tweedie::nn::import::{import, Container, Output, SourceArch};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch")
}

/// (fixture name, architecture) of every network the script writes.
const NETS: &[(&str, SourceArch)] = &[
    ("uip-gray", SourceArch::BfCnn),
    ("uip-color", SourceArch::BfCnn),
    ("paper-gray", SourceArch::BfCnn),
    ("dncnn-gray", SourceArch::BfDncnn),
    ("unet2020-gray", SourceArch::BfUnet2020),
];

fn npy(name: &str) -> Images {
    load_npy(&fixtures().join(format!("{name}.npy"))).unwrap()
}

fn learned(name: &str, container: &str, arch: SourceArch) -> (Learned, Output, Container) {
    let device = tweedie::DeviceSpec::Cpu.device().unwrap();
    let path = fixtures().join(format!("{name}-{container}.pt"));
    let imported = import(&path, arch, &device).unwrap_or_else(|e| panic!("{e}"));
    let channels = imported.config.image_channels;
    (
        Learned::new(imported.net, device, channels),
        imported.source.output,
        imported.source.container,
    )
}

/// max |a − b| / max |b|.
fn relative(a: &Images, b: &Images) -> f32 {
    assert_eq!(a.shape(), b.shape());
    let scale = b.as_slice().iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = a
        .as_slice()
        .iter()
        .zip(b.as_slice())
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    diff / scale
}

#[test]
fn every_fixture_denoises_as_pytorch_does_in_both_containers() {
    for &(name, arch) in NETS {
        for (container, want) in [("zip", Container::Zip), ("legacy", Container::Legacy)] {
            let (net, _, found) = learned(name, container, arch);
            assert_eq!(found, want, "{name}-{container}");
            let x_hat = net.denoise(&npy(&format!("{name}-input")), None).unwrap();
            let err = relative(&x_hat, &npy(&format!("{name}-denoised")));
            assert!(err < 1e-5, "{name}-{container}: relative error {err:e}");
        }
    }
}

#[test]
fn the_output_convention_is_read_from_the_architecture() {
    // universal_inverse_problem's BF_CNN returns the noise: x̂ = y − forward(y)
    let (net, output, _) = learned("uip-gray", "zip", SourceArch::BfCnn);
    assert_eq!(output, Output::Residual);
    let y = npy("uip-gray-input");
    let forward = npy("uip-gray-forward");
    let residual = Images::new(
        y.as_slice()
            .iter()
            .zip(forward.as_slice())
            .map(|(a, b)| a - b)
            .collect(),
        y.shape(),
    );
    assert!(relative(&net.denoise(&y, None).unwrap(), &residual) < 1e-5);
    // bias_free_denoising's DnCNN returns x̂ itself
    let (net, output, _) = learned("dncnn-gray", "legacy", SourceArch::BfDncnn);
    assert_eq!(output, Output::Denoised);
    let y = npy("dncnn-gray-input");
    let x_hat = net.denoise(&y, None).unwrap();
    assert!(relative(&x_hat, &npy("dncnn-gray-forward")) < 1e-5);
    // and the sign matters: y − x̂ is far from x̂
    let flipped = Images::new(
        y.as_slice()
            .iter()
            .zip(x_hat.as_slice())
            .map(|(a, b)| a - b)
            .collect(),
        y.shape(),
    );
    assert!(relative(&flipped, &npy("dncnn-gray-forward")) > 0.1);
}

#[test]
fn every_imported_network_is_homogeneous() {
    for &(name, arch) in NETS {
        let (net, _, _) = learned(name, "zip", arch);
        let y = npy(&format!("{name}-input"));
        let fy = net.denoise(&y, None).unwrap();
        for a in [0.25f32, 3.0] {
            let ay = Images::new(y.as_slice().iter().map(|v| a * v).collect(), y.shape());
            let f_ay = net.denoise(&ay, None).unwrap();
            let a_fy = Images::new(fy.as_slice().iter().map(|v| a * v).collect(), y.shape());
            let err = relative(&f_ay, &a_fy);
            assert!(err < 1e-5, "{name}: f({a}·y) vs {a}·f(y): {err:e}");
        }
    }
}

/// The import's error for `path` as `arch`, which must be one line naming the file.
fn import_error(path: &Path, arch: SourceArch) -> String {
    let device = tweedie::DeviceSpec::Cpu.device().unwrap();
    let err = match import(path, arch, &device) {
        Ok(_) => panic!("{} imported", path.display()),
        Err(e) => e.to_string(),
    };
    assert!(!err.contains('\n'), "more than one line: {err}");
    let file = path.file_name().unwrap().to_string_lossy();
    assert!(err.contains(file.as_ref()), "{err} does not name {file}");
    err
}

#[test]
fn foreign_and_damaged_checkpoints_are_one_line_errors() {
    let f = fixtures();
    let err = import_error(&f.join("foreign-classifier.pt"), SourceArch::BfCnn);
    assert!(err.contains("missing conv_layers.0.weight"), "{err}");
    assert!(
        err.contains("3.weight [2, 4]"),
        "lists what the file has: {err}"
    );
    let err = import_error(&f.join("foreign-biased.pt"), SourceArch::BfCnn);
    assert!(
        err.contains("conv_layers.0.bias [4]") && err.contains("bias-free"),
        "{err}"
    );
    // the right file read as the wrong architecture
    let err = import_error(&f.join("uip-gray-zip.pt"), SourceArch::BfDncnn);
    assert!(
        err.contains("first_layer.weight") && err.contains("--arch"),
        "{err}"
    );
    let err = import_error(&f.join("dncnn-gray-legacy.pt"), SourceArch::BfCnn);
    assert!(err.contains("conv_layers.0.weight"), "{err}");

    let tmp = tempfile::tempdir().unwrap();
    let not_pickle = tmp.path().join("notes.pt");
    std::fs::write(&not_pickle, b"these are not weights\n").unwrap();
    assert!(import_error(&not_pickle, SourceArch::BfCnn).contains("not a readable PyTorch"));
    let empty = tmp.path().join("empty.pt");
    std::fs::write(&empty, b"").unwrap();
    import_error(&empty, SourceArch::BfCnn);
    import_error(&tmp.path().join("absent.pt"), SourceArch::BfCnn);
    for container in ["zip", "legacy"] {
        let good = std::fs::read(f.join(format!("uip-gray-{container}.pt"))).unwrap();
        let cut = tmp.path().join(format!("cut-{container}.pt"));
        std::fs::write(&cut, &good[..good.len() * 2 / 3]).unwrap();
        import_error(&cut, SourceArch::BfCnn);
    }
}

fn tweedie() -> Command {
    Command::cargo_bin("tweedie").unwrap()
}

#[test]
fn an_imported_run_denoises_npy_arrays_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let f = fixtures();
    tweedie()
        .arg("import")
        .arg(f.join("dncnn-gray-legacy.pt"))
        .args(["--arch", "bf-dncnn", "--out"])
        .arg(&run)
        .assert()
        .success();
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(record["imported"]["output"], "denoised");
    assert_eq!(record["imported"]["prefix"], "model.0.");
    assert_eq!(record["net"]["layers"], 5);
    let out = tmp.path().join("x.npy");
    tweedie()
        .args(["denoise", "--run"])
        .arg(&run)
        .arg("--input")
        .arg(f.join("dncnn-gray-input.npy"))
        .arg("--output")
        .arg(&out)
        .assert()
        .success();
    let err = relative(&load_npy(&out).unwrap(), &npy("dncnn-gray-denoised"));
    assert!(err < 1e-5, "{err:e}");
    // a failed import leaves no folder behind, and never replaces a trained run
    let bad = tmp.path().join("bad");
    tweedie()
        .arg("import")
        .arg(f.join("foreign-classifier.pt"))
        .args(["--arch", "bf-cnn", "--out"])
        .arg(&bad)
        .assert()
        .failure();
    assert!(!bad.exists());
}

#[test]
fn every_command_takes_an_imported_run() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    tweedie()
        .arg("import")
        .arg(fixtures().join("uip-gray-zip.pt"))
        .args(["--arch", "bf-cnn", "--out"])
        .arg(&run)
        .assert()
        .success();
    // sampling needs a size: an imported network was trained on images tweedie never saw
    let sample = |extra: &[&str]| {
        tweedie()
            .args(["sample", "--run"])
            .arg(&run)
            .args([
                "--count",
                "2",
                "--sampler",
                "euler",
                "--steps",
                "5",
                "--device",
                "cpu",
            ])
            .args(extra)
            .arg("--out")
            .arg(tmp.path().join("samples"))
            .assert()
    };
    let out = sample(&[]).failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("--size"), "{err}");
    sample(&["--size", "12x10"]).success();
    let samples = load_npy(&tmp.path().join("samples/samples.npy")).unwrap();
    assert_eq!(samples.shape(), [2, 1, 12, 10]);

    // an image of its own size for the Jacobian and restoration
    let image = tmp.path().join("x.png");
    let x = npy("uip-gray-input").select(&[0]);
    let x = Images::new(
        x.as_slice().iter().map(|v| v.clamp(0.0, 1.0)).collect(),
        x.shape(),
    );
    tweedie::report::grid::save_image(&x, &image).unwrap();
    tweedie()
        .args(["jacobian", "--run"])
        .arg(&run)
        .arg("--image")
        .arg(&image)
        .args(["--sigmas", "0.1", "--top", "4", "--device", "cpu", "--out"])
        .arg(tmp.path().join("jac"))
        .assert()
        .success();
    assert!(tmp.path().join("jac/jacobian.json").exists());
    tweedie()
        .args(["jacobian", "--run"])
        .arg(&run)
        .args(["--image", "test:0", "--out"])
        .arg(tmp.path().join("jac2"))
        .assert()
        .failure();
    tweedie()
        .args(["restore", "--run"])
        .arg(&run)
        .args(["--task", "inpaint", "--mask-box", "2,2,4,4", "--input"])
        .arg(&image)
        .args(["--h0", "0.05", "--device", "cpu", "--out"])
        .arg(tmp.path().join("rest"))
        .assert()
        .success();
    // eval wants images to evaluate on
    let data = tmp.path().join("d.npy");
    tweedie::data::write_npy(&npy("uip-gray-denoised"), &data).unwrap();
    tweedie()
        .args(["eval", "--run"])
        .arg(&run)
        .args(["--device", "cpu"])
        .assert()
        .failure();
    tweedie()
        .args(["eval", "--run"])
        .arg(&run)
        .arg("--data")
        .arg(&data)
        .args(["--sigmas", "0.1", "--device", "cpu"])
        .assert()
        .success();
    assert!(run.join("eval.json").exists());
}
