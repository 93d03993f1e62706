//! `tweedie` for Python: the library's runs, denoisers, samplers, Jacobians and records with
//! numpy arrays in and out. Every computation releases the GIL; every error is a
//! `tweedie.TweedieError` (or a subclass) carrying the library's one-line message.

use numpy::{PyArray1, PyArray2, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use std::path::PathBuf;
use tweedie::analysis::jacobian::{full, symmetric_product, vjp_flat};
use tweedie::analysis::lanczos::{hutchinson, lanczos};
use tweedie::data::Images;
use tweedie::denoise::{Denoiser, EmpiricalOptimal, JacobianAt, Learned, Linearize};
use tweedie::experiments::dir::Context;
use tweedie::nn::{Arch, NetConfig};
use tweedie::sampling::ascent::AscentParams;
use tweedie::sampling::euler::EulerParams;
use tweedie::sampling::Sampler;
use tweedie::train::record::{Origin, RunDir};
use tweedie::train::{DataConfig, Session, Steps, StopRule, TrainConfig, Weights};

/// The allocator of the `tweedie` binary: burn frees and reallocates large tensors on every
/// pass, and with the system allocator a denoise of 64 small images took 1.5–1.7× as long from
/// Python as from the binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

create_exception!(_tweedie, TweedieError, PyException, "Any error of tweedie.");
create_exception!(
    _tweedie,
    InputError,
    TweedieError,
    "An array, argument or file that tweedie cannot use (wrong dtype or shape, NaN, absurd value)."
);
create_exception!(
    _tweedie,
    RunError,
    TweedieError,
    "A run folder that cannot be opened (not a run, unfinished, damaged)."
);

fn input(msg: impl std::fmt::Display) -> PyErr {
    InputError::new_err(msg.to_string())
}

fn tweedie_err(e: impl std::fmt::Display) -> PyErr {
    TweedieError::new_err(e.to_string())
}

/// How an array's axes map onto tweedie's `[n, c, h, w]`, to give results back the same way.
#[derive(Clone, Copy)]
enum Layout {
    /// `[n, c, h, w]`.
    Nchw,
    /// `[h, w]`: one gray image.
    Hw,
    /// `[n, h, w]`: gray images.
    Nhw,
    /// `[h, w, c]`: one colour image.
    Hwc,
}

/// A float32 array of images for a network of `channels` channels, as tweedie's images.
fn images(arr: &Bound<'_, PyAny>, channels: usize, what: &str) -> PyResult<(Images, Layout)> {
    let arr = arr.cast::<PyArrayDyn<f32>>().map_err(|_| {
        let dtype = arr
            .getattr("dtype")
            .map(|d| d.to_string())
            .unwrap_or_else(|_| "not an array".into());
        input(format!(
            "{what}: expected a numpy float32 array, got {dtype}; convert with np.asarray(x, dtype=np.float32)"
        ))
    })?;
    let shape = arr.shape().to_vec();
    let (layout, nchw) = match shape[..] {
        [n, c, h, w] => (Layout::Nchw, [n, c, h, w]),
        [h, w] if channels == 1 => (Layout::Hw, [1, 1, h, w]),
        [n, h, w] if channels == 1 => (Layout::Nhw, [n, 1, h, w]),
        [h, w, c] if c == channels => (Layout::Hwc, [1, c, h, w]),
        _ => {
            return Err(input(format!(
                "{what}: shape {shape:?} is not images for a {channels}-channel network; give [n, c, h, w]{}",
                if channels == 1 { ", [n, h, w] or [h, w]" } else { " or [h, w, c]" }
            )))
        }
    };
    if nchw[1] != channels {
        return Err(input(format!(
            "{what}: {} channels, the network takes {channels}",
            nchw[1]
        )));
    }
    if nchw.contains(&0) {
        return Err(input(format!("{what}: empty array of shape {shape:?}")));
    }
    let ro = arr.readonly();
    let data: Vec<f32> = match (layout, ro.as_slice()) {
        // C-contiguous and already in tweedie's order: one copy
        (Layout::Nchw | Layout::Hw | Layout::Nhw, Ok(flat)) => flat.to_vec(),
        // [h, w, c] → [c, h, w]
        (Layout::Hwc, _) => {
            let v = ro.as_array().permuted_axes(vec![2, 0, 1]);
            v.iter().copied().collect()
        }
        _ => ro.as_array().iter().copied().collect(),
    };
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(input(format!(
            "{what}: value {} at flat index {i} is not finite",
            data[i]
        )));
    }
    Ok((Images::new(data, nchw), layout))
}

/// [`images`] where no network fixes the channels: `[n, c, h, w]` says them, `[h, w, 3]` is
/// one colour image, any other 2-D or 3-D array is gray.
fn images_of_any_network(arr: &Bound<'_, PyAny>, what: &str) -> PyResult<(Images, Layout)> {
    let channels = arr
        .cast::<PyArrayDyn<f32>>()
        .map(|a| match a.shape() {
            [_, c, _, _] => *c,
            [_, _, 3] => 3,
            _ => 1,
        })
        .unwrap_or(1);
    images(arr, channels, what)
}

