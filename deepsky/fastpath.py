"""Run a Keras model through PyTorch ops directly, for training and inference speed.

Keras on the torch backend transposes every convolution's input to NCHW and
back, adds biases as separate ops and casts weights on every call. This
module walks any functional (or Sequential) Keras graph once, in topological
order, and runs each layer through a *kernel*: a function of
``torch.nn.functional`` ops on the layer's own Keras variables, in
channels-last memory. That is 2-3x faster to train and 4x faster to predict
on a CPU than ``fit``/``predict``. Gradients land in the Keras variables, so
the model stays a Keras model.

Kernels are registered per layer class with :func:`register_kernel`; the
built-in Keras layers' kernels live here, deepsky's own layers register theirs
beside the layer. A layer without a kernel runs as the Keras layer itself on
a channels-last (NHWC) tensor, so any graph runs.

Every tensor carries its layout: channels-last (NHWC, as Keras sees it) or
channels-first (NCHW, as torch's convolutions take it, in channels-last
memory). Between the two is a free view in that memory, so converting at a
layer that wants the other layout costs nothing; only kernels that reshape
(``Flatten``, ``Reshape``) need the Keras order.
"""

from __future__ import annotations

import copy
import functools

import numpy as np

CHANNELS_FIRST, CHANNELS_LAST, ANY = "channels_first", "channels_last", "any"

_KERNELS: dict = {}  # layer class -> _Kernel
_BUILTINS_REGISTERED = False


class _Kernel:
    __slots__ = ("fn", "layout", "weights", "accepts", "turns", "cast_weights", "fresh")

    def __init__(self, fn, layout, weights, accepts, turns, cast_weights, fresh):
        self.fn, self.layout, self.weights, self.accepts = fn, layout, weights, accepts
        self.turns, self.cast_weights, self.fresh = turns, cast_weights, fresh


def register_kernel(*layer_classes, layout: str = ANY, weights=None, accepts=None, turns=False,
                    cast_weights: bool = True, fresh: bool = True):
    """Register ``fn(layer, x, ctx)`` as the fast-path kernel of ``layer_classes`` (a decorator).

    Parameters
    ----------
    layer_classes : type
        Keras layer classes the kernel computes. Subclasses use it too unless
        they override ``call``.
    layout : str
        What the kernel takes and gives: ``"channels_first"`` (N, C, H, W) or
        (N, C, L) views, ``"channels_last"`` (as Keras), or ``"any"`` (it
        reads ``ctx.channel_dim`` where the channel axis matters).
    weights : callable, optional
        ``weights(layer) -> tuple`` of torch tensors the kernel reads through
        ``ctx.weights(layer)``: views of the Keras variables while training,
        detached copies cached by :meth:`TorchGraph.freeze` for inference.
    accepts : callable, optional
        ``accepts(layer) -> bool``: whether this layer's settings are ones the
        kernel computes; the layer runs as Keras otherwise.
    turns : bool or callable
        True (or ``turns(layer, shape) -> bool``) when the layer's output for a
        turned input is its output turned, so :meth:`TorchGraph.turned` may run
        it once for all turns.
    cast_weights : bool
        Whether :meth:`TorchGraph.freeze` casts the weights to its dtype
        (False for input scalings that should stay float32).
    fresh : bool
        The kernel's output is a new tensor, never a view of its input (so a
        later activation may work in place).

    The kernel returns the output tensor, or None to decline this call (the
    Keras layer runs instead).
    """

    def decorate(fn):
        for cls in layer_classes:
            _KERNELS[cls] = _Kernel(fn, layout, weights, accepts, turns, cast_weights, fresh)
        return fn

    return decorate


def kernel_for(layer):
    """The registered kernel that computes ``layer``, or None (it then runs as Keras)."""
    _register_builtins()
    for cls in type(layer).__mro__:
        kernel = _KERNELS.get(cls)
        if kernel is None:
            continue
        # a subclass that overrides call computes something else
        if getattr(type(layer), "call", None) is not getattr(cls, "call", None):
            return None
        if kernel.accepts is not None and not kernel.accepts(layer):
            return None
        return kernel
    return None


# -- the graph ----------------------------------------------------------------------
class _Step:
    """One call of one layer (a node of the Keras graph) in the flat plan."""

    __slots__ = ("layer", "kernel", "inputs", "outputs", "node", "cache", "unary", "softmax_output",
                 "release", "inplace", "layer_is_op")

    def __init__(self, layer, kernel, inputs, outputs, node):
        self.layer, self.kernel, self.inputs, self.outputs, self.node = layer, kernel, inputs, outputs, node
        self.cache = None  # frozen weights (inference)
        self.unary = None  # ('relu' | 'leaky_relu', scalars): an activation folded in at freeze time
        self.softmax_output = False  # a model output's softmax, left out for logits
        self.release: tuple = ()  # keys no later step reads
        self.inplace = False  # its single input is read by nothing else and is no view
        self.layer_is_op = False


def _graph_of(model):
    """The Functional graph behind ``model`` (itself, or a built Sequential's), or None."""
    import keras

    if isinstance(model, keras.Sequential):
        return getattr(model, "_functional", None)
    return model if isinstance(model, keras.Model) and hasattr(model, "_nodes_by_depth") else None


