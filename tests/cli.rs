//! End-to-end tests of the `tweedie` binary on tiny data: a temp dir, a command, a readable
//! failure message.

mod common;

use common::{disks, fails, json, ok, s, tweedie};
use std::path::Path;

fn train_args<'a>(data: &'a str, out: &'a str, steps: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--data",
        data,
        "--train-size",
        "100",
        "--arch",
        "bf-unet",
        "--blocks",
        "2",
        "--channels",
        "16",
        "--batch",
        "16",
        "--sigma-max",
        "0.5",
        "--lr-halve-every",
        "150",
        "--val-sigmas",
        "50/255",
        "--val-count",
        "32",
        "--checkpoint-every",
        "20",
        "--seed",
        "3",
        "--device",
        "cpu",
        "--steps",
        steps,
        "--out",
        out,
    ]
}

#[test]
fn synth_writes_array_preview_and_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let p = disks(dir.path(), 10);
    assert!(p.exists() && p.with_extension("png").exists());
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.with_extension("json")).unwrap()).unwrap();
    assert_eq!(meta["family"]["family"], "disks");
    assert_eq!(meta["count"], 10);
}

#[test]
fn training_learns_to_denoise_and_eval_denoise_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = disks(dir.path(), 300);
    let run = dir.path().join("run");
    let out = ok(&train_args(s(&data), s(&run), "300"));
    assert!(out.contains("run folder"), "{out}");

    let metrics: Vec<serde_json::Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first = metrics.first().unwrap()["loss"].as_f64().unwrap();
    let last = metrics.last().unwrap();
    assert!(
        last["loss"].as_f64().unwrap() < 0.5 * first,
        "loss did not fall: {first} → {last}"
    );
    let v = &last["validation"][0];
    let gain = v["psnr"].as_f64().unwrap() - v["input_psnr"].as_f64().unwrap();
    assert!(gain >= 3.0, "PSNR gain at σ = 50/255 is only {gain:.2} dB");

    for f in [
        "config.json",
        "model.safetensors",
        "checkpoint.safetensors",
        "report.html",
    ] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["config"]["seed"], 3);
    assert!(config["data_fingerprint"].as_str().unwrap().len() > 16);

    let table = ok(&[
        "eval",
        "--run",
        s(&run),
        "--sigmas",
        "0.1,0.2",
        "--count",
        "16",
        "--device",
        "cpu",
    ]);
    assert!(table.contains("train") && table.contains("test"), "{table}");
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    assert_eq!(eval["test"].as_array().unwrap().len(), 2);
    assert!(run.join("figures/psnr_vs_sigma.png").exists());

    // the benchmark of a run's network keeps a typed record
    let bench = dir.path().join("bench");
    let printed = ok(&[
        "bench",
        "--preset",
        "denoise",
        "--run",
        s(&run),
        "--count",
        "2",
        "--size",
        "16",
        "--reps",
        "1",
        "--device",
        "cpu",
        "--out",
        s(&bench),
    ]);
    assert!(printed.contains("RESULT denoise "), "{printed}");
    let record = json(&bench.join("bench.json"));
    assert_eq!(record["config"]["preset"]["kind"], "denoise");
    assert_eq!(record["timings"][0]["name"], "denoise");
    assert!(record["timings"][0]["seconds"].as_f64().unwrap() > 0.0);
    let err = fails(&["bench", "--preset", "study", "--workloads", "train,warp"]);
    assert!(err.contains("--workloads") && err.contains("warp"), "{err}");
    let err = fails(&[
        "bench",
        "--preset",
        "denoise",
        "--run",
        s(&run),
        "--count",
        "0",
    ]);
    assert!(err.contains("--count"), "{err}");
    let err = fails(&["bench", "--run", s(&run)]);
    assert!(err.contains("--preset denoise"), "{err}");

    // denoise a folder of PNGs written from the data, with added noise
    let imgs = dir.path().join("imgs");
    std::fs::create_dir_all(&imgs).unwrap();
    for i in 0..2 {
        image::GrayImage::from_fn(16, 16, |x, y| image::Luma([((x + y + i) * 8) as u8]))
            .save(imgs.join(format!("{i}.png")))
            .unwrap();
    }
    let outdir = dir.path().join("clean");
    ok(&[
        "denoise",
        "--run",
        s(&run),
        "--input",
        s(&imgs),
        "--output",
        s(&outdir),
        "--add-noise",
        "0.1",
        "--device",
        "cpu",
    ]);
    assert_eq!(image::open(outdir.join("1.png")).unwrap().width(), 16);

    // sampling: the same seed gives the same samples whatever the batch size
    let (s1, s4) = (dir.path().join("s1"), dir.path().join("s4"));
    for (out, batch) in [(&s1, "1"), (&s4, "4")] {
        ok(&[
            "sample",
            "--run",
            s(&run),
            "--count",
            "4",
            "--seed",
            "7",
            "--batch",
            batch,
            "--h0",
            "0.05",
            "--beta",
            "0.5",
            "--max-steps",
            "400",
            "--out",
            s(out),
            "--device",
            "cpu",
        ]);
    }
    assert_eq!(
        std::fs::read(s1.join("samples.npy")).unwrap(),
        std::fs::read(s4.join("samples.npy")).unwrap(),
        "samples depend on the batch size"
    );
    let traj: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s1.join("trajectory.json")).unwrap())
            .unwrap();
    assert_eq!(traj["seed"], 7);
    assert_eq!(traj["trajectories"].as_array().unwrap().len(), 4);
    ok(&[
        "sample",
        "--run",
        s(&run),
        "--count",
        "2",
        "--sampler",
        "euler",
        "--steps",
        "20",
        "--out",
        s(&dir.path().join("e")),
        "--device",
        "cpu",
    ]);

    // restoration of held-out disks: inpainting beats the zero-filled measurement
    let test_imgs = dir.path().join("test");
    ok(&[
        "data",
        "export",
        "--data",
        s(&data),
        "--count",
        "2",
        "--out",
        s(&test_imgs),
    ]);
    let rest = dir.path().join("restored");
    ok(&[
        "restore",
        "--run",
        s(&run),
        "--task",
        "inpaint",
        "--mask-box",
        "4,4,8,8",
        "--input-folder",
        s(&test_imgs),
        "--reference",
        s(&test_imgs),
        "--out",
        s(&rest),
        "--h0",
        "0.05",
        "--beta",
        "0.5",
        "--device",
        "cpu",
    ]);
    let summary = common::json(&rest.join("restore.json"));
    for row in summary["images"].as_array().unwrap() {
        let (p, naive) = (
            row["psnr"].as_f64().unwrap(),
            row["psnr_naive"].as_f64().unwrap(),
        );
        assert!(
            p > naive,
            "inpainting PSNR {p} does not beat the measurement's {naive}"
        );
    }
    assert!(rest.join("00000-compare.png").exists());
    let e = fails(&[
        "restore",
        "--run",
        s(&run),
        "--task",
        "superres",
        "--factor",
        "3",
        "--input-folder",
        s(&test_imgs),
        "--out",
        s(&rest),
        "--device",
        "cpu",
    ]);
    assert!(e.contains("--factor 3"), "{e}");

    // the Jacobian: f(y) = J·y, tr J falls with σ, a network's eigenvectors span its own
    let jac = dir.path().join("jac");
    ok(&[
        "jacobian",
        "--run",
        s(&run),
        "--image",
        "test:0",
        "--sigmas",
        "0.05,0.4",
        "--top",
        "8",
        "--compare-run",
        s(&run),
        "--out",
        s(&jac),
        "--device",
        "cpu",
    ]);
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(jac.join("jacobian.json")).unwrap()).unwrap();
    let res = j["results"].as_array().unwrap();
    for r in res {
        assert!(r["homogeneity_error"].as_f64().unwrap() < 1e-4, "{r}");
        let cos = r["principal_cosines"].as_array().unwrap();
        assert!(
            cos.iter().all(|c| c.as_f64().unwrap() > 0.999),
            "self-overlap {cos:?}"
        );
        let eig = r["eigenvalues"].as_array().unwrap();
        assert_eq!(eig.len(), 256, "dense method reports all eigenvalues");
    }
    let tr = |i: usize| res[i]["trace"].as_f64().unwrap();
    assert!(
        tr(0) > tr(1),
        "tr J should fall with σ: {} vs {}",
        tr(0),
        tr(1)
    );
    for f in [
        "spectrum.png",
        "effective_dim.png",
        "panel.png",
        "eigenvectors_sigma0.050.png",
    ] {
        assert!(jac.join(f).exists(), "{f} missing");
    }
    let lz = dir.path().join("lanczos");
    ok(&[
        "jacobian",
        "--run",
        s(&run),
        "--image",
        "train:1",
        "--sigmas",
        "0.2",
        "--top",
        "4",
        "--method",
        "lanczos",
        "--probes",
        "16",
        "--out",
        s(&lz),
        "--device",
        "cpu",
    ]);
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lz.join("jacobian.json")).unwrap()).unwrap();
    assert_eq!(j["results"][0]["eigenvalues"].as_array().unwrap().len(), 4);
    assert!(
        j["results"][0]["trace_estimate"]["std_error"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    // a finished run is not silently overwritten
    let again = fails(&train_args(s(&data), s(&run), "300"));
    assert!(again.contains("--resume"), "{again}");
}

/// All tensors of a safetensors file, by name (metadata order may differ between writes).
fn tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Vec<(String, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.data().to_vec()))
        .collect();
    v.sort();
    v
}

