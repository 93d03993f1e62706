//! Saving and loading networks as safetensors.
//!
//! - `model.safetensors`: the weights (and running norm statistics), with the [`NetConfig`] in
//!   the file's metadata, so a weights file alone rebuilds its network.
//! - `checkpoint.safetensors`: the same plus Adam's state (stored as one `u8` tensor holding
//!   burn's optimizer record), the exponential moving average of the weights when training keeps
//!   one (its tensors under the prefix `__ema.`), and the [`TrainState`] in the metadata.
//!   Training randomness is counter-based ([`crate::rng`]), so seed and step are the whole RNG
//!   state; one file holds everything, so a kill cannot leave weights and average out of step.
//!
//! Both are written atomically: a crash during a save leaves the previous file intact.

use super::{NetConfig, Network};
use burn::optim::ModuleOptimizer;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::{Bytes, Device};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Metadata key of the network configuration.
const NET_KEY: &str = "tweedie.net";
/// Metadata key of the training state.
const STATE_KEY: &str = "tweedie.train_state";
/// Tensor name of the optimizer record.
const OPTIM_TENSOR: &str = "__tweedie.optimizer";
/// Name prefix of the moving-average weights' tensors in a checkpoint.
const EMA_PREFIX: &str = "__ema.";

/// Errors of saving and loading networks.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// File system error.
    #[error("{path}: {source}{}", crate::io::advice(source))]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a tweedie safetensors file or is damaged.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Where training stands: with the seed (in the run's config) this is the whole RNG state.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps taken.
    pub step: u64,
    /// The run's seed (a check that a checkpoint is resumed with the seed it was made with).
    pub seed: u64,
    /// Factor on the planned learning rate: halved by each rollback after a non-finite loss
    /// (checkpoints written before this field: 1).
    #[serde(default = "TrainState::no_scale")]
    pub lr_scale: f64,
}

impl TrainState {
    fn no_scale() -> f64 {
        1.0
    }
}

fn format_err(path: &Path, reason: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::Format {
        path: path.to_path_buf(),
        // burn's load reports span lines; ours are one line naming the file
        reason: crate::io::one_line(&reason.to_string()),
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The network's tensors as safetensors bytes, with `metadata` added.
fn weight_bytes(
    net: &Network,
    metadata: &[(&str, String)],
    path: &Path,
) -> Result<Vec<u8>, CheckpointError> {
    let mut store = SafetensorsStore::from_bytes(None);
    for (k, v) in metadata {
        store = store.metadata(*k, v.clone());
    }
    // burn's running statistics hold their newest update aside (per thread) until the module is
    // synced, and saving reads only the settled value: without this, a checkpoint written
    // between two validations held the norms' statistics of one step earlier, and a run resumed
    // from it drifted from an uninterrupted one by an ulp. `valid` settles them (in place: the
    // statistics are shared with the copy it returns).
    drop(burn::module::Module::valid(net));
    net.save_into(&mut store).map_err(|e| format_err(path, e))?;
    store.get_bytes().map_err(|e| format_err(path, e))
}

/// Writes `model.safetensors`-style weights (with the config in the metadata).
pub fn save_weights(net: &Network, cfg: &NetConfig, path: &Path) -> Result<(), CheckpointError> {
    let net_json = serde_json::to_string(cfg).expect("NetConfig serializes");
    let bytes = weight_bytes(net, &[(NET_KEY, net_json)], path)?;
    crate::io::write_atomic(path, &canonical(bytes)).map_err(io_err(path))
}

/// The same safetensors file with its JSON header's keys in sorted order. The format's writers
/// keep the header in hash maps, so two saves of the same tensors differ in byte order; sorted,
/// identical runs give identical files and a checksum proves a reproduction. The header keeps its
/// length (padded with spaces, as the format allows), so no tensor offset moves.
fn canonical(bytes: Vec<u8>) -> Vec<u8> {
    use std::collections::BTreeMap;
    let Some(n) = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
    else {
        return bytes;
    };
    let Some(Ok(header)) = bytes
        .get(8..8 + n)
        .map(serde_json::from_slice::<BTreeMap<String, serde_json::Value>>)
    else {
        return bytes;
    };
    let mut text = String::from("{");
    for (i, (key, value)) in header.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&serde_json::to_string(key).expect("a string serializes"));
        text.push(':');
        // the metadata is a map of strings: sorted too (Value keeps insertion order when
        // serde_json's preserve_order feature is on anywhere in the build)
        let sorted = serde_json::from_value::<BTreeMap<String, String>>(value.clone())
            .ok()
            .filter(|_| key == "__metadata__");
        let json = match sorted {
            Some(m) => serde_json::to_string(&m),
            None => serde_json::to_string(value),
        };
        text.push_str(&json.expect("JSON values serialize"));
    }
    text.push('}');
    if text.len() > n {
        return bytes;
    }
    let mut header = text.into_bytes();
    header.resize(n, b' ');
    let mut out = bytes;
    out[8..8 + n].copy_from_slice(&header);
    out
}

