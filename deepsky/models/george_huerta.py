"""George & Huerta (2018, Phys. Lett. B 778, 64): "Deep Filtering", 1-D CNNs on whitened strain.

Each block is a convolution, a max pooling of 4, then ReLU, as in their
figure. The shallow network: convolutions of 16 (kernel 16), 32 (kernel 8,
dilation 4) and 64 (kernel 8, dilation 4) filters, then a dense layer of 64.
The deep one: 64, 128, 256 and 512 filters (kernels 16, 16, 16, 32;
dilations 1, 2, 2, 2), then dense layers of 128 and 64. The paper's windows
are 1 s at 8192 Hz; deepsky's are at 4096 Hz, where the deep network's
last convolution would no longer fit its input, so its convolutions pad
("same") and the shallow one's do not, as published. The head is a softmax
over the classes (signal or noise), or ``num_outputs`` linear values (the
masses, for a regression objective).
"""

from __future__ import annotations

from deepsky.models.registry import register_model

SHALLOW = ((16, 16, 1), (32, 8, 4), (64, 8, 4))  # (filters, kernel, dilation)
DEEP = ((64, 16, 1), (128, 16, 2), (256, 16, 2), (512, 32, 2))


def _network(name, blocks, dense, padding, input_shape, num_classes, num_outputs):
    import keras
    from keras import layers

    inputs = keras.Input(tuple(input_shape), name="strain")
    x = inputs
    for i, (filters, kernel, dilation) in enumerate(blocks, 1):
        x = layers.Conv1D(filters, kernel, dilation_rate=dilation, padding=padding, name=f"conv{i}")(x)
        x = layers.MaxPooling1D(4, name=f"pool{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    for i, width in enumerate(dense, 1):
        x = layers.Dense(width, activation="relu", name=f"fc{i}")(x)
    if num_outputs:
        outputs = layers.Dense(num_outputs, dtype="float32", name="outputs")(x)
    else:
        x = layers.Dense(num_classes, name="logits")(x)
        outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


@register_model("george-huerta-shallow",
                "George & Huerta (2018) Deep Filtering, shallow: 3 dilated 1-D conv (16, 32, 64), FC 64")
def george_huerta_shallow(input_shape=(4096, 2), num_classes=2, num_outputs=None):
    """The shallow network on (samples, detectors) whitened strain."""
    return _network("george_huerta_shallow", SHALLOW, (64,), "valid", input_shape, num_classes, num_outputs)


@register_model("george-huerta-deep",
                "George & Huerta (2018) Deep Filtering, deep: 4 dilated 1-D conv (64-512), FC 128, 64")
def george_huerta_deep(input_shape=(4096, 2), num_classes=2, num_outputs=None):
    """The deep network on (samples, detectors) whitened strain."""
    return _network("george_huerta_deep", DEEP, (128, 64), "same", input_shape, num_classes, num_outputs)
