# Doctests in deepsky/ and docs/ import keras too: pick the backend before anything does.
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
