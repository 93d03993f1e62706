//! Choosing where tensors live. burn 0.22 picks the backend from the device at run time, so one
//! binary carries every backend it was built with: `flex` (pure-Rust CPU, always), `wgpu`
//! (Vulkan, Metal, DX12 GPUs), `cuda` and `tch` behind cargo features.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A device as the user names it: `auto`, `cpu`, `wgpu[:N]`, `cuda[:N]` or `tch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(into = "String", try_from = "String")]
pub enum DeviceSpec {
    /// A GPU if the binary was built for one and the machine has one (CUDA first, then a wgpu
    /// adapter that is a real GPU), else the CPU.
    #[default]
    Auto,
    /// burn's pure-Rust `flex` CPU backend.
    Cpu,
    /// A GPU through burn-wgpu (`wgpu` feature): Vulkan, Metal or DX12.
    Wgpu(Adapter),
    /// An NVIDIA GPU through burn-cuda (`cuda` feature).
    Cuda(usize),
    /// libtorch through burn-tch (`tch` feature), on its CPU.
    Tch,
}

/// Which wgpu adapter: `wgpu` (the best one wgpu finds), `wgpu:N` (the N-th discrete GPU),
/// `wgpu:integrated[:N]`, or `wgpu:cpu` (a software device such as Mesa's lavapipe, which runs
/// the GPU code path on a machine without a GPU: what the tests use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adapter {
    /// wgpu's choice (a high-power GPU first; `CUBECL_WGPU_DEFAULT_DEVICE` overrides it).
    Default,
    /// The N-th discrete GPU.
    Discrete(usize),
    /// The N-th integrated GPU.
    Integrated(usize),
    /// A software adapter.
    Software,
}

/// The device could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Unknown spelling.
    #[error(
        "unknown device `{0}`; use auto, cpu, wgpu, wgpu:N, wgpu:integrated, wgpu:cpu, cuda, \
         cuda:N or tch"
    )]
    Unknown(String),
    /// The backend was not compiled in.
    #[error("device `{0}` needs a build with `--features {1}` (see docs/devices.md)")]
    NotBuilt(String, &'static str),
    /// The backend is built in but the machine offers no such device.
    #[error(
        "device `{0}` is not available here: {1} (a GPU needs its Vulkan, Metal or DX12 driver; \
         `--device cpu` runs without one)"
    )]
    Unavailable(String, String),
}

impl FromStr for DeviceSpec {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        let index = |n: &str| n.parse::<usize>().ok();
        let parsed = match s.as_str() {
            "auto" => Some(Self::Auto),
            "cpu" | "flex" => Some(Self::Cpu),
            "cuda" | "gpu" => Some(Self::Cuda(0)),
            "tch" | "libtorch" => Some(Self::Tch),
            "wgpu" => Some(Self::Wgpu(Adapter::Default)),
            "wgpu:cpu" => Some(Self::Wgpu(Adapter::Software)),
            "wgpu:integrated" => Some(Self::Wgpu(Adapter::Integrated(0))),
            _ => {
                if let Some(n) = s.strip_prefix("wgpu:integrated:") {
                    index(n).map(|n| Self::Wgpu(Adapter::Integrated(n)))
                } else if let Some(n) = s.strip_prefix("wgpu:") {
                    index(n).map(|n| Self::Wgpu(Adapter::Discrete(n)))
                } else {
                    s.strip_prefix("cuda:").and_then(index).map(Self::Cuda)
                }
            }
        };
        parsed.ok_or(DeviceError::Unknown(s))
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => write!(f, "auto"),
            Self::Cpu => write!(f, "cpu"),
            Self::Wgpu(Adapter::Default) => write!(f, "wgpu"),
            Self::Wgpu(Adapter::Discrete(n)) => write!(f, "wgpu:{n}"),
            Self::Wgpu(Adapter::Integrated(n)) => write!(f, "wgpu:integrated:{n}"),
            Self::Wgpu(Adapter::Software) => write!(f, "wgpu:cpu"),
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
    /// The burn device (not autodiff).
    pub fn device(self) -> Result<Device, DeviceError> {
        match self {
            Self::Cpu => Ok(Device::flex()),
            Self::Auto => Ok(auto()),
            #[cfg(feature = "wgpu")]
            Self::Wgpu(adapter) => gpu::open(adapter)
                .map(|o| o.device)
                .map_err(|e| DeviceError::Unavailable(self.to_string(), e)),
            #[cfg(not(feature = "wgpu"))]
            Self::Wgpu(_) => Err(DeviceError::NotBuilt(self.to_string(), "wgpu")),
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

    /// What the device is, in words, for logs and records: the adapter's name for a wgpu GPU.
    pub fn describe(self) -> String {
        match self {
            #[cfg(feature = "wgpu")]
            Self::Wgpu(adapter) => match gpu::open(adapter) {
                Ok(o) => format!("{self} ({})", o.name),
                Err(_) => self.to_string(),
            },
            Self::Auto => match auto_choice() {
                Some(gpu) => gpu.describe(),
                None => "cpu".into(),
            },
            _ => self.to_string(),
        }
    }
}

/// Where `auto` goes: the GPU it picks, or `None` for the CPU.
fn auto_choice() -> Option<DeviceSpec> {
    if cfg!(feature = "cuda") {
        return Some(DeviceSpec::Cuda(0));
    }
    #[cfg(feature = "wgpu")]
    if gpu::open(Adapter::Default).is_ok_and(|o| o.hardware) {
        return Some(DeviceSpec::Wgpu(Adapter::Default));
    }
    None
}

fn auto() -> Device {
    auto_choice()
        .and_then(|d| d.device().ok())
        .unwrap_or_else(Device::flex)
}

/// Whether `device` keeps its tensors in host memory (the CPU backends), where the machine's
/// available memory is the limit.
pub fn is_host(device: &Device) -> bool {
    #[cfg(feature = "tch")]
    if matches!(
        device.as_dispatch().clone().inner(),
        burn::backend::DispatchDevice::LibTorch(_)
    ) {
        return true;
    }
    is_flex(device)
}

/// Whether `device` is burn's `flex` CPU backend (with or without autodiff).
pub fn is_flex(device: &Device) -> bool {
    matches!(
        device.as_dispatch().clone().inner(),
        burn::backend::DispatchDevice::Flex(_)
    )
}

/// Runs `work`, which ends by reading its result back from the device, and tells running out of
/// the device's memory (`Err` with the backend's words) apart from success. Any other failure
/// panics, as a plain read would have. A GPU backend reports a refused allocation at the next
/// read rather than where it happened, so `work` must read (`try_into_data`) for this to see it;
/// a panic whose message says out of memory counts too (wgpu words some refusals that way).
pub fn within_memory<T, E: fmt::Display>(work: impl FnOnce() -> Result<T, E>) -> Result<T, String> {
    let oom = |message: &str| crate::resources::out_of_memory_line(message).map(str::to_string);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            let message = e.to_string();
            match oom(&message) {
                Some(line) => Err(line),
                None => panic!("the device failed: {message}"),
            }
        }
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("");
            match oom(message) {
                Some(line) => Err(line),
                None => std::panic::resume_unwind(payload),
            }
        }
    }
}

