"""Radial basis function network: Gaussian units on the inputs, then a softmax.

Made for tabular inputs such as five magnitudes or colours; standardise them
first (the widths are in the input's units). :func:`init_from_data` places
the centres by k-means on a data sample, the classic two-stage RBF training
(Moody & Darken 1989), after which ``fit`` refines centres, widths and
output weights together.
"""

from __future__ import annotations

from deepsky.errors import DeepskyError
from deepsky.models.registry import register_model


@register_model("rbf-network", "Radial basis function network: trainable Gaussian units, softmax (tabular inputs)")
def rbf_network(input_shape=(5,), num_classes=2, centers=32, initial_width=1.0, name="rbf_network"):
    """Build an RBF network: ``RBF`` layer named ``rbf``, then ``logits`` and ``probabilities``.

    Parameters
    ----------
    input_shape : tuple
        (features,), e.g. (5,) for u, g, r, i, z magnitudes (standardised).
    num_classes : int
        Output classes (softmax).
    centers : int
        Number of Gaussian units.
    initial_width : float
        Starting width of every unit, in the (standardised) input's units.
    """
    import keras
    from keras import layers

    from deepsky.layers.rbf import RBF

    input_shape = tuple(int(n) for n in input_shape)
    if len(input_shape) != 1:
        raise DeepskyError(
            f"an RBF network takes a flat feature vector, e.g. (5,) magnitudes. Received: input_shape={input_shape}"
        )
    inputs = keras.Input(shape=input_shape, name="features")
    x = RBF(centers, initial_width=initial_width, name="rbf")(inputs)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


def init_from_data(model, x, sample_size=5000, neighbours=2, seed=0):
    """Put the RBF centres at k-means centres of ``x`` and set widths from their spacing.

    Each width is the root mean square distance from its centre to the
    ``neighbours`` nearest other centres (Moody & Darken's p-nearest-neighbour
    rule), so neighbouring bumps overlap without one unit covering everything.

    Parameters
    ----------
    model : keras.Model
        A model with an ``RBF`` layer named ``rbf`` (from ``rbf-network``).
    x : numpy.ndarray
        (n, features) training inputs, scaled as the model will see them.
    sample_size : int
        At most this many rows (drawn at random) go into k-means.
    neighbours : int
        Nearest centres that set each width.
    seed : int
        Seed of the sample and of k-means.

    Returns
    -------
    centers : numpy.ndarray
        (units, features) centres, in the input's units.
    widths : numpy.ndarray
        (units,) widths, in the input's units.
    """
    import numpy as np
    from sklearn.cluster import KMeans

    layer = model.get_layer("rbf")
    x = np.asarray(x, dtype="float64").reshape(len(x), -1)
    units = layer.units
    if len(x) < units:
        raise DeepskyError(f"k-means needs at least as many rows as centres ({units}). Received: {len(x)} rows")
    rng = np.random.default_rng(seed)
    sample = x[rng.choice(len(x), size=min(sample_size, len(x)), replace=False)]
    centers = KMeans(n_clusters=units, n_init=3, random_state=seed).fit(sample).cluster_centers_
    distances = np.sqrt(((centers[:, None, :] - centers[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(distances, np.inf)
    p = max(1, min(int(neighbours), units - 1))
    if units > 1:
        nearest = np.sort(distances, axis=1)[:, :p]
        widths = np.sqrt(np.mean(nearest**2, axis=1))
    else:
        widths = np.array([x.std(axis=0).mean()])
    # duplicate centres (repeated rows) would give width 0 and log(0): floor at 1% of the data's spread
    widths = np.maximum(widths, 0.01 * max(float(x.std(axis=0).mean()), 1e-12))
    layer.centers.assign(centers.astype("float32"))
    layer.log_width.assign(np.log(widths).astype("float32"))
    return centers, widths
