"""The Python package against the CLI: a tiny run trained by the test itself, then the same
inputs and seeds through both, compared bit for bit; bad input; the GIL released.

The `tweedie` binary comes from $TWEEDIE_BIN, else $CARGO_TARGET_DIR/release/tweedie, else
target/release/tweedie of the repository (build it with `cargo build --release`).
"""

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import tweedie

REPO = Path(__file__).resolve().parents[2]


def binary():
    if os.environ.get("TWEEDIE_BIN"):
        return os.environ["TWEEDIE_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return str(target / "release" / "tweedie")


def cli(*args):
    subprocess.run([binary(), *map(str, args)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A BF-CNN trained for 60 steps on 12×12 disks."""
    d = tmp_path_factory.mktemp("tiny")
    cli("data", "synth", "disks", "--size", 12, "--count", 64, "--out", d / "disks")
    cli("train", "--data", d / "disks.npy", "--arch", "bf-cnn", "--channels", 8, "--layers", 4,
        "--steps", 60, "--batch", 8, "--seed", 3, "--device", "cpu", "--out", d / "run")
    return d


def images(n, seed=0, size=12):
    rng = np.random.default_rng(seed)
    return (rng.random((n, 1, size, size)) + 0.1 * rng.standard_normal((n, 1, size, size))).astype(np.float32)


def test_a_run_opens_with_its_record(run):
    r = tweedie.Run(run / "run")
    assert r.image_channels == 1 and not r.imported
    assert r.image_shape == (1, 12, 12)
    assert r.config["config"]["seed"] == 3
    assert "Run(" in repr(r)


def test_denoise_equals_the_cli_bit_for_bit(run):
    y = images(5)
    np.save(run / "y.npy", y)
    cli("denoise", "--run", run / "run", "--input", run / "y.npy", "--output", run / "x.npy")
    ours = tweedie.Run(run / "run").denoise(y)
    assert ours.dtype == np.float32 and ours.shape == y.shape
    assert np.array_equal(ours, np.load(run / "x.npy"))
    # other layouts give the same numbers back in their own shape
    r = tweedie.Run(run / "run")
    assert np.array_equal(r.denoise(y[:, 0]), ours[:, 0])
    assert np.array_equal(r.denoise(y[0, 0]), ours[0, 0])


@pytest.mark.parametrize("sampler", ["euler", "ascent"])
def test_samples_equal_the_clis_for_the_same_seed(run, sampler):
    out = run / f"samples-{sampler}"
    cli("sample", "--run", run / "run", "--count", 3, "--seed", 11, "--sampler", sampler,
        "--steps", 10, "--max-steps", 40, "--device", "cpu", "--out", out)
    ours = tweedie.Run(run / "run").sample(count=3, seed=11, sampler=sampler, steps=10, max_steps=40)
    assert np.array_equal(ours, np.load(out / "samples.npy"))


def test_eigenvalues_equal_the_jacobian_commands(run, tmp_path):
    png = tmp_path / "x.png"
    # an 8-bit image, divided by 255 in float32 as tweedie reads it
    levels = np.round(np.clip(images(1, seed=4), 0, 1) * 255).astype(np.uint8)
    write_png(png, levels[0, 0])
    x = levels.astype(np.float32) / np.float32(255)
    sigma, seed = 0.1, 5
    cli("jacobian", "--run", run / "run", "--image", png, "--sigmas", sigma, "--top", 4,
        "--method", "lanczos", "--seed", seed, "--device", "cpu", "--out", tmp_path / "jac")
    record = json.loads((tmp_path / "jac" / "jacobian.json").read_text())
    want = record["results"][0]["eigenvalues"]
    # the same record through the package: numbers as arrays
    read = tweedie.read_record(tmp_path / "jac" / "jacobian.json")
    assert isinstance(read["results"][0]["eigenvalues"], np.ndarray)
    assert read["results"][0]["eigenvalues"].tolist() == want
    r = tweedie.Run(run / "run")
    y = tweedie.noisy(x, np.float32(sigma), seed)
    values, vectors = r.eigenpairs(y, k=4, seed=seed)
    assert vectors.shape == (4, 1, 12, 12)
    assert values.tolist() == want


def write_png(path, gray):
    """An 8-bit gray PNG of uint8 levels without third-party packages (zlib + PNG chunks)."""
    import struct
    import zlib

    h, w = gray.shape
    raw = b"".join(b"\x00" + row.tobytes() for row in gray)

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    Path(path).write_bytes(png)


def test_products_and_the_dense_jacobian_agree(run):
    r = tweedie.Run(run / "run")
    y = images(1, seed=7)
    jac = r.jacobian(y)
    d = y.size
    assert jac.shape == (d, d)
    # bias-free and piecewise linear: J(y)·y = f(y)
    assert np.allclose(jac @ y.ravel(), r.denoise(y).ravel(), rtol=1e-4, atol=1e-5)
    v = images(2, seed=8)
    assert np.allclose(r.jvp(y, v).reshape(2, d), v.reshape(2, d) @ jac.T, rtol=1e-4, atol=1e-5)
    assert np.allclose(r.vjp(y, v).reshape(2, d), v.reshape(2, d) @ jac, rtol=1e-4, atol=1e-5)
    mean, stderr = r.trace(y, probes=256)
    assert abs(mean - np.trace(jac)) < 4 * stderr + 1e-3


def test_the_empirical_optimum_memorizes(run):
    train = images(4, seed=9)
    y = train[1:2] + np.float32(0.01) * images(1, seed=10)
    x = tweedie.empirical_optimal_denoise(train, y, 0.01)
    assert np.allclose(x, train[1:2], atol=1e-4)


def test_bad_input_raises_clear_exceptions(run):
    r = tweedie.Run(run / "run")
    with pytest.raises(tweedie.InputError, match="float32"):
        r.denoise(images(1).astype(np.float64))
    with pytest.raises(tweedie.InputError, match="not finite"):
        r.denoise(np.full((1, 1, 4, 4), np.nan, np.float32))
    with pytest.raises(tweedie.InputError, match="channels"):
        r.denoise(np.zeros((1, 3, 4, 4), np.float32))
    with pytest.raises(tweedie.InputError, match="shape"):
        r.denoise(np.zeros((4,), np.float32))
    with pytest.raises(tweedie.InputError):
        r.denoise([[1.0, 2.0]])
    with pytest.raises(tweedie.InputError, match="one image"):
        r.jacobian(images(2))
    with pytest.raises(tweedie.InputError, match="sampler"):
        r.sample(sampler="langevin")
    with pytest.raises(tweedie.RunError, match="config.json"):
        tweedie.Run(run)  # the folder above the run: not a run
    with pytest.raises(tweedie.TweedieError):
        tweedie.read_record(run / "absent.json")
    assert issubclass(tweedie.InputError, tweedie.TweedieError)


def test_other_threads_run_while_a_call_computes(run):
    r = tweedie.Run(run / "run")
    ticks = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=tick)
    t.start()
    start = time.perf_counter()
    r.sample(count=16, seed=0, sampler="euler", steps=200)
    end = time.perf_counter()
    done.set()
    t.join()
    during = [s for s in ticks if start < s < end]
    # with the GIL held for the whole call the other thread could not tick at all
    assert end - start > 0.05
    assert len(during) > 10, f"{len(during)} ticks in {end - start:.2f} s"


def test_the_examples_run(run, tmp_path):
    """docs/python.md's worked example, executed as a user would (matplotlib when installed)."""
    import sys

    examples = REPO / "python" / "examples"
    out = tmp_path / "eigenvectors.png"
    done = subprocess.run(
        [sys.executable, str(examples / "eigenvectors.py"), str(run / "run"), "--top", "4", "--out", str(out)],
        check=True, capture_output=True, text=True,
    )
    assert "top eigenvalues" in done.stdout
    assert out.exists() or out.with_suffix(".npy").exists()
    done = subprocess.run(
        [sys.executable, str(examples / "bench_denoise.py"), str(run / "run"), "--count", "8", "--size", "12",
         "--reps", "2", "--bin", binary()],
        check=True, capture_output=True, text=True,
    )
    assert "Python/Rust" in done.stdout


def test_training_from_python_reports_checkpoints_on_interrupt_and_resumes(run, tmp_path):
    """An exception in the progress callback (KeyboardInterrupt from Ctrl-C takes the same path)
    stops the run at a step boundary with its checkpoint written; resuming finishes it with
    the same weights as an uninterrupted run."""
    data = run / "disks.npy"
    common = dict(data=str(data), arch="bf-cnn", channels=8, layers=4, steps=40, batch=8, seed=2)
    seen = []

    def interrupt_at_10(step, total, message):
        seen.append((step, total))
        if step is not None and step >= 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tweedie.train(tmp_path / "a", **common, progress=interrupt_at_10)
    assert (tmp_path / "a" / "checkpoint.safetensors").exists()
    assert not (tmp_path / "a" / "model.safetensors").exists()
    assert any(total == 40 for _, total in seen)
    resumed = tweedie.train(tmp_path / "a", **common, resume=True)
    whole = tweedie.train(tmp_path / "b", **common)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    y = images(2)
    assert np.array_equal(resumed.denoise(y), whole.denoise(y))
    with pytest.raises(tweedie.InputError, match="steps"):
        tweedie.train(tmp_path / "c", **{**common, "steps": "forever"})


def test_restoration_keeps_the_measurements(run):
    r = tweedie.Run(run / "run")
    x = np.clip(images(2, seed=12), 0, 1)
    restored, naive = r.restore(x, "inpaint", box=(3, 3, 5, 5), max_steps=60)
    assert restored.shape == x.shape and naive.shape == x.shape
    known = np.ones((12, 12), bool)
    known[3:8, 3:8] = False
    # the constraint holds exactly: known pixels are the measured ones
    assert np.allclose(restored[:, 0][:, known], x[:, 0][:, known], atol=1e-5)
    assert np.all(naive[:, 0][:, ~known] == 0)
    same, _ = r.restore(x, "inpaint", mask=known, max_steps=60)
    assert np.array_equal(same, restored)
    r.restore(x, "superres", factor=2, max_steps=30)
    with pytest.raises(tweedie.InputError, match="task"):
        r.restore(x, "colorize")
    with pytest.raises(tweedie.InputError, match="fit"):
        r.restore(x, "inpaint", box=(10, 10, 5, 5))


def test_the_wiener_filter_beats_the_noisy_input(tmp_path):
    cli("data", "synth", "gaussian", "--size", 12, "--count", 8, "--out", tmp_path / "g")
    x = np.load(tmp_path / "g.npy").astype(np.float32)
    y = tweedie.noisy(x, 0.2, 0)
    x_hat = tweedie.wiener_denoise(tmp_path / "g.npy", y, 0.2)
    assert np.mean((x_hat - x) ** 2) < 0.5 * np.mean((y - x) ** 2)
    with pytest.raises(tweedie.InputError, match="Gaussian"):
        tweedie.wiener_denoise(tmp_path / "absent.npy", y, 0.2)


def test_the_noise_level_is_estimated_from_the_images():
    y = tweedie.noisy(np.zeros((3, 1, 64, 64), np.float32), 0.1, 0)
    est = tweedie.estimate_noise(y)
    assert est.shape == (3,) and np.all(np.abs(est / 0.1 - 1) < 0.06)
    assert np.isnan(tweedie.estimate_noise(np.zeros((1, 1, 1, 4), np.float32))[0])


def test_a_study_from_python_records_what_the_cli_records(run, tmp_path):
    """The generalization study run from Python (settings as keywords, progress reported)
    writes the same study.json as `tweedie generalization` with the same settings, and returns
    it with its figures as arrays; resume=True continues it; a study needs its data."""
    data = run / "disks.npy"
    settings = dict(sizes=[1, 4], pairs=1, samples=4, steps=30, snapshots=0, channels=8,
                    blocks=1, batch=8, eval_count=8, h0=0.1, beta=0.5, sigma_final=0.03,
                    max_steps=300)
    lines = []
    record = tweedie.generalization(tmp_path / "py", str(data), **settings,
                                    progress=lambda step, total, msg: lines.append(msg))
    cli("generalization", "--data", data, "--sizes", "1,4", "--pairs", 1, "--samples", 4,
        "--steps", 30, "--snapshots", 0, "--channels", 8, "--blocks", 1, "--batch", 8,
        "--eval-count", 8, "--h0", 0.1, "--beta", 0.5, "--sigma-final", 0.03,
        "--max-steps", 300, "--device", "cpu", "--out", tmp_path / "cli")
    assert (tmp_path / "py" / "study.json").read_bytes() == (tmp_path / "cli" / "study.json").read_bytes()
    assert [s["n"] for s in record["sizes"]] == [1, 4]
    assert isinstance(record["sizes"][0]["network"]["paired_similarity"], np.ndarray)
    assert (tmp_path / "py" / "report.html").exists()
    assert any("N1-a" in m for m in lines), lines[:5]
    again = tweedie.generalization(tmp_path / "py", resume=True)
    assert again["verdict"]["statement"] == record["verdict"]["statement"]
    with pytest.raises(tweedie.InputError, match="data"):
        tweedie.generalization(tmp_path / "empty")
    with pytest.raises(tweedie.InputError, match="holds no generalization study"):
        tweedie.generalization(tmp_path / "empty", resume=True)


def test_evaluate_equals_tweedie_eval(run, tmp_path):
    """Run.evaluate measures what `tweedie eval` measures (the same eval.json rows), its
    figures as arrays; bad settings raise InputError."""
    r = tweedie.Run(run / "run")
    got = r.evaluate(sigmas=[0.1, 0.2], count=8, seed=4)
    cli("eval", "--run", run / "run", "--sigmas", "0.1,0.2", "--count", 8, "--seed", 4,
        "--device", "cpu")
    want = tweedie.read_record(run / "run" / "eval.json")
    assert [row["psnr"] for row in got["test"]] == [row["psnr"] for row in want["test"]]
    assert [row["psnr"] for row in got["train"]] == [row["psnr"] for row in want["train"]]
    assert len(got["test"]) == 2 and got["images"] == 8
    with pytest.raises(tweedie.InputError, match="count"):
        r.evaluate(count=0)


def test_an_optimality_study_from_python_measures_what_the_cli_measures(tmp_path):
    """The optimality study from Python (the quick settings) writes the configuration and the
    figures `tweedie optimality` writes for the same settings (all but the time it took);
    a family is required to start one."""
    record = tweedie.optimality(tmp_path / "py", "gaussian", quick=True)
    cli("optimality", "--family", "gaussian", "--quick", "--device", "cpu", "--out", tmp_path / "cli")
    assert (tmp_path / "py" / "optimality_config.json").read_bytes() == (
        tmp_path / "cli" / "optimality_config.json").read_bytes()
    want = json.loads((tmp_path / "cli" / "optimality.json").read_text())
    got = json.loads((tmp_path / "py" / "optimality.json").read_text())
    for arm in got["arms"] + want["arms"]:
        arm.pop("measure_seconds", None)
    assert got == want
    assert isinstance(record["arms"][0]["rows"], list)
    with pytest.raises(tweedie.InputError, match="family"):
        tweedie.optimality(tmp_path / "none")