/// tweedie's images back as an array of `layout`.
fn array<'py>(py: Python<'py>, x: Images, layout: Layout) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    let [n, c, h, w] = x.shape();
    let flat = PyArray1::from_vec(py, x.into_vec());
    let shaped = match layout {
        Layout::Nchw => flat.reshape(vec![n, c, h, w])?,
        Layout::Hw => flat.reshape(vec![h, w])?,
        Layout::Nhw => flat.reshape(vec![n, h, w])?,
        Layout::Hwc => {
            let chw = flat.reshape(vec![c, h, w])?;
            let hwc = chw.call_method1("transpose", ((1, 2, 0),))?;
            hwc.call_method0("copy")?
                .cast_into::<PyArrayDyn<f32>>()?
                .clone()
        }
    };
    Ok(shaped)
}

/// JSON text as Python objects (through the standard library's parser).
fn json_to_py<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (text,))
}

/// Restorations and the measurements placed back in image space (Mᵀc).
type Restored<'py> = (Bound<'py, PyArrayDyn<f32>>, Bound<'py, PyArrayDyn<f32>>);

/// Eigenvalues and image-shaped eigenvectors.
type Eigen<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArrayDyn<f32>>);

/// A run folder: a network trained by tweedie or imported from PyTorch.
#[pyclass(module = "tweedie", frozen)]
struct Run {
    path: PathBuf,
    weights: Weights,
    learned: Learned,
    origin: Origin,
    config_json: String,
}

#[pymethods]
impl Run {
    /// Opens the run folder at `path` (its moving average of the weights when it keeps one,
    /// unless `weights="raw"`).
    #[new]
    #[pyo3(signature = (path, weights = "ema"))]
    fn new(py: Python<'_>, path: PathBuf, weights: &str) -> PyResult<Self> {
        let weights = match weights {
            "ema" => Weights::Ema,
            "raw" => Weights::Raw,
            other => return Err(input(format!("weights={other:?}: give \"ema\" or \"raw\""))),
        };
        let run = RunDir::new(&path);
        let device = tweedie::DeviceSpec::Cpu.device().map_err(tweedie_err)?;
        let (learned, origin) = py
            .detach(|| tweedie::train::load_network(&run, &device, weights))
            .map_err(|e| RunError::new_err(e.to_string()))?;
        let config_json =
            std::fs::read_to_string(run.config()).map_err(|e| RunError::new_err(e.to_string()))?;
        Ok(Self {
            path,
            weights,
            learned,
            origin,
            config_json,
        })
    }

