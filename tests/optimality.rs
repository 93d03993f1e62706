//! `tweedie optimality --quick` end to end for every family: a complete `optimality.json`, its
//! figures and page, resume without retraining, and clear errors for bad settings.

mod common;

use common::{disks, fails, ok, s};
#[cfg(unix)]
use common::{logged_step, signal_when};
use serde_json::Value;
use std::path::Path;

fn record(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("optimality.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn quick(family: &str, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "optimality",
        "--family",
        family,
        "--quick",
        "--device",
        "cpu",
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    ok(&args)
}

/// Every arm has one finite row per σ for the network, the reference and the noisy input,
/// and a Jacobian summary per Jacobian σ with a positive trace.
/// Resumes the Gaussian study in `out` and checks that its network was not trained again.
fn resume_without_retraining(out: &Path) {
    let model = out.join("runs/gaussian/model.safetensors");
    let written = |m: &Path| std::fs::metadata(m).unwrap().modified().unwrap();
    let (bytes, before) = (std::fs::read(&model).unwrap(), written(&model));
    ok(&["optimality", "--resume", "--device", "cpu", "--out", s(out)]);
    assert_eq!(written(&model), before, "retrained");
    assert!(std::fs::read(&model).unwrap() == bytes);
}

fn check_arms(rec: &Value, arms: &[&str], with_optimum: bool) {
    let got: Vec<&str> = rec["arms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(got, arms);
    let sigmas = rec["config"]["sigmas"].as_array().unwrap().len();
    for arm in rec["arms"].as_array().unwrap() {
        let rows = arm["rows"].as_array().unwrap();
        assert_eq!(rows.len(), sigmas);
        for r in rows {
            for key in ["network", "baseline", "noisy"] {
                let v = r[key].as_f64().unwrap();
                assert!(v.is_finite() && v > 0.0, "{key} = {v}");
            }
            assert_eq!(r["optimum"].is_f64(), with_optimum, "{r}");
        }
        let jac = arm["jacobian"].as_array().unwrap();
        assert!(!jac.is_empty());
        assert!(jac.iter().all(|j| j["trace"].as_f64().unwrap() > 0.0));
    }
}

#[test]
fn gaussian_fields_against_the_wiener_filter() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gauss");
    let printed = quick("gaussian", &out, &[]);
    assert!(printed.contains("net/opt"), "{printed}");
    assert!(printed.contains("bias-free bound"), "{printed}");
    let rec = record(&out);
    check_arms(&rec, &["gaussian"], true);
    let arm = &rec["arms"][0];
    // the Wiener filter is optimal: no denoiser measured on the same images beats it
    for r in arm["rows"].as_array().unwrap() {
        let opt = r["optimum"].as_f64().unwrap();
        assert!(opt <= r["network"].as_f64().unwrap() * 1.0001);
        assert!(opt <= r["baseline"].as_f64().unwrap() * 1.0001);
        // the blind optimum does not know σ: no better than the Wiener filter at the true σ
        // (in expectation; 1% of slack for the quick study's few images)
        assert!(r["blind_optimum"].as_f64().unwrap() >= 0.99 * opt, "{r}");
        assert!(
            r["homogeneous_optimum"].as_f64().unwrap() >= 0.99 * opt,
            "{r}"
        );
    }
    let j = &arm["jacobian"][0];
    let top = rec["config"]["top"].as_u64().unwrap() as usize;
    assert_eq!(j["optimal_eigenvalues"].as_array().unwrap().len(), top);
    let bands = j["band_fractions"].as_array().unwrap();
    assert_eq!(bands.len(), top);
    assert!(bands
        .iter()
        .all(|b| (0.0..=1.0 + 1e-9).contains(&b.as_f64().unwrap())));
    // the bias-free bound opened at the same image: its spectrum, tr J and its eigenvectors'
    // principal angles with the network's
    let h = &j["homogeneous"];
    let values: Vec<f64> = (h["eigenvalues"].as_array().unwrap().iter())
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(values.len(), top);
    assert!(values.windows(2).all(|p| p[0] >= p[1] - 1e-9), "{values:?}");
    let side = rec["config"]["size"].as_f64().unwrap();
    let trace = h["trace"].as_f64().unwrap();
    assert!(trace > values[0] && trace < side * side, "{h}");
    let cos = h["principal_cosines"].as_array().unwrap();
    assert_eq!(cos.len(), top);
    assert!(cos
        .iter()
        .all(|c| (0.0..=1.0 + 1e-6).contains(&c.as_f64().unwrap())));
    for f in [
        "report.html",
        "mse_gaussian.png",
        "ratio_gaussian.png",
        "jacobian/gaussian/report.html",
        "jacobian/gaussian-homogeneous/report.html",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(page.contains("Wiener gains"), "{page}");
    assert!(page.contains("homogeneous blind optimum"), "{page}");

    // resume: nothing retrains, the record is rewritten from the same networks
    resume_without_retraining(&out);
    assert_eq!(record(&out)["arms"][0]["rows"], arm["rows"]);
    // a second start in the same folder is refused
    let err = fails(&["optimality", "--family", "disks", "--out", s(&out)]);
    assert!(err.contains("--resume"), "{err}");
}

#[test]
fn calpha_rates_are_fitted_per_alpha() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("calpha");
    // long enough for the network to learn the rate (at the quick 80 steps its slope is 0.95,
    // near the identity's)
    quick("calpha", &out, &["--alphas", "1,2", "--steps", "1500"]);
    let rec = record(&out);
    check_arms(&rec, &["alpha-1", "alpha-2"], false);
    for (arm, alpha) in rec["arms"].as_array().unwrap().iter().zip([1.0, 2.0]) {
        let slope = &arm["slope"];
        assert!((slope["optimal"].as_f64().unwrap() - alpha / (alpha + 1.0)).abs() < 1e-9);
        let fit = &slope["network"];
        assert!(fit["points"].as_u64().unwrap() >= 2);
        // the contour-told bound has the rate α/(α+1) on the grid, and the trained network's
        // slope is within 0.2 of the bound's (measured: 0.64 vs 0.52 at α = 1, 0.62 vs 0.65 at
        // α = 2), each fit to within its stated standard error's scale
        let bound = slope["contour_known"]["slope"].as_f64().unwrap();
        assert!((bound - alpha / (alpha + 1.0)).abs() < 0.05, "{slope}");
        let net = fit["slope"].as_f64().unwrap();
        assert!((net - bound).abs() < 0.2, "{slope}");
        assert!(fit["stderr"].as_f64().unwrap() < 0.1, "{slope}");
        // the spectral construction's bound: the MMSE with the contour told, below the noisy
        // input and the network at every σ, with its own rate fit
        for r in arm["rows"].as_array().unwrap() {
            let bound = r["contour_known"].as_f64().unwrap();
            assert!(bound > 0.0 && bound < r["noisy"].as_f64().unwrap(), "{r}");
            assert!(bound < r["network"].as_f64().unwrap(), "{r}");
        }
    }
    assert!(out.join("slopes.png").exists());
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(page.contains("contour told"), "{page}");
}

#[test]
fn disks_against_the_numerical_mmse() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("disks");
    quick("disks", &out, &[]);
    let rec = record(&out);
    check_arms(&rec, &["disks"], true);
    for r in rec["arms"][0]["rows"].as_array().unwrap() {
        let acc = &r["optimum_accuracy"];
        // the importance sampler's own error is a small part of the oracle's MSE (measured:
        // 1.4–2.5% at the quick settings), from a useful number of effective samples
        let mse = r["optimum"].as_f64().unwrap();
        assert!(
            acc["mc_variance"].as_f64().unwrap() < 0.1 * mse,
            "{acc} vs MSE {mse}"
        );
        assert!(acc["mean_ess"].as_f64().unwrap() > 10.0, "{acc}");
        // the posterior mean beats the noisy input by far on a 5-parameter family
        assert!(r["optimum"].as_f64().unwrap() < 0.5 * r["noisy"].as_f64().unwrap());
    }
    assert!(out.join("trace_disks.png").exists());
    assert!(out.join("ratio_disks.png").exists());
}