def _compile(model, input_keys, prefix, steps, counter):
    """Append ``model``'s nodes to ``steps`` in topological order; return its output keys.

    Nested graph models are inlined under a fresh key prefix per call, so a
    sub-model called twice (shared weights) keeps two sets of activations.
    """
    import keras

    graph = _graph_of(model)
    inner_inputs = keras.tree.flatten(graph._inputs_struct)
    keys = {id(t): k for t, k in zip(inner_inputs, input_keys)}
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            op = node.operation
            if op is None or node.is_input:
                continue
            if any(id(t) not in keys for t in node.input_tensors):
                continue  # not connected to the inputs, as Keras skips it
            ins = [keys[id(t)] for t in node.input_tensors]
            if isinstance(op, keras.Model) and _graph_of(op) is not None:
                counter[0] += 1
                outs = _compile(op, ins, counter[0], steps, counter)
            else:
                outs = [(prefix, id(t)) for t in node.outputs]
                is_layer = isinstance(op, keras.layers.Layer)
                step = _Step(op, kernel_for(op) if is_layer else None, ins, outs, node)
                step.layer_is_op = not is_layer
                steps.append(step)
            for t, k in zip(node.outputs, outs):
                keys[id(t)] = k
    return [keys[id(t)] for t in graph.outputs]


def _is_chain(model) -> bool:
    """True for a one-input, one-output model whose layers each feed the next (LeNet, VGG)."""
    import keras

    if not isinstance(model, keras.Model) or len(model.inputs) != 1 or len(model.outputs) != 1:
        return False
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    for layer in layers:
        if len(layer._inbound_nodes) != 1 or isinstance(layer, keras.Model):
            return False
    for previous, layer in zip(layers, layers[1:]):
        parents = layer._inbound_nodes[0].parent_nodes
        if len(parents) != 1 or parents[0].operation is not previous:
            return False
    return bool(layers) and layers[0]._inbound_nodes[0].parent_nodes[0].operation is model.layers[0]


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


class _Context:
    """What a kernel may ask while it runs: mode, layout, its weights, the activation to apply."""

    __slots__ = ("training", "frozen", "logits", "channels_first", "step", "graph")

    def __init__(self, graph, training, frozen, logits):
        self.graph, self.training, self.frozen, self.logits = graph, training, frozen, logits
        self.channels_first, self.step = False, None

    def channel_dim(self, x) -> int:
        """The channel axis of ``x`` in the layout the kernel received it."""
        return 1 if self.channels_first and x.ndim >= 3 else x.ndim - 1

    def channel_shape(self, x) -> tuple:
        """A shape that broadcasts a per-channel vector over ``x``."""
        shape = [1] * x.ndim
        shape[self.channel_dim(x)] = -1
        return tuple(shape)

    def weights(self, layer):
        """The kernel's weights: cached inference copies when frozen, live views of the Keras variables otherwise."""
        if self.step.cache is not None:
            return self.step.cache
        return self.step.kernel.weights(layer)

    def float32(self, layer) -> bool:
        """Whether ``layer`` is the float32 head (regression outputs under bf16)."""
        return layer is self.graph._float32_layer

    def unary(self, layer):
        """``(name, scalars)`` of the activation to apply after ``layer``'s linear part, or None when linear."""
        if self.step.unary is not None:
            return self.step.unary
        return _unary(getattr(layer, "activation", None))

    def activate(self, layer, y, activation=None, inplace=True):
        """``layer``'s activation (or ``activation``) on ``y``, a fresh output no one else holds."""
        if self.step.unary is not None and activation is None:
            return _apply_unary(self.step.unary, y, inplace and self.frozen)
        activation = layer.activation if activation is None else activation
        if self.logits and self.step.softmax_output and _name(activation) == "softmax":
            return y
        return _activate(activation, y, self.channel_dim(y), inplace=inplace and self.frozen)


