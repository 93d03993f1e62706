//! Moving CPU-backend tensors to and from plain `f32` slices, for the backend extensions whose
//! kernels ([`super::winograd`], [`super::upsample`]) work on host data in NCHW order.

use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::{DispatchDevice, TensorMetadata};
use burn::tensor::{DType, Shape, Tensor};

/// The tensor's values in row-major order (borrowed when already contiguous).
pub(super) fn host(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) if t.is_contiguous() => std::borrow::Cow::Borrowed(s),
        _ => std::borrow::Cow::Owned(t.to_contiguous().storage::<f32>().to_vec()),
    }
}

/// A contiguous f32 tensor of `shape` holding `data`.
pub(super) fn flex(data: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::new(
        burn::tensor::Bytes::from_elems(data),
        Layout::contiguous(Shape::from(shape.to_vec())),
        DType::F32,
    )
}

/// The four dimensions of a 4-d tensor.
pub(super) fn dims(t: &FlexTensor) -> [usize; 4] {
    let s = t.shape();
    [s[0], s[1], s[2], s[3]]
}

/// Whether `x` is an f32 tensor on the CPU backend (with or without autodiff), where the
/// extensions run.
pub(super) fn on_flex(x: &Tensor<4>) -> bool {
    matches!(
        x.device().as_dispatch().clone().inner(),
        DispatchDevice::Flex(_)
    ) && x.dtype() == DType::F32
}
