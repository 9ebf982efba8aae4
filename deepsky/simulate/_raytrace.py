"""The ray-shooting loops of :mod:`deepsky.simulate.microlensing`, compiled by numba and run on every core.

Rays lie on a regular grid, ``per_cell`` x ``per_cell`` in each square cell
of side ``cell`` (R_E) from ``(origin_x, origin_y)``; each ray lands in the
source plane and is counted in ``counts[row, column]`` when inside the map of
``pixels`` x ``pixels`` pixels of ``pixel`` R_E centred on 0. Every thread
counts into its own map, summed at the end. The compiled loops are cached
beside this file (numba's ``__pycache__``), so only the first process pays
the few seconds of compilation.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange

NEAR_HALF_DIAGONALS = 3.0  # stars nearer a cell's centre than this many half-diagonals are summed exactly


@njit(inline="always", cache=True)
def _land(x, y, fx, fy, kappa_c, gamma, half, pixel, pixels, counts, thread):
    y1 = (1.0 - kappa_c - gamma) * x - fx
    y2 = (1.0 - kappa_c + gamma) * y + fy
    column = int(np.floor((y1 + half) / pixel))
    row = int(np.floor((y2 + half) / pixel))
    if 0 <= column < pixels and 0 <= row < pixels:
        counts[thread, row, column] += 1


@njit(parallel=True, cache=True)
def _shoot_taylor(sx, sy, kappa_c, gamma, origin_x, origin_y, cell, n1, n2, per_cell, half, pixel, pixels, order,
                  threads):
    counts = np.zeros((threads, pixels, pixels), np.int32)
    near_r2 = (NEAR_HALF_DIAGONALS * cell / np.sqrt(2.0)) ** 2
    spacing = cell / per_cell
    n_stars = len(sx)
    for thread in prange(threads):
        near = np.empty(n_stars, np.int64)
        coef = np.empty(order + 1, np.complex128)
        for c in range(thread, n1 * n2, threads):
            cx = origin_x + (c // n2 + 0.5) * cell
            cy = origin_y + (c % n2 + 0.5) * cell
            coef[:] = 0.0
            n_near = 0
            for s in range(n_stars):
                dx = sx[s] - cx
                dy = sy[s] - cy
                if dx * dx + dy * dy < near_r2:
                    near[n_near] = s
                    n_near += 1
                else:
                    inverse = 1.0 / complex(dx, dy)
                    term = inverse
                    for k in range(order + 1):
                        coef[k] -= term  # sum over far stars of 1/(z - z_i) = -sum_k w^k / d_i^(k+1)
                        term *= inverse
            for a in range(per_cell):
                x = cx - 0.5 * cell + (a + 0.5) * spacing
                for b in range(per_cell):
                    y = cy - 0.5 * cell + (b + 0.5) * spacing
                    w = complex(x - cx, y - cy)
                    f = coef[order]
                    for k in range(order - 1, -1, -1):
                        f = f * w + coef[k]
                    fx = f.real
                    fy = f.imag
                    for q in range(n_near):
                        s = near[q]
                        dx = x - sx[s]
                        dy = y - sy[s]
                        r2 = dx * dx + dy * dy
                        fx += dx / r2  # 1/(z - z_i) = conj(z - z_i) / |z - z_i|^2
                        fy -= dy / r2
                    _land(x, y, fx, fy, kappa_c, gamma, half, pixel, pixels, counts, thread)
    return counts


@njit(parallel=True, cache=True)
def _shoot_direct(sx, sy, kappa_c, gamma, origin_x, origin_y, cell, n1, n2, per_cell, half, pixel, pixels, threads):
    counts = np.zeros((threads, pixels, pixels), np.int32)
    spacing = cell / per_cell
    for thread in prange(threads):
        for c in range(thread, n1 * n2, threads):
            cx = origin_x + (c // n2 + 0.5) * cell
            cy = origin_y + (c % n2 + 0.5) * cell
            for a in range(per_cell):
                x = cx - 0.5 * cell + (a + 0.5) * spacing
                for b in range(per_cell):
                    y = cy - 0.5 * cell + (b + 0.5) * spacing
                    fx = 0.0
                    fy = 0.0
                    for s in range(len(sx)):
                        dx = x - sx[s]
                        dy = y - sy[s]
                        r2 = dx * dx + dy * dy
                        fx += dx / r2
                        fy -= dy / r2
                    _land(x, y, fx, fy, kappa_c, gamma, half, pixel, pixels, counts, thread)
    return counts


def shoot_taylor(sx, sy, kappa_c, gamma, origin_x, origin_y, cell, n1, n2, per_cell, half, pixel, pixels, order,
                 counts):
    """Add to ``counts`` the rays landed with near stars summed exactly and far ones by a Taylor series of ``order``."""
    counts += _shoot_taylor(np.asarray(sx, np.float64), np.asarray(sy, np.float64), float(kappa_c), float(gamma),
                            float(origin_x), float(origin_y), float(cell), n1, n2, per_cell, float(half),
                            float(pixel), pixels, order, get_num_threads()).sum(axis=0)


def shoot_direct(sx, sy, kappa_c, gamma, origin_x, origin_y, cell, n1, n2, per_cell, half, pixel, pixels, counts):
    """Add to ``counts`` the rays landed with every star summed for every ray (the brute force)."""
    counts += _shoot_direct(np.asarray(sx, np.float64), np.asarray(sy, np.float64), float(kappa_c), float(gamma),
                            float(origin_x), float(origin_y), float(cell), n1, n2, per_cell, float(half),
                            float(pixel), pixels, get_num_threads()).sum(axis=0)