class TorchGraph:
    """A Keras functional (or Sequential) model executed with torch ops on its own variables.

    Inputs are channels-last torch tensors, as the Keras model takes them;
    inside, 4-D activations and kernels are NCHW views of channels-last
    memory, the layout oneDNN prefers (measured here: 1.65x faster to
    predict in bf16 than contiguous NCHW, as fast to train).

    Parameters
    ----------
    model : keras.Model
        Functional or Sequential, channels_last layers, torch backend.
    float32_head : bool
        Run the last dense layer in float32 even under bf16 (regression
        outputs): bf16 keeps 8 significant bits, so a standardised magnitude
        near 2 would be rounded to steps of 0.008 (0.012 mag), as coarse as a
        good fit's error; the one small layer in float32 costs nothing
        measurable.
    """

    def __init__(self, model, float32_head: bool = False):
        import keras

        if keras.backend.backend() != "torch":
            raise RuntimeError("TorchGraph needs the torch backend")
        if _graph_of(model) is None:
            raise RuntimeError(f"TorchGraph runs functional or built Sequential models; received {type(model).__name__}")
        self.model = model
        graph = _graph_of(model)
        self._inputs = keras.tree.flatten(graph._inputs_struct)
        self._input_names = [t.name for t in self._inputs]
        self._input_keys = [("in", i) for i in range(len(self._inputs))]
        steps: list = []
        self._output_keys = _compile(model, self._input_keys, 0, steps, [0])
        self._steps = steps
        self.layers = [step.layer for step in steps]
        dense = [step.layer for step in steps if isinstance(step.layer, keras.layers.Dense)]
        self._float32_layer = dense[-1] if float32_head and dense else None
        producers = {k: step for step in steps for k in step.outputs}
        for key in self._output_keys:
            step = producers.get(key)
            if step is not None and _produces_softmax(step.layer):
                step.softmax_output = True
        _plan_memory(steps, self._input_keys, self._output_keys)
        self._frozen_plan = None
        for step in steps:
            if step.kernel is not None and step.kernel.fn in (_conv, _conv_transpose):
                _relayout_kernel(step.layer.kernel)

    @staticmethod
    def supports(model) -> bool:
        """True for a functional or built Sequential model with channels_last layers, on the torch backend."""
        import keras

        if keras.backend.backend() != "torch" or _graph_of(model) is None:
            return False
        return all(getattr(layer, "data_format", "channels_last") in ("channels_last", None)
                   for layer in _all_layers(model))

    # -- weights -----------------------------------------------------------------
    def freeze(self, dtype):
        """Cache inference copies of the weights in ``dtype`` (e.g. ``torch.bfloat16``).

        Convolutions absorb a batch normalisation and an activation that only
        they feed (ResNet's conv-BN-ReLU becomes one oneDNN call).
        """
        import torch

        plan = _fold(self._steps, self._output_keys)
        with torch.no_grad():
            for step in plan:
                kernel = step.kernel
                if kernel is None or (kernel.weights is None and step.cache is None):
                    continue
                target = torch.float32 if step.layer is self._float32_layer else dtype
                # weights folded with a batch norm come as float32 from _fold: they too take the dtype
                weights = step.cache if step.cache is not None else kernel.weights(step.layer)
                step.cache = tuple(_frozen_copy(t, target if kernel.cast_weights else None) for t in weights)
        _plan_memory(plan, self._input_keys, self._output_keys)
        self._frozen_plan = plan
        return self

    def unfreeze(self):
        """Back to the live Keras variables (after training changed them, or to train)."""
        self._frozen_plan = None
        return self

    # -- forward -----------------------------------------------------------------
    def __call__(self, inputs, training: bool = False, logits: bool = False):
        """Outputs for ``inputs``: a tensor, a list in ``model.inputs`` order, or a dict by input name.

        Returns a tensor for a one-output model, else a list. With
        ``logits=True`` a final softmax on any output is left out.
        """
        env = self._feed(inputs)
        plan = self._plan()
        self._run(plan, env, training, logits)
        return self._fetch(env)

    def _plan(self):
        return self._frozen_plan if self._frozen_plan is not None else self._steps

    def _feed(self, inputs) -> dict:
        if isinstance(inputs, dict):
            missing = [name for name in self._input_names if name not in inputs]
            if missing:
                raise KeyError(f"inputs lack {missing}; the model takes {self._input_names}")
            inputs = [inputs[name] for name in self._input_names]
        elif not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        if len(inputs) != len(self._input_keys):
            raise ValueError(f"the model takes {len(self._input_keys)} inputs; received {len(inputs)}")
        return {k: (to_torch(x) if isinstance(x, np.ndarray) else x, False) for k, x in zip(self._input_keys, inputs)}

    def _fetch(self, env):
        outputs = [_layout(*env[k], False) for k in self._output_keys]
        return outputs[0] if len(outputs) == 1 else outputs

    def _run(self, plan, env, training, logits=False):
        ctx = _Context(self, training, self._frozen_plan is not None, logits)
        for step in plan:
            values = [env[k] for k in step.inputs]
            kernel = step.kernel
            out = None
            if kernel is not None:
                if kernel.layout == ANY:
                    cf = next((c for x, c in values if x.ndim >= 3), False)
                else:
                    cf = kernel.layout == CHANNELS_FIRST
                xs = [_layout(x, c, cf) for x, c in values]
                ctx.step, ctx.channels_first = step, cf
                out = kernel.fn(step.layer, xs[0] if len(xs) == 1 else xs, ctx)
                if out is not None:
                    env[step.outputs[0]] = (out, cf)
            if out is None:
                outs = self._keras_call(step, [_layout(x, c, False) for x, c in values], training)
                for k, y in zip(step.outputs, outs):
                    env[k] = (y, False)
            for k in step.release:
                env.pop(k, None)
        return env

    @staticmethod
    def _keras_call(step, values, training):
        """The Keras layer (or op) itself on channels-last tensors."""
        import keras

        filled = {id(t): v for t, v in zip(step.node.input_tensors, values)}
        args, kwargs = step.node.arguments.fill_in(filled)
        if not step.layer_is_op and "training" not in kwargs:
            kwargs["training"] = training
        return keras.tree.flatten(step.layer(*args, **kwargs))

    # -- turns ---------------------------------------------------------------------
    def turned(self, x, turns) -> list:
        """Outputs for ``x`` turned by each of ``turns`` (:func:`deepsky.train.turn` numbering).

        The leading layers that act on each pixel alone, or on the whole
        cutout as a turn leaves it (:class:`~deepsky.layers.references.SersicInputs`
        cropping a square's centre evenly), run once; only their output is
        turned. For the Sersic network that input layer is half the time of
        one orientation.
        """
        import torch

        plan = self._plan()
        shared = self._turnable_prefix(x.shape)
        env = self._run(plan[:shared], self._feed(x), False)
        cut = plan[shared - 1].outputs[0] if shared else self._input_keys[0]
        y, cf = env[cut]
        rest = plan[shared:]
        first = rest[0] if rest else None
        weight = first.cache[0] if first is not None and first.cache else None
        if y.ndim == 4 and weight is not None and weight.ndim == 4 and first.kernel.layout == CHANNELS_FIRST:
            # a convolution comes next: cast and lay out the shared output for it once, then each
            # turn is one copy (turning the NHWC tensor, then laying it out and casting, were three)
            y, cf = _layout(y, cf, True).to(weight.dtype), True
        dims = (2, 3) if cf and y.ndim == 4 else (1, 2)
        memory = torch.channels_last if cf and y.ndim == 4 else torch.contiguous_format
        outputs = []
        for k in turns:
            env = {cut: (turn_tensor(y, k, dims).contiguous(memory_format=memory), cf)}
            outputs.append(self._fetch(self._run(rest, env, False)))
        return outputs

    def _turnable_prefix(self, shape) -> int:
        """How many leading steps give the same output for a turned input as turned output."""
        if len(self._input_keys) != 1 or len(shape) != 4 or shape[1] != shape[2]:
            return 0
        plan = self._plan()
        cut, count, seen = self._input_keys[0], 0, []
        for step in plan[:-1]:
            kernel = step.kernel
            ok = kernel is not None and (kernel.turns(step.layer, shape) if callable(kernel.turns) else kernel.turns)
            if not ok or step.inputs != [cut] or len(step.outputs) != 1:
                break
            seen.append(cut)
            cut, count = step.outputs[0], count + 1
        # later steps may read only the last shared output
        while count:
            shared = set(seen[:count])
            if not any(k in shared for step in plan[count:] for k in step.inputs):
                break
            count -= 1
        return count