/// Reads the config stored in a weights or checkpoint file.
fn read_metadata(bytes: &[u8], path: &Path) -> Result<HashMap<String, String>, CheckpointError> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| {
        format_err(
            path,
            format!("not a safetensors file ({e}); was it written by tweedie?"),
        )
    })?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

fn net_config(meta: &HashMap<String, String>, path: &Path) -> Result<NetConfig, CheckpointError> {
    let json = meta.get(NET_KEY).ok_or_else(|| {
        format_err(
            path,
            "no network configuration in the metadata; not a tweedie model",
        )
    })?;
    serde_json::from_str(json)
        .map_err(|e| format_err(path, format!("bad network configuration ({e})")))
}

/// Loads weights into a network built from the stored config; checks every tensor was found.
fn load_into(
    cfg: &NetConfig,
    weights: Vec<u8>,
    device: &Device,
    path: &Path,
) -> Result<Network, CheckpointError> {
    let mut net = cfg.init(device, 0);
    let mut store = SafetensorsStore::from_bytes(Some(weights));
    let result = net.load_from(&mut store).map_err(|e| format_err(path, e))?;
    if !result.missing.is_empty() || !result.errors.is_empty() {
        return Err(format_err(
            path,
            format!(
                "weights do not fit the stored configuration (missing: {:?}, errors: {:?})",
                result.missing, result.errors
            ),
        ));
    }
    Ok(net)
}