    /// PSNR and MSE against σ on the run's training images and on held-out ones, as `tweedie
    /// eval` measures them (also writing `eval.json`): returns the record as `read_record`
    /// does (`train`, `test`, and with `optimum=True` on a Gaussian-field family the Wiener
    /// filter's rows and the blind optima's). `data`: other held-out images (required for an
    /// imported network, which is measured on held-out images only).
    #[pyo3(signature = (sigmas = vec![5.0 / 255.0, 15.0 / 255.0, 25.0 / 255.0, 50.0 / 255.0,
        100.0 / 255.0], count = 256, data = None, optimum = false, seed = 0))]
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        sigmas: Vec<f32>,
        count: usize,
        data: Option<String>,
        optimum: bool,
        seed: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        use tweedie::experiments::eval;
        let cfg = eval::Config {
            sigmas,
            count,
            optimum,
            weights: self.weights,
            seed,
            data,
        };
        cfg.validate().map_err(|e| input(one_line_chain(&e)))?;
        let run = RunDir::new(&self.path);
        let text = py
            .detach(|| -> Result<String, String> {
                let device = tweedie::DeviceSpec::Cpu
                    .device()
                    .map_err(|e| e.to_string())?;
                let done = eval::run(&cfg, &run, &device).map_err(|e| one_line_chain(&e))?;
                serde_json::to_string(&done.record).map_err(|e| e.to_string())
            })
            .map_err(tweedie_err)?;
        // lists of numbers as numpy arrays, as `read_record` gives them
        py.import("tweedie")?
            .getattr("_arrays")?
            .call1((json_to_py(py, &text)?,))
    }

    /// The folder.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// `config.json` as a dict: the training record, or for an imported network its source.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.config_json)
    }

    /// Whether the network was imported from a PyTorch checkpoint.
    #[getter]
    fn imported(&self) -> bool {
        matches!(self.origin, Origin::Imported(_))
    }

    /// Image channels the network takes (1 gray, 3 colour).
    #[getter]
    fn image_channels(&self) -> usize {
        self.origin.image_channels()
    }

    /// (C, H, W) of the images it was trained on; None for an imported network.
    #[getter]
    fn image_shape(&self) -> Option<(usize, usize, usize)> {
        self.origin.image_shape().map(|[c, h, w]| (c, h, w))
    }

    /// The denoised images x̂ = f(y), same shape as `y` (float32: [n, c, h, w], or [n, h, w] /
    /// [h, w] for gray, [h, w, c] for one colour image). The network is blind: `sigma` is
    /// accepted for symmetry with the oracles and ignored.
    #[pyo3(signature = (y, sigma = None))]
    fn denoise<'py>(
        &self,
        py: Python<'py>,
        y: &Bound<'py, PyAny>,
        sigma: Option<f32>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let (y, layout) = images(y, self.image_channels(), "y")?;
        let x = py
            .detach(|| self.learned.denoise(&y, sigma))
            .map_err(tweedie_err)?;
        array(py, x, layout)
    }

    /// `count` samples from the network's prior, [count, c, h, w]: sample k starts from the
    /// noise of stream (seed, k), so the same seed gives the CLI's samples (`tweedie sample`).
    /// `size` is (h, w) or h (required for an imported network); `sampler` "ascent" (coarse-
    /// to-fine stochastic ascent; h0, beta, sigma_final, max_steps) or "euler" (probability-flow
    /// Euler; steps).
    #[pyo3(signature = (count = 16, seed = 0, size = None, sampler = "ascent", steps = 100,
        h0 = 0.01, beta = 0.1, sigma_final = 0.01, max_steps = 3000, batch = 64))]
    #[allow(clippy::too_many_arguments)]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        count: usize,
        seed: u64,
        size: Option<&Bound<'py, PyAny>>,
        sampler: &str,
        steps: usize,
        h0: f64,
        beta: f64,
        sigma_final: f64,
        max_steps: usize,
        batch: usize,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let c = self.image_channels();
        let shape = match size {
            Some(s) => match s.extract::<(usize, usize)>() {
                Ok((h, w)) => [c, h, w],
                Err(_) => {
                    let h: usize = s.extract().map_err(|_| input("size: give h or (h, w)"))?;
                    [c, h, h]
                }
            },
            None => self.origin.image_shape().ok_or_else(|| {
                input(
                    "an imported network was trained on images tweedie never saw: give size=(h, w)",
                )
            })?,
        };
        if count == 0 || shape[1] == 0 || shape[2] == 0 {
            return Err(input("count and size must be at least 1"));
        }
        let sampler = sampler_of(
            sampler,
            SamplerSettings {
                steps,
                h0,
                beta,
                sigma_final,
                max_steps,
                batch,
            },
        )?;
        let out = py
            .detach(|| {
                sampler.sample(
                    &self.learned,
                    shape,
                    count,
                    0,
                    seed,
                    &tweedie::progress::Silent,
                )
            })
            .map_err(tweedie_err)?;
        array(py, out.images, Layout::Nchw)
    }

    /// Solves a linear inverse problem for each clean image of `x` with the network as prior
    /// (constrained coarse-to-fine ascent, as `tweedie restore`): measures it with the operator
    /// of `task` and returns (restorations, Mᵀc), both shaped like `x`. Tasks: "inpaint"
    /// (`box=(top, left, height, width)` or `mask`, a bool array [h, w], True where known),
    /// "random-pixels" (`fraction` missing), "superres" (`factor`), "cs" (`fraction` of D
    /// random projections), "deblur" (`cutoff` cycles per image). `seed`: random operators and
    /// the ascent's noise.
    #[pyo3(signature = (x, task, r#box = None, mask = None, fraction = 0.5, factor = 4,
        cutoff = 4.0, seed = 0, h0 = 0.01, beta = 0.01, sigma_final = 0.01, max_steps = 3000))]
    #[allow(clippy::too_many_arguments)]
    fn restore<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        task: &str,
        r#box: Option<(usize, usize, usize, usize)>,
        mask: Option<numpy::PyReadonlyArray2<'py, bool>>,
        fraction: f64,
        factor: usize,
        cutoff: f64,
        seed: u64,
        h0: f64,
        beta: f64,
        sigma_final: f64,
        max_steps: usize,
    ) -> PyResult<Restored<'py>> {
        use tweedie::experiments::restore::{self, Config, Input};
        use tweedie::sampling::operators::Task;
        let (x, layout) = images(x, self.image_channels(), "x")?;
        let [n, _, h, w] = x.shape();
        let task = match (task, r#box, &mask) {
            ("inpaint", Some((top, left, height, width)), None) => Task::InpaintBox {
                top,
                left,
                height,
                width,
            },
            ("inpaint", None, Some(m)) => {
                if m.shape() != [h, w] {
                    return Err(input(format!(
                        "mask: shape {:?}, images are {h}×{w}",
                        m.shape()
                    )));
                }
                Task::InpaintMask {
                    known: m.as_array().iter().copied().collect(),
                    size: [h, w],
                    name: "an array".into(),
                }
            }
            ("inpaint", _, _) => return Err(input("inpaint: give exactly one of box or mask")),
            ("random-pixels", _, _) => Task::RandomPixels { fraction },
            ("superres", _, _) => Task::Superres { factor },
            ("cs", _, _) => Task::Cs { fraction },
            ("deblur", _, _) => Task::Deblur { cutoff },
            (other, _, _) => {
                return Err(input(format!(
                    "task={other:?}: give inpaint, random-pixels, superres, cs or deblur"
                )))
            }
        };
        let cfg = Config {
            task,
            ascent: AscentParams {
                h0,
                beta,
                sigma_final,
                max_steps,
                batch: 16,
                ..AscentParams::for_restoration()
            },
            seed,
        };
        let inputs: Vec<Input> = (0..n)
            .map(|i| Input {
                name: format!("x[{i}]"),
                clean: x.select(&[i]),
                reference: None,
            })
            .collect();
        // restore::run checks the operator's and the ascent's settings before any work
        let (_, restored) = py
            .detach(|| restore::run(&cfg, &self.learned, &inputs, &tweedie::progress::Silent))
            .map_err(|e| match e {
                restore::RestoreError::Invalid(field) => input(field),
                other => tweedie_err(other),
            })?;
        let (naive, restored): (Vec<Images>, Vec<Images>) =
            restored.into_iter().map(|r| (r.naive, r.restored)).unzip();
        Ok((
            array(py, Images::concat(&restored), layout)?,
            array(py, Images::concat(&naive), layout)?,
        ))
    }

    /// J·v at the image `y` for each v of `v` (image-shaped, or a batch [k, …] of them).
    fn jvp<'py>(
        &self,
        py: Python<'py>,
        y: &Bound<'py, PyAny>,
        v: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        self.product(py, y, v, false)
    }

    /// Jᵀ·u (= uᵀJ) at the image `y` for each u of `u`.
    fn vjp<'py>(
        &self,
        py: Python<'py>,
        y: &Bound<'py, PyAny>,
        u: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        self.product(py, y, u, true)
    }

    /// The dense Jacobian of the denoiser at the image `y`, [D, D] with D = c·h·w (exact: the
    /// network with y's ReLU pattern frozen). D² floats: for small images.
    fn jacobian<'py>(
        &self,
        py: Python<'py>,
        y: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let (y, _) = self.one_image(y)?;
        let d = y.dim();
        if d > 16_384 {
            return Err(input(format!(
                "y: {d} pixels; the dense Jacobian holds D² floats — use eigenpairs() or trace() beyond 128×128"
            )));
        }
        let jac = self.at_image(py, &y, |at| full(at, 64))?;
        PyArray1::from_vec(py, jac).reshape([d, d])
    }

    /// The `k` largest eigenvalues of the Jacobian's symmetric part at `y` and their
    /// eigenvectors (image-shaped, [k, c, h, w]), by Lanczos (`iterations`, default 2k + 20;
    /// starting vector from `seed`): the geometry-adaptive harmonic basis.
    #[pyo3(signature = (y, k = 16, iterations = None, seed = 0))]
    fn eigenpairs<'py>(
        &self,
        py: Python<'py>,
        y: &Bound<'py, PyAny>,
        k: usize,
        iterations: Option<usize>,
        seed: u64,
    ) -> PyResult<Eigen<'py>> {
        let (y, _) = self.one_image(y)?;
        let d = y.dim();
        if k == 0 || k > d {
            return Err(input(format!("k = {k}: give 1 to {d} eigenpairs")));
        }
        let iterations = iterations.unwrap_or(2 * k + 20);
        let [_, c, h, w] = y.shape();
        let pairs = self.at_image(py, &y, |at| {
            lanczos(|v| symmetric_product(at, v), d, k, iterations, seed)
        })?;
        let values = PyArray1::from_vec(py, pairs.values);
        let flat: Vec<f32> = pairs.vectors.into_iter().flatten().collect();
        let vectors = array(py, Images::new(flat, [k, c, h, w]), Layout::Nchw)?;
        Ok((values, vectors))
    }

    /// tr J at `y` (the effective dimension): Hutchinson's estimate over `probes` Rademacher
    /// vectors from `seed`, as (mean, standard error).
    #[pyo3(signature = (y, probes = 64, seed = 0))]
    fn trace(
        &self,
        py: Python<'_>,
        y: &Bound<'_, PyAny>,
        probes: usize,
        seed: u64,
    ) -> PyResult<(f64, f64)> {
        let (y, _) = self.one_image(y)?;
        let d = y.dim();
        let est = self.at_image(py, &y, |at| {
            hutchinson(|vs| vjp_flat(at, vs), d, probes, seed)
        })?;
        Ok((est.mean, est.std_error))
    }

    fn __repr__(&self) -> String {
        let net = self.origin.net();
        format!(
            "Run({:?}, {:?}, {} channel(s){})",
            self.path.display().to_string(),
            net.arch,
            net.image_channels,
            if self.imported() { ", imported" } else { "" }
        )
    }
}