TorchChain = TorchGraph  # the name from when only chains ran here


def _plan_memory(steps, input_keys, output_keys):
    """Mark what each step may free, and which standalone activations may work in place."""
    last, readers = {}, {}
    for i, step in enumerate(steps):
        for k in step.inputs:
            last[k] = i
            readers[k] = readers.get(k, 0) + 1
    keep = set(output_keys)
    producer = {k: step for step in steps for k in step.outputs}
    for i, step in enumerate(steps):
        step.release = tuple(k for k in dict.fromkeys(step.inputs) if last.get(k) == i and k not in keep)
        source = producer.get(step.inputs[0]) if len(step.inputs) == 1 else None
        step.inplace = (source is not None and readers.get(step.inputs[0]) == 1 and step.inputs[0] not in keep
                        and source.kernel is not None and source.kernel.fresh)


def _fold(steps, output_keys):
    """A copy of the plan where each convolution absorbs the batch norm and activation only it feeds."""
    import keras

    readers: dict = {}
    for step in steps:
        for k in step.inputs:
            readers.setdefault(k, []).append(step)
    outputs = set(output_keys)

    def sole_reader(key):
        found = readers.get(key, [])
        return found[0] if len(found) == 1 and key not in outputs else None

    plan, absorbed, deferred = [], set(), {}
    for step in steps:
        if id(step) in deferred:  # a convolution that absorbed this addition runs here, where both terms exist
            plan.append(deferred.pop(id(step)))
            continue
        if id(step) in absorbed:
            continue
        step = copy.copy(step)
        plan.append(step)
        layer = step.layer
        if not (isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D)) and step.kernel is not None
                and step.kernel.fn is _conv and _name(layer.activation) == "linear"):
            continue
        following = sole_reader(step.outputs[0])
        rank = len(layer.kernel_size)
        if (following is not None and following.kernel is not None
                and isinstance(following.layer, keras.layers.BatchNormalization)
                and following.layer.axis in (-1, rank + 1)):
            weight, bias = (t.detach() for t in _conv_weights_or_zero_bias(layer))
            scale, shift = (t.detach() for t in _bn_affine(following.layer))
            step.cache = (weight * scale.view(-1, *([1] * (weight.ndim - 1))), bias * scale + shift)
            absorbed.add(id(following))
            step.outputs = following.outputs
            following = sole_reader(step.outputs[0])
        unary = _layer_unary(following.layer) if following is not None and following.kernel is not None else None
        if unary is not None:
            step.unary = unary
            absorbed.add(id(following))
            step.outputs = following.outputs
        elif (rank == 2 and following is not None and following.kernel is not None and len(following.inputs) == 2
              and isinstance(following.layer, keras.layers.Add) and following.inputs[0] != following.inputs[1]
              and id(following) not in deferred):
            # a residual block's end, conv + shortcut (+ ReLU), is one oneDNN call with the sum fused in
            if step.cache is None:
                step.cache = tuple(t.detach() for t in _conv_weights_or_zero_bias(layer))
            other = following.inputs[1] if following.inputs[0] == step.outputs[0] else following.inputs[0]
            step.inputs = [*step.inputs, other]
            step.outputs = following.outputs
            after = sole_reader(step.outputs[0])
            step.unary = _layer_unary(after.layer) if after is not None and after.kernel is not None else None
            if step.unary is not None:
                absorbed.add(id(after))
                step.outputs = after.outputs
            plan.pop()
            deferred[id(following)] = step
    return plan


def _frozen_copy(t, dtype):
    import torch

    if t is None:
        return None
    t = t.detach()
    if dtype is not None and t.is_floating_point():
        t = t.to(dtype)
    return t.contiguous(memory_format=torch.channels_last) if t.ndim == 4 else t.contiguous()


def _layout(x, channels_first: bool, want: bool):
    """``x`` in the layout ``want`` (True: channels first); a view where the memory allows."""
    import torch

    if x.ndim < 3 or channels_first == want:
        return x
    n = x.ndim
    if want:
        x = x.permute(0, n - 1, *range(1, n - 1))
        if n == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x
    return x.permute(0, *range(2, n), 1)


def turn_tensor(x, k: int, dims=(1, 2)):
    """Torch tensor turned over its (row, column) ``dims`` as :func:`deepsky.train.turn` turns numpy cutouts."""
    import torch

    x = torch.rot90(x, k % 4, dims=dims) if k % 4 else x
    return x.flip(dims[1]) if k >= 4 else x


