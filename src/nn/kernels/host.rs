//! Moving CPU-backend tensors to and from plain `f32` slices, for the backend extensions whose
//! kernels ([`super::winograd`], [`super::upsample`]) work on host data in NCHW order.

use super::buffer::par_filled;
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::{DispatchDevice, TensorMetadata};
use burn::tensor::{DType, Shape, Tensor};

/// The tensor's values in row-major order (borrowed when already contiguous).
pub(super) fn host(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) if t.is_contiguous() => std::borrow::Cow::Borrowed(s),
        _ => std::borrow::Cow::Owned(
            gathered(t).unwrap_or_else(|| t.to_contiguous().storage::<f32>().to_vec()),
        ),
    }
}

/// A strided 4-d view (the gradient of a concatenation is a slice of the channels) gathered
/// plane by plane in parallel; `None` for other layouts. burn's own copy runs on the calling
/// thread and then copies once more into a `Vec`: in a training step it was the largest part
/// of what the worker threads waited for after the output buffers were zeroed in parallel.
fn gathered(t: &FlexTensor) -> Option<Vec<f32>> {
    let layout = t.layout();
    let strides: [usize; 4] = layout
        .strides()
        .iter()
        .map(|&s| usize::try_from(s).ok())
        .collect::<Option<Vec<_>>>()?
        .try_into()
        .ok()?;
    let [_, c, h, w] = dims(t);
    let (storage, start) = (t.storage::<f32>(), layout.start_offset());
    let plane_len = h * w;
    Some(par_filled(
        layout.num_elements(),
        plane_len,
        |plane, out| {
            let base = start + (plane / c) * strides[0] + (plane % c) * strides[1];
            for (y, row) in out.chunks_exact_mut(w).enumerate() {
                let from = base + y * strides[2];
                if strides[3] == 1 {
                    row.copy_from_slice(&storage[from..][..w]);
                } else {
                    for (x, v) in row.iter_mut().enumerate() {
                        *v = storage[from + x * strides[3]];
                    }
                }
            }
        },
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(shape: [usize; 4]) -> FlexTensor {
        let n = shape.iter().product();
        flex((0..n).map(|v| v as f32).collect(), shape)
    }

    fn with_layout(t: &FlexTensor, layout: Layout) -> FlexTensor {
        let data = t.storage::<f32>().to_vec();
        FlexTensor::new(burn::tensor::Bytes::from_elems(data), layout, DType::F32)
    }

    #[test]
    fn strided_views_gather_as_burn_copies_them() {
        let t = tensor([3, 5, 4, 6]);
        let base = t.layout().clone();
        let views = [
            base.narrow(1, 1, 3),
            base.narrow(0, 1, 2).narrow(3, 2, 3),
            base.permute(&[0, 1, 3, 2]),
            base.transpose(0, 1),
            base.flip(&[2]),
        ];
        for layout in views {
            let view = with_layout(&t, layout.clone());
            assert!(!view.is_contiguous());
            let expected = view.to_contiguous().storage::<f32>().to_vec();
            assert_eq!(host(&view).as_ref(), expected.as_slice(), "{layout:?}");
        }
    }
}
