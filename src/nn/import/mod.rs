//! Networks trained elsewhere: PyTorch checkpoints of the field's bias-free denoisers turned
//! into ours, weight for weight.
//!
//! Each [`SourceArch`] is a network exactly as its repository defines it, mapped onto one of
//! our types when the computation is the same: the BF-CNN of *Solving linear inverse problems
//! using the prior implicit in a denoiser* (Kadkhodaie & Simoncelli 2021) and of the
//! generalization paper, and the bias-free DnCNN of *Robust and interpretable blind image
//! denoising via bias-free CNNs* (Mohan et al. 2020), are both our [`super::BfCnn`]. What
//! differs between them (names, the normalisation's epsilon, whether `forward` returns the
//! noise or the image) is handled here and recorded in the [`TorchSource`], so the rest of
//! the tool always works with x̂ = y − net(y).

mod state_dict;

pub use state_dict::{Container, StateDict};

use super::{checkpoint, Arch, NetConfig, Network};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The epsilon of bias_free_denoising's `BFBatchNorm2d`, which divides by `sqrt(var) + eps`
/// in eval mode (PyTorch's `BatchNorm2d` default, kept by that subclass).
const BF_BATCHNORM_EPS: f32 = 1e-5;

/// An architecture as a PyTorch repository defines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SourceArch {
    /// `BF_CNN` of LabForComputationalVision/universal_inverse_problem (`conv_layers`,
    /// `running_sd`, `gammas`) and of memorization_generalization_in_diffusion_models
    /// (`conv_layers`, `BN_layers.*.running_sd`, `BN_layers.*.gammas`): returns the noise.
    BfCnn,
    /// `DnCNN` of LabForComputationalVision/bias_free_denoising without bias (`first_layer`,
    /// `hidden_layer_list`, `bn_layer_list` of `BFBatchNorm2d`, `last_layer`): returns y − noise.
    BfDncnn,
    /// `UNet` of bias_free_denoising without bias (`conv1` … `conv9`; its published weights
    /// were trained with `residual=False`): returns the denoised image.
    #[value(name = "bf-unet-2020")]
    #[serde(rename = "bf-unet-2020")]
    BfUnet2020,
}

/// What a PyTorch network's `forward` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Output {
    /// The noise, y − x̂ (our convention: x̂ = y − forward(y)).
    Residual,
    /// The denoised image x̂ (so its forward is y − our network).
    Denoised,
}

impl SourceArch {
    /// What the original `forward` returns.
    pub fn output(self) -> Output {
        match self {
            SourceArch::BfCnn => Output::Residual,
            SourceArch::BfDncnn | SourceArch::BfUnet2020 => Output::Denoised,
        }
    }
}

/// Where an imported network came from; kept in the run folder's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TorchSource {
    /// The checkpoint's file name (not its path: the folder may move).
    pub file: String,
    /// sha256 of the checkpoint's bytes.
    pub sha256: String,
    /// The container it came in.
    pub container: Container,
    /// The architecture it was read as.
    pub arch: SourceArch,
    /// What the original network's forward returns.
    pub output: Output,
    /// Removed from every tensor name (the training script's nesting, wrappers' `module.`).
    pub prefix: String,
    /// Tensors in the network's state dict that its forward does not use, left out (as
    /// patterns: bias_free_denoising's norms keep PyTorch's unused `bias`, `running_mean` and
    /// `num_batches_tracked`, as `bn_layer_list.*.bias` …).
    pub unused: Vec<String>,
}

/// A network read from a PyTorch checkpoint.
pub struct Imported {
    /// The network (eval mode is the only meaningful one: its running statistics are fixed).
    pub net: Network,
    /// Its configuration, read off the tensors' shapes.
    pub config: NetConfig,
    /// Where it came from.
    pub source: TorchSource,
}

/// Errors of importing a checkpoint; each names the file and what would fix it.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// No such file.
    #[error("{0}: no such file; give the path of a PyTorch checkpoint (.pt, .pth)")]
    Missing(PathBuf),
    /// The container or its pickle cannot be read.
    #[error("{}: not a readable PyTorch checkpoint ({reason})", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        reason: String,
    },
    /// The tensors do not make the architecture.
    #[error("{}: {reason}", path.display())]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Which keys are missing or extra, or which shapes are wrong.
        reason: String,
    },
}

