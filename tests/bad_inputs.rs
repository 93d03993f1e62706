//! The bad-input corpus: malformed files, impossible settings and foreign checkpoints, each of
//! which must end in one `error:` line that names the input, a non-zero exit, no panic — and
//! leave an existing run's files exactly as they were. The test prints the corpus with each
//! message (`cargo test --test bad_inputs -- --nocapture`).

mod common;

use common::{disks, ok, s, tweedie};
use std::path::{Path, PathBuf};

/// Bytes of every file under `dir`, by path.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    files.sort();
    files
}

fn npy(path: &Path, descr: &str, shape: &str, data: &[u8]) {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    std::fs::write(path, bytes).unwrap();
}

fn idx(path: &Path, dims: &[u32], data: &[u8]) {
    let mut bytes = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend(data);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn every_bad_input_is_one_clear_line_and_touches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let data = disks(t, 120);
    let run = t.join("run");
    ok(&[
        "train",
        "--data",
        s(&data),
        "--blocks",
        "1",
        "--channels",
        "4",
        "--steps",
        "4",
        "--batch",
        "4",
        "--val-count",
        "4",
        "--device",
        "cpu",
        "--out",
        s(&run),
    ]);
    let before = snapshot(&run);
    let f = |name: &str| t.join(name);
    let write = |name: &str, bytes: &[u8]| {
        let p = f(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let png = {
        let mut buf = std::io::Cursor::new(Vec::new());
        image::GrayImage::new(8, 8)
            .write_to(&mut buf, image::ImageFormat::Png)
            .unwrap();
        buf.into_inner()
    };

    // data files, each as `train --data X --dry-run`
    write("trunc/a.png", &png[..png.len() / 2]);
    write("jpeg/a.jpg", b"\xff\xd8\xff\xe0 not really a jpeg");
    write("zero/a.png", b"");
    std::fs::create_dir_all(f("empty")).unwrap();
    write("notes/readme.txt", b"no images here");
    write("mixed/a.png", &png);
    {
        let mut buf = std::io::Cursor::new(Vec::new());
        image::GrayImage::new(9, 7)
            .write_to(&mut buf, image::ImageFormat::Png)
            .unwrap();
        write("mixed/b.png", &buf.into_inner());
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let dir = f("nonutf8");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(std::ffi::OsStr::from_bytes(b"bad\xff.png")),
            b"garbage",
        )
        .unwrap();
    }
    idx(&f("short-idx3-ubyte"), &[10, 28, 28], &[0; 100]);
    idx(
        &f("huge-idx3-ubyte"),
        &[1_000_000_000, 1000, 1000],
        &[0; 64],
    );
    write("magic-idx3-ubyte", b"\x12\x34\x08\x03\x00\x00\x00\x01");
    npy(&f("ints.npy"), "<i8", "(4, 8, 8)", &[0; 4 * 64 * 8]);
    npy(&f("rank1.npy"), "<f4", "(64,)", &[0; 256]);
    npy(&f("trunc.npy"), "<f4", "(4, 8, 8)", &[0; 100]);
    write("empty.npy", b"");
    npy(&f("zerosize.npy"), "<f4", "(5, 0, 0)", &[]);
    let nan: Vec<u8> = (0..2 * 64).flat_map(|_| f32::NAN.to_le_bytes()).collect();
    npy(&f("nan.npy"), "<f4", "(2, 8, 8)", &nan);
    npy(&f("huge.npy"), "<f4", "(100000000, 1000, 1000)", &[0; 64]);
    write("data.txt", b"1 2 3");

    // run folders: corrupt weights, a config missing a field, a foreign checkpoint
    let copy_run = |name: &str| {
        let dst = f(name);
        std::fs::create_dir_all(&dst).unwrap();
        for (p, bytes) in &before {
            let to = dst.join(p.strip_prefix(&run).unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::write(to, bytes).unwrap();
        }
        dst
    };
    let garbage = copy_run("garbage-model");
    std::fs::write(garbage.join("model.safetensors"), b"not safetensors at all").unwrap();
    let truncated = copy_run("truncated-model");
    let m = std::fs::read(run.join("model.safetensors")).unwrap();
    std::fs::write(truncated.join("model.safetensors"), &m[..m.len() / 3]).unwrap();
    let missing = copy_run("missing-field");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    cfg.as_object_mut().unwrap().remove("image_shape");
    std::fs::write(missing.join("config.json"), cfg.to_string()).unwrap();
    let bad_json = copy_run("bad-json");
    std::fs::write(bad_json.join("config.json"), b"{ not json").unwrap();
    // a checkpoint of another network (8 channels) in this run's folder
    let other = t.join("other");
    ok(&[
        "train",
        "--data",
        s(&data),
        "--blocks",
        "1",
        "--channels",
        "8",
        "--steps",
        "2",
        "--batch",
        "4",
        "--val-count",
        "4",
        "--stop-at",
        "1",
        "--device",
        "cpu",
        "--out",
        s(&other),
    ]);
    let foreign = copy_run("foreign");
    std::fs::remove_file(foreign.join("model.safetensors")).unwrap();
    std::fs::copy(
        other.join("checkpoint.safetensors"),
        foreign.join("checkpoint.safetensors"),
    )
    .unwrap();

    let out = s(&f("out")).to_string();
    let dry = |x: &Path| -> Vec<String> {
        ["train", "--data", s(x), "--out", &out, "--dry-run"]
            .map(String::from)
            .to_vec()
    };
    let args = |a: &[&str]| a.iter().map(|v| v.to_string()).collect::<Vec<_>>();
    let r = s(&run).to_string();
    let d = s(&data).to_string();
    // (case, command, what the message must name)
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        ("truncated PNG", dry(&f("trunc")), "a.png"),
        ("corrupt JPEG", dry(&f("jpeg")), "a.jpg"),
        ("zero-byte PNG", dry(&f("zero")), "a.png"),
        ("empty folder", dry(&f("empty")), "empty"),
        ("folder without images", dry(&f("notes")), "notes"),
        ("mixed image sizes", dry(&f("mixed")), "mixed"),
        ("non-UTF-8 file name", dry(&f("nonutf8")), "bad"),
        (
            "truncated IDX",
            dry(&f("short-idx3-ubyte")),
            "short-idx3-ubyte",
        ),
        (
            "IDX header larger than the file",
            dry(&f("huge-idx3-ubyte")),
            "huge-idx3-ubyte",
        ),
        (
            "IDX with a bad magic number",
            dry(&f("magic-idx3-ubyte")),
            "magic-idx3-ubyte",
        ),
        (".npy of integers", dry(&f("ints.npy")), "ints.npy"),
        (".npy of rank 1", dry(&f("rank1.npy")), "rank1.npy"),
        ("truncated .npy", dry(&f("trunc.npy")), "trunc.npy"),
        ("empty .npy file", dry(&f("empty.npy")), "empty.npy"),
        (
            ".npy of zero-size images",
            dry(&f("zerosize.npy")),
            "zerosize.npy",
        ),
        (".npy with NaN", dry(&f("nan.npy")), "nan.npy"),
        (
            ".npy header larger than the file",
            dry(&f("huge.npy")),
            "huge.npy",
        ),
        ("missing data file", dry(&f("nope.npy")), "nope.npy"),
        ("unknown data format", dry(&f("data.txt")), "data.txt"),
        (
            "zero batch",
            args(&["train", "--data", &d, "--batch", "0", "--out", &out]),
            "--batch",
        ),
        (
            "a batch larger than memory",
            args(&[
                "train",
                "--data",
                &d,
                "--batch",
                "4096",
                "--channels",
                "1024",
                "--device",
                "cpu",
                "--out",
                &out,
            ]),
            "--batch",
        ),
        (
            "a sampling batch larger than memory",
            args(&[
                "sample", "--run", &r, "--count", "10000000", "--batch", "10000000", "--device",
                "cpu", "--out", &out,
            ]),
            "--batch",
        ),
        (
            "negative σ",
            args(&["train", "--data", &d, "--sigma-max=-1", "--out", &out]),
            "-1",
        ),
        (
            "zero steps",
            args(&["train", "--data", &d, "--steps", "0", "--out", &out]),
            "--steps",
        ),
        (
            "N larger than the data",
            args(&[
                "train",
                "--data",
                &d,
                "--train-size",
                "100000",
                "--out",
                &out,
            ]),
            "--train-size",
        ),
        (
            "learning rate 5",
            args(&["train", "--data", &d, "--lr", "5", "--out", &out]),
            "--lr",
        ),
        (
            "checkpoint every 0 steps",
            args(&[
                "train",
                "--data",
                &d,
                "--checkpoint-every",
                "0",
                "--out",
                &out,
            ]),
            "--checkpoint-every",
        ),
        (
            "σ_final ≥ σ₀",
            args(&[
                "sample",
                "--run",
                &r,
                "--sigma0",
                "0.1",
                "--sigma-final",
                "0.5",
                "--out",
                &out,
            ]),
            "--sigma",
        ),
        (
            "Jacobian of 0 eigenvectors",
            args(&["jacobian", "--run", &r, "--top", "0", "--out", &out]),
            "--top",
        ),
        (
            "unparsable σ",
            args(&["eval", "--run", &r, "--sigmas", "abc"]),
            "abc",
        ),
        (
            "image index past the end",
            args(&[
                "jacobian",
                "--run",
                &r,
                "--image",
                "test:99999",
                "--out",
                &out,
            ]),
            "99999",
        ),
        (
            "zero training-set size in a study",
            args(&[
                "generalization",
                "--data",
                &d,
                "--sizes",
                "0",
                "--out",
                &out,
            ]),
            "--sizes",
        ),
        (
            "open Gaussian fields too large for their exact optimum",
            args(&[
                "optimality",
                "--family",
                "gaussian",
                "--size",
                "128",
                "--out",
                &out,
            ]),
            "--boundary periodic",
        ),
        (
            "α = 0",
            args(&[
                "optimality",
                "--family",
                "calpha",
                "--alphas",
                "0",
                "--out",
                &out,
            ]),
            "--alphas",
        ),
        (
            "run folder without config.json",
            args(&["eval", "--run", &out]),
            "config.json",
        ),
        (
            "config.json that is not JSON",
            args(&["eval", "--run", s(&bad_json)]),
            "config.json",
        ),
        (
            "config.json missing a field",
            args(&["eval", "--run", s(&missing)]),
            "image_shape",
        ),
        (
            "garbage model.safetensors",
            args(&["eval", "--run", s(&garbage)]),
            "model.safetensors",
        ),
        (
            "truncated model.safetensors",
            args(&["eval", "--run", s(&truncated)]),
            "model.safetensors",
        ),
        (
            "another network's checkpoint",
            args(&["train", "--resume", "--out", s(&foreign), "--device", "cpu"]),
            "checkpoint",
        ),
        (
            "a new run over a finished one",
            args(&["train", "--data", &d, "--out", &r]),
            "--resume",
        ),
        (
            "report of a missing folder",
            args(&["report", s(&f("nowhere"))]),
            "nowhere",
        ),
    ];
    let mut failures = Vec::new();
    println!("{} cases:", cases.len());
    for (case, cmd, names) in &cases {
        let argv: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let output = tweedie(&argv);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
        let message = errors.first().copied().unwrap_or("");
        println!("  {case:<36} {message}");
        let problem = if output.status.success() {
            Some("succeeded")
        } else if stderr.contains("panicked") {
            Some("panicked")
        } else if errors.len() != 1 {
            Some("not one error line")
        } else if !message.contains(names) {
            Some("does not name the input")
        } else if message.matches(names).count() > 1 && names.contains('/') {
            Some("names the input twice")
        } else {
            None
        };
        if let Some(p) = problem {
            failures.push(format!("{case}: {p}: {stderr}"));
        }
    }
    assert!(cases.len() >= 30);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        snapshot(&run) == before,
        "a bad input changed the run's files"
    );
}