impl Run {
    /// `f` of the Jacobian at the one image `y`, computed without the GIL.
    fn at_image<T: Send>(
        &self,
        py: Python<'_>,
        y: &Images,
        f: impl FnOnce(&dyn JacobianAt) -> T + Send,
    ) -> PyResult<T> {
        py.detach(|| match self.learned.linearize(y, None) {
            Ok(at) => Ok(f(&*at)),
            Err(e) => Err(e.to_string()),
        })
        .map_err(tweedie_err)
    }

    /// `y` as exactly one image.
    fn one_image(&self, y: &Bound<'_, PyAny>) -> PyResult<(Images, Layout)> {
        let (y, layout) = images(y, self.image_channels(), "y")?;
        if y.len() != 1 {
            return Err(input(format!(
                "y: {} images; the Jacobian is taken at one image",
                y.len()
            )));
        }
        Ok((y, layout))
    }

    fn product<'py>(
        &self,
        py: Python<'py>,
        y: &Bound<'py, PyAny>,
        vs: &Bound<'py, PyAny>,
        adjoint: bool,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let (y, _) = self.one_image(y)?;
        let (vs, layout) = images(vs, self.image_channels(), "v")?;
        if vs.image_shape() != y.image_shape() {
            return Err(input(format!(
                "v: images of shape {:?}, y is {:?}",
                vs.image_shape(),
                y.image_shape()
            )));
        }
        let out = self.at_image(py, &y, |at| match adjoint {
            true => at.vjp(&vs),
            false => at.jvp(&vs),
        })?;
        array(py, out, layout)
    }
}

