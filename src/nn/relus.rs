//! What a forward pass does at its ReLUs: apply them; apply them and record where each passed
//! its input (for the adjoint); or multiply by recorded patterns instead, which turns the
//! network into the linear map it is at the recording point — its Jacobian there, since the
//! networks are bias-free and piecewise linear.

use super::bf_norm::BfNorm;
use super::Mode;
use burn::tensor::activation::relu;
use burn::tensor::Tensor;

/// The ReLUs' behaviour for one forward pass; patterns are `[1, c, h, w]` (one image) and
/// broadcast over the batch.
pub(super) enum Relus<'a> {
    /// Apply them.
    Apply,
    /// Apply them and push each one's pattern (1 where it passed, else 0).
    Record(&'a mut Vec<Tensor<4>>),
    /// Multiply by these patterns, first to last.
    Frozen(std::slice::Iter<'a, Tensor<4>>),
}

impl Relus<'_> {
    /// The next ReLU of the pass.
    pub(super) fn relu(&mut self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Relus::Apply => relu(x),
            Relus::Record(masks) => {
                let y = relu(x);
                masks.push(y.clone().greater_elem(0.0).float());
                y
            }
            Relus::Frozen(masks) => {
                x * masks.next().expect("one recorded pattern per ReLU").clone()
            }
        }
    }

    /// relu(norm(x)): fused into one operation when only applied (see [`BfNorm::forward_relu`]).
    pub(super) fn norm_relu(&mut self, norm: &BfNorm, x: Tensor<4>, mode: Mode) -> Tensor<4> {
        match self {
            Relus::Apply => norm.forward_relu(x, mode),
            _ => self.relu(norm.forward(x, mode)),
        }
    }
}

/// The last recorded pattern not yet used by an adjoint pass (which runs last layer first).
pub(super) fn pop_mask(masks: &mut Vec<Tensor<4>>) -> Tensor<4> {
    masks.pop().expect("one recorded mask per ReLU")
}