/// Reads the checkpoint at `path` as a network of architecture `arch`, on `device`.
pub fn import(path: &Path, arch: SourceArch, device: &Device) -> Result<Imported, ImportError> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ImportError::Missing(path.to_path_buf()),
        _ => ImportError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    })?;
    let sha256 = format!("{:x}", Sha256::digest(&bytes));
    drop(bytes);
    let all = StateDict::read(path)?;
    let (config, tensors, sd, unused) = match arch {
        SourceArch::BfCnn => bf_cnn(all)?,
        SourceArch::BfDncnn => bf_dncnn(all)?,
        SourceArch::BfUnet2020 => bf_unet2020(all)?,
    };
    let net = checkpoint::from_tensors(&config, tensors, device, path).map_err(|e| {
        ImportError::Mismatch {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    })?;
    let source = TorchSource {
        file: path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        sha256,
        container: sd.container(),
        arch,
        output: arch.output(),
        prefix: sd.prefix().to_string(),
        unused,
    };
    Ok(Imported {
        net,
        config,
        source,
    })
}

/// A tensor in our naming with its values and shape.
type Named = (String, Vec<f32>, Vec<usize>);

/// What an architecture's mapping returns: our configuration, our tensors, the state dict it
/// read them from, and the names it read and left out.
type Mapped = (NetConfig, Vec<Named>, StateDict, Vec<String>);

/// A 3×3 convolution's weight `[out, in, 3, 3]` under `name`.
fn conv3x3(sd: &StateDict, name: &str) -> Result<(usize, usize), ImportError> {
    match sd.shape(name) {
        Some(&[o, i, 3, 3]) => Ok((o, i)),
        Some(s) => Err(mismatch(
            sd,
            format!("{name} has shape {s:?}; a 3×3 convolution's weight is [out, in, 3, 3]"),
        )),
        None => Err(missing(sd, &[name.to_string()])),
    }
}

fn mismatch(sd: &StateDict, reason: String) -> ImportError {
    ImportError::Mismatch {
        path: sd.path().to_path_buf(),
        reason,
    }
}

/// The error for keys an architecture needs and the file lacks, listing what the file has.
fn missing(sd: &StateDict, names: &[String]) -> ImportError {
    let shapes = sd.shapes();
    let have: Vec<String> = shapes
        .iter()
        .take(12)
        .map(|(k, s)| format!("{k} {s:?}"))
        .collect();
    let mut reason = format!(
        "missing {} (the file has {} tensors: {}{})",
        names.join(", "),
        shapes.len(),
        have.join(", "),
        if shapes.len() > 12 { ", …" } else { "" }
    );
    if !sd.foreign().is_empty() {
        reason += &format!(
            "; it also holds Python objects tweedie does not read ({}): save the network's \
             state_dict() instead",
            sd.foreign().join(", ")
        );
    }
    mismatch(sd, reason + "; is --arch right?")
}

/// The error for tensors left over once an architecture has taken its own.
fn extra(sd: &StateDict, names: &[String]) -> ImportError {
    let listed: Vec<String> = names
        .iter()
        .take(12)
        .map(|k| format!("{k} {:?}", sd.shape(k).unwrap_or(&[])))
        .collect();
    let bias = names.iter().any(|k| k.ends_with(".bias"));
    mismatch(
        sd,
        format!(
            "unexpected tensors {}{}{}",
            listed.join(", "),
            if names.len() > 12 { ", …" } else { "" },
            if bias {
                " (biases: tweedie imports bias-free networks only)"
            } else {
                "; is --arch right?"
            }
        ),
    )
}

/// Checks a `[k]` or `[1, k, 1, 1]` per-channel tensor and reads it.
fn per_channel(sd: &StateDict, name: &str, k: usize) -> Result<Vec<f32>, ImportError> {
    match sd.shape(name) {
        Some(s)
            if s.iter().product::<usize>() == k && s.iter().filter(|&&d| d != 1).count() <= 1 =>
        {
            sd.f32(name)
        }
        Some(s) => Err(mismatch(
            sd,
            format!("{name} has shape {s:?}; expected {k} values, one per channel"),
        )),
        None => Err(missing(sd, &[name.to_string()])),
    }
}