/// The empirical-optimal (perfectly memorizing) denoiser of the training images `train` at
/// noise level `sigma`: the posterior mean over the training set, exact, for the images `y`.
#[pyfunction]
fn empirical_optimal_denoise<'py>(
    py: Python<'py>,
    train: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    sigma: f32,
) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    if !(sigma.is_finite() && sigma > 0.0) {
        return Err(input(format!(
            "sigma = {sigma}: give a positive noise level"
        )));
    }
    let (train, _) = images_of_any_network(train, "train")?;
    let (y, layout) = images(y, train.shape()[1], "y")?;
    if y.image_shape() != train.image_shape() {
        return Err(input(format!(
            "y: images of shape {:?}, the training images are {:?}",
            y.image_shape(),
            train.image_shape()
        )));
    }
    let x = py
        .detach(|| EmpiricalOptimal::new(train).denoise(&y, Some(sigma)))
        .map_err(tweedie_err)?;
    array(py, x, layout)
}

/// The Wiener filter (the exact MMSE denoiser) of the Gaussian-field family that generated
/// `family` (an .npy written by `tweedie data synth gaussian`, with its .json beside it) at
/// noise level `sigma`, for the images `y`.
#[pyfunction]
fn wiener_denoise<'py>(
    py: Python<'py>,
    family: PathBuf,
    y: &Bound<'py, PyAny>,
    sigma: f32,
) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    use tweedie::data::synthetic::Family;
    if !(sigma.is_finite() && sigma > 0.0) {
        return Err(input(format!(
            "sigma = {sigma}: give a positive noise level"
        )));
    }
    let Some(Family::Gaussian(field)) = Family::of_npy(&family) else {
        return Err(input(format!(
            "{}: not a Gaussian-field family's .npy with its .json (tweedie data synth gaussian)",
            family.display()
        )));
    };
    let (y, layout) = images(y, 1, "y")?;
    let [_, _, h, w] = y.shape();
    if !field.exact_optimum_within_reach(h, w) {
        return Err(input(format!(
            "y: {h}×{w} open-edged fields; the exact Wiener filter is computed up to {m}×{m}",
            m = tweedie::data::synthetic::GaussianField::MAX_OPEN_SIDE
        )));
    }
    let x = py
        .detach(|| tweedie::denoise::Wiener::new(field).denoise(&y, Some(sigma)))
        .map_err(tweedie_err)?;
    array(py, x, layout)
}

/// The noise level of each image of `y` from the image alone (the median absolute finest
/// diagonal Haar coefficient over 0.6745): a float64 array, one σ per image (NaN for images
/// smaller than 2×2).
#[pyfunction]
fn estimate_noise<'py>(
    py: Python<'py>,
    y: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let (y, _) = images_of_any_network(y, "y")?;
    let sigmas = tweedie::analysis::noise::estimate_sigma(&y)
        .into_iter()
        .map(|s| s.map_or(f64::NAN, f64::from))
        .collect();
    Ok(PyArray1::from_vec(py, sigmas))
}

/// `x` with Gaussian noise of level `sigma` drawn as tweedie's commands draw it at (seed, σ)
/// (`tweedie jacobian`, `tweedie eval`): the same seed gives the same noisy images.
#[pyfunction]
fn noisy<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    sigma: f32,
    seed: u64,
) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    if !(sigma.is_finite() && sigma >= 0.0) {
        return Err(input(format!("sigma = {sigma}: give a noise level ≥ 0")));
    }
    let (x, layout) = images_of_any_network(x, "x")?;
    let y = tweedie::analysis::metrics::noisy(&x, sigma, seed);
    array(py, y, layout)
}

/// Progress of a training run reported to a Python callable `callback(step, total, message)`
/// (log lines come with step None), with the GIL taken only for the call. Ctrl-C (or an
/// exception in the callback) asks the run to stop at the next step boundary, where it writes
/// its checkpoint, as SIGINT does in the CLI; the exception is raised once it has.
struct PyProgress<'w> {
    callback: Option<Py<PyAny>>,
    watch: &'w tweedie::interrupt::Watch,
    total: std::sync::atomic::AtomicU64,
    raised: std::sync::Mutex<Option<PyErr>>,
}

impl PyProgress<'_> {
    fn call(&self, step: Option<u64>, message: &str) {
        if self.raised.lock().map(|r| r.is_some()).unwrap_or(true) {
            return;
        }
        let total = self.total.load(std::sync::atomic::Ordering::Relaxed);
        let outcome = Python::attach(|py| -> PyResult<()> {
            py.check_signals()?;
            if let Some(cb) = &self.callback {
                cb.call1(py, (step, total, message))?;
            }
            Ok(())
        });
        if let Err(e) = outcome {
            if let Ok(mut slot) = self.raised.lock() {
                *slot = Some(e);
            }
            self.watch.request();
        }
    }
}

