"""VGG networks A-E (Simonyan & Zisserman 2014, arXiv:1409.1556; ICLR 2015), from their Table 1.

Five blocks of 3x3 convolutions (stride 1, "same" padding, ReLU) with 64,
128, 256, 512 and 512 filters, each block closed by a 2x2 max pooling of
stride 2; then FC-4096, FC-4096 (dropout 0.5 after each) and a softmax.
The configurations differ only in the convolutions per block:

====== ============= =============================================== ============
config weight layers convolutions per block                           parameters
====== ============= =============================================== ============
A      11            1, 1, 2, 2, 2                                    132,863,336
A-LRN  11            as A, local response normalisation after conv1  132,863,336
B      13            2, 2, 2, 2, 2                                    133,047,848
C      16            2, 2, 3, 3, 3 (the third of blocks 3-5 is 1x1)  133,638,952
D      16            2, 2, 3, 3, 3                                    138,357,544
E      19            2, 2, 4, 4, 4                                    143,667,240
====== ============= =============================================== ============

(parameters at 224x224x3 with 1000 classes). D and E are the "VGG-16" and
"VGG-19" of the literature.
"""

from __future__ import annotations

from deepsky.models._classic import check_input_shape, window_fits
from deepsky.models.registry import register_model

WIDTHS = (64, 128, 256, 512, 512)  # filters of blocks 1-5
LRN = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}  # AlexNet's, as the paper cites

# config -> (kernel size of each convolution, per block; LRN after conv1;
#            registered names; parameters at 224x224x3, 1000 classes)
_CONFIGS = {
    "a": (((3,), (3,), (3, 3), (3, 3), (3, 3)), False, ("vgg-a",), 132_863_336),
    "a-lrn": (((3,), (3,), (3, 3), (3, 3), (3, 3)), True, ("vgg-a-lrn",), 132_863_336),
    "b": (((3, 3),) * 5, False, ("vgg-b",), 133_047_848),
    "c": (((3, 3), (3, 3), (3, 3, 1), (3, 3, 1), (3, 3, 1)), False, ("vgg-c",), 133_638_952),
    "d": (((3, 3), (3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)), False, ("vgg-d", "vgg-16"), 138_357_544),
    "e": (((3, 3), (3, 3), (3, 3, 3, 3), (3, 3, 3, 3), (3, 3, 3, 3)), False, ("vgg-e", "vgg-19"), 143_667_240),
}


def vgg(config="d", input_shape=(224, 224, 3), num_classes=1000, dropout=0.5, name=None):
    """Build VGG configuration ``config`` (Simonyan & Zisserman 2014, Table 1).

    Parameters
    ----------
    config : str
        ``"a"``, ``"a-lrn"``, ``"b"``, ``"c"``, ``"d"`` or ``"e"``.
    input_shape : tuple
        (height, width, bands) in pixels; the paper trains on 224x224 crops.
    num_classes : int
        Output classes (softmax).
    dropout : float
        Dropout rate after each 4096-unit layer.
    name : str, optional
        Name of the Keras model; ``vgg_<config>`` by default.

    Returns
    -------
    keras.Model
        See the module's table for the parameter counts at 224x224x3.

    Notes
    -----
    Five 2x2 poolings halve 224 pixels to 7; 32 pixels reach 1 and 44
    pixels 1 as well (22, 11, 5, 2, 1, rounding down). A pooling that would
    leave less than one pixel (inputs under 32 pixels) is left out, so
    ``block5_pool`` is absent for 16x16 inputs and FC-4096 sees a 1x1 map.
    Weights start from Keras' Glorot-uniform default with zero biases, the
    initialisation the paper notes trains the deep configurations from
    scratch without its pre-training of A.
    """
    import keras
    from keras import layers

    from deepsky.errors import DeepskyError
    from deepsky.layers.lrn import LocalResponseNormalization

    if config not in _CONFIGS:
        raise DeepskyError(f"unknown VGG configuration {config!r}; known: {', '.join(_CONFIGS)}")
    blocks, lrn, _, _ = _CONFIGS[config]
    shape = check_input_shape(input_shape, f"vgg-{config}")
    inputs = keras.Input(shape=shape, name="image")
    x = inputs
    for block, (width, kernels) in enumerate(zip(WIDTHS, blocks), start=1):
        for index, kernel in enumerate(kernels, start=1):
            x = layers.Conv2D(width, kernel, padding="same", activation="relu", name=f"block{block}_conv{index}")(x)
            if lrn and block == 1 and index == 1:
                x = LocalResponseNormalization(**LRN, name="block1_lrn")(x)
        if window_fits(x, 2):
            x = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    for index in (1, 2):
        x = layers.Dense(4096, activation="relu", name=f"fc{index}")(x)
        x = layers.Dropout(dropout, name=f"fc{index}_dropout")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name or f"vgg_{config.replace('-', '_')}")


def _register(config):
    """Register ``vgg(config)`` under each of the configuration's names."""
    blocks, lrn, names, params = _CONFIGS[config]
    depth = sum(len(kernels) for kernels in blocks) + 3
    label = f"VGG-{config.upper()}"
    one_by_one = [str(b) for b, kernels in enumerate(blocks, start=1) if 1 in kernels]
    extras = ", LRN after conv1" if lrn else ""
    if one_by_one:
        extras += f", 1x1 conv in blocks {','.join(one_by_one)}"
    description = f"{label} (Simonyan & Zisserman 2014): {depth} weight layers{extras}, softmax"

    def build(input_shape=(224, 224, 3), num_classes=1000, dropout=0.5, name=None):
        return vgg(config, input_shape=input_shape, num_classes=num_classes, dropout=dropout, name=name)

    build.__name__ = build.__qualname__ = f"vgg_{config.replace('-', '_')}"
    build.__doc__ = (
        f"Build {label} ({depth} weight layers); {params:,} parameters at 224x224x3, 1000 classes.\n\n"
        f"Keywords as ``vgg``, with ``config={config!r}``."
    )
    for registered in names:
        register_model(registered, description)(build)
    return build


BUILDERS = {config: _register(config) for config in _CONFIGS}