def to_torch(batch: np.ndarray):
    """A float32 torch tensor sharing ``batch``'s memory."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
    device = weights_device()
    return tensor if device == "cpu" else tensor.to(device, non_blocking=True)


@functools.lru_cache(maxsize=1)
def weights_device() -> str:
    """Where Keras keeps the weights, fixed once Keras is imported: batches go there."""
    from deepsky.config import torch_device

    return torch_device()


# float32 elements per chunk of cutouts for elementwise kernels in inference: each temporary then stays in cache
# (about 1.5 MB), where whole batches' temporaries went through main memory and cost as much as the convolutions
CHUNK_ELEMENTS = 400_000


def in_cache_chunks(fn, x):
    """``fn(x)`` computed over chunks of ``x``'s first axis that keep its temporaries in cache.

    For elementwise chains of a dozen passes (local response normalisation,
    an asinh stretch); ``fn`` must treat cutouts independently and keep the
    shape. Computed whole when it tracks gradients (autograd keeps every
    temporary anyway) or fits in one chunk.
    """
    import torch

    chunk = max(1, CHUNK_ELEMENTS // max(1, x[0].numel() if len(x) else 1))
    if len(x) <= chunk or (torch.is_grad_enabled() and x.requires_grad):
        return fn(x)
    out = torch.empty_like(x)
    for start in range(0, len(x), chunk):
        out[start:start + chunk] = fn(x[start:start + chunk])
    return out


def _fast_asinh(y):
    """asinh(y) from log1p and sqrt: 3x faster than ``torch.asinh`` on CPU, within 2e-7."""
    import torch

    a = y.abs()
    return torch.copysign(torch.log1p(a + a * a / (1 + torch.sqrt(a * a + 1))), y)


# -- activations ----------------------------------------------------------------------
def _name(activation) -> str:
    return getattr(activation, "__name__", "") if activation is not None else "linear"


def _is_relu(activation) -> bool:
    return _name(activation) == "relu"


def _is_softmax(layer) -> bool:
    import keras

    return isinstance(layer, keras.layers.Activation) and _name(layer.activation) == "softmax"


def _produces_softmax(layer) -> bool:
    import keras

    if isinstance(layer, keras.layers.Softmax):
        return True
    return _name(getattr(layer, "activation", None)) == "softmax"


def _unary(activation):
    """The activation as a oneDNN post-op ``(name, scalars)``, None when linear, "other" otherwise."""
    name = _name(activation)
    if name == "linear":
        return None
    if name == "relu":
        return ("relu", [])
    return "other"


def _layer_unary(layer):
    """A standalone activation layer as a post-op a convolution can absorb, else None."""
    import keras

    if isinstance(layer, keras.layers.ReLU):
        if layer.max_value is None and not layer.negative_slope and not layer.threshold:
            return ("relu", [])
        return None
    if isinstance(layer, keras.layers.LeakyReLU):
        return ("leaky_relu", [float(layer.negative_slope)])
    if isinstance(layer, keras.layers.Activation) and _name(layer.activation) == "relu":
        return ("relu", [])
    return None


def _apply_unary(unary, y, inplace):
    import torch.nn.functional as F

    name, scalars = unary
    if name == "relu":
        return F.relu(y, inplace=inplace)
    return F.leaky_relu(y, scalars[0], inplace=inplace)


def _activate(activation, x, channel_dim: int, inplace: bool = False):
    """``activation`` on ``x``; ``inplace`` for a fresh layer output no gradient needs (a third of the
    Sersic network's inference time was out-of-place ReLUs: an allocation and a copy each)."""
    import torch
    import torch.nn.functional as F

    name = _name(activation)
    if name == "linear":
        return x
    if name == "relu":
        return F.relu(x, inplace=inplace)
    if name == "softmax":
        return F.softmax(x.float(), dim=channel_dim)
    if name == "log_softmax":
        return F.log_softmax(x.float(), dim=channel_dim)
    simple = {"elu": F.elu, "selu": F.selu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "gelu": F.gelu,
              "silu": F.silu, "swish": F.silu, "softplus": F.softplus, "relu6": F.relu6}
    if name in simple:
        return simple[name](x)
    if name == "leaky_relu":
        return F.leaky_relu(x, 0.2)  # keras.activations.leaky_relu's default slope
    if channel_dim != x.ndim - 1:  # anything else as Keras computes it, on its own layout
        return activation(x.movedim(channel_dim, -1)).movedim(-1, channel_dim)
    return activation(x)


def _fused_conv_relu_available() -> bool:
    import torch

    return not torch.is_grad_enabled() and torch.backends.mkldnn.is_available() and hasattr(
        torch.ops.mkldnn, "_convolution_pointwise")


def _plain_conv(layer) -> bool:
    """Whether the convolution runs on the fast path's kernel."""
    kernel = kernel_for(layer)
    return kernel is not None and kernel.layout == CHANNELS_FIRST


# -- built-in kernels ------------------------------------------------------------------
def _same_padding(size, kernel, stride, dilation=1):
    """Keras' "same" padding (before, after) of one axis: the extra pixel goes after."""
    effective = (kernel - 1) * dilation + 1
    out = (size + stride - 1) // stride
    total = max(0, (out - 1) * stride + effective - size)
    return total // 2, total - total // 2


def _pads(layer, spatial, kernel, dilation):
    if layer.padding == "valid":
        return [(0, 0)] * len(spatial)
    if layer.padding == "causal":
        return [((kernel[0] - 1) * dilation[0], 0)]
    return [_same_padding(n, k, s, d) for n, k, s, d in zip(spatial, kernel, layer.strides, dilation)]


def _pad_or_pass(x, pads, mode="constant"):
    """Symmetric padding the torch op can take, or ``x`` padded explicitly and no padding."""
    import torch.nn.functional as F

    if all(a == b for a, b in pads):
        return x, [a for a, _ in pads]
    flat = [p for pair in reversed(pads) for p in pair]
    return F.pad(x, flat, mode=mode), [0] * len(pads)


def _relayout_kernel(variable):
    """Store a Keras convolution kernel so that its torch view is already laid out as torch wants it.

    A kernel in Keras' own (*spatial, in, out) order must be copied into
    torch's layout on every training step, and its gradient copied back: on
    Inception those copies cost more than a fifth of the step. Only the
    strides change (the values, the variable and its torch Parameter stay),
    as Keras' orthogonal initialiser already leaves them.
    """
    import torch

    param = variable.value
    rank = param.ndim - 2
    if not isinstance(param, torch.nn.Parameter) or rank not in (1, 2):
        return
    order = (rank + 1, rank, *range(rank))
    view = param.permute(*order)
    memory = torch.channels_last if rank == 2 else torch.contiguous_format
    if view.is_contiguous(memory_format=memory):
        return
    back = [order.index(i) for i in range(param.ndim)]
    with torch.no_grad():
        param.data = view.contiguous(memory_format=memory).permute(*back)


def _conv_weights(layer):
    import torch

    kernel = layer.kernel.value
    rank = kernel.ndim - 2
    # Keras (*spatial, in, out) -> torch (out, in, *spatial); transposed: (*spatial, out, in) -> (in, out, *spatial)
    weight = kernel.permute(rank + 1, rank, *range(rank))
    if rank == 2:
        weight = weight.contiguous(memory_format=torch.channels_last)
    return weight, (layer.bias.value if layer.use_bias else None)


def _conv_weights_or_zero_bias(layer):
    import torch

    weight, bias = _conv_weights(layer)
    return weight, (bias if bias is not None else torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device))


