"""A run's last finished epoch on disk (model, optimizer state, history), swapped in atomically."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from deepsky.errors import DeepskyError


class Checkpoint:
    """A run's last finished epoch on disk: model, optimizer state, history.

    Written to a fresh folder and swapped in with renames, so an interruption
    at any moment leaves the previous complete checkpoint in place.
    """

    def __init__(self, directory):
        self.dir = Path(directory)

    @property
    def exists(self) -> bool:
        self._recover()
        return (self.dir / "state.json").exists()

    def _recover(self):
        old = self.dir.with_name(self.dir.name + ".old")
        if not (self.dir / "state.json").exists() and (old / "state.json").exists():
            shutil.rmtree(self.dir, ignore_errors=True)
            old.rename(self.dir)

    def save(self, model, state: dict, optimizer_state: dict | None = None, objective_state: dict | None = None):
        tmp = self.dir.with_name(self.dir.name + ".tmp")
        old = self.dir.with_name(self.dir.name + ".old")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        model.save(tmp / "model.keras")
        if optimizer_state is not None:
            _save_tensor_tree(optimizer_state, tmp / "optimizer.h5")
        if objective_state is not None:  # what the objective trains itself (a GAN's critic)
            _save_weights(objective_state["weights"], tmp / "objective.h5")
            _save_tensor_tree(objective_state["optimizer"], tmp / "objective_optimizer.h5")
        (tmp / "state.json").write_text(json.dumps(state, indent=1))
        shutil.rmtree(old, ignore_errors=True)
        if self.dir.exists():
            self.dir.rename(old)
        tmp.rename(self.dir)
        shutil.rmtree(old, ignore_errors=True)

    def load_state(self) -> dict:
        self._recover()
        try:
            return json.loads((self.dir / "state.json").read_text())
        except (OSError, ValueError) as exc:
            raise DeepskyError(f"{self.dir}: no readable checkpoint to resume from ({exc})") from None

    def load_weights_into(self, model):
        from deepsky.io import load_model

        saved = load_model(self.dir / "model.keras")
        model.set_weights(saved.get_weights())

    def load_optimizer_state(self) -> dict | None:
        path = self.dir / "optimizer.h5"
        return _load_tensor_tree(path) if path.exists() else None

    def load_objective_state(self) -> dict | None:
        path = self.dir / "objective.h5"
        if not path.exists():
            return None
        optimizer = self.dir / "objective_optimizer.h5"
        return {"weights": _load_weights(path), "optimizer": _load_tensor_tree(optimizer) if optimizer.exists() else None}


def _save_tensor_tree(state: dict, path: Path):
    """A torch optimizer ``state_dict`` to HDF5 (no pickle)."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["param_groups"] = json.dumps(state["param_groups"])
        for index, slots in state["state"].items():
            group = f.create_group(f"state/{index}")
            for key, value in slots.items():
                group.create_dataset(key, data=value.detach().cpu().numpy())


def _load_tensor_tree(path: Path) -> dict:
    import h5py
    import torch

    with h5py.File(path, "r") as f:
        groups = json.loads(f.attrs["param_groups"])
        state = {
            int(index): {key: torch.from_numpy(slots[key][...]) for key in slots}
            for index, slots in (f["state"].items() if "state" in f else [])
        }
    return {"state": state, "param_groups": groups}


def _save_weights(weights: dict, path: Path):
    """Named tensors to HDF5."""
    import h5py

    with h5py.File(path, "w") as f:
        for name, value in weights.items():
            f.create_dataset(name, data=value.detach().cpu().numpy())


def _load_weights(path: Path) -> dict:
    import h5py
    import torch

    with h5py.File(path, "r") as f:
        return {name: torch.from_numpy(item[...]) for name, item in f.items()}
