"""AstroNet: a two-column 1-D ConvNet of a phase-folded light curve (Shallue & Vanderburg 2018).

The global view (the whole orbit, folded and binned) and the local view
(the transit, zoomed in) each go through a column of blocks of two
convolutions (kernel 5, "same" padding, ReLU) and a max pooling of stride
2; the widths double from 16 at each block. The flattened columns are
concatenated and go through four dense layers of 512 units. Yu et al.
(2019, Astronet-Triage) use it on TESS with 201 global and 61 local bins.
"""

from __future__ import annotations

from deepsky.models.registry import register_model

GLOBAL, LOCAL = "global_view", "local_view"


@register_model("astronet", "AstroNet: two 1-D ConvNet columns (global and local view of a folded light curve), "
                            "four dense layers (Shallue & Vanderburg 2018; Yu et al. 2019 on TESS)")
def astronet(input_shape=None, num_classes=2, global_blocks=5, local_blocks=2, global_pool=5, local_pool=7,
             kernel_size=5, dense_layers=4, dense_units=512, dropout=0.0):
    """AstroNet for named inputs ``global_view`` (bins, 1) and ``local_view`` (bins, 1).

    ``input_shape`` is a dict of the two shapes (default: TESS triage's 201
    and 61 bins); ``global_pool``/``local_pool`` are the pooling windows.
    """
    import keras
    from keras import layers

    shapes = input_shape or {GLOBAL: (201, 1), LOCAL: (61, 1)}
    if not isinstance(shapes, dict) or set(shapes) != {GLOBAL, LOCAL}:
        from deepsky.errors import DeepskyError

        raise DeepskyError(f"astronet takes two named inputs {GLOBAL!r} and {LOCAL!r}; received {shapes}")

    def column(x, blocks, pool, name):
        for block in range(1, blocks + 1):
            width = 16 * 2 ** (block - 1)
            for part in "ab":
                x = layers.Conv1D(width, kernel_size, padding="same", activation="relu",
                                  name=f"{name}_conv{block}{part}")(x)
            x = layers.MaxPooling1D(pool, strides=2, name=f"{name}_pool{block}")(x)
        return layers.Flatten(name=f"{name}_flatten")(x)

    global_view = keras.Input(tuple(shapes[GLOBAL]), name=GLOBAL)
    local_view = keras.Input(tuple(shapes[LOCAL]), name=LOCAL)
    x = layers.Concatenate(name="views")([column(global_view, global_blocks, global_pool, "global"),
                                          column(local_view, local_blocks, local_pool, "local")])
    for i in range(1, dense_layers + 1):
        x = layers.Dense(dense_units, activation="relu", name=f"fc{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model([global_view, local_view], outputs, name="astronet")
