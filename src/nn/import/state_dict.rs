//! A PyTorch checkpoint's state dict: found wherever the saving script put it, names cleaned
//! of wrappers' prefixes, each tensor read as f32 when asked for.
//!
//! The container (the zip archive of `torch.save` since PyTorch 1.6, or the older pickle
//! stream) is read by `pytorch-reader`, which interprets the pickle without running it: a
//! global it does not know (a training script's class, say) stays an opaque value and is never
//! imported or called.

use super::ImportError;
use crate::io::one_line;
use pytorch_reader::{DType, FileFormat, PickleValue, PytorchReader, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Python types a checkpoint may hold beside its weights without anything being lost by not
/// reading them.
const HARMLESS: &[&str] = &[
    "torch.Tensor",
    "torch.nn.parameter.Parameter",
    "collections.OrderedDict",
    "argparse.Namespace",
    "torch.device",
    "torch.dtype",
];

/// The container a checkpoint came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Container {
    /// The zip archive `torch.save` writes since PyTorch 1.6.
    Zip,
    /// The pickle stream of PyTorch 0.1.10 to 1.5 (and of `_use_new_zipfile_serialization=False`).
    Legacy,
    /// Anything else `pytorch-reader` reads (tar archives, plain pickles).
    Other,
}

/// The tensors of one network, by their names in the defining module.
pub struct StateDict {
    path: PathBuf,
    container: Container,
    tensors: BTreeMap<String, Tensor>,
    /// What was removed from every name by [`Self::rooted_at`].
    prefix: String,
    /// Python types found in the file that nothing here reads (for error messages).
    foreign: Vec<String>,
}

impl StateDict {
    /// Reads every tensor of the checkpoint at `path`, under its full dotted name (see
    /// [`Self::rooted_at`] to find the network among them).
    pub fn read(path: &Path) -> Result<Self, ImportError> {
        let unreadable = |reason: String| ImportError::Unreadable {
            path: path.to_path_buf(),
            reason,
        };
        if !path.is_file() {
            return Err(ImportError::Missing(path.to_path_buf()));
        }
        let reader = PytorchReader::new(path).map_err(|e| unreadable(one_line(&e.to_string())))?;
        let container = match reader.metadata().format_type {
            FileFormat::Zip => Container::Zip,
            FileFormat::Legacy => Container::Legacy,
            FileFormat::Tar | FileFormat::Pickle => Container::Other,
        };
        let foreign = PytorchReader::read_pickle_data(path, None)
            .map(|v| {
                let mut found = Vec::new();
                foreign_types(&v, &mut found);
                found.sort();
                found.dedup();
                found
            })
            .unwrap_or_default();
        Ok(Self {
            path: path.to_path_buf(),
            container,
            tensors: reader.into_tensors().into_iter().collect(),
            prefix: String::new(),
            foreign,
        })
    }

    /// The network's tensors alone, named as its module names them: the tensors under the
    /// prefix that `probe` (a name the architecture must have, such as `first_layer.weight`)
    /// is found under, with that prefix removed. Training scripts nest the weights
    /// (`{"model": [state_dict], "optimizer": …}` gives `model.0.`), wrappers add `module.`
    /// (DataParallel) or `_orig_mod.` (`torch.compile`); the shortest prefix wins. When no
    /// tensor ends in `probe`, the whole state dict comes back as the error (to be described).
    pub fn rooted_at(self, probe: &str) -> Result<Self, Self> {
        let Some(prefix) = self
            .tensors
            .keys()
            .filter_map(|k| k.strip_suffix(probe))
            .filter(|p| p.is_empty() || p.ends_with('.'))
            .min_by_key(|p| p.len())
            .map(str::to_string)
        else {
            return Err(self);
        };
        let tensors = self
            .tensors
            .into_iter()
            .filter_map(|(k, t)| Some((k.strip_prefix(&prefix)?.to_string(), t)))
            .collect();
        Ok(Self {
            tensors,
            prefix,
            ..self
        })
    }

    /// What [`Self::rooted_at`] removed from the names (empty: the file is a bare state dict).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The checkpoint's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The container it came in.
    pub fn container(&self) -> Container {
        self.container
    }

    /// Names and shapes of every tensor, sorted by name.
    pub fn shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.tensors
            .iter()
            .map(|(k, t)| (k.clone(), t.shape().to_vec()))
            .collect()
    }

    /// Whether a tensor of that name is present.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The shape of tensor `name`, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.shape())
    }

    /// Python types in the file that are neither tensors nor plain values.
    pub fn foreign(&self) -> &[String] {
        &self.foreign
    }

    /// Tensor `name` as f32 values in row-major order. float64 is rounded; any other type (a
    /// half-precision checkpoint) is an error naming the tensor.
    pub fn f32(&self, name: &str) -> Result<Vec<f32>, ImportError> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| ImportError::Mismatch {
                path: self.path.clone(),
                reason: format!("no tensor {name}"),
            })?;
        let bytes = t.read().map_err(|e| ImportError::Unreadable {
            path: self.path.clone(),
            reason: one_line(&e.to_string()),
        })?;
        match t.dtype() {
            DType::F32 => Ok(bytes
                .chunks_exact(4)
                .map(|b| f32::from_ne_bytes(b.try_into().expect("4 bytes")))
                .collect()),
            DType::F64 => Ok(bytes
                .chunks_exact(8)
                .map(|b| f64::from_ne_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect()),
            other => Err(ImportError::Mismatch {
                path: self.path.clone(),
                reason: format!(
                    "tensor {name} is {other:?}; tweedie imports float32 or float64 weights \
                     (convert with model.float() before torch.save)"
                ),
            }),
        }
    }
}

/// Collects the names of Python types in `v` that are not [`HARMLESS`].
fn foreign_types(v: &PickleValue, found: &mut Vec<String>) {
    match v {
        PickleValue::Unsupported(name) if !HARMLESS.contains(&name.as_str()) => {
            found.push(name.clone())
        }
        PickleValue::List(items) => items.iter().for_each(|i| foreign_types(i, found)),
        PickleValue::Dict(map) => map.values().for_each(|i| foreign_types(i, found)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_types_skip_tensors_and_namespaces() {
        let v = PickleValue::Dict(
            [
                (
                    "a".to_string(),
                    PickleValue::Unsupported("torch.Tensor".into()),
                ),
                (
                    "b".to_string(),
                    PickleValue::Unsupported("argparse.Namespace".into()),
                ),
                (
                    "c".to_string(),
                    PickleValue::List(vec![PickleValue::Unsupported("__main__.Net".into())]),
                ),
            ]
            .into_iter()
            .collect(),
        );
        let mut found = Vec::new();
        foreign_types(&v, &mut found);
        assert_eq!(found, vec!["__main__.Net".to_string()]);
    }
}