/// Our BF-CNN's tensors from the first conv, hidden (conv, gamma, running sd) layers and last
/// conv, with the configuration they make.
fn cnn_tensors(
    sd: &StateDict,
    first: &str,
    hidden: &[(String, Vec<f32>, Vec<f32>)],
    last: &str,
) -> Result<(NetConfig, Vec<Named>), ImportError> {
    let (k, c) = conv3x3(sd, first)?;
    let (c_out, k_last) = conv3x3(sd, last)?;
    if c_out != c || k_last != k {
        return Err(mismatch(
            sd,
            format!("{last} maps {k_last} channels to {c_out}; the first layer maps {c} to {k}"),
        ));
    }
    let config = NetConfig {
        arch: Arch::BfCnn,
        image_channels: c,
        channels: k,
        blocks: 0,
        layers: hidden.len() + 2,
    };
    config
        .validate()
        .map_err(|e| mismatch(sd, format!("not a network tweedie can run: {e}")))?;
    let mut out = vec![(
        "Cnn.first.weight".to_string(),
        sd.f32(first)?,
        vec![k, c, 3, 3],
    )];
    for (i, (conv, gamma, running_sd)) in hidden.iter().enumerate() {
        let (o, n) = conv3x3(sd, conv)?;
        if (o, n) != (k, k) {
            return Err(mismatch(
                sd,
                format!("{conv} is [{o}, {n}, 3, 3]; the hidden layers are [{k}, {k}, 3, 3]"),
            ));
        }
        out.push((
            format!("Cnn.hidden.{i}.conv.weight"),
            sd.f32(conv)?,
            vec![k, k, 3, 3],
        ));
        out.push((format!("Cnn.hidden.{i}.norm.gamma"), gamma.clone(), vec![k]));
        out.push((
            format!("Cnn.hidden.{i}.norm.running_sd"),
            running_sd.clone(),
            vec![k],
        ));
    }
    out.push((
        "Cnn.last.weight".to_string(),
        sd.f32(last)?,
        vec![c, k, 3, 3],
    ));
    Ok((config, out))
}

/// Counts `prefix{i}suffix` for i = 0, 1, … until one is missing.
fn count(sd: &StateDict, prefix: &str, suffix: &str) -> usize {
    (0..)
        .take_while(|i| sd.contains(&format!("{prefix}{i}{suffix}")))
        .count()
}

/// Every name of `sd` not in `used`.
fn leftover(sd: &StateDict, used: &[String]) -> Vec<String> {
    let used: std::collections::BTreeSet<&str> = used.iter().map(String::as_str).collect();
    sd.shapes()
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| !used.contains(k.as_str()))
        .collect()
}

/// universal_inverse_problem's and the generalization paper's BF_CNN: `conv_layers.{0..L}`,
/// the norms as `running_sd.{i}` and `gammas.{i}` (universal_inverse_problem) or
/// `BN_layers.{i}.running_sd` and `.gammas` (the generalization paper), shaped `[1, k, 1, 1]`.
fn bf_cnn(all: StateDict) -> Result<Mapped, ImportError> {
    let sd = all
        .rooted_at("conv_layers.0.weight")
        .map_err(|sd| missing(&sd, &["conv_layers.0.weight".into()]))?;
    let convs = count(&sd, "conv_layers.", ".weight");
    if convs < 3 {
        return Err(mismatch(
            &sd,
            format!("{convs} convolutions (conv_layers.*.weight); a BF-CNN has at least 3"),
        ));
    }
    let (k, _) = conv3x3(&sd, "conv_layers.0.weight")?;
    let paper = sd.contains("BN_layers.0.running_sd");
    let norm = |i: usize, what: &str| match paper {
        true => format!("BN_layers.{i}.{what}"),
        false => format!("{what}.{i}"),
    };
    let mut used: Vec<String> = Vec::new();
    let mut hidden = Vec::new();
    for i in 0..convs - 2 {
        let (gamma, running) = (norm(i, "gammas"), norm(i, "running_sd"));
        let missing_names: Vec<String> = [&gamma, &running]
            .into_iter()
            .filter(|n| !sd.contains(n))
            .cloned()
            .collect();
        if !missing_names.is_empty() {
            return Err(missing(&sd, &missing_names));
        }
        let conv = format!("conv_layers.{}.weight", i + 1);
        hidden.push((
            conv.clone(),
            per_channel(&sd, &gamma, k)?,
            per_channel(&sd, &running, k)?,
        ));
        used.extend([conv, gamma, running]);
    }
    let last = format!("conv_layers.{}.weight", convs - 1);
    used.extend(["conv_layers.0.weight".to_string(), last.clone()]);
    let rest = leftover(&sd, &used);
    if !rest.is_empty() {
        return Err(extra(&sd, &rest));
    }
    let (config, tensors) = cnn_tensors(&sd, "conv_layers.0.weight", &hidden, &last)?;
    Ok((config, tensors, sd, Vec::new()))
}