impl tweedie::progress::Progress for PyProgress<'_> {
    fn start(&self, _what: &str, total: u64) {
        self.total
            .store(total, std::sync::atomic::Ordering::Relaxed);
    }
    fn update(&self, pos: u64, msg: &str) {
        self.call(Some(pos), msg);
    }
    fn log(&self, line: &str) {
        self.call(None, line);
    }
    fn finish(&self) {}
}

/// Runs `work` with the GIL released, reporting to the Python callable `progress`; Ctrl-C (or
/// an exception in the callback) asks the work to stop at its next checkpoint and is raised
/// once it has. `work`'s own failure becomes a `TweedieError` with its message.
fn interruptible<T: Send>(
    py: Python<'_>,
    progress: Option<Py<PyAny>>,
    work: impl FnOnce(&PyProgress<'_>) -> Result<T, String> + Send,
) -> PyResult<T> {
    let watch = tweedie::interrupt::Watch::start();
    let reporter = PyProgress {
        callback: progress,
        watch: &watch,
        total: std::sync::atomic::AtomicU64::new(0),
        raised: std::sync::Mutex::new(None),
    };
    let result = py.detach(|| work(&reporter));
    if let Some(e) = reporter.raised.lock().ok().and_then(|mut r| r.take()) {
        return Err(e);
    }
    result.map_err(tweedie_err)
}

/// A study's record as Python objects, from the study run on the CPU with `progress` and
/// `jobs` trainings at once.
fn study_record<R: serde::Serialize>(
    py: Python<'_>,
    progress: Option<Py<PyAny>>,
    jobs: Option<usize>,
    run: impl FnOnce(&Context<'_>) -> Result<R, String> + Send,
) -> PyResult<Bound<'_, PyAny>> {
    let text = interruptible(py, progress, |reporter| {
        let ctx = Context {
            device: tweedie::DeviceSpec::Cpu
                .device()
                .map_err(|e| e.to_string())?,
            progress: reporter,
            jobs,
        };
        let record = run(&ctx)?;
        serde_json::to_string(&record).map_err(|e| e.to_string())
    })?;
    json_to_py(py, &text)
}

/// Trains a blind bias-free denoiser into the run folder `out`, as `tweedie train` does, and
/// returns its `Run`. `data`: a source as the CLI spells it (`fashion-mnist`, an image folder,
/// an .npy or IDX file); `steps`: a number, or "auto" / "auto:CAP" to train to convergence.
/// `progress(step, total, message)` is called as training advances (step None for log lines).
/// Ctrl-C checkpoints the run and raises KeyboardInterrupt; `resume=True` continues it.
#[pyfunction]
#[pyo3(signature = (out, data, arch = "bf-unet", channels = 16, blocks = 2, layers = 20,
    steps = None, batch = 32, seed = 0, gray = false, size = None, train_size = None,
    resume = false, progress = None))]
#[allow(clippy::too_many_arguments)]
fn train(
    py: Python<'_>,
    out: PathBuf,
    data: String,
    arch: &str,
    channels: usize,
    blocks: usize,
    layers: usize,
    steps: Option<&Bound<'_, PyAny>>,
    batch: usize,
    seed: u64,
    gray: bool,
    size: Option<usize>,
    train_size: Option<usize>,
    resume: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<Run> {
    let recipe = Recipe {
        arch,
        channels,
        blocks,
        layers,
        batch,
        seed,
    };
    let data = Data {
        source: data,
        gray,
        size,
        train_size,
    };
    let cfg = train_config(&recipe, &data, steps, Steps::Fixed(2000))?;
    let run = RunDir::new(&out);
    interruptible(py, progress, |reporter| {
        let resolved = cfg.data.resolve().map_err(|e| e.to_string())?;
        tweedie::train::train_on(&cfg, resolved, &run, Session::resuming(resume), reporter)
            .map(drop)
            .map_err(|e| e.to_string())
    })?;
    Run::new(py, out, "ema")
}

/// The sampler settings `Run.sample` and `generalization` take.
struct SamplerSettings {
    steps: usize,
    h0: f64,
    beta: f64,
    sigma_final: f64,
    max_steps: usize,
    batch: usize,
}

/// The sampler named `kind` ("ascent" or "euler") with `settings`, checked.
fn sampler_of(kind: &str, settings: SamplerSettings) -> PyResult<Sampler> {
    let SamplerSettings {
        steps,
        h0,
        beta,
        sigma_final,
        max_steps,
        batch,
    } = settings;
    let sampler = match kind {
        "ascent" => Sampler::Ascent(AscentParams {
            h0,
            beta,
            sigma_final,
            max_steps,
            batch,
            ..AscentParams::default()
        }),
        "euler" => Sampler::Euler(EulerParams {
            steps,
            batch,
            ..EulerParams::default()
        }),
        other => {
            return Err(input(format!(
                "sampler={other:?}: give \"ascent\" or \"euler\""
            )))
        }
    };
    sampler.validate().map_err(input)?;
    Ok(sampler)
}

/// The network and optimizer settings `train` and `generalization` share.
struct Recipe<'a> {
    arch: &'a str,
    channels: usize,
    blocks: usize,
    layers: usize,
    batch: usize,
    seed: u64,
}