/// The training recipe's options that carry state across a resume (cosine plan, moving
/// average, σ mixture).
const RECIPE: [&str; 6] = [
    "--lr-schedule",
    "cosine",
    "--ema",
    "0.99",
    "--sigma-sampling",
    "mixture",
];

#[test]
fn resume_gives_the_same_weights_as_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = disks(dir.path(), 240);
    let whole = dir.path().join("whole");
    let split = dir.path().join("split");
    let with = |out: &Path, extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = train_args(s(&data), s(out), "40")
            .into_iter()
            .map(String::from)
            .collect();
        v.extend(RECIPE.iter().chain(extra).map(|a| a.to_string()));
        v
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    ok(&args(&with(&whole, &[])));
    let stopped = ok(&args(&with(&split, &["--stop-at", "20"])));
    assert!(stopped.contains("stopped at step 20 of 40"), "{stopped}");
    assert!(!split.join("model.safetensors").exists());
    let resumed = ok(&["train", "--resume", "--out", s(&split), "--device", "cpu"]);
    assert!(resumed.contains("resumed at step 20"), "{resumed}");
    for file in ["model.safetensors", "model-ema.safetensors"] {
        let (a, b) = (tensors(&whole.join(file)), tensors(&split.join(file)));
        assert_eq!(a.len(), b.len());
        for ((na, da), (nb, db)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            assert!(da == db, "{file}: tensor {na} differs after resume");
        }
        // and the files themselves, byte for byte: a checksum proves a reproduction
        assert!(
            std::fs::read(whole.join(file)).unwrap() == std::fs::read(split.join(file)).unwrap(),
            "{file}: same tensors, different bytes"
        );
    }
    // the moving average and the last weights both load and evaluate, and differ
    let eval = |weights: &str| {
        ok(&[
            "eval",
            "--run",
            s(&whole),
            "--sigmas",
            "0.1",
            "--count",
            "8",
            "--weights",
            weights,
            "--device",
            "cpu",
        ])
    };
    assert_ne!(eval("ema"), eval("raw"));
}