/// bias_free_denoising's DnCNN with `BFBatchNorm2d`: `first_layer`, `hidden_layer_list.{i}`,
/// `bn_layer_list.{i}` and `last_layer`. Its norm divides by `sqrt(running_var) + eps` in eval
/// mode, which is our norm with running sd = sqrt(running_var) + eps, exactly. The norms keep
/// PyTorch's `bias`, `running_mean` and `num_batches_tracked`, which its forward never uses.
fn bf_dncnn(all: StateDict) -> Result<Mapped, ImportError> {
    let sd = all
        .rooted_at("first_layer.weight")
        .map_err(|sd| missing(&sd, &["first_layer.weight".into()]))?;
    let layers = count(&sd, "hidden_layer_list.", ".weight");
    let (k, _) = conv3x3(&sd, "first_layer.weight")?;
    let mut used: Vec<String> = vec!["first_layer.weight".into(), "last_layer.weight".into()];
    let mut unused = Vec::new();
    let mut hidden = Vec::new();
    for i in 0..layers {
        let bn = |what: &str| format!("bn_layer_list.{i}.{what}");
        let missing_names: Vec<String> = ["weight", "running_var"]
            .into_iter()
            .map(bn)
            .filter(|n| !sd.contains(n))
            .collect();
        if !missing_names.is_empty() {
            return Err(missing(&sd, &missing_names));
        }
        let running_sd = per_channel(&sd, &bn("running_var"), k)?
            .into_iter()
            .map(|v| v.max(0.0).sqrt() + BF_BATCHNORM_EPS)
            .collect();
        let conv = format!("hidden_layer_list.{i}.weight");
        hidden.push((
            conv.clone(),
            per_channel(&sd, &bn("weight"), k)?,
            running_sd,
        ));
        used.extend([conv, bn("weight"), bn("running_var")]);
        for what in ["bias", "running_mean", "num_batches_tracked"] {
            if sd.contains(&bn(what)) {
                unused.push(bn(what));
            }
        }
    }
    used.extend(unused.iter().cloned());
    // recorded as patterns: the same three names in every layer
    let mut unused: Vec<String> = unused
        .iter()
        .map(|n| {
            let what = n.rsplit('.').next().unwrap_or_default();
            format!("bn_layer_list.*.{what}")
        })
        .collect();
    unused.sort();
    unused.dedup();
    if !sd.contains("last_layer.weight") {
        return Err(missing(&sd, &["last_layer.weight".into()]));
    }
    let rest = leftover(&sd, &used);
    if !rest.is_empty() {
        return Err(extra(&sd, &rest));
    }
    let (config, tensors) = cnn_tensors(&sd, "first_layer.weight", &hidden, "last_layer.weight")?;
    Ok((config, tensors, sd, unused))
}

/// bias_free_denoising's UNet: `conv1` … `conv9` with the shapes its definition fixes, up to
/// the image channels (read from `conv1`).
fn bf_unet2020(all: StateDict) -> Result<Mapped, ImportError> {
    let sd = all
        .rooted_at("conv1.weight")
        .map_err(|sd| missing(&sd, &["conv1.weight".into()]))?;
    let c = match sd.shape("conv1.weight") {
        Some(&[32, c, 5, 5]) => c,
        Some(s) => {
            return Err(mismatch(
                &sd,
                format!("conv1.weight has shape {s:?}; the 2020 UNet's is [32, channels, 5, 5]"),
            ))
        }
        None => unreachable!("rooted at conv1.weight"),
    };
    let shapes: [(&str, [usize; 4]); 9] = [
        ("conv1", [32, c, 5, 5]),
        ("conv2", [32, 32, 3, 3]),
        ("conv3", [64, 32, 3, 3]),
        ("conv4", [64, 64, 3, 3]),
        ("conv5", [64, 64, 3, 3]),
        ("conv6", [64, 64, 3, 3]),
        ("conv7", [64, 64, 4, 4]),
        ("conv8", [32, 96, 3, 3]),
        ("conv9", [c, 32, 5, 5]),
    ];
    let names: Vec<String> = shapes.iter().map(|(n, _)| format!("{n}.weight")).collect();
    let absent: Vec<String> = names.iter().filter(|n| !sd.contains(n)).cloned().collect();
    if !absent.is_empty() {
        return Err(missing(&sd, &absent));
    }
    let rest = leftover(&sd, &names);
    if !rest.is_empty() {
        return Err(extra(&sd, &rest));
    }
    let mut tensors = Vec::new();
    for ((layer, want), name) in shapes.iter().zip(&names) {
        let got = sd.shape(name).unwrap_or_default();
        if got != want {
            return Err(mismatch(
                &sd,
                format!("{name} has shape {got:?}; the 2020 UNet's is {want:?}"),
            ));
        }
        tensors.push((
            format!("Unet2020.{layer}.weight"),
            sd.f32(name)?,
            want.to_vec(),
        ));
    }
    let config = NetConfig {
        arch: Arch::BfUnet2020,
        image_channels: c,
        channels: 32,
        blocks: 0,
        layers: 0,
    };
    config
        .validate()
        .map_err(|e| mismatch(&sd, format!("not a network tweedie can run: {e}")))?;
    Ok((config, tensors, sd, Vec::new()))
}