def _conv(layer, x, ctx):
    import torch
    import torch.nn.functional as F

    residual = None
    if isinstance(x, list):  # frozen: a residual sum folded in (see _fold)
        x, residual = x
    weight, bias = ctx.weights(layer)
    if ctx.frozen:
        x = x.to(weight.dtype)
    rank = x.ndim - 2
    x, padding = _pad_or_pass(x, _pads(layer, x.shape[2:], layer.kernel_size, layer.dilation_rate))
    unary = ctx.unary(layer)
    if residual is not None:
        if _fused_conv_relu_available():
            residual = residual.to(weight.dtype).contiguous(memory_format=torch.channels_last)
            return torch.ops.mkldnn._convolution_pointwise.binary(
                x, residual, weight, bias, padding, list(layer.strides), list(layer.dilation_rate), layer.groups,
                "add", None, unary[0] if unary else None, unary[1] if unary else [], "")
        y = F.conv2d(x, weight, bias, layer.strides, padding, layer.dilation_rate, layer.groups) + residual
        return y if unary is None else _apply_unary(unary, y, False)
    if rank == 2 and ctx.frozen and unary not in (None, "other") and _fused_conv_relu_available():
        # oneDNN's convolution with the activation fused in (what torch.compile emits on a CPU): a
        # separate ReLU pass over the output cost 40% of the convolution itself
        return torch.ops.mkldnn._convolution_pointwise(
            x, weight, bias, padding, list(layer.strides), list(layer.dilation_rate), layer.groups,
            unary[0], unary[1], "")
    conv = (F.conv1d, F.conv2d, F.conv3d)[rank - 1]
    y = conv(x, weight, bias, layer.strides, padding, layer.dilation_rate, layer.groups)
    return ctx.activate(layer, y)


def _conv_transpose(layer, x, ctx):
    import torch.nn.functional as F

    try:
        from keras.src.backend.common.backend_utils import compute_conv_transpose_output_crops_for_torch
    except ImportError:  # another Keras: let the layer run itself
        return None
    weight, bias = ctx.weights(layer)
    if ctx.frozen:
        x = x.to(weight.dtype)
    rank = x.ndim - 2
    crops = compute_conv_transpose_output_crops_for_torch(
        (x.shape[0], *x.shape[2:], x.shape[1]), tuple(layer.kernel.shape), layer.strides, layer.padding,
        layer.output_padding, layer.dilation_rate)
    if any(a < 0 or b < 0 for a, b in crops):
        return None
    padding = [a for a, _ in crops]
    # torch crops `padding` from both ends and gives `output_padding` back at the end
    extra = [a - b for a, b in crops]
    if all(0 <= e < max(s, d) for e, s, d in zip(extra, layer.strides, layer.dilation_rate)):
        conv = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[rank - 1]
        y = conv(x, weight, bias, layer.strides, padding, extra, 1, layer.dilation_rate)
    else:
        conv = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[rank - 1]
        y = conv(x, weight, bias, layer.strides, 0, 0, 1, layer.dilation_rate)
        y = y[(slice(None), slice(None), *(slice(a, y.shape[2 + i] - b) for i, (a, b) in enumerate(crops)))]
    return ctx.activate(layer, y)


def _dense_weights(layer):
    return layer.kernel.value, (layer.bias.value if layer.use_bias else None)


def _dense(layer, x, ctx):
    import torch

    weight, bias = ctx.weights(layer)
    if ctx.frozen:
        x = x.to(weight.dtype)
    if ctx.float32(layer):
        with torch.autocast(x.device.type, enabled=False):
            x, weight = x.float(), weight.float()
            bias = None if bias is None else bias.float()
            y = _affine(x, weight, bias)
    else:
        y = _affine(x, weight, bias)
    return ctx.activate(layer, y)


def _affine(x, weight, bias):
    import torch
    import torch.nn.functional as F

    if weight.stride(0) == 1 and weight.shape[0] > 1:
        # the kernel is a transposed (out, in) matrix (Keras' orthogonal initialiser makes them): through
        # F.linear its gradient has the kernel's own strides, which fused AdamW needs to update it without
        # copying (measured: the copies doubled the optimizer step of Kim & Brunner's 10M dense weights)
        return F.linear(x, weight.T, bias)
    if x.ndim == 2:
        return x @ weight if bias is None else torch.addmm(bias, x, weight)
    y = torch.matmul(x, weight)
    return y if bias is None else y + bias


