//! Choosing where tensors live. burn 0.22 picks the backend from the device at run time, so one
//! binary carries every backend it was built with: `flex` (pure-Rust CPU, always), `cuda` and
//! `tch` behind cargo features.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A device as the user names it: `auto`, `cpu`, `cuda[:N]` or `tch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(into = "String", try_from = "String")]
pub enum DeviceSpec {
    /// The first CUDA GPU if the binary has the `cuda` feature, else the CPU.
    #[default]
    Auto,
    /// burn's pure-Rust `flex` CPU backend.
    Cpu,
    /// An NVIDIA GPU through burn-cuda (`cuda` feature).
    Cuda(usize),
    /// libtorch through burn-tch (`tch` feature), on its CPU.
    Tch,
}

/// The device could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Unknown spelling.
    #[error("unknown device `{0}`; use auto, cpu, cuda, cuda:N or tch")]
    Unknown(String),
    /// The backend was not compiled in.
    #[error("device `{0}` needs a build with `--features {1}` (see the README)")]
    NotBuilt(String, &'static str),
}

impl FromStr for DeviceSpec {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" | "flex" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            "tch" | "libtorch" => Ok(Self::Tch),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or(DeviceError::Unknown(s)),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => write!(f, "auto"),
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
            Self::Tch => write!(f, "tch"),
        }
    }
}

impl From<DeviceSpec> for String {
    fn from(d: DeviceSpec) -> String {
        d.to_string()
    }
}

impl TryFrom<String> for DeviceSpec {
    type Error = DeviceError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl DeviceSpec {
    /// Whether tensors live in host memory (the CPU backends), where the machine's available
    /// memory is the limit.
    pub fn is_host(self) -> bool {
        match self {
            Self::Cpu | Self::Tch => true,
            Self::Auto => !cfg!(feature = "cuda"),
            Self::Cuda(_) => false,
        }
    }

    /// The burn device (not autodiff).
    pub fn device(self) -> Result<Device, DeviceError> {
        match self {
            Self::Cpu => Ok(Device::flex()),
            #[cfg(feature = "cuda")]
            Self::Auto => Ok(Device::cuda(0)),
            #[cfg(not(feature = "cuda"))]
            Self::Auto => Ok(Device::flex()),
            #[cfg(feature = "cuda")]
            Self::Cuda(n) => Ok(Device::cuda(n)),
            #[cfg(not(feature = "cuda"))]
            Self::Cuda(_) => Err(DeviceError::NotBuilt(self.to_string(), "cuda")),
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            Self::Tch => Ok(Device::libtorch()),
            #[cfg(not(feature = "tch"))]
            Self::Tch => Err(DeviceError::NotBuilt(self.to_string(), "tch")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips() {
        for s in ["auto", "cpu", "cuda:1", "tch"] {
            assert_eq!(s.parse::<DeviceSpec>().unwrap().to_string(), s);
        }
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert!("tpu".parse::<DeviceSpec>().is_err());
        assert!(DeviceSpec::Cpu.device().is_ok());
    }
}