/// `--steps auto` stops a run on the plateau of its validation losses, well before its cap,
/// and records where and why; a run stopped part-way and resumed replays the rule from its log
/// and stops at the same step with the same bytes.
#[test]
fn steps_auto_stops_on_a_plateau_and_a_resumed_run_stops_at_the_same_step() {
    let dir = tempfile::tempdir().unwrap();
    let data = disks(dir.path(), 240);
    let args = |out: &Path, extra: &[&str]| -> Vec<String> {
        [
            "train",
            "--data",
            s(&data),
            "--train-size",
            "100",
            "--blocks",
            "1",
            "--channels",
            "8",
            "--batch",
            "8",
            "--sigma-max",
            "0.5",
            "--val-sigmas",
            "0.1",
            "--val-count",
            "16",
            "--checkpoint-every",
            "20",
            "--seed",
            "3",
            "--device",
            "cpu",
            "--steps",
            "auto:3000",
            "--stop-patience",
            "60",
            "--stop-decays",
            "1",
            "--log-every",
            "10",
            "--out",
            s(out),
        ]
        .iter()
        .chain(extra)
        .map(|a| a.to_string())
        .collect()
    };
    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let whole = dir.path().join("whole");
    let printed = ok(&strs(&args(&whole, &[])));
    assert!(printed.contains("converged at step"), "{printed}");
    let stopped = |run: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(run.join("stopped.json")).unwrap()).unwrap()
    };
    let st = stopped(&whole);
    assert_eq!(st["reason"], "converged", "{st}");
    assert_eq!(st["decays"], 1, "{st}");
    assert_eq!(st["cap"], 3000, "{st}");
    let step = st["step"].as_u64().unwrap();
    // not before a plateau could exist: a halving and a second plateau take ≥ 2 patiences
    assert!((120..3000).contains(&step), "{st}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(whole.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["config"]["stop"]["patience"], 60);
    assert_eq!(config["config"]["lr_schedule"], "cosine");
    // the log holds the losses the rule watched, on log steps only
    let metrics = std::fs::read_to_string(whole.join("metrics.jsonl")).unwrap();
    let watched = metrics
        .lines()
        .filter(|l| l.contains("\"stopping\""))
        .count() as u64;
    assert_eq!(watched, step / 10, "{metrics}");

    // stopped mid-way, between log steps, then resumed
    let split = dir.path().join("split");
    let half = (step / 2 + 3).to_string();
    ok(&strs(&args(&split, &["--stop-at", &half])));
    assert!(!split.join("stopped.json").exists());
    ok(&["train", "--resume", "--out", s(&split), "--device", "cpu"]);
    assert_eq!(stopped(&split), st);
    assert!(
        std::fs::read(whole.join("model.safetensors")).unwrap()
            == std::fs::read(split.join("model.safetensors")).unwrap(),
        "resumed run ended with other weights"
    );
    // resuming a converged run trains nothing more
    ok(&["train", "--resume", "--out", s(&whole), "--device", "cpu"]);
    assert_eq!(stopped(&whole), st);
    // a bad rule is refused before training
    let e = fails(&strs(&args(
        &dir.path().join("bad"),
        &["--stop-min-improvement", "0"],
    )));
    assert!(e.contains("--stop-min-improvement 0"), "{e}");
    let mut zero = args(&dir.path().join("bad2"), &[]);
    let i = zero.iter().position(|a| a == "auto:3000").unwrap();
    zero[i] = "auto:0".into();
    let e = fails(&strs(&zero));
    assert!(e.contains("auto:CAP"), "{e}");
    zero[i] = "plenty".into();
    assert!(fails(&strs(&zero)).contains("not a step count"));
}