def _pool(layer, x, ctx):
    import torch.nn.functional as F

    rank = x.ndim - 2
    pool, strides = tuple(layer.pool_size), tuple(layer.strides)
    average = "Average" in type(layer).__name__
    padding = [0] * rank
    if layer.padding == "same":
        # Keras on torch pads an uneven "same" by repeating the edge (for both kinds of pooling)
        x, padding = _pad_or_pass(x, [_same_padding(n, k, s) for n, k, s in zip(x.shape[2:], pool, strides)],
                                  mode="replicate")
    if average:
        return (F.avg_pool1d, F.avg_pool2d)[rank - 1](x, pool, strides, padding, count_include_pad=False)
    return (F.max_pool1d, F.max_pool2d)[rank - 1](x, pool, strides, padding)


def _global_pool(layer, x, ctx):
    dims = tuple(range(2, x.ndim))
    keep = bool(getattr(layer, "keepdims", False))
    if "Average" in type(layer).__name__:
        return x.mean(dims, keepdim=keep)
    return x.amax(dims, keepdim=keep)


def _flatten(layer, x, ctx):
    return x.reshape(x.shape[0], -1)


def _reshape(layer, x, ctx):
    return x.reshape(x.shape[0], *layer.target_shape)


def _dropout(layer, x, ctx):
    import torch.nn.functional as F

    if ctx.training and layer.rate > 0:
        return F.dropout(x, layer.rate, training=True)
    return x


def _bn_affine(layer):
    """Inference batch norm as ``x * scale + shift`` per channel."""
    import torch

    scale = torch.rsqrt(layer.moving_variance.value + layer.epsilon)
    if layer.scale:
        scale = scale * layer.gamma.value
    shift = -layer.moving_mean.value * scale
    if layer.center:
        shift = shift + layer.beta.value
    return scale, shift


def _batch_norm(layer, x, ctx):
    import torch
    import torch.nn.functional as F

    if layer.axis not in (-1, x.ndim - 1):
        return None
    dim = ctx.channel_dim(x)
    if ctx.step.cache is not None:
        scale, shift = ctx.step.cache
        shape = ctx.channel_shape(x)
        return torch.addcmul(shift.view(shape), x, scale.view(shape))
    channels_first = x if dim == 1 else x.movedim(dim, 1)
    gamma = layer.gamma.value if layer.scale else None
    beta = layer.beta.value if layer.center else None
    if ctx.training and layer.trainable:
        # torch updates running statistics with the unbiased variance and the other momentum
        # convention; with momentum 1 its buffers receive this batch's own mean and variance
        count = x.numel() // x.shape[dim]
        mean = torch.zeros(x.shape[dim], dtype=torch.float32, device=x.device)
        var = torch.ones(x.shape[dim], dtype=torch.float32, device=x.device)
        y = F.batch_norm(channels_first, mean, var, gamma, beta, True, 1.0, layer.epsilon)
        with torch.no_grad():
            m = float(layer.momentum)
            layer.moving_mean.value.mul_(m).add_(mean, alpha=1 - m)
            # Keras averages the biased variance, the one it normalises with
            layer.moving_variance.value.mul_(m).add_(var, alpha=(1 - m) * (count - 1) / max(count, 1))
    else:
        y = F.batch_norm(channels_first, layer.moving_mean.value, layer.moving_variance.value, gamma, beta, False,
                         0.0, layer.epsilon)
    return y if dim == 1 else y.movedim(1, dim)


def _bn_weights(layer):
    return _bn_affine(layer)


def _activation_layer(layer, x, ctx):
    return ctx.activate(layer, x, inplace=ctx.step.inplace)


def _relu(layer, x, ctx):
    import torch.nn.functional as F

    if layer.negative_slope or layer.threshold:
        return None
    y = F.relu(x, inplace=ctx.frozen and ctx.step.inplace)
    return y if layer.max_value is None else y.clamp_max(float(layer.max_value))


def _leaky_relu(layer, x, ctx):
    import torch.nn.functional as F

    # in place when frozen for inference: no graph to keep, one allocation less
    return F.leaky_relu(x, float(layer.negative_slope), inplace=ctx.frozen and ctx.step.inplace)


def _elu(layer, x, ctx):
    import torch.nn.functional as F

    return F.elu(x, float(layer.alpha))


def _softmax_layer(layer, x, ctx):
    import torch.nn.functional as F

    if layer.axis not in (-1, x.ndim - 1):
        return None
    if ctx.logits and ctx.step.softmax_output:
        return x
    return F.softmax(x.float(), dim=ctx.channel_dim(x))


def _keras_axis_to_dim(axis, ndim, channels_first):
    axis = axis % ndim
    if not channels_first or ndim < 3 or axis == 0:
        return axis
    return 1 if axis == ndim - 1 else axis + 1


def _merge(op):
    def kernel(layer, xs, ctx):
        if len({x.ndim for x in xs}) != 1:
            return None  # Keras broadcasts ranks; leave it to Keras
        return op(xs)

    return kernel


def _add(xs):
    out = xs[0] + xs[1]
    for x in xs[2:]:
        out = out + x
    return out


def _multiply(xs):
    out = xs[0] * xs[1]
    for x in xs[2:]:
        out = out * x
    return out


def _subtract(xs):
    return xs[0] - xs[1]


def _average(xs):
    return _add(xs) / len(xs)


