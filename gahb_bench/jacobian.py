"""The Jacobian of a denoiser and what the paper reads from it (Section 3; SCIENCE.md §1, §8).

For a denoiser f: R^D → R^D at a noisy image y, the Jacobian ∇f(y) (D × D, entry (i, j) =
∂f_i/∂y_j) is, for the optimal denoiser, σ⁻² Cov[x | y]: symmetric and positive semi-definite.
A bias-free network is homogeneous, f(y) = ∇f(y) y, so with the eigen-decomposition of its
(symmetric part) ∇f(y) = Σ_k λ_k e_k e_kᵀ it is a shrinkage in an adaptive basis,

    f(y) = Σ_k λ_k ⟨y, e_k⟩ e_k,

the basis the paper calls geometry-adaptive harmonic (GAHB). Its trace tr ∇f(y) = Σ_k λ_k is the
effective dimensionality of the denoiser at y.

Functions here take a torch module ``f`` mapping a batch (B, C, H, W) to a batch of the same
shape, and a batch of points ``y``. Each image's output must depend on that image only (true of
every network in ``eval()`` mode: batch norm then uses running statistics), so one backward pass
through the batch gives one row of every image's Jacobian at once. The module is put in
``eval()`` mode for the computation and restored afterwards. Arrays returned are float64 NumPy.

* :func:`jacobian` — the full Jacobians (B, D, D) by vectorized vector-Jacobian products
  (``torch.func.vmap`` over ``torch.func.vjp``), ``chunk_size`` rows at a time: memory grows
  linearly with it.
* :func:`symmetric_part`, :func:`asymmetry`, :func:`eigh_descending`, :func:`homogeneity_residual`.
* :func:`hutchinson_trace` — tr ∇f without the Jacobian, with its standard error.
* :func:`top_eigenpairs` — the k largest eigenpairs of the symmetric part, matrix-free
  (:func:`block_lanczos` on batched Jacobian-vector products), with the residual of each.
* :func:`tangent_energy_fraction`, :func:`tangent_trace_fraction`, :func:`principal_angles` —
  how much of ∇f lives in a known tangent space.
* :func:`sure_mse`, :func:`kl_bound` — Stein's unbiased risk estimate and the KL bound (eq. 5).
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Callable, Iterator

import numpy as np
import scipy.linalg
import torch
from torch.func import jvp as _torch_jvp
from torch.func import vjp as _torch_vjp
from torch.func import vmap

Denoiser = Callable[[torch.Tensor], torch.Tensor]


@contextlib.contextmanager
def evaluation_mode(f: Denoiser) -> Iterator[None]:
    """``f.eval()`` for the duration (batch statistics would couple the images of a batch), with
    TF32 off on CUDA: its 10-bit mantissa (~1e-3 relative error in every convolution) would show
    up as a homogeneity residual and an asymmetry of ~1e-3 and blur the eigenvalues."""
    was_training = isinstance(f, torch.nn.Module) and f.training
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    if was_training:
        f.eval()
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
        if was_training:
            f.train()


def _as_tensor(f: Denoiser, y) -> torch.Tensor:
    if isinstance(y, np.ndarray):
        y = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))
    if y.ndim != 4:
        raise ValueError(f"points y must be a batch (B, C, H, W), got shape {tuple(y.shape)}")
    device = next((p.device for p in f.parameters()), y.device) if isinstance(f, torch.nn.Module) else y.device
    return y.to(device=device, dtype=torch.float32)


#: Pixels back-propagated per :func:`jacobian` call that suit 2 CPU cores (:func:`cpu_chunk_size`).
CPU_CHUNK_PIXELS = 2**15


def cpu_chunk_size(dim: int) -> int:
    """A ``chunk_size`` for :func:`jacobian` on a CPU at images of ``dim`` pixels:
    max(1, :data:`CPU_CHUNK_PIXELS` // dim), 32 at 32×32 and 5 at 80×80. A heuristic, not an
    optimum: on 2 cores (2026-12-01, one image of the 2-block UNet) rows cost 31.8–33.3 ms with
    2–8 per call at 80×80 against 45.8 ms with 32 (probably as larger calls leave the caches);
    at 40×40, 7.4 ms with 4 per call, 8.2–9.4 with 2 or 8–32. The metrics keep their own
    ``chunk_size`` setting (their numbers do not depend on it beyond float32 rounding)."""
    return max(1, CPU_CHUNK_PIXELS // dim)


def device_chunk_size(dim: int, device: torch.device) -> int:
    """The full Jacobian's ``chunk_size`` for timing on ``device``: :func:`cpu_chunk_size` on a
    CPU, 32 (:func:`jacobian`'s default) on a GPU, where larger calls pay."""
    return cpu_chunk_size(dim) if device.type == "cpu" else 32


def jacobian(f: Denoiser, y, chunk_size: int = 32, rows=None) -> np.ndarray:
    """The Jacobians ∇f(y_b) of ``f`` at each image of the batch ``y``: (B, D, D), float64;
    with ``rows`` (indices into the D flattened outputs), only those rows: (B, len(rows), D).

    Row i of every image's Jacobian is the vector-Jacobian product eᵢᵀ ∇f(y_b), computed for all
    B images by one backward pass with the one-hot cotangent eᵢ in every image; ``torch.func.vmap``
    computes max(1, ``chunk_size`` // B) such rows at once, so each call back-propagates about
    ``chunk_size`` images' worth: memory is about that many backward passes. (On 2 CPU cores 32
    was fastest at 32×32; at larger images fewer are: :func:`cpu_chunk_size`.) Exact up to
    float32 arithmetic.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    y = _as_tensor(f, y)
    batch, shape = y.shape[0], y.shape[1:]
    dim = int(np.prod(shape))
    wanted = np.arange(dim) if rows is None else np.asarray(rows, dtype=np.int64).ravel()
    if wanted.size and (wanted.min() < 0 or wanted.max() >= dim):
        raise ValueError(f"rows must be indices in [0, {dim}), got {wanted.min()}..{wanted.max()}")
    step = max(1, chunk_size // batch)
    out = np.empty((batch, len(wanted), dim), np.float64)
    with evaluation_mode(f), torch.no_grad():
        _, pullback = _torch_vjp(f, y)
        pull = vmap(lambda cot: pullback(cot)[0])
        for start in range(0, len(wanted), step):
            stop = min(start + step, len(wanted))
            cot = torch.zeros((stop - start, batch, dim), device=y.device, dtype=y.dtype)
            cot[torch.arange(stop - start), :, torch.from_numpy(wanted[start:stop])] = 1.0
            block = pull(cot.reshape(stop - start, batch, *shape))  # (rows, B, C, H, W)
            out[:, start:stop, :] = block.reshape(stop - start, batch, dim).permute(1, 0, 2).double().cpu().numpy()
    return out


def symmetric_part(J: np.ndarray) -> np.ndarray:
    """(J + Jᵀ) / 2 over the last two axes."""
    return 0.5 * (J + np.swapaxes(J, -1, -2))


def asymmetry(J: np.ndarray) -> np.ndarray:
    """‖J − Jᵀ‖_F / ‖J‖_F per Jacobian: 0 for the optimal denoiser (a covariance), 2 at most
    (J antisymmetric)."""
    num = np.linalg.norm(J - np.swapaxes(J, -1, -2), axis=(-2, -1))
    return num / np.maximum(np.linalg.norm(J, axis=(-2, -1)), np.finfo(np.float64).tiny)


def eigh_descending(J: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (…, D), largest first, and eigenvectors (…, D, D) as columns, of the symmetric
    part of J, in float64."""
    vals, vecs = np.linalg.eigh(symmetric_part(np.asarray(J, np.float64)))
    return vals[..., ::-1], vecs[..., ::-1]


def homogeneity_residual(f: Denoiser, y, J: np.ndarray | None = None) -> np.ndarray:
    """‖f(y) − ∇f(y) y‖ / ‖f(y)‖ per image: 0 for a homogeneous (bias-free) denoiser.

    With J given, ∇f(y) y is J·y; otherwise it is one Jacobian-vector product (the directional
    derivative of f at y along y itself), exact without the full Jacobian.
    """
    y = _as_tensor(f, y)
    with evaluation_mode(f), torch.no_grad():
        fy = f(y).double().flatten(1).cpu().numpy()
        if J is None:
            jy = jvp(f, y, y).reshape(len(fy), -1)
        else:
            jy = np.einsum("bij,bj->bi", J, y.double().flatten(1).cpu().numpy())
    return np.linalg.norm(fy - jy, axis=1) / np.maximum(np.linalg.norm(fy, axis=1), np.finfo(np.float64).tiny)


def jvp(f: Denoiser, y, v) -> np.ndarray:
    """∇f(y_b) v_b for every image b (forward mode): (B, C, H, W) float64."""
    y = _as_tensor(f, y)
    v = _as_tensor(f, v) if not isinstance(v, torch.Tensor) else v.to(y)
    with evaluation_mode(f), torch.no_grad():
        return _torch_jvp(f, (y,), (v,))[1].double().cpu().numpy()


def vjp(f: Denoiser, y, u) -> np.ndarray:
    """∇f(y_b)ᵀ u_b for every image b (reverse mode): (B, C, H, W) float64."""
    y = _as_tensor(f, y)
    u = _as_tensor(f, u) if not isinstance(u, torch.Tensor) else u.to(y)
    with evaluation_mode(f), torch.no_grad():
        _, pullback = _torch_vjp(f, y)
        return pullback(u)[0].double().cpu().numpy()


def hutchinson_trace(f: Denoiser, y, n_probes: int = 32, seed: int = 0,
                     chunk_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """tr ∇f(y_b) per image by Hutchinson's estimator, and its standard error.

    tr A = E_v[vᵀ A v] for Rademacher v (entries ±1 with equal probability); each probe costs
    one vector-Jacobian product (vᵀ ∇f v = ⟨∇fᵀ v, v⟩), ``chunk_size`` probes at once. The
    standard error is the probes' sample standard deviation / √n_probes.
    """
    if n_probes < 2:
        raise ValueError(f"n_probes must be at least 2 (for a standard error), got {n_probes}")
    y = _as_tensor(f, y)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    samples = []
    with evaluation_mode(f), torch.no_grad():
        _, pullback = _torch_vjp(f, y)
        pull = vmap(lambda v: pullback(v)[0])
        for start in range(0, n_probes, chunk_size):
            n = min(chunk_size, n_probes - start)
            v = (torch.randint(0, 2, (n, *y.shape), generator=gen) * 2 - 1).to(y)
            samples.append((pull(v) * v).flatten(2).sum(-1).double().cpu().numpy())  # (n, B)
    s = np.concatenate(samples, axis=0)
    return s.mean(axis=0), s.std(axis=0, ddof=1) / np.sqrt(n_probes)


def top_eigenpairs(f: Denoiser, y, k: int, tol: float = 1e-4, block: int | None = None,
                   max_basis: int | None = None, max_products: int | None = None, seed: int = 0,
                   chunk_size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` largest eigenpairs of the symmetric part S = (∇f + ∇fᵀ)/2 at each image,
    matrix-free: :func:`block_lanczos` on S V = (∇f V + ∇fᵀ V)/2, the Jacobian-vector and
    vector-Jacobian products of a whole block V computed together (``vmap`` over ``jvp`` and
    ``vjp``, at most ``chunk_size`` vectors per call); the full Jacobian is never formed.
    Batching is where the speed comes from: on 2 CPU cores a product with the 80×80 UNet costs
    about twice as much alone as within a block of 8 (``benchmarks/bench_jacobian.py``).

    Returns eigenvalues (B, k) largest first, eigenvectors (B, k, C, H, W) of unit norm, and the
    residuals ‖S e − λ e‖ (B, k). ``tol``, ``block``, ``max_basis`` and ``max_products`` are
    :func:`block_lanczos`'s; ``seed`` draws its starting block. Pairs not converged within
    ``max_products`` are NaN, with a warning.
    """
    y = _as_tensor(f, y)
    shape = tuple(y.shape[1:])
    dim = int(np.prod(shape))
    if not 1 <= k < dim:
        raise ValueError(f"k must be between 1 and D - 1 = {dim - 1}, got {k}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    rng = np.random.default_rng(seed)
    vals = np.empty((len(y), k))
    vecs = np.empty((len(y), k, *shape))
    resid = np.empty((len(y), k))
    with evaluation_mode(f), torch.no_grad():
        for b in range(len(y)):
            point = y[b:b + 1]
            _, pullback = _torch_vjp(f, point)
            back = vmap(lambda t: pullback(t)[0])
            forward = vmap(lambda t, p=point: _torch_jvp(f, (p,), (t,))[1])

            def sym(rows: np.ndarray, point=point, back=back, forward=forward) -> np.ndarray:
                out = np.empty_like(rows)
                for start in range(0, len(rows), chunk_size):
                    part = rows[start:start + chunk_size]
                    t = torch.from_numpy(part.astype(np.float32)).to(point).reshape(len(part), *point.shape)
                    image = 0.5 * (forward(t) + back(t))
                    out[start:start + len(part)] = image.reshape(len(part), dim).double().cpu().numpy()
                return out

            vals[b], found, resid[b] = block_lanczos(sym, dim, k, tol=tol, block=block, max_basis=max_basis,
                                                     max_products=max_products, rng=rng)
            vecs[b] = found.reshape(k, *shape)
    return vals, vecs, resid


def block_lanczos(apply: Callable[[np.ndarray], np.ndarray], dim: int, k: int, tol: float = 1e-4,
                  block: int | None = None, max_basis: int | None = None, max_products: int | None = None,
                  rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` largest eigenpairs of a symmetric operator S on R^dim known only through
    ``apply(V)``, S applied to each row of V (n, dim): thick-restart block Lanczos.

    A basis Q of the block Krylov space span{V₀, S V₀, S² V₀, …} (V₀: ``block`` random vectors)
    grows ``block`` vectors at a time, orthonormal in float64 (full reorthogonalization, twice).
    After each block, Rayleigh–Ritz: the eigenpairs (θᵢ, sᵢ) of H = Qᵀ S Q give the Ritz pairs
    (θᵢ, xᵢ = Q sᵢ), and as S Q is stored beside Q their residuals rᵢ = S xᵢ − θᵢ xᵢ cost no
    product. The next block is an orthonormal basis of the residuals of the wanted pairs not yet
    converged: in exact arithmetic that spans the next Krylov block, minus the directions already
    resolved. When Q would exceed ``max_basis`` vectors (default min(dim, max(8k, k + 2·block)))
    the method restarts from the k + ``block`` leading Ritz vectors (thick restart; their images
    under S are combinations of stored ones, again no product). ``block`` defaults to min(k, 8):
    larger blocks batch better, smaller ones need fewer products (on 2 CPU cores, for the top 32
    at 80×80, blocks of 4 took 11–15% fewer products than blocks of 8 but no less time: each
    vector cost more within smaller calls).

    A residual test cannot see an eigenvalue the space never reached: an eigenvalue repeated more
    often than ``block`` times may be found fewer times than its multiplicity (the next one then
    takes its place, with a small residual); choose ``block`` at least the largest multiplicity
    expected among the top k (a trained network's Jacobian has none; a symmetric filter may).
    One such case is caught: where the space stops growing with the wanted pairs converged
    (S Q ⊂ span Q, as for a projection of rank above ``block``). An invariant space that holds
    its b random starting vectors holds their whole Krylov closure, hence every eigenvalue of S
    min(multiplicity, b) times (almost surely): the complement can only hold further copies of
    an eigenvalue found b times. If such an eigenvalue is above the k-th (more copies would
    change the top k's values), the space's eigenpairs (exact) are locked and the search goes on
    in the complement from fresh random directions; otherwise the top k are complete. (After a
    thick restart the start is gone and an invariant space is always locked.) When no
    unconverged residual leaves span Q but pairs are still wanted, fresh random directions
    orthogonal to it are added.

    Stops when every wanted pair (the current space's among the top k, and once pairs are
    locked the next one too) has ‖rᵢ‖ ≤ ``tol`` · |θ₁|, θ₁ the largest eigenvalue found (a
    backward error relative to ‖S‖ when no eigenvalue is larger in size than the largest:
    θᵢ is then within ‖rᵢ‖, and typically within ‖rᵢ‖²/gap, of an eigenvalue of S) and the
    space is not an invariant one to be locked, or after ``max_products`` applications of S to
    a vector (default 20·dim). Returns eigenvalues (k,) largest first, eigenvectors (k, dim) as
    rows and residual norms (k,); pairs not converged by then are NaN (a warning says how many).

    References: Golub & Underwood, "The block Lanczos method for computing eigenvalues" (1977);
    Wu & Simon, "Thick-restart Lanczos method for large symmetric eigenvalue problems" (2000).
    """
    block = min(k, 8) if block is None else block
    if not 1 <= k < dim:
        raise ValueError(f"k must be between 1 and dim - 1 = {dim - 1}, got {k}")
    if block < 1:
        raise ValueError(f"block must be at least 1, got {block}")
    keep = min(k + block, dim)
    max_basis = min(dim, max(8 * k, keep + block)) if max_basis is None else min(max_basis, dim)
    if max_basis < min(keep + block, dim):
        raise ValueError(f"max_basis must be at least k + 2·block = {keep + block}, got {max_basis}")
    max_products = 20 * dim if max_products is None else max_products
    rng = np.random.default_rng(0) if rng is None else rng

    def random_block(against: np.ndarray) -> np.ndarray:
        """``block`` fresh random directions, orthonormal and orthogonal to the rows of ``against``."""
        return _orthonormal_rows(rng.standard_normal((block, dim)), against)

    # Eigenpairs of invariant subspaces already resolved (see above), and the current space.
    locked_vals, locked_vecs, locked_res = np.empty(0), np.empty((0, dim)), np.empty(0)
    Q, SQ = np.empty((0, dim)), np.empty((0, dim))
    new = random_block(Q)
    products, start = 0, len(new)  # start: random starting vectors still in span Q (0 after a restart)
    while True:
        image = np.asarray(apply(new), np.float64)
        if image.shape != new.shape:
            raise ValueError(f"apply returned shape {image.shape} for {new.shape} vectors")
        products += len(new)
        Q, SQ = np.vstack([Q, new]), np.vstack([SQ, image])
        H = Q @ SQ.T
        theta_all, s_all = np.linalg.eigh(0.5 * (H + H.T))
        theta_all, s_all = theta_all[::-1], s_all[:, ::-1]
        theta, s = theta_all[:keep], s_all[:, :keep]
        X, SX = s.T @ Q, s.T @ SQ
        R = SX - theta[:, None] * X
        res = np.linalg.norm(R, axis=1)
        top = max(theta[0], locked_vals.max(initial=-np.inf))
        scale = tol * max(abs(top), np.finfo(np.float64).tiny)
        converged = res <= scale
        # The wanted pairs: those of the current space among the top k of S (theta is sorted:
        # its leading ones) and, once pairs are locked, the next one too (a heuristic, like the
        # stop itself: a Ritz value only bounds an eigenvalue from below).
        merged = np.r_[locked_vals, theta]
        order = np.argsort(-merged, kind="stable")[:k]  # the top k among locked and current pairs
        need = int(np.sum(order >= len(locked_vals))) + (1 if len(locked_vals) else 0)
        wanted = min(need, len(theta))
        if products >= max_products:
            break
        if len(locked_vals) + len(theta) >= k and wanted == need and converged[:wanted].all():
            outside = np.linalg.norm(SQ - H.T @ Q, 2)  # the part of S Q outside span Q
            if outside > scale or len(locked_vals) + len(Q) >= dim:
                break
            kth = merged[order[-1]]
            if start and not _repeated(theta_all[theta_all > kth + scale], start, scale):
                break
            # span Q is invariant and the complement may hold copies of a top eigenvalue: lock
            # all its eigenpairs (exact) and go on in the complement.
            X_all = s_all.T @ Q
            locked_vals = np.r_[locked_vals, theta_all]
            locked_res = np.r_[locked_res, np.linalg.norm(s_all.T @ SQ - theta_all[:, None] * X_all, axis=1)]
            locked_vecs = np.vstack([locked_vecs, X_all])
            Q, SQ = np.empty((0, dim)), np.empty((0, dim))
            new = random_block(locked_vecs)
            start = len(new)
            continue
        if len(Q) + block > max_basis:
            Q, SQ, start = X, SX, 0
        against = np.vstack([locked_vecs, Q]) if len(locked_vals) else Q
        new = _orthonormal_rows(R[:wanted][~converged[:wanted]], against, at_most=block)
        if len(new) == 0:
            if len(against) >= dim:
                break
            # No unconverged residual leaves span Q: Ritz pairs there are exact, but S may have
            # larger eigenvalues outside it. Go on from fresh random directions orthogonal to it.
            new = random_block(against)
    # Every exit follows the loop's last ordering: ``merged`` and ``order`` are those of theta, X.
    vectors = np.vstack([locked_vecs, X])
    residuals, ok = np.r_[locked_res, res], np.r_[locked_res <= scale, converged]
    out_vals, out_vecs, out_res = np.full(k, np.nan), np.full((k, dim), np.nan), np.full(k, np.nan)
    good = np.flatnonzero(ok[order])
    out_vals[good], out_vecs[good], out_res[good] = merged[order][good], vectors[order][good], residuals[order][good]
    if len(good) < k:
        warnings.warn(f"block_lanczos: {k - len(good)} of {k} eigenpairs not converged to tol {tol:g} "
                      f"within {products} products; they are NaN", RuntimeWarning, stacklevel=2)
    return out_vals, out_vecs, out_res


def _repeated(values: np.ndarray, times: int, tol: float) -> bool:
    """Whether some value occurs at least ``times`` times in ``values``, within ``tol``."""
    return bool(np.any(np.sum(np.abs(values[:, None] - values[None, :]) <= tol, axis=1) >= times))


def _orthonormal_rows(V: np.ndarray, Q: np.ndarray, at_most: int | None = None) -> np.ndarray:
    """An orthonormal basis (as rows) of the part of span(rows of V) orthogonal to the
    orthonormal rows of Q: at most ``at_most`` vectors, the leading ones by singular value, and
    none in a direction where the (normalized) rows of V have nothing outside span Q."""
    V = V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), np.finfo(np.float64).tiny)
    for _ in range(2):
        V = V - (V @ Q.T) @ Q
    if len(V) == 0:
        return V
    _, sv, vt = np.linalg.svd(V, full_matrices=False)
    rank = int(np.sum(sv > 1e-8))
    return vt[:rank if at_most is None else min(rank, at_most)]


def _orthonormal(basis: np.ndarray) -> np.ndarray:
    """Columns of an orthonormal basis (D, k) from k vectors given as rows (k, …)."""
    q, _ = np.linalg.qr(np.asarray(basis, np.float64).reshape(len(basis), -1).T)
    return q


def tangent_trace_fraction(J: np.ndarray, tangent: np.ndarray) -> float:
    """tr(Uᵀ J U) / tr J: the part of the effective dimensionality inside the tangent space
    spanned by the k vectors ``tangent`` (k, …); U an orthonormal basis of it."""
    U = _orthonormal(tangent)
    return float(np.trace(U.T @ J @ U) / np.trace(J))


def tangent_energy_fraction(J: np.ndarray, tangent: np.ndarray) -> float:
    """‖J U‖²_F / ‖J‖²_F: the fraction of the Jacobian's energy acting on the tangent space
    (1 when J maps everything off the tangent space to 0, as the optimum does at small σ)."""
    U = _orthonormal(tangent)
    return float(np.linalg.norm(J @ U) ** 2 / np.linalg.norm(J) ** 2)


def principal_angles(vectors: np.ndarray, tangent: np.ndarray) -> np.ndarray:
    """Principal angles (radians, largest first) between span(``vectors``) and the tangent space,
    each given as k vectors (k, …) (``scipy.linalg.subspace_angles``)."""
    return scipy.linalg.subspace_angles(_orthonormal(vectors), _orthonormal(tangent))


def row_energy_radius(J_rows: np.ndarray, rows, shape: tuple[int, int, int],
                      fractions=(0.5, 0.9)) -> np.ndarray:
    """How local the denoiser is: for each Jacobian row (output pixel p, all input pixels j),
    the smallest radius r such that the input pixels within Euclidean distance r of p hold a
    fraction q of the row's energy,

        R_q(p) = min { r : Σ_{|j − p| ≤ r} (∂f_p/∂y_j)² ≥ q Σ_j (∂f_p/∂y_j)² },

    distances in pixels between spatial positions (channels ignored). ``J_rows`` (…, R, D) with
    D = C·H·W, ``rows`` the R output indices (into the flattened (C, H, W)), ``shape`` (C, H, W).
    Returns (…, R, len(fractions)). A P×P box filter gives R_0.5 = 2, R_0.9 = √8 for P = 5.
    """
    channels, height, width = shape
    rows = np.asarray(rows, dtype=np.int64)
    energy = np.asarray(J_rows, np.float64) ** 2
    energy = energy.reshape(*energy.shape[:-1], channels, height * width).sum(axis=-2)  # (…, R, H·W)
    pr, pc = np.divmod(rows % (height * width), width)
    gr, gc = np.divmod(np.arange(height * width), width)
    dist = np.hypot(gr[None] - pr[:, None], gc[None] - pc[:, None])  # (R, H·W)
    order = np.argsort(dist, axis=1, kind="stable")
    sorted_dist = np.take_along_axis(dist, order, axis=1)
    cumulative = np.cumsum(np.take_along_axis(energy, np.broadcast_to(order, energy.shape), axis=-1), axis=-1)
    total = cumulative[..., -1:]
    out = np.full(energy.shape[:-1] + (len(fractions),), np.nan)
    live = total[..., 0] > 0  # a row without energy has no radius: NaN
    for k, q in enumerate(fractions):
        # cumulative/total is non-decreasing: the first index reaching q, in (1 − 1e-12)·q so a
        # fraction met exactly is not missed by round-off.
        with np.errstate(invalid="ignore", divide="ignore"):
            first = np.argmax(cumulative / total >= q * (1 - 1e-12), axis=-1)
        radius = np.take_along_axis(np.broadcast_to(sorted_dist, energy.shape), first[..., None], axis=-1)[..., 0]
        out[..., k] = np.where(live, radius, np.nan)
    return out


def sure_mse(noisy: np.ndarray, denoised: np.ndarray, trace: np.ndarray, sigma: float) -> np.ndarray:
    """Stein's unbiased risk estimate of the per-pixel MSE of each image, without the clean one:

        SURE = (‖y − f(y)‖² + 2σ² tr ∇f(y) − σ² D) / D,   E[SURE] = E‖f(y) − x‖² / D,

    for y = x + N(0, σ² Id) (SCIENCE.md §1, eq. 7); ``trace`` (B,) may be exact or Hutchinson's.
    """
    noisy = np.asarray(noisy, np.float64).reshape(len(noisy), -1)
    denoised = np.asarray(denoised, np.float64).reshape(len(noisy), -1)
    dim = noisy.shape[1]
    return (np.sum((noisy - denoised) ** 2, axis=1) + 2 * sigma**2 * np.asarray(trace) - sigma**2 * dim) / dim


def kl_bound(sigmas: np.ndarray, gap: np.ndarray) -> tuple[float, np.ndarray]:
    """The bound of eq. 5, ∫ Δ(σ) σ⁻³ dσ, from the optimality gap Δ(σ) = E‖f_θ(y) − f*(y)‖² / D
    (= MSE_θ − MSE*, per pixel) on a grid of σ, by the trapezoid rule in log σ
    (dσ = σ d log σ, so the integrand is Δ/σ²). Returns the total over the grid's range and the
    contribution of each interval between consecutive σ (n_sigma − 1,); per pixel, in nats.
    The integral may diverge as σ → 0: always report the range [σ_min, σ_max] with it.
    """
    sigmas = np.asarray(sigmas, np.float64)
    gap = np.asarray(gap, np.float64)
    if sigmas.shape != gap.shape or sigmas.ndim != 1 or len(sigmas) < 2:
        raise ValueError("sigmas and gap must be 1-D arrays of the same length, at least 2")
    order = np.argsort(sigmas)
    s, g = sigmas[order], gap[order]
    h = g / s**2
    bands = 0.5 * (h[1:] + h[:-1]) * np.diff(np.log(s))
    return float(bands.sum()), bands