/// Replicated pairs: every per-N figure of study.json gets an estimate and a 95% interval over
/// pairs and samples, meeting the per-pair values, with a regime and a verdict; the second
/// pair trains runs of its own.
#[test]
fn a_study_with_replicated_pairs_records_intervals_and_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let data = disks(dir.path(), 60);
    let out = dir.path().join("study");
    let mut args = tiny_study(&data, &out, &["--steps", "20", "--eval-sigmas", "0.1"]);
    let i = args.iter().position(|a| a == "--pairs").unwrap();
    args[i + 1] = "2".into();
    let table = ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(table.contains("regime"), "{table}");
    assert!(out.join("runs/N4-b-p1/model.safetensors").exists());
    let study: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("study.json")).unwrap()).unwrap();
    assert!(study["verdict"]["statement"].as_str().unwrap().len() > 20);
    for size in study["sizes"].as_array().unwrap() {
        assert_eq!(size["replicates"].as_array().unwrap().len(), 1);
        assert_eq!(size["runs"].as_array().unwrap().len(), 4);
        let summary = &size["summary"];
        assert_eq!(summary["pairs"], 2);
        let iv = &summary["paired_similarity"];
        let (lo, est, hi) = (
            iv["lo"].as_f64().unwrap(),
            iv["estimate"].as_f64().unwrap(),
            iv["hi"].as_f64().unwrap(),
        );
        assert!(lo <= est && est <= hi, "{iv}");
        let per_pair: Vec<f64> = std::iter::once(&size["network"])
            .chain(
                size["replicates"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| &r["network"]),
            )
            .map(|m| m["median_paired_similarity"].as_f64().unwrap())
            .collect();
        let (min, max) = per_pair
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        assert!(
            lo <= max && hi >= min,
            "{iv} vs per-pair medians {per_pair:?}"
        );
        assert!(["memorizing", "generalizing", "inconclusive"]
            .contains(&summary["regime"].as_str().unwrap()));
    }
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(page.contains("Verdict"), "the page states no verdict");
}

