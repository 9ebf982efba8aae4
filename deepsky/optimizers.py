"""The lecture's six optimizers as Keras optimizer objects, by name.

Keras implements all six, so this module only chooses settings and names:

======== =========================================== ===========================================
name     Keras object                                defaults chosen here
======== =========================================== ===========================================
sgd      ``SGD``                                     learning_rate 0.01 (Keras's)
nesterov ``SGD(momentum=0.9, nesterov=True)``        learning_rate 0.01, momentum 0.9
adagrad  ``Adagrad``                                 Keras's (learning_rate 0.001)
adadelta ``Adadelta``                                learning_rate 1.0, rho 0.95, epsilon 1e-6
rmsprop  ``RMSprop``                                 Keras's (learning_rate 0.001, rho 0.9)
adam     ``Adam``                                    Keras's (learning_rate 0.001)
======== =========================================== ===========================================

Adadelta departs from Keras's defaults on purpose: Zeiler (2012) needs no
learning rate (his update is ``-RMS[dx] / RMS[g] * g``, i.e. a rate of 1)
and uses epsilon 1e-6, while Keras multiplies the update by 0.001, which
makes the method crawl and hides the point of the table's "does not rely
on a global learning rate". Pass ``learning_rate`` to override.

>>> from deepsky import optimizers
>>> opt = optimizers.create("nesterov", learning_rate=0.05)
>>> type(opt).__name__, opt.nesterov, float(opt.momentum)
('SGD', True, 0.9)
"""

from __future__ import annotations

from deepsky.config import ensure_backend
from deepsky.errors import DeepskyError

# Keras picks its backend when first imported; choose ours before that.
ensure_backend()

import keras  # noqa: E402

LECTURE_OPTIMIZERS = ("sgd", "nesterov", "adagrad", "adadelta", "rmsprop", "adam")
"""The lecture's optimizers, in the order of its table."""

# The "core idea" column of the lecture's table.
_CORE_IDEA = {
    "sgd": "Computes the gradient of mini-batches iteratively and updates the parameters",
    "nesterov": "Introduces momentum to maintain the last gradient direction for the next update",
    "adagrad": "Applies different learning rates to different parameters",
    "adadelta": "Improves Adagrad, by applying a self-adaptive learning rate",
    "rmsprop": "Employs root mean square as a constraint of the learning rate",
    "adam": "Employs a momentum mechanism to store an exponentially decaying average of past gradients",
}

# (Keras class name, default constructor arguments) per lecture name.
_SETTINGS = {
    "sgd": ("SGD", {"learning_rate": 0.01}),
    "nesterov": ("SGD", {"learning_rate": 0.01, "momentum": 0.9, "nesterov": True}),
    "adagrad": ("Adagrad", {"learning_rate": 0.001}),
    "adadelta": ("Adadelta", {"learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-6}),
    "rmsprop": ("RMSprop", {"learning_rate": 0.001}),
    "adam": ("Adam", {"learning_rate": 0.001}),
}

# "Nesterov's momentum", as the table writes it, normalises to this key.
_ALIASES = {"nesterov_momentum": "nesterov"}


def _canonical(name: str) -> str:
    key = str(name).lower().replace("-", "_").replace("'s", "").replace(" ", "_")
    key = _ALIASES.get(key, key)
    if key not in _SETTINGS:
        raise DeepskyError(
            f"unknown optimizer {name!r}; known optimizers: {', '.join(LECTURE_OPTIMIZERS)}"
        )
    return key


def create(name: str, learning_rate=None, **kwargs):
    """A new Keras optimizer for one of the lecture's names.

    Parameters
    ----------
    name : str
        One of :data:`LECTURE_OPTIMIZERS` (``"nesterov_momentum"`` is an
        alias of ``"nesterov"``); case does not matter.
    learning_rate : float, keras schedule or None
        Step size; None uses the default in the module's table (Keras's,
        except Adadelta's 1.0 from Zeiler 2012).
    **kwargs
        Other constructor arguments of the Keras class (``momentum``,
        ``rho``, ``epsilon``, ``beta_1``, ``clipnorm``, ...); they override
        the defaults chosen here.

    Returns
    -------
    keras.optimizers.Optimizer

    Raises
    ------
    DeepskyError
        For an unknown name; the message lists the known ones.
    """
    class_name, defaults = _SETTINGS[_canonical(name)]
    arguments = {**defaults, **kwargs}
    if learning_rate is not None:
        arguments["learning_rate"] = learning_rate
    return getattr(keras.optimizers, class_name)(**arguments)


def describe(name: str) -> str:
    """The core idea of optimizer ``name``, from the lecture's table, as one line.

    >>> describe("adagrad")
    'Applies different learning rates to different parameters'
    """
    return _CORE_IDEA[_canonical(name)]