/// The data settings `train` and `generalization` share.
struct Data {
    source: String,
    gray: bool,
    size: Option<usize>,
    train_size: Option<usize>,
}

/// `steps` as Python gives it: a number, "auto" or "auto:CAP" (None when not given).
fn steps_arg(steps: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Steps>> {
    let Some(s) = steps else {
        return Ok(None);
    };
    match s.extract::<u64>() {
        Ok(n) => Steps::parse(&n.to_string()),
        Err(_) => s
            .extract::<String>()
            .map_err(|_| "steps: give a number, \"auto\" or \"auto:CAP\"".to_string())
            .and_then(|t| Steps::parse(&t)),
    }
    .map(Some)
    .map_err(|e| input(format!("steps: {e}")))
}

/// The training configuration of `recipe` on `data`, as `tweedie train` builds it from its
/// flags (the library's recipe; `steps` "auto" trains to convergence), with the network's
/// channels following the data's (read here: a source that does not load is an InputError).
fn train_config(
    recipe: &Recipe<'_>,
    data: &Data,
    steps: Option<&Bound<'_, PyAny>>,
    default_steps: Steps,
) -> PyResult<TrainConfig> {
    // the architecture by its serialized name, as config.json and the CLI spell it
    let arch: Arch =
        serde_json::from_value(serde_json::Value::from(recipe.arch)).map_err(|_| {
            input(format!(
                "arch={:?}: give \"bf-unet\", \"bf-cnn\" or \"bf-unet-2020\"",
                recipe.arch
            ))
        })?;
    let steps = steps_arg(steps)?.unwrap_or(default_steps);
    let mut source = DataConfig::new(data.source.clone());
    source.gray = data.gray;
    source.size = data.size;
    source.split.train_size = data.train_size;
    let net = NetConfig {
        arch,
        image_channels: 1,
        channels: recipe.channels,
        blocks: recipe.blocks,
        layers: recipe.layers,
    };
    let mut cfg = TrainConfig::new(
        source,
        net,
        steps.cap(),
        recipe.batch,
        recipe.seed,
        tweedie::DeviceSpec::Cpu,
    );
    if let Steps::Auto(cap) = steps {
        cfg = cfg.until_converged(StopRule::default(), cap);
    }
    let resolved = cfg.data.resolve().map_err(input)?;
    cfg.net.image_channels = resolved.train.shape()[1];
    Ok(cfg)
}

/// Runs the generalization study in `out` as `tweedie generalization` does (the study's
/// defaults; `steps` "auto" by default: every network trained to convergence; the sampler's
/// settings as in `Run.sample`, `euler_steps` its `steps`) and returns
/// `study.json` as Python objects; the report page is written beside it. `resume=True`
/// continues the study in `out` with its own settings. Ctrl-C stops the training at a
/// checkpoint and raises KeyboardInterrupt; the study then continues with `resume=True`.
#[pyfunction]
#[pyo3(signature = (out, data = None, sizes = vec![1, 10, 100, 1000], pairs = 3, samples = 64,
    steps = None, snapshots = 8, channels = 16, blocks = 2, batch = 32, seed = 0, gray = false,
    size = None, eval_count = 256, sampler = "ascent", euler_steps = 100, h0 = 0.01, beta = 0.1,
    sigma_final = 0.01, max_steps = 3000, jobs = None, resume = false, progress = None))]
#[allow(clippy::too_many_arguments)]
fn generalization<'py>(
    py: Python<'py>,
    out: PathBuf,
    data: Option<String>,
    sizes: Vec<usize>,
    pairs: usize,
    samples: usize,
    steps: Option<&Bound<'py, PyAny>>,
    snapshots: usize,
    channels: usize,
    blocks: usize,
    batch: usize,
    seed: u64,
    gray: bool,
    size: Option<usize>,
    eval_count: usize,
    sampler: &str,
    euler_steps: usize,
    h0: f64,
    beta: f64,
    sigma_final: f64,
    max_steps: usize,
    jobs: Option<usize>,
    resume: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    use tweedie::experiments::dir::Run as _;
    use tweedie::experiments::generalization::{Config, Generalization, StudyDir};
    let dir = StudyDir::new(&out);
    let cfg = if resume {
        dir.resume().map_err(input)?
    } else {
        let Some(source) = data else {
            return Err(input(
                "data: required to start a study (resume=True continues the one in out)",
            ));
        };
        let recipe = Recipe {
            arch: "bf-unet",
            channels,
            blocks,
            layers: 20,
            batch,
            seed,
        };
        let data = Data {
            source,
            gray,
            size,
            train_size: None,
        };
        let train = train_config(&recipe, &data, steps, Steps::Auto(tweedie::train::AUTO_CAP))?;
        let mut cfg = Config::new(train, sizes);
        cfg.pairs = pairs;
        cfg.samples = samples;
        cfg.eval_count = eval_count;
        cfg.set_snapshots(snapshots);
        cfg.sampler = sampler_of(
            sampler,
            SamplerSettings {
                steps: euler_steps,
                h0,
                beta,
                sigma_final,
                max_steps,
                batch: 64,
            },
        )?;
        dir.start(cfg).map_err(input)?
    };
    cfg.validate().map_err(|e| input(one_line_chain(&e)))?;
    dir.write_config(&cfg).map_err(tweedie_err)?;
    study_record(py, progress, jobs, |ctx| {
        let record = Generalization::run(&cfg, &dir, ctx).map_err(|e| one_line_chain(&e))?;
        tweedie::report::study::write(&dir, &record).map_err(|e| e.to_string())?;
        Ok(record)
    })
}