#[test]
fn extending_a_finished_run_replans_its_learning_rate() {
    let dir = tempfile::tempdir().unwrap();
    let data = disks(dir.path(), 240);
    let run = dir.path().join("run");
    let mut first = train_args(s(&data), s(&run), "30");
    first.extend(RECIPE);
    first.extend(["--log-every", "10", "--lr", "0.002"]);
    ok(&first);
    ok(&[
        "train",
        "--resume",
        "--out",
        s(&run),
        "--steps",
        "60",
        "--device",
        "cpu",
    ]);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let at = |step: u64| {
        lines
            .iter()
            .find(|l| l["step"] == step)
            .unwrap_or_else(|| panic!("no metrics at step {step}"))
    };
    // the finished plan had decayed to ~0; the extension follows the cosine over 60 steps
    let lr = |step: u64| at(step)["lr"].as_f64().unwrap();
    assert!(lr(30) < 1e-4, "lr at the end of the first plan: {}", lr(30));
    let planned = 0.002 * 0.5 * (1.0 + (std::f64::consts::PI * 39.0 / 60.0).cos());
    assert!(
        (lr(40) - planned).abs() < 1e-6 * planned.max(1e-9),
        "lr(40) = {}",
        lr(40)
    );
    let psnr = |step: u64| at(step)["validation"][0]["psnr"].as_f64().unwrap();
    assert!(
        psnr(60) >= psnr(30) - 0.05,
        "validation PSNR fell from {} to {}",
        psnr(30),
        psnr(60)
    );
}

