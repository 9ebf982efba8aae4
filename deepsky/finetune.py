"""Transfer learning (Yosinski et al. 2014): start from a trained network, freeze its first layers.

``deepsky finetune RUNDIR --task T --freeze K`` trains a new run whose model
starts from RUNDIR's weights (every layer whose name and weight shapes
match; a head with a different number of classes starts afresh) and keeps
the first K weight layers fixed. The preprocessing layers (crop, stretch,
standardisation) are fitted to the new data, since a new survey has its own
noise and depth. ``deepsky experiment transfer`` measures the gain against K.
"""

from __future__ import annotations

from deepsky.errors import DeepskyError


def flat_layers(model) -> list:
    """Every layer of ``model`` in order, descending into nested models."""
    import keras

    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.extend(flat_layers(layer))
        elif not isinstance(layer, keras.layers.InputLayer):
            out.append(layer)
    return out


def weight_layers(model) -> list:
    """The layers that learn a kernel (convolutions and dense layers), from the input on."""
    return [layer for layer in flat_layers(model) if getattr(layer, "kernel", None) is not None]


def transfer_weights(source, target) -> list[str]:
    """Copy ``source``'s weights into ``target`` layer by layer; return the names copied.

    A layer is copied when both models have a layer of that name with
    trainable weights of the same shapes; layers without trainable weights
    (preprocessing) keep the target's values.
    """
    by_name = {layer.name: layer for layer in flat_layers(source) if layer.trainable_weights}
    copied = []
    for layer in flat_layers(target):
        other = by_name.get(layer.name)
        if other is None or not layer.trainable_weights:
            continue
        weights = other.get_weights()
        if [w.shape for w in weights] == [tuple(v.shape) for v in layer.weights]:
            layer.set_weights(weights)
            copied.append(layer.name)
    if not copied:
        raise DeepskyError(f"no layer of {source.name!r} matches {target.name!r} by name and shape; "
                           "fine-tune from a run of the same model")
    return copied


def freeze_layers(model, k: int) -> list[str]:
    """Make the first ``k`` weight layers (and everything before the k-th) untrainable.

    Batch-normalisation layers inside the frozen part are frozen too (Keras
    then runs them in inference mode). Returns the names of the frozen
    layers that hold weights.
    """
    learners = weight_layers(model)
    if not 0 <= k < len(learners):  # at least the output layer must learn
        raise DeepskyError(f"--freeze must lie between 0 and {len(learners) - 1} (the model's weight layers: "
                           f"{', '.join(layer.name for layer in learners)}); received {k}")
    if k == 0:
        return []
    last = learners[k - 1]
    frozen = []
    for layer in flat_layers(model):
        if layer.weights:
            layer.trainable = False
            frozen.append(layer.name)
        if layer is last:
            break
    return frozen
