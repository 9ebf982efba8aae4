"""Feature maps as the lecture shows them: what conv layers 1, 3 and 6 see in one example of each class."""

from __future__ import annotations

import numpy as np

from deepsky.report.canvas import figure

LAYERS = (1, 3, 6)  # conv layers shown, counted from 1 as in the paper's table
MAPS = 8  # feature maps shown per layer
CROP_LAYER = "centre_crop"


def feature_layers(model) -> list[tuple[int, str]]:
    """(conv number, layer name) of the activations to show.

    ``conv1_act``, ``conv3_act``, ``conv6_act`` (after the nonlinearity) when
    the model names them so; otherwise the first, third and sixth Conv2D
    layers, as many of them as the model has.
    """
    import keras

    names = {layer.name for layer in model.layers}
    wanted = [(k, f"conv{k}_act") for k in LAYERS]
    if all(name in names for _, name in wanted):
        return wanted
    convs = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    return [(k, convs[k - 1]) for k in LAYERS if k <= len(convs)]


def activations(model, images: np.ndarray, layer_names) -> list[np.ndarray]:
    """Outputs of the named layers of ``model`` for raw ``images`` (N, H, W, bands), as numpy arrays."""
    import keras

    extractor = keras.Model(model.inputs, [model.get_layer(name).output for name in layer_names])
    # a list, matching ``model.inputs``, or Keras warns that the structures differ
    outputs = extractor([np.asarray(images, dtype=np.float32)], training=False)
    return [np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32) for out in outputs]


def plot_feature_maps(inputs, path) -> bool:
    """For one clear example of each class: the cropped input and 8 maps of conv layers 1, 3, 6.

    Uses ``gallery/feature_map_examples`` of ``evaluation.h5`` (one test index
    per class, in class order) and the run's ``model.keras``. Returns False
    when either is missing or the model has no Conv2D layers.

    Parameters
    ----------
    inputs : ReportInputs
    path : path
        PNG to write.
    """
    picks = [int(i) for i in inputs.gallery.get("feature_map_examples", [])]
    picks = [i for i in picks if inputs.gallery_image(i) is not None]
    if not picks or not inputs.run.model_path.exists():
        return False
    model = inputs.run.load_model()
    layers = feature_layers(model)
    if not layers:
        return False
    names = [name for _, name in layers]
    has_crop = CROP_LAYER in {layer.name for layer in model.layers}
    images = np.stack([inputs.gallery_image(i) for i in picks])
    outputs = activations(model, images, ([CROP_LAYER] if has_crop else []) + names)
    seen = outputs.pop(0) if has_crop else images
    channels_first = getattr(model.get_layer(names[0]), "data_format", "channels_last") == "channels_first"
    if channels_first:
        outputs = [np.moveaxis(out, 1, -1) for out in outputs]
    band = inputs.bands.index("r") if "r" in inputs.bands else 0
    band_name = inputs.bands[band] if inputs.bands else "first band"
    with figure(path, (12.5, 4.3 * len(picks))) as fig:
        blocks = np.atleast_1d(fig.subfigures(len(picks), 1, hspace=0.04))
        for row, (block, index) in enumerate(zip(blocks, picks)):
            label = inputs.classes[int(inputs.labels[index])]
            block.suptitle(_heading(inputs, index, label), fontsize=11, fontweight="bold")
            left, right = block.subfigures(1, 2, width_ratios=[1.5, 8])
            ax = left.subplots()
            _show_input(ax, seen[row, ..., band])
            ax.set_title(f"Input: {band_name} band\n{seen.shape[1]} x {seen.shape[2]} px\nas the network sees it",
                         fontsize=9)
            strips = np.atleast_1d(right.subfigures(len(layers), 1))
            for strip, (number, _), out in zip(strips, layers, outputs):
                maps = out[row]
                strip.suptitle(f"Layer {number} ({maps.shape[-1]} maps x {maps.shape[0]} x {maps.shape[1]})",
                               fontsize=9.5)
                axes = np.atleast_1d(strip.subplots(1, MAPS))
                for k, ax in enumerate(axes):
                    ax.set_axis_off()
                    if k < maps.shape[-1]:
                        ax.imshow(maps[..., k], cmap="gray", origin="lower", interpolation="nearest")
    return True


def _heading(inputs, index, label):
    text = f"A {label} (test object {index}"
    if inputs.binary:
        text += f", p_{inputs.positive} {inputs.probabilities[index, 1]:.2f}"
    column = inputs.caption_column
    if column:
        text += f", {column} = {float(inputs.objects[column][index]):.1f}"
    return text + ")"


def _show_input(ax, plane):
    from deepsky.report.gallery import sky_noise

    noise = sky_noise(plane[..., None])[0]
    ax.imshow(np.arcsinh(plane / (3 * noise)), cmap="gray", origin="lower", interpolation="nearest")
    ax.set_axis_off()