#[test]
fn shuffled_pixels_control_trains_both_arms_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let data = disks(tmp.path(), 700);
    let out = tmp.path().join("shuffled");
    quick("shuffled", &out, &["--data", s(&data)]);
    let rec = record(&out);
    check_arms(&rec, &["original", "shuffled"], false);
    let cfg = |arm: &str| -> Value {
        let text = std::fs::read_to_string(out.join("runs").join(arm).join("config.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let (a, b) = (cfg("original"), cfg("shuffled"));
    // same seed, N, budget; only the permutation differs
    assert_eq!(a["config"]["seed"], b["config"]["seed"]);
    assert_eq!(a["config"]["steps"], b["config"]["steps"]);
    assert_eq!(a["train_images"], b["train_images"]);
    assert!(a["config"]["data"]["shuffle_pixels"].is_null());
    assert!(b["config"]["data"]["shuffle_pixels"].is_u64());
    assert_ne!(a["train_fingerprint"], b["train_fingerprint"]);
    assert!(out.join("shuffled_psnr.png").exists());
}

#[test]
fn bad_optimality_settings_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let err = fails(&["optimality", "--out", s(&out)]);
    assert!(err.contains("--family"), "{err}");
    let err = fails(&["optimality", "--resume", "--out", s(&out)]);
    assert!(err.contains("no optimality study"), "{err}");
    let err = fails(&[
        "optimality",
        "--family",
        "calpha",
        "--fit-range",
        "0.2,0.1",
        "--out",
        s(&out),
    ]);
    assert!(err.contains("--fit-range"), "{err}");
    let err = fails(&[
        "optimality",
        "--family",
        "calpha",
        "--alphas",
        "0,1",
        "--out",
        s(&out),
    ]);
    assert!(err.contains("--alphas 0"), "{err}");
    let err = fails(&[
        "optimality",
        "--family",
        "shuffled",
        "--data",
        "/no/such.npy",
        "--quick",
        "--out",
        s(&out),
    ]);
    assert!(err.contains("/no/such.npy"), "{err}");
    assert!(!out.join("optimality.json").exists());
}

/// An optimality study SIGKILLed mid-training, after a checkpoint, resumes to the same
/// networks and the same measurements as one never interrupted.
#[cfg(unix)]
#[test]
fn a_killed_optimality_study_resumes_to_the_same_record() {
    let tmp = tempfile::tempdir().unwrap();
    // 400 steps: a checkpoint at 250 to resume from
    let extra = ["--steps", "400"];
    let whole = tmp.path().join("whole");
    quick("gaussian", &whole, &extra);
    let cut = tmp.path().join("cut");
    let args: Vec<String> = [
        "optimality",
        "--family",
        "gaussian",
        "--quick",
        "--device",
        "cpu",
        "--out",
        s(&cut),
    ]
    .iter()
    .chain(&extra)
    .map(|a| a.to_string())
    .collect();
    let run = cut.join("runs/gaussian");
    signal_when(&args, || logged_step(&run) > 250, "-KILL", |_| {});
    assert!(!run.join("model.safetensors").exists());
    ok(&[
        "optimality",
        "--resume",
        "--device",
        "cpu",
        "--out",
        s(&cut),
    ]);
    let model = |d: &Path| std::fs::read(d.join("runs/gaussian/model.safetensors")).unwrap();
    assert!(model(&cut) == model(&whole), "different networks");
    let measured = |d: &Path| {
        let mut rec = record(d);
        for arm in rec["arms"].as_array_mut().unwrap() {
            arm.as_object_mut().unwrap().remove("measure_seconds");
        }
        rec
    };
    assert_eq!(measured(&cut), measured(&whole));
}

/// A study folder moved elsewhere (or named from another working directory) resumes without
/// retraining: its generated data are named by a path inside the folder, which changed, but the
/// images did not. The runs' records then name the data where they now are.
#[test]
fn a_moved_study_resumes_without_retraining() {
    let tmp = tempfile::tempdir().unwrap();
    let first = tmp.path().join("first");
    quick("gaussian", &first, &[]);
    let moved = tmp.path().join("moved");
    std::fs::rename(&first, &moved).unwrap();
    resume_without_retraining(&moved);
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(moved.join("runs/gaussian/config.json")).unwrap(),
    )
    .unwrap();
    let source = config["config"]["data"]["source"].as_str().unwrap();
    assert!(source.starts_with(s(&moved)), "{source}");
    // the run's own commands find the data
    ok(&[
        "eval",
        "--run",
        s(&moved.join("runs/gaussian")),
        "--sigmas",
        "0.1",
        "--count",
        "4",
        "--device",
        "cpu",
    ]);
}