#[test]
fn a_short_run_on_gaussian_fields_ends_nearer_the_wiener_filter_than_the_noisy_input() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("gauss.npy");
    ok(&[
        "data",
        "synth",
        "gaussian",
        "--size",
        "16",
        "--count",
        "600",
        "--seed",
        "2",
        "--out",
        s(&data),
    ]);
    let run = dir.path().join("run");
    // the Wiener MSE is within 14% of the noisy input's at σ = 0.05 here, so "nearer" needs a
    // network within 1.14× of the optimum; 500 steps of the small network with uniform σ draws
    // give about 1.09 (the default mixture spends half its draws below the σ tested: 1.21)
    ok(&[
        "train",
        "--data",
        s(&data),
        "--blocks",
        "2",
        "--channels",
        "8",
        "--batch",
        "16",
        "--steps",
        "500",
        "--lr",
        "0.002",
        "--lr-schedule",
        "cosine",
        "--ema",
        "0.99",
        "--sigma-sampling",
        "uniform",
        "--sigma-max",
        "0.3",
        "--seed",
        "1",
        "--device",
        "cpu",
        "--out",
        s(&run),
    ]);
    let table = ok(&[
        "eval",
        "--run",
        s(&run),
        "--sigmas",
        "0.05,0.1,0.2",
        "--count",
        "60",
        "--optimum",
        "--device",
        "cpu",
    ]);
    assert!(
        table.contains("/optimum") && table.contains("/homog."),
        "{table}"
    );
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    let rows = eval["test"].as_array().unwrap();
    let optimum = eval["optimum"].as_array().unwrap();
    let blind = eval["blind_optimum"].as_array().unwrap();
    let homogeneous = eval["homogeneous_optimum"].as_array().unwrap();
    assert_eq!(homogeneous.len(), rows.len());
    let page = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(page.contains("Against the optimum") && page.contains("/ homogeneous"));
    for ((r, o), b) in rows.iter().zip(optimum).zip(blind) {
        let (net, best) = (r["mse"].as_f64().unwrap(), o["mse"].as_f64().unwrap());
        let noisy = 10f64.powf(-r["input_psnr"].as_f64().unwrap() / 10.0);
        // not knowing σ costs the optimum something (in expectation; 1% of slack for 60
        // images), and at these σ it still denoises
        let blind = b["mse"].as_f64().unwrap();
        assert!(blind > 0.99 * best && blind < noisy, "{b}");
        assert!(best < net, "the network beat the optimum: {net} < {best}");
        assert!(
            net < 0.5 * (noisy + best),
            "σ = {}: network MSE {net} is not nearer the Wiener MSE {best} than the noisy {noisy}",
            r["sigma"]
        );
    }
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");

    // corrupt PNG in an image folder
    let folder = dir.path().join("pngs");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("broken.png"), b"\x89PNG\r\n\x1a\nnope").unwrap();
    let e = fails(&["train", "--data", s(&folder), "--out", s(&out), "--dry-run"]);
    assert!(e.contains("broken.png"), "{e}");

    // empty folder
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = fails(&["train", "--data", s(&empty), "--out", s(&out), "--dry-run"]);
    assert!(e.contains("empty") && e.contains("no images"), "{e}");

    // truncated IDX
    let idx = dir.path().join("train-images-idx3-ubyte");
    let mut bytes = vec![0u8, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 4, 0, 0, 0, 4];
    bytes.extend(vec![7u8; 50]);
    std::fs::write(&idx, bytes).unwrap();
    let e = fails(&["train", "--data", s(&idx), "--out", s(&out), "--dry-run"]);
    assert!(
        e.contains("train-images-idx3-ubyte") && e.contains("truncated"),
        "{e}"
    );

    // .npy with the wrong dtype
    let npy = dir.path().join("ints.npy");
    let mut buf = Vec::new();
    {
        use npyz::WriterBuilder;
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[2, 4, 4])
            .writer(&mut buf)
            .begin_nd()
            .unwrap();
        w.extend(0..32i32).unwrap();
        w.finish().unwrap();
    }
    std::fs::write(&npy, buf).unwrap();
    let e = fails(&["train", "--data", s(&npy), "--out", s(&out), "--dry-run"]);
    assert!(e.contains("ints.npy") && e.contains("dtype"), "{e}");

    // a split larger than the data
    let data = disks(dir.path(), 20);
    let e = fails(&[
        "train",
        "--data",
        s(&data),
        "--train-size",
        "50",
        "--out",
        s(&out),
        "--dry-run",
    ]);
    assert!(e.contains("--train-size"), "{e}");

    // missing file, absurd flags
    let e = fails(&[
        "train",
        "--data",
        "/no/such.npy",
        "--out",
        s(&out),
        "--dry-run",
    ]);
    assert!(e.contains("/no/such.npy"), "{e}");
    let e = fails(&[
        "train",
        "--data",
        s(&data),
        "--batch",
        "0",
        "--out",
        s(&out),
        "--dry-run",
    ]);
    assert!(e.contains("--batch"), "{e}");
    let e = fails(&[
        "train",
        "--data",
        s(&data),
        "--sigma-max=-1",
        "--out",
        s(&out),
    ]);
    assert!(e.contains("sigma"), "{e}");
    let e = fails(&["eval", "--run", s(&dir.path().join("nothing"))]);
    assert!(e.contains("config.json"), "{e}");

    // a study with a bad Euler setting is refused, by its flag, before any run trains
    let study = dir.path().join("study");
    let e = fails(&[
        "generalization",
        "--data",
        s(&data),
        "--sizes",
        "1,2",
        "--sampler",
        "euler",
        "--sigma-final",
        "2",
        "--steps",
        "5",
        "--out",
        s(&study),
    ]);
    assert!(e.starts_with("error: --sigma-final 2"), "{e}");
    assert!(!study.join("runs").exists(), "a run trained");
    // and a bad Jacobian setting by its flag
    let e = fails(&[
        "jacobian",
        "--run",
        s(&dir.path().join("nothing")),
        "--top",
        "0",
        "--out",
        s(&dir.path().join("jac")),
    ]);
    assert!(e.contains("--top 0"), "{e}");
}

/// A tiny generalization study's command (N ∈ {1, 4}, a one-scale 8-channel network, 4 paired
/// samples) with `extra` flags (steps, evaluation σ, …) appended.
fn tiny_study(data: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    [
        "generalization",
        "--data",
        s(data),
        "--sizes",
        "1,4",
        "--blocks",
        "1",
        "--channels",
        "8",
        "--batch",
        "8",
        "--samples",
        "4",
        "--eval-count",
        "8",
        "--h0",
        "0.1",
        "--beta",
        "0.5",
        "--sigma-final",
        "0.03",
        "--max-steps",
        "300",
        "--pairs",
        "1",
        "--device",
        "cpu",
        "--out",
        s(out),
    ]
    .iter()
    .chain(extra)
    .map(|a| a.to_string())
    .collect()
}

