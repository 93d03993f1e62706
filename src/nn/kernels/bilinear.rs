//! Autodiff for the extensions' operations y = op(x, w) that are linear in the input x and,
//! separately, in the weight w (the 3×3 convolution, the upsampling): their backward pass needs
//! only the operation's two adjoints, so one `Backward` implementation serves them all.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend};
use std::marker::PhantomData;

/// A backend's kernels for one bilinear operation.
pub(super) trait BilinearKernels<B: Backend>: 'static {
    /// y = op(x, w).
    fn forward(x: FloatTensor<B>, weight: FloatTensor<B>) -> FloatTensor<B>;
    /// ∂L/∂x from ∂L/∂y: the adjoint of op(·, w).
    fn backward_data(dy: FloatTensor<B>, weight: FloatTensor<B>) -> FloatTensor<B>;
    /// ∂L/∂w from x and ∂L/∂y: the adjoint of op(x, ·).
    fn backward_weight(x: FloatTensor<B>, dy: FloatTensor<B>) -> FloatTensor<B>;
}

struct BilinearBackward<K>(PhantomData<fn() -> K>);

impl<K> std::fmt::Debug for BilinearBackward<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BilinearBackward")
    }
}

impl<B: Backend, K: BilinearKernels<B>> Backward<B, 2> for BilinearBackward<K> {
    type State = (NodeId, NodeId);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, ckpt: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x_state, w_state) = ops.state;
        let x: FloatTensor<B> = ckpt.retrieve_node_output(x_state);
        let weight: FloatTensor<B> = ckpt.retrieve_node_output(w_state);
        if let Some(node) = node_w {
            grads.register::<B>(node.id, K::backward_weight(x, dy.clone()));
        }
        if let Some(node) = node_x {
            grads.register::<B>(node.id, K::backward_data(dy, weight));
        }
    }
}

/// `K`'s forward pass on the autodiff backend, recording x and w for its backward pass when
/// either is tracked.
pub(super) fn tracked<B: Backend, C: CheckpointStrategy, K: BilinearKernels<B>>(
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
) -> FloatTensor<Autodiff<B, C>> {
    match BilinearBackward::<K>(PhantomData)
        .prepare::<C>([x.node(), weight.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            let w_state = prep.checkpoint(&weight);
            let y = K::forward(x.into_primitive(), weight.into_primitive());
            prep.finish((x_state, w_state), y)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(K::forward(x.into_primitive(), weight.into_primitive()))
        }
    }
}