/// Runs the optimality study in `out` as `tweedie optimality` does — networks trained on a
/// family whose optimal denoiser is known, measured against it — and returns
/// `optimality.json` as Python objects; the report is written beside it. `family`: "gaussian"
/// (`gamma`), "calpha" (`alphas`), "disks" or "shuffled" (`data` and its pixel-shuffled copy);
/// the other settings are the command's defaults (`quick=True`: its smoke-test settings;
/// `steps` "auto" by default). `resume=True` continues the study in `out`.
#[pyfunction]
#[pyo3(signature = (out, family = None, alphas = vec![1.0, 2.0, 3.0, 5.0], gamma = 2.0,
    data = "fashion-mnist".to_string(), size = 32, train_images = 10000, channels = 16,
    blocks = 2, steps = None, quick = false, seed = 0, resume = false, progress = None))]
#[allow(clippy::too_many_arguments)]
fn optimality<'py>(
    py: Python<'py>,
    out: PathBuf,
    family: Option<&str>,
    alphas: Vec<f64>,
    gamma: f64,
    data: String,
    size: usize,
    train_images: usize,
    channels: usize,
    blocks: usize,
    steps: Option<&Bound<'py, PyAny>>,
    quick: bool,
    seed: u64,
    resume: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    use tweedie::data::synthetic::GaussianField;
    use tweedie::experiments::dir::Run as _;
    use tweedie::experiments::optimality::{Config, Optimality, OptimalityDir, Study};
    let dir = OptimalityDir::new(&out);
    let cfg = if resume {
        dir.resume().map_err(input)?
    } else {
        let study = match family {
            Some("gaussian") => Study::Gaussian {
                field: GaussianField {
                    gamma,
                    ..GaussianField::default()
                },
            },
            Some("calpha") => Study::CAlpha {
                alphas,
                construction: Default::default(),
            },
            Some("disks") => Study::Disks,
            Some("shuffled") => Study::Shuffled { data },
            _ => {
                return Err(input(
                    "family: give \"gaussian\", \"calpha\", \"disks\" or \"shuffled\" (resume=True continues the study in out)",
                ))
            }
        };
        let net = NetConfig {
            arch: Arch::BfUnet,
            image_channels: 1,
            channels,
            blocks,
            layers: 20,
        };
        let mut cfg = Config::new(study, net, seed, tweedie::DeviceSpec::Cpu);
        cfg.size = size;
        cfg.train_images = train_images;
        if quick {
            cfg.quick();
        }
        if let Some(steps) = steps_arg(steps)? {
            cfg.train = cfg.train.replan(steps);
        }
        dir.start(cfg).map_err(input)?
    };
    cfg.validate().map_err(|e| input(one_line_chain(&e)))?;
    study_record(py, progress, None, |ctx| {
        let record = Optimality::run(&cfg, &dir, ctx).map_err(|e| one_line_chain(&e))?;
        tweedie::report::optimality::write(&dir, &record).map_err(|e| e.to_string())?;
        Ok(record)
    })
}

/// An error and its causes on one line ("invalid study setting: pairs 0: must be …").
fn one_line_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// A JSON record tweedie wrote (`study.json`, `optimality.json`, `jacobian.json`,
/// `eval.json`, `config.json`, …) as plain Python objects.
#[pyfunction]
fn read_record<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyAny>> {
    let text = std::fs::read_to_string(&path)
        .map_err(|e| TweedieError::new_err(format!("{}: {e}", path.display())))?;
    json_to_py(py, &text)
        .map_err(|e| TweedieError::new_err(format!("{}: not a JSON record ({e})", path.display())))
}

/// tweedie: bias-free denoisers as generative models.
#[pymodule]
fn _tweedie(m: &Bound<'_, PyModule>) -> PyResult<()> {
    tweedie::resources::keep_freed_memory();
    m.add_class::<Run>()?;
    m.add_function(wrap_pyfunction!(empirical_optimal_denoise, m)?)?;
    m.add_function(wrap_pyfunction!(read_record, m)?)?;
    m.add_function(wrap_pyfunction!(noisy, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(generalization, m)?)?;
    m.add_function(wrap_pyfunction!(optimality, m)?)?;
    m.add_function(wrap_pyfunction!(wiener_denoise, m)?)?;
    m.add_function(wrap_pyfunction!(estimate_noise, m)?)?;
    m.add("TweedieError", m.py().get_type::<TweedieError>())?;
    m.add("InputError", m.py().get_type::<InputError>())?;
    m.add("RunError", m.py().get_type::<RunError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