#[test]
fn generalization_study_runs_resumes_and_plans() {
    let dir = tempfile::tempdir().unwrap();
    let data = disks(dir.path(), 60);
    let out = dir.path().join("study");
    let args = tiny_study(&data, &out, &["--steps", "20", "--eval-sigmas", "0.1,0.3"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let table = ok(&args);
    assert!(table.contains("a↔b"), "{table}");
    let study: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("study.json")).unwrap()).unwrap();
    let sizes = study["sizes"].as_array().unwrap();
    assert_eq!(sizes.len(), 2);
    for size in sizes {
        for side in ["network", "empirical_optimal"] {
            let m = &size[side];
            assert_eq!(m["paired_similarity"].as_array().unwrap().len(), 4);
            assert_eq!(m["model_variance"].as_array().unwrap().len(), 2);
            assert_eq!(m["test_psnr_b"].as_array().unwrap().len(), 2);
            assert_eq!(
                m["nearest_a"]["own_similarity"].as_array().unwrap().len(),
                4
            );
        }
        // the empirical-optimal denoiser memorizes: its samples are training images
        let own = size["empirical_optimal"]["nearest_a"]["median_own_similarity"]
            .as_f64()
            .unwrap();
        assert!(
            own > 0.99,
            "empirical-optimal samples are not training images: {own}"
        );
    }
    for f in [
        "figures/similarity_vs_n.png",
        "figures/model_variance.png",
        "figures/psnr_vs_sigma.png",
        "figures/similarity_histogram.png",
        "figures/pairs_N1.png",
        "figures/pairs_N4.png",
        "report.html",
        "study_config.json",
        "runs/N4-b/model.safetensors",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }

    // damage it: one run deleted, another's config removed, samples removed
    std::fs::remove_dir_all(out.join("runs/N1-b")).unwrap();
    std::fs::remove_file(out.join("runs/N4-a/config.json")).unwrap();
    std::fs::remove_dir_all(out.join("samples")).unwrap();
    std::fs::remove_file(out.join("study.json")).unwrap();
    let e = fails(&[
        "generalization",
        "--out",
        s(&out),
        "--aggregate",
        "--device",
        "cpu",
    ]);
    assert!(e.contains("N1-b") && e.contains("--resume"), "{e}");
    let resumed = tweedie(&[
        "generalization",
        "--out",
        s(&out),
        "--resume",
        "--device",
        "cpu",
    ]);
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let log = String::from_utf8_lossy(&resumed.stderr);
    assert!(log.contains("2 to train"), "{log}");
    assert!(out.join("study.json").exists() && out.join("runs/N1-b/model.safetensors").exists());

    // a cluster plan: one array task per run
    let plan = ok(&[
        "generalization",
        "--out",
        s(&out),
        "--resume",
        "--plan",
        "slurm",
    ]);
    assert!(
        plan.contains("#SBATCH --array=0-3") && plan.contains("--task"),
        "{plan}"
    );
    ok(&[
        "generalization",
        "--out",
        s(&out),
        "--task",
        "3",
        "--device",
        "cpu",
    ]);
}