/// Builds a network of configuration `cfg` from named tensors (our names, f32 values in
/// row-major order, shapes) through the same checked loader as a weights file: a tensor
/// missing, misnamed or misshapen is an error naming `origin`.
pub fn from_tensors(
    cfg: &NetConfig,
    tensors: Vec<(String, Vec<f32>, Vec<usize>)>,
    device: &Device,
    origin: &Path,
) -> Result<Network, CheckpointError> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .into_iter()
        .map(|(name, values, shape)| {
            let b = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name, b, shape)
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, b, shape)| {
            TensorView::new(Dtype::F32, shape.clone(), b)
                .map(|v| (name.clone(), v))
                .map_err(|e| format_err(origin, format!("{name}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let serialized = safetensors::serialize(views, None).map_err(|e| format_err(origin, e))?;
    load_into(cfg, serialized, device, origin)
}

/// Loads a network from a weights file written by [`save_weights`] (or a checkpoint).
pub fn load_weights(path: &Path, device: &Device) -> Result<(Network, NetConfig), CheckpointError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let meta = read_metadata(&bytes, path)?;
    let cfg = net_config(&meta, path)?;
    let weights = select_tensors(&bytes, path, "")?;
    Ok((load_into(&cfg, weights, device, path)?, cfg))
}

/// Writes weights, optimizer state, the moving average (if any) and training state in one
/// file, atomically.
pub fn save_checkpoint(
    net: &Network,
    ema: Option<&Network>,
    cfg: &NetConfig,
    optim: &ModuleOptimizer,
    state: TrainState,
    path: &Path,
) -> Result<(), CheckpointError> {
    let net_json = serde_json::to_string(cfg).expect("NetConfig serializes");
    let state_json = serde_json::to_string(&state).expect("TrainState serializes");
    let weights = weight_bytes(net, &[], path)?;
    let ema_weights = ema.map(|e| weight_bytes(e, &[], path)).transpose()?;
    let optim_bytes = optim.into_bytes().map_err(|e| format_err(path, e))?;
    let optim_bytes: &[u8] = &optim_bytes;

    let st = SafeTensors::deserialize(&weights).map_err(|e| format_err(path, e))?;
    let ema_st = ema_weights
        .as_deref()
        .map(SafeTensors::deserialize)
        .transpose()
        .map_err(|e| format_err(path, e))?;
    let mut meta = read_metadata(&weights, path)?;
    meta.insert(NET_KEY.into(), net_json);
    meta.insert(STATE_KEY.into(), state_json);
    let mut views: Vec<(String, TensorView<'_>)> = st.tensors();
    if let Some(e) = &ema_st {
        views.extend(
            e.tensors()
                .into_iter()
                .map(|(n, v)| (format!("{EMA_PREFIX}{n}"), v)),
        );
    }
    views.push((
        OPTIM_TENSOR.into(),
        TensorView::new(Dtype::U8, vec![optim_bytes.len()], optim_bytes)
            .map_err(|e| format_err(path, e))?,
    ));
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| format_err(path, e))?;
    crate::io::write_atomic(path, &canonical(bytes)).map_err(io_err(path))
}

/// A checkpoint read back: the network (on the given device), its config, the optimizer with its
/// state restored, and the training state.
pub struct Checkpoint {
    /// The network.
    pub net: Network,
    /// Its configuration.
    pub config: NetConfig,
    /// The optimizer, with Adam's moments restored.
    pub optim: ModuleOptimizer,
    /// Step and seed.
    pub state: TrainState,
    /// The moving average of the weights, when the checkpoint holds one.
    pub ema: Option<Network>,
}

/// Reads a checkpoint written by [`save_checkpoint`]; `optim` is a fresh optimizer of the same
/// kind, whose state is replaced by the stored one.
pub fn load_checkpoint(
    path: &Path,
    device: &Device,
    optim: ModuleOptimizer,
) -> Result<Checkpoint, CheckpointError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let meta = read_metadata(&bytes, path)?;
    let config = net_config(&meta, path)?;
    let state: TrainState = meta
        .get(STATE_KEY)
        .ok_or_else(|| {
            format_err(
                path,
                "no training state; this is a weights file, not a checkpoint",
            )
        })
        .and_then(|s| serde_json::from_str(s).map_err(|e| format_err(path, e)))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| format_err(path, e))?;
    let optim_view = st
        .tensor(OPTIM_TENSOR)
        .map_err(|_| format_err(path, "no optimizer state in the checkpoint"))?;
    let optim = optim
        .from_bytes(Bytes::from_bytes_vec(optim_view.data().to_vec()))
        .map_err(|e| format_err(path, format!("bad optimizer state ({e})")))?;
    let weights = select_tensors(&bytes, path, "")?;
    let net = load_into(&config, weights, device, path)?;
    let ema = if st.names().iter().any(|n| n.starts_with(EMA_PREFIX)) {
        let weights = select_tensors(&bytes, path, EMA_PREFIX)?;
        Some(load_into(&config, weights, device, path)?)
    } else {
        None
    };
    Ok(Checkpoint {
        net,
        config,
        optim,
        state,
        ema,
    })
}

/// The network's own tensors of a file: with `prefix` empty, the weights (neither the
/// optimizer record nor the moving average); otherwise the tensors under `prefix`, renamed
/// without it.
fn select_tensors(bytes: &[u8], path: &Path, prefix: &str) -> Result<Vec<u8>, CheckpointError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| format_err(path, e))?;
    let extra = |n: &str| n == OPTIM_TENSOR || n.starts_with(EMA_PREFIX);
    if prefix.is_empty() && !st.names().iter().any(|n| extra(n)) {
        return Ok(bytes.to_vec());
    }
    let views: Vec<(String, TensorView<'_>)> = st
        .tensors()
        .into_iter()
        .filter_map(|(n, v)| match prefix {
            "" => (!extra(&n)).then_some((n, v)),
            p => n.strip_prefix(p).map(|rest| (rest.to_string(), v)),
        })
        .collect();
    let meta = read_metadata(bytes, path)?;
    safetensors::serialize(views, Some(meta)).map_err(|e| format_err(path, e))
}
