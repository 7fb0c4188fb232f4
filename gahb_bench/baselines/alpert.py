"""Orthonormal 1-D Alpert (multi)wavelet transform with p vanishing moments on irregular points.

Given n samples x_i taken at sorted positions t_1 ≤ … ≤ t_n, the Alpert transform is an
orthonormal basis of R^n built like a Haar basis, but whose scaling space on each dyadic node
(a run of consecutive samples) is the space of polynomials of degree < p restricted to the node's
points, instead of the constants. Merging two sibling nodes A, B gives a parent P whose polynomial
space V_P lies in V_A ⊕ V_B; the orthogonal complement W_P = (V_A ⊕ V_B) ⊖ V_P is spanned by the
Alpert wavelets of P, which are therefore orthogonal to every polynomial of degree < p on P's
points (p vanishing moments, on the irregular positions). p = 1 gives the Haar basis.

Algorithm (fine to coarse, O(n p²)): every sample is a node with the 1-D scaling space of constants;
at each level, consecutive nodes are paired. For a pair with orthonormal scaling bases Φ_A, Φ_B
(dimensions m_A, m_B) we know the moment matrices C_A = Φ_Aᵀ U_A, where U_A holds the monomials
u^q, q < p, in a node-local coordinate u = (t − c_A)/h_A (c = centre, h = half-width of the node's
positions; the local affine coordinate keeps the monomials well conditioned and does not change the
polynomial space). In the parent's coordinate u_P = a·u_A + b the moments are C_A T(a, b) with
T[k, q] = binom(q, k) a^k b^(q−k). The coordinates of the parent's monomials in the orthonormal
basis [Φ_A, Φ_B] are G = [C_A T_A; C_B T_B]; a complete QR factorization G = Q R gives an orthogonal
Q whose first m_P = min(p, m_A + m_B) columns span V_P (parent scaling functions) and whose other
columns span W_P (wavelets). Coefficients transform by [s_P; d_P] = Qᵀ [s_A; s_B], and the parent's
moments are C_P = Q[:, :m_P]ᵀ G. Every step is an orthogonal matrix, so the whole transform is
exactly orthonormal, for any n: when a level has an odd number of nodes the last one is passed up
unchanged (its scaling coefficients wait for the next level).

With ties among the positions (fewer than p distinct points in a node) the polynomial space has a
smaller dimension; the QR then completes it with directions orthogonal to it, which stay among the
node's scaling functions. The transform remains orthonormal and the wavelets keep their vanishing
moments; only sparsity in that degenerate node is affected.

Output order of the n coefficients: the root's m_root = min(p, n) scaling coefficients, then the
wavelet coefficients level by level from coarse to fine, each level in node order.

References: B. Alpert, "A class of bases in L² for the sparse representation of integral operators",
SIAM J. Math. Anal. 24 (1993); B. Alpert, G. Beylkin, D. Gines, L. Vozovoi, "Adaptive solution of
partial differential equations in multiwavelet bases", J. Comput. Phys. 182 (2002);
S. Mallat, G. Peyré, "Orthogonal bandelet bases for geometric images approximation", Comm. Pure
Appl. Math. 61 (2008), §4 (Alpert transform on the warped sampling grid of a bandlet square).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import comb

__all__ = ["AlpertTransform", "alpert_forward", "alpert_inverse", "alpert_matrix"]


@dataclass(frozen=True)
class _Group:
    """Merges of one level that share the dimensions (m_A, m_B)."""

    m_a: int
    m_b: int
    m_p: int
    node_a: np.ndarray    # (K,) child node indices at this level
    node_b: np.ndarray    # (K,)
    src: np.ndarray       # (K, m_a + m_b) slots of [s_A; s_B] in the level's scaling vector
    dst_scal: np.ndarray  # (K, m_p) slots of s_P in the next level's scaling vector
    dst_wav: np.ndarray   # (K, m_a + m_b - m_p) positions of d_P in the output vector


@dataclass(frozen=True)
class _Level:
    n_slots: int          # size of this level's scaling vector
    n_slots_next: int
    groups: tuple[_Group, ...]
    carry_src: np.ndarray  # slots of the unpaired last node (empty if none)
    carry_dst: np.ndarray
    carry_node: int        # index of the unpaired node at this level (-1 if none)
    carry_node_next: int   # its index at the next level
    node_start: np.ndarray  # (nodes,) first sample of each node at this level
    node_stop: np.ndarray   # (nodes,) one past its last sample


@lru_cache(maxsize=256)
def _structure(n: int, p: int) -> tuple[tuple[_Level, ...], np.ndarray]:
    """Node tree of the transform for n samples and p moments (independent of the positions).

    Returns the levels (fine to coarse) and the output positions of the root scaling coefficients.
    """
    start = np.arange(n)
    stop = start + 1
    dims = np.ones(n, dtype=np.int64)
    levels_raw = []
    while len(start) > 1:
        c = len(start)
        npair = c // 2
        a = np.arange(0, 2 * npair, 2)
        b = a + 1
        offs = np.concatenate([[0], np.cumsum(dims)])
        new_dims = np.minimum(p, dims[a] + dims[b])
        carry = c % 2 == 1
        if carry:
            new_dims = np.concatenate([new_dims, dims[-1:]])
        new_offs = np.concatenate([[0], np.cumsum(new_dims)])
        wav = dims[a] + dims[b] - new_dims[:npair]
        levels_raw.append(dict(a=a, b=b, dims=dims, offs=offs, new_dims=new_dims, new_offs=new_offs,
                               wav=wav, carry=carry, start=start, stop=stop))
        new_start = start[a]
        new_stop = stop[b]
        if carry:
            new_start = np.concatenate([new_start, start[-1:]])
            new_stop = np.concatenate([new_stop, stop[-1:]])
        start, stop, dims = new_start, new_stop, new_dims
    m_root = int(dims[0])
    # Wavelet output positions: after the root scaling coefficients, coarse levels first.
    n_wav = [int(lv["wav"].sum()) for lv in levels_raw]
    base = m_root
    wav_base = [0] * len(levels_raw)
    for i in reversed(range(len(levels_raw))):
        wav_base[i] = base
        base += n_wav[i]
    if base != n:
        raise AssertionError("Alpert structure does not account for every sample")

    levels = []
    for i, lv in enumerate(levels_raw):
        a, b, dims, offs = lv["a"], lv["b"], lv["dims"], lv["offs"]
        new_dims, new_offs, wav = lv["new_dims"], lv["new_offs"], lv["wav"]
        wav_offs = wav_base[i] + np.concatenate([[0], np.cumsum(wav)])
        sig = np.stack([dims[a], dims[b]], axis=1)
        groups = []
        for ma, mb in sorted({(int(x), int(y)) for x, y in sig}):
            k = np.flatnonzero((sig[:, 0] == ma) & (sig[:, 1] == mb))
            mp = min(p, ma + mb)
            src = np.concatenate([offs[a[k]][:, None] + np.arange(ma), offs[b[k]][:, None] + np.arange(mb)], axis=1)
            dst_scal = new_offs[k][:, None] + np.arange(mp)
            dst_wav = wav_offs[k][:, None] + np.arange(ma + mb - mp)
            groups.append(_Group(ma, mb, mp, a[k], b[k], src, dst_scal, dst_wav))
        if lv["carry"]:
            last = len(dims) - 1
            carry_src = offs[last] + np.arange(dims[last])
            carry_dst = new_offs[len(a)] + np.arange(dims[last])
            carry_node, carry_next = last, len(a)
        else:
            carry_src = carry_dst = np.zeros(0, dtype=np.int64)
            carry_node = carry_next = -1
        levels.append(_Level(int(offs[-1]), int(new_offs[-1]), tuple(groups), carry_src, carry_dst,
                             carry_node, carry_next, lv["start"], lv["stop"]))
    return tuple(levels), np.arange(m_root)


def _shift_matrix(a: np.ndarray, b: np.ndarray, p: int) -> np.ndarray:
    """T[..., k, q] = binom(q, k) a^k b^(q−k): monomials of u_P = a·u + b in the basis u^k."""
    k = np.arange(p)[:, None]
    q = np.arange(p)[None, :]
    binom = comb(q, k)  # zero for k > q
    e = np.maximum(q - k, 0)
    return binom * a[..., None, None] ** k * b[..., None, None] ** e * (k <= q)


def _centre_halfwidth(tmin: np.ndarray, tmax: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = 0.5 * (tmin + tmax)
    h = 0.5 * (tmax - tmin)
    # A node whose points coincide: any scale is valid (all u = 0); take 1.
    return c, np.where(h > 0, h, 1.0)


class AlpertTransform:
    """Orthonormal Alpert transform for one or several sets of sorted positions.

    Parameters
    ----------
    positions : (n,) or (D, n) array
        Sample positions, non-decreasing along the last axis. With a (D, n) array the transform
        holds D bases at once (e.g. the D candidate directions of a bandlet square).
    p : int
        Number of vanishing moments (polynomial degree < p is annihilated by every wavelet);
        p = 1 is the Haar basis.

    The Q factors of every merge are computed once here (they depend on the positions only) and
    reused by :meth:`forward` and :meth:`inverse`.
    """

    def __init__(self, positions, p: int = 3):
        t = np.asarray(positions, dtype=np.float64)
        if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1:
            raise ValueError(f"p (vanishing moments) must be a positive integer, got {p!r}")
        if t.ndim not in (1, 2) or t.shape[-1] < 1:
            raise ValueError(f"positions must have shape (n,) or (D, n) with n >= 1, got {t.shape}")
        if not np.all(np.isfinite(t)):
            raise ValueError("positions must be finite")
        if np.any(np.diff(t, axis=-1) < 0):
            raise ValueError("positions must be sorted (non-decreasing) along the last axis")
        self.p = int(p)
        self.single = t.ndim == 1
        self.positions = t[None] if self.single else t
        self.n_bases, self.n = self.positions.shape
        self._levels, self._root = _structure(self.n, self.p)
        self._qfactors = self._factorize()

    def _factorize(self) -> list[list[np.ndarray]]:
        p, t = self.p, self.positions
        d = self.n_bases
        # Level 0: every sample is a node with the constant scaling function; u = 0 there.
        moments = np.zeros((d, self.n, p))
        moments[:, :, 0] = 1.0
        qs = []
        for lv in self._levels:
            tmin = t[:, lv.node_start]
            tmax = t[:, lv.node_stop - 1]
            c, h = _centre_halfwidth(tmin, tmax)
            new_moments = np.zeros((d, lv.n_slots_next, p))
            level_q = []
            for g in lv.groups:
                cp, hp = _centre_halfwidth(tmin[:, g.node_a], tmax[:, g.node_b])
                ta = _shift_matrix(h[:, g.node_a] / hp, (c[:, g.node_a] - cp) / hp, p)
                tb = _shift_matrix(h[:, g.node_b] / hp, (c[:, g.node_b] - cp) / hp, p)
                ga = moments[:, g.src[:, : g.m_a], :] @ ta
                gb = moments[:, g.src[:, g.m_a:], :] @ tb
                gmat = np.concatenate([ga, gb], axis=-2)  # (D, K, m_a + m_b, p)
                q, r = np.linalg.qr(gmat, mode="complete")
                q = self._fix_signs(q, r, g.m_p)
                level_q.append(q)
                new_moments[:, g.dst_scal, :] = np.swapaxes(q[..., : g.m_p], -1, -2) @ gmat
            if lv.carry_node >= 0:
                new_moments[:, lv.carry_dst, :] = moments[:, lv.carry_src, :]
            moments = new_moments
            qs.append(level_q)
        return qs

    @staticmethod
    def _fix_signs(q: np.ndarray, r: np.ndarray, m_p: int) -> np.ndarray:
        """Deterministic signs: R's diagonal ≥ 0 for the scaling columns (so p = 1 gives the
        Haar average (x_A + x_B)/√2), and each wavelet column's first significant entry > 0."""
        k = min(r.shape[-1], r.shape[-2], m_p)
        sign = np.ones(q.shape[:-2] + (q.shape[-1],))
        diag = np.diagonal(r, axis1=-2, axis2=-1)[..., :k]
        sign[..., :k] = np.where(diag < 0, -1.0, 1.0)
        if q.shape[-1] > m_p:
            w = q[..., :, m_p:]
            first = np.argmax(np.abs(w) > 1e-8, axis=-2)
            val = np.take_along_axis(w, first[..., None, :], axis=-2)[..., 0, :]
            sign[..., m_p:] = np.where(val < 0, -1.0, 1.0)
        return q * sign[..., None, :]

    def _select(self, x: np.ndarray, index) -> tuple[np.ndarray, np.ndarray | None]:
        x = np.asarray(x)
        if x.dtype.kind not in "fiu":
            raise TypeError(f"input must be a real numeric array, got dtype {x.dtype}")
        if x.shape[-1:] != (self.n,):
            raise ValueError(f"last axis must have length n = {self.n}, got shape {x.shape}")
        if index is None:
            if self.single:
                return x.astype(np.float64)[..., None, :], None
            if x.ndim < 2 or x.shape[-2] != self.n_bases:
                raise ValueError(f"input must have shape (..., {self.n_bases}, {self.n}) "
                                 f"(one row per position set), got {x.shape}")
            return x.astype(np.float64), None
        idx = np.asarray(index)
        if idx.dtype.kind not in "iu" or idx.shape != x.shape[:-1]:
            raise ValueError(f"index must be an integer array of shape {x.shape[:-1]}, got {idx.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_bases):
            raise ValueError(f"index out of range [0, {self.n_bases})")
        return x.astype(np.float64), idx

    def _merge_q(self, li: int, gi: int, idx):
        q = self._qfactors[li][gi]
        return q if idx is None else q[idx]

    def forward(self, x, index=None) -> np.ndarray:
        """Alpert coefficients of x (samples in the order of the sorted positions).

        x : (..., n) if positions were (n,); (..., D, n) to transform row d in basis d; or any
        (..., n) with ``index`` of shape x.shape[:-1] choosing the basis of each row.
        """
        s, idx = self._select(x, index)
        out = np.empty_like(s)
        for li, lv in enumerate(self._levels):
            new_s = np.empty(s.shape[:-1] + (lv.n_slots_next,))
            for gi, g in enumerate(lv.groups):
                q = self._merge_q(li, gi, idx)  # (..., K, r, r)
                v = s[..., g.src]          # (..., K, r)
                res = np.einsum("...ji,...j->...i", q, v)
                new_s[..., g.dst_scal] = res[..., : g.m_p]
                out[..., g.dst_wav] = res[..., g.m_p:]
            if lv.carry_node >= 0:
                new_s[..., lv.carry_dst] = s[..., lv.carry_src]
            s = new_s
        out[..., self._root] = s
        return out[..., 0, :] if (self.single and index is None) else out

    def inverse(self, coefficients, index=None) -> np.ndarray:
        """Inverse of :meth:`forward` (same shape conventions)."""
        c, idx = self._select(coefficients, index)
        s = c[..., self._root]
        for li in reversed(range(len(self._levels))):
            lv = self._levels[li]
            prev = np.empty(c.shape[:-1] + (lv.n_slots,))
            for gi, g in enumerate(lv.groups):
                q = self._merge_q(li, gi, idx)
                v = np.concatenate([s[..., g.dst_scal], c[..., g.dst_wav]], axis=-1)
                prev[..., g.src] = np.einsum("...ij,...j->...i", q, v)
            if lv.carry_node >= 0:
                prev[..., lv.carry_src] = s[..., lv.carry_dst]
            s = prev
        return s[..., 0, :] if (self.single and index is None) else s


def alpert_forward(x, positions, p: int = 3) -> np.ndarray:
    """Alpert coefficients of samples x (..., n) at sorted positions (n,); see :class:`AlpertTransform`."""
    return AlpertTransform(positions, p).forward(x)


def alpert_inverse(coefficients, positions, p: int = 3) -> np.ndarray:
    """Samples (..., n) from Alpert coefficients; inverse of :func:`alpert_forward`."""
    return AlpertTransform(positions, p).inverse(coefficients)


def alpert_matrix(positions, p: int = 3) -> np.ndarray:
    """The (n, n) orthogonal matrix A of the transform (coefficients = A @ x); row k is the k-th
    Alpert basis vector sampled at the positions."""
    t = np.asarray(positions, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError(f"positions must have shape (n,), got {t.shape}")
    return AlpertTransform(t, p).forward(np.eye(t.shape[0])).T