/// A run stopped by SIGTERM checkpoints where it is and says so; one killed with SIGKILL at
/// any moment keeps its last checkpoint; while a run lives a second writer is refused, and the
/// lock a killed run leaves is taken over. Resumed, both end with the same bytes as an
/// uninterrupted run.
#[cfg(unix)]
#[test]
fn killed_runs_resume_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let data = disks(dir.path(), 240);
    let args = |out: &Path| -> Vec<String> {
        train_args(s(&data), s(out), "400")
            .into_iter()
            .chain(RECIPE)
            // a log line between checkpoints: a kill can leave one the resume writes again
            .chain(["--log-every", "10"])
            .map(String::from)
            .collect()
    };
    let whole = dir.path().join("whole");
    ok(&args(&whole).iter().map(String::as_str).collect::<Vec<_>>());
    let model = |run: &Path| std::fs::read(run.join("model.safetensors")).unwrap();

    // start a run, wait until it has written a checkpoint past `after` steps, then signal it
    let interrupt = |out: &Path, signal: &str, after: u64, resume: bool| -> String {
        let mut a = args(out);
        if resume {
            a = vec![
                "train".into(),
                "--resume".into(),
                "--out".into(),
                s(out).into(),
            ];
            a.extend(["--device".into(), "cpu".into()]);
        }
        common::signal_when(
            &a,
            || common::logged_step(out) > after,
            signal,
            // while it runs, the folder is its own: a second writer is refused, by its pid
            |pid| {
                let err = fails(&["train", "--resume", "--out", s(out), "--device", "cpu"]);
                assert!(err.contains(&format!("in use by process {pid}")), "{err}");
            },
        )
    };

    let termed = dir.path().join("termed");
    let err = interrupt(&termed, "-TERM", 20, false);
    assert!(err.contains("interrupted at step"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    ok(&["train", "--resume", "--out", s(&termed), "--device", "cpu"]);
    assert!(
        model(&termed) == model(&whole),
        "SIGTERM + resume: different bytes"
    );

    // a SIGKILL leaves the lock behind: the next run finds it stale and goes on
    let killed = dir.path().join("killed");
    interrupt(&killed, "-KILL", 40, false);
    assert!(killed.join(".tweedie.lock").exists());
    interrupt(&killed, "-KILL", 200, true);
    ok(&["train", "--resume", "--out", s(&killed), "--device", "cpu"]);
    assert!(
        model(&killed) == model(&whole),
        "SIGKILL ×2 + resume: different bytes"
    );
    // the log says each step once, with the same validation: what a killed run logged after its
    // last checkpoint is dropped when it resumes from there
    let log = |run: &Path| -> Vec<(u64, String)> {
        std::fs::read_to_string(run.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|v| (v["step"].as_u64().unwrap(), v["validation"].to_string()))
            .collect()
    };
    for run in [&termed, &killed] {
        assert_eq!(log(run), log(&whole), "{}", run.display());
    }
}

/// A study killed mid-training (SIGKILL) and again after its runs trained (SIGTERM, outside
/// training: the default action), then resumed, writes the same study.json as one never
/// interrupted.
#[cfg(unix)]
#[test]
fn a_killed_study_resumes_to_the_same_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = disks(dir.path(), 60);
    let args = |out: &Path| {
        let extra = [
            "--steps",
            "300",
            "--checkpoint-every",
            "10",
            "--eval-sigmas",
            "0.1",
        ];
        tiny_study(&data, out, &extra)
    };
    let whole = dir.path().join("whole");
    ok(&args(&whole).iter().map(String::as_str).collect::<Vec<_>>());
    let record = |out: &Path| std::fs::read(out.join("study.json")).unwrap();

    let cut = dir.path().join("cut");
    let run_until = |a: Vec<String>, file: std::path::PathBuf, signal: &str| {
        common::signal_when(&a, || file.exists(), signal, |_| {});
    };
    run_until(
        args(&cut),
        cut.join("runs/N1-b/checkpoint.safetensors"),
        "-KILL",
    );
    let mut resume = args(&cut);
    resume.push("--resume".into());
    // the first checkpoint of the last run: most of its training is still ahead, so the TERM
    // lands while it runs however slow the machine (a finished run's weights as the marker left
    // only the measurement, which a loaded machine's poll could miss)
    run_until(
        resume.clone(),
        cut.join("runs/N4-b/checkpoint.safetensors"),
        "-TERM",
    );
    assert!(!cut.join("study.json").exists());
    ok(&resume.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        record(&cut) == record(&whole),
        "the resumed study measured something else"
    );
}

/// Output piped into a reader that stops early ends the process quietly, as any Unix tool
/// does, rather than with a panic about a broken pipe.
#[cfg(unix)]
#[test]
fn a_closed_pipe_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("tweedie");
    let out = dir.path().join("d.npy");
    let script = format!(
        "'{}' data synth disks --size 8 --count 4 --seed 1 --out '{}' | head -c 0",
        bin.display(),
        out.display()
    );
    let run = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.exists(), "the work before the print was done");
}