def _maximum(xs):
    import functools

    import torch

    return functools.reduce(torch.maximum, xs)


def _minimum(xs):
    import functools

    import torch

    return functools.reduce(torch.minimum, xs)


def _concatenate(layer, xs, ctx):
    import torch

    if len({x.ndim for x in xs}) != 1:
        return None
    dtype = torch.promote_types(xs[0].dtype, xs[-1].dtype)
    xs = [x.to(dtype) for x in xs]
    return torch.cat(xs, dim=_keras_axis_to_dim(layer.axis, xs[0].ndim, ctx.channels_first))


def _zero_padding(layer, x, ctx):
    import torch.nn.functional as F

    pads = layer.padding if x.ndim == 4 else (layer.padding,)
    return F.pad(x, [p for pair in reversed(pads) for p in pair])


def _cropping(layer, x, ctx):
    crops = layer.cropping if x.ndim == 4 else (layer.cropping,)
    index = [slice(None)] * x.ndim
    for i, (a, b) in enumerate(crops):
        dim = i + 2 if ctx.channels_first else i + 1
        index[dim] = slice(a, x.shape[dim] - b)
    return x[tuple(index)]


def _cropping_turns(layer, shape) -> bool:
    crops = layer.cropping if len(shape) == 4 else (layer.cropping,)
    return len({p for pair in crops for p in pair}) == 1


def _upsampling(layer, x, ctx):
    import torch.nn.functional as F

    if x.ndim == 3:
        return x.repeat_interleave(int(layer.size), dim=2)
    return F.interpolate(x, scale_factor=tuple(float(s) for s in layer.size), mode="nearest")


def _normalization_weights(layer):
    import keras
    import torch

    mean = torch.as_tensor(layer.mean, device=weights_device()).reshape(-1)
    std = torch.sqrt(torch.as_tensor(layer.variance, device=weights_device()).reshape(-1)).clamp_min(keras.config.epsilon())
    return mean, std


def _normalization(layer, x, ctx):
    mean, std = ctx.weights(layer)
    shape = ctx.channel_shape(x)
    return (x - mean.view(shape).to(x.dtype)) / std.view(shape).to(x.dtype)


def _normalization_accepts(layer) -> bool:
    return not layer.invert and tuple(layer.axis) in ((-1,),) and layer.mean is not None


def _rescaling(layer, x, ctx):
    if not isinstance(layer.scale, (int, float)) or not isinstance(layer.offset, (int, float)):
        return None
    return x * layer.scale + layer.offset


def _identity(layer, x, ctx):
    return x


def _register_builtins():
    global _BUILTINS_REGISTERED
    if _BUILTINS_REGISTERED:
        return
    _BUILTINS_REGISTERED = True
    import keras

    L = keras.layers
    register_kernel(L.Conv1D, L.Conv2D, layout=CHANNELS_FIRST, weights=_conv_weights)(_conv)
    register_kernel(L.Conv2DTranspose, L.Conv1DTranspose, layout=CHANNELS_FIRST, weights=_conv_weights)(
        _conv_transpose)
    register_kernel(L.Dense, layout=CHANNELS_LAST, weights=_dense_weights)(_dense)
    register_kernel(L.MaxPooling1D, L.MaxPooling2D, L.AveragePooling1D, L.AveragePooling2D,
                    layout=CHANNELS_FIRST)(_pool)
    register_kernel(L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalMaxPooling1D, L.GlobalMaxPooling2D,
                    layout=CHANNELS_FIRST)(_global_pool)
    register_kernel(L.Flatten, layout=CHANNELS_LAST, fresh=False)(_flatten)
    register_kernel(L.Reshape, layout=CHANNELS_LAST, fresh=False)(_reshape)
    register_kernel(L.Dropout, accepts=lambda layer: layer.noise_shape is None, turns=True, fresh=False)(_dropout)
    register_kernel(L.BatchNormalization, weights=_bn_weights, turns=True,
                    accepts=lambda layer: not getattr(layer, "renorm", False))(_batch_norm)
    register_kernel(L.Activation, turns=lambda layer, shape: _name(layer.activation) not in ("softmax",),
                    fresh=False)(_activation_layer)
    register_kernel(L.ReLU, turns=True)(_relu)
    register_kernel(L.LeakyReLU, turns=True)(_leaky_relu)
    register_kernel(L.ELU, turns=True)(_elu)
    register_kernel(L.Softmax, fresh=False)(_softmax_layer)
    register_kernel(L.Add)(_merge(_add))
    register_kernel(L.Subtract)(_merge(_subtract))
    register_kernel(L.Multiply)(_merge(_multiply))
    register_kernel(L.Average)(_merge(_average))
    register_kernel(L.Maximum)(_merge(_maximum))
    register_kernel(L.Minimum)(_merge(_minimum))
    register_kernel(L.Concatenate)(_concatenate)
    register_kernel(L.ZeroPadding1D, L.ZeroPadding2D, layout=CHANNELS_FIRST)(_zero_padding)
    register_kernel(L.Cropping1D, L.Cropping2D, turns=_cropping_turns, fresh=False)(_cropping)
    register_kernel(L.UpSampling1D, layout=CHANNELS_FIRST)(_upsampling)
    register_kernel(L.UpSampling2D, layout=CHANNELS_FIRST,
                    accepts=lambda layer: layer.interpolation == "nearest")(_upsampling)
    register_kernel(L.Normalization, weights=_normalization_weights, accepts=_normalization_accepts, turns=True,
                    cast_weights=False)(_normalization)
    register_kernel(L.Rescaling, turns=True)(_rescaling)
    register_kernel(L.Identity, turns=True, fresh=False)(_identity)
