"""Analytic primitives for the procedural scenes: ray intersection and inside tests (numpy, vectorised)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Class names of the procedural scenes, index = class id (0 is the background).
CLASSES = ["background", "box", "sphere", "cylinder"]

EPS = 1e-6


def _safe(d: np.ndarray) -> np.ndarray:
    return np.where(np.abs(d) < 1e-12, 1e-12, d)


@dataclass
class Primitive:
    """Base: instance id, class id and two texture colours with a checker frequency."""

    instance_id: int
    class_id: int
    color_a: np.ndarray
    color_b: np.ndarray
    freq: float
    kind: str = field(default="", init=False)

    def intersect(self, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest hit distance (N,) (inf when missed) and surface normal (N, 3)."""
        raise NotImplementedError

    def inside(self, p: np.ndarray) -> np.ndarray:
        """Boolean (N,) for points inside the solid."""
        raise NotImplementedError

    def aabb(self) -> np.ndarray:
        """(2, 3) min and max corners."""
        raise NotImplementedError

    def albedo(self, p: np.ndarray) -> np.ndarray:
        """3D checker texture in world coordinates (view independent)."""
        k = np.floor(p * self.freq).astype(np.int64).sum(axis=-1) % 2
        return np.where(k[:, None] == 0, self.color_a[None], self.color_b[None])


@dataclass
class Box(Primitive):
    """Axis-aligned box."""

    lo: np.ndarray = field(default_factory=lambda: np.zeros(3))
    hi: np.ndarray = field(default_factory=lambda: np.ones(3))

    def __post_init__(self) -> None:
        self.kind = "box"

    def intersect(self, o, d):
        inv = 1.0 / _safe(d)
        t1, t2 = (self.lo - o) * inv, (self.hi - o) * inv
        tn, tf = np.minimum(t1, t2), np.maximum(t1, t2)
        tmin, tmax = tn.max(axis=1), tf.min(axis=1)
        hit = (tmax >= np.maximum(tmin, EPS)) & (tmin > EPS)
        t = np.where(hit, tmin, np.inf)
        axis = tn.argmax(axis=1)
        n = np.zeros_like(o)
        n[np.arange(len(o)), axis] = -np.sign(d[np.arange(len(o)), axis])
        return t, n

    def inside(self, p):
        return np.all((p >= self.lo) & (p <= self.hi), axis=-1)

    def aabb(self):
        return np.stack([self.lo, self.hi])


@dataclass
class Sphere(Primitive):
    """Sphere."""

    center: np.ndarray = field(default_factory=lambda: np.zeros(3))
    radius: float = 0.5

    def __post_init__(self) -> None:
        self.kind = "sphere"

    def intersect(self, o, d):
        oc = o - self.center
        b = (oc * d).sum(1)
        c = (oc * oc).sum(1) - self.radius**2
        disc = b * b - c
        sq = np.sqrt(np.maximum(disc, 0.0))
        t0 = -b - sq
        t = np.where((disc >= 0) & (t0 > EPS), t0, np.inf)
        p = o + d * np.where(np.isfinite(t), t, 0.0)[:, None]
        return t, (p - self.center) / self.radius

    def inside(self, p):
        return ((p - self.center) ** 2).sum(-1) <= self.radius**2

    def aabb(self):
        return np.stack([self.center - self.radius, self.center + self.radius])


@dataclass
class Cylinder(Primitive):
    """Vertical (z-axis) cylinder between z0 and z1."""

    center_xy: np.ndarray = field(default_factory=lambda: np.zeros(2))
    radius: float = 0.5
    z0: float = 0.0
    z1: float = 1.0

    def __post_init__(self) -> None:
        self.kind = "cylinder"

    def intersect(self, o, d):
        oxy, dxy = o[:, :2] - self.center_xy, d[:, :2]
        a = np.maximum((dxy * dxy).sum(1), 1e-12)
        b = (oxy * dxy).sum(1)
        c = (oxy * oxy).sum(1) - self.radius**2
        disc = b * b - a * c
        ts = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
        zs = o[:, 2] + ts * d[:, 2]
        side = (disc >= 0) & (ts > EPS) & (zs >= self.z0) & (zs <= self.z1)
        t_side = np.where(side, ts, np.inf)
        dz = _safe(d[:, 2])
        t_cap = np.full(len(o), np.inf)
        cap_sign = np.zeros(len(o))
        for z, s in ((self.z0, -1.0), (self.z1, 1.0)):
            tc = (z - o[:, 2]) / dz
            pxy = oxy + tc[:, None] * dxy
            ok = (tc > EPS) & ((pxy * pxy).sum(1) <= self.radius**2) & (tc < t_cap)
            t_cap = np.where(ok, tc, t_cap)
            cap_sign = np.where(ok, s, cap_sign)
        use_cap = t_cap < t_side
        t = np.where(use_cap, t_cap, t_side)
        p = o + d * np.where(np.isfinite(t), t, 0.0)[:, None]
        n = np.zeros_like(o)
        n[:, :2] = (p[:, :2] - self.center_xy) / self.radius
        n = np.where(use_cap[:, None], np.stack([0 * cap_sign, 0 * cap_sign, cap_sign], 1), n)
        return t, n

    def inside(self, p):
        r2 = ((p[..., :2] - self.center_xy) ** 2).sum(-1)
        return (r2 <= self.radius**2) & (p[..., 2] >= self.z0) & (p[..., 2] <= self.z1)

    def aabb(self):
        lo = np.array([*(self.center_xy - self.radius), self.z0])
        hi = np.array([*(self.center_xy + self.radius), self.z1])
        return np.stack([lo, hi])