/// wgpu adapters, each initialized once per process (burn refuses a second initialization of
/// the same one) and remembered with what it is.
#[cfg(feature = "wgpu")]
mod gpu {
    use super::Adapter;
    use burn::tensor::{Device, DeviceKind};
    use std::sync::Mutex;

    /// An adapter that came up.
    #[derive(Clone)]
    pub(super) struct Opened {
        pub(super) device: Device,
        /// Its name and graphics API, for logs.
        pub(super) name: String,
        /// A GPU rather than a software device (lavapipe).
        pub(super) hardware: bool,
    }

    static OPENED: Mutex<Vec<(Adapter, Result<Opened, String>)>> = Mutex::new(Vec::new());

    /// The adapter, opened on first use, or why there is none.
    pub(super) fn open(adapter: Adapter) -> Result<Opened, String> {
        let mut opened = OPENED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, o)) = opened.iter().find(|(a, _)| *a == adapter) {
            return o.clone();
        }
        let kind = match adapter {
            Adapter::Default => DeviceKind::DefaultDevice,
            Adapter::Discrete(n) => DeviceKind::DiscreteGpu(n),
            Adapter::Integrated(n) => DeviceKind::IntegratedGpu(n),
            Adapter::Software => DeviceKind::Cpu,
        };
        // wgpu may panic rather than return an error when no driver is installed
        let o =
            std::panic::catch_unwind(|| Device::wgpu_options().device_kind(kind).init_with_setup())
                .map_err(|_| "the wgpu runtime failed to start".to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
                .map(|(device, setup)| {
                    let info = setup.adapter.get_info();
                    let hardware = info.device_type != burn::tensor::wgpu::wgpu::DeviceType::Cpu;
                    let name = format!(
                        "{}, {:?}{}",
                        info.name,
                        info.backend,
                        if hardware { "" } else { " [software]" }
                    );
                    Opened {
                        device,
                        name,
                        hardware,
                    }
                });
        opened.push((adapter, o.clone()));
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips() {
        for s in [
            "auto",
            "cpu",
            "cuda:1",
            "tch",
            "wgpu",
            "wgpu:1",
            "wgpu:integrated:0",
            "wgpu:cpu",
        ] {
            assert_eq!(s.parse::<DeviceSpec>().unwrap().to_string(), s);
        }
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert!("tpu".parse::<DeviceSpec>().is_err());
        assert!("wgpu:x".parse::<DeviceSpec>().is_err());
        assert_eq!(
            "wgpu:integrated".parse::<DeviceSpec>().unwrap(),
            DeviceSpec::Wgpu(Adapter::Integrated(0))
        );
        assert!(DeviceSpec::Cpu.device().is_ok());
    }
}
