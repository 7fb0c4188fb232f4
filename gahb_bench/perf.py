"""``gahb perf``: how close the benchmark's hot loops run to the machine, measured side by side.

Each measurement times a piece of gahb-bench and, in the same run, the reference it is judged
against, and reports the ratio; timings are the best of several calls (the machines are shared
and noisy; the best call is the least disturbed one). Rates are in FLOP/s, counting a
multiply-add as two FLOPs:

- ``matmul``: a bare n×n float32 matrix product (2n³ FLOPs): the machine's rate, the denominator
  of the other rates.
- ``training step``: one step of the blind recipe (forward, loss, backward, Adam) of the built-in
  UNet at batch B, its FLOPs counted by ``torch.utils.flop_counter``; with ``--flags`` also under
  each flag of :mod:`gahb_bench.acceleration`.
- ``training, W processes × 1 thread`` (on a CPU): W processes training at once, one thread
  each, against one process with W threads (W: torch's thread count), in training steps per
  second measured the same way (best of 3 rounds, the layouts taking turns): the bound of
  running cells in W single-thread processes; Dask's workers add their own busy event loop, which
  on a small CPU costs more than this gains (README, Scaling out on Dask).
- ``evaluation``: forward passes without gradients at batch 256, images/s and FLOP/s.
- ``sampler step / forward``: one step of :func:`gahb_bench.sampling.sample` against one bare
  forward pass of the same batch (aim ≤ 1.2: the sampler adds nothing but the network); and 64
  samples drawn one by one against the same 64 as one batch.
- ``full Jacobian``: :func:`gahb_bench.jacobian.jacobian` (D vector-Jacobian products, about D
  forward passes of FLOPs) against the matmul rate (aim ≥ 0.5) and against the public code's
  row-by-row autograd loop (timed on some rows, scaled to D).
- ``top-k matrix-free``: :func:`gahb_bench.jacobian.top_eigenpairs` against the full Jacobian
  followed by ``eigh`` on the same image (the speed-up; ≥ 10× aimed at 80×80).
- ``nearest neighbours`` and ``empirical optimum``: the chunked searches of
  :mod:`gahb_bench.similarity` and :mod:`gahb_bench.references.empirical` against a bare float64
  matmul of the same shapes (aim ≥ 0.5; bounded by memory traffic on small machines, see the
  README's reference numbers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from gahb_bench.errors import GahbError


@dataclass
class Measurement:
    """One line of the report: what was timed, its value, and its ratio to its reference."""

    name: str
    value: float
    unit: str
    ratio: float = float("nan")
    against: str = ""
    aim: str = ""
    note: str = ""


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn: Callable[[], object], device: torch.device, repeat: int = 3, budget: float = 1.0) -> float:
    """The best wall time of at least ``repeat`` calls of ``fn`` (more, up to 100, while they
    take under ``budget`` seconds in all), the device synchronized around each call."""
    best, spent, calls = float("inf"), 0.0, 0
    while calls < repeat or (spent < budget and calls < 100):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        elapsed = time.perf_counter() - t0
        best, spent, calls = min(best, elapsed), spent + elapsed, calls + 1
    return best


def matmul_rate(device: torch.device, n: int = 2048, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of a bare n×n matrix product (2n³ FLOPs) in ``dtype``, under the float mode in
    force (strict float32 unless the caller allows TF32)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    best_time(lambda: a @ a, device, budget=1.0)  # warm-up: the first calls of a cold core are slow
    return 2 * n**3 / best_time(lambda: a @ a, device, budget=2.0)


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn``, counted by ``torch.utils.flop_counter``."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def training_step(model: torch.nn.Module, batch: int, size: int, device: torch.device,
                  flags=None) -> tuple[float, float]:
    """(seconds, FLOPs) of one step of the blind recipe, as :func:`gahb_bench.training.train_denoiser`
    runs it (noise drawn on the device, Adam), with the speed-ups ``flags``
    (an :class:`gahb_bench.acceleration.Acceleration`; none by default)."""
    from gahb_bench.acceleration import Acceleration

    flags = flags or Acceleration()
    with flags.float_mode(training=True):
        return _training_step(model, batch, size, device, flags)


def _training_step(model, batch, size, device, flags) -> tuple[float, float]:
    step, x = _step_function(model, batch, size, device, flags)
    for _ in range(3 if flags.compile else 1):  # warm-up (compilation)
        step()
    flops = count_flops(step) if not flags.compile else count_flops(lambda: _plain_step(model, x))
    return best_time(step, device), flops


def _step_function(model, batch, size, device, flags) -> tuple[Callable[[], None], torch.Tensor]:
    """One step of the blind recipe on a fixed batch of random images (noise drawn on the
    device, Adam), and that batch."""
    model = model.to(device).train()
    forward = flags.wrap(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.rand(batch, model_channels(model), size, size, device=device)
    generator = torch.Generator(device=device).manual_seed(0)

    def step():
        sigma = torch.rand(batch, 1, 1, 1, generator=generator, device=device)
        noise = torch.randn(x.shape, generator=generator, device=device) * sigma
        optimizer.zero_grad(set_to_none=True)
        loss = ((forward(x + noise) - x) ** 2).flatten(1).sum(1).mean()
        loss.backward()
        optimizer.step()

    return step, x


def _plain_step(model: torch.nn.Module, x: torch.Tensor) -> None:
    loss = ((model(x) - x) ** 2).sum()
    loss.backward()


def process_layout(size: int, batch: int, workers: int, steps: int, rounds: int = 3
                   ) -> tuple[float, float, list[int]]:
    """Training steps per second of the UNet at ``size`` and ``batch`` on the CPU: (one process
    with ``workers`` threads, ``workers`` processes with one thread each training at once, the
    thread count each of those saw). Each is the best of ``rounds`` rounds, the two layouts
    taking turns (this process while the others wait at a barrier, then the others together),
    so that a slow moment of a shared machine does not fall on one layout only. A round is the
    wall time of ``steps`` steps after a warm-up step; the processes' rate is the steps of all
    over the time from the first start to the last end (one monotonic clock on the machine).
    A worker that dies (killed, out of memory, an error) breaks the barrier at once: a
    :class:`GahbError` names it and its exit code, and the other workers are stopped."""
    import multiprocessing
    import queue
    import threading

    if workers < 2:
        raise ValueError(f"a process layout needs at least 2 workers, got {workers}")
    context = multiprocessing.get_context("spawn")  # a forked child would inherit torch's thread pool
    barrier, results = context.Barrier(workers + 1, timeout=600), context.Queue()
    procs = [context.Process(target=_layout_worker, args=(size, batch, steps, rounds, barrier, results), daemon=True)
             for _ in range(workers)]
    for proc in procs:
        proc.start()
    done = threading.Event()
    watcher = threading.Thread(target=_abort_when_one_dies, args=(procs, barrier, done), daemon=True)
    watcher.start()
    threads = torch.get_num_threads()
    torch.set_num_threads(workers)
    alone, found = [], []
    try:
        step = _warm_step(size, batch)
        barrier.wait()  # everyone warm
        for _ in range(rounds):
            start = time.monotonic()
            for _ in range(steps):
                step()
            alone.append(steps / (time.monotonic() - start))
            barrier.wait()  # the others start their round
            barrier.wait()  # and have ended it
        while len(found) < workers:
            try:
                found.append(results.get(timeout=1.0))
            except queue.Empty:
                if _dead(procs):
                    raise threading.BrokenBarrierError from None
    except threading.BrokenBarrierError:
        for proc in procs:  # the others leave the broken barrier and end; their exit codes tell who broke it
            proc.join(timeout=10)
        dead = _dead(procs)
        for proc in procs:  # one still in its round notices the barrier only at the round's end
            if proc.is_alive():
                proc.terminate()
        what = ("; ".join(f"worker {i} exited with code {code}" for i, code in dead)
                + " (a negative code is the signal that ended it)") if dead else \
            "a worker did not reach the barrier within 600 s"
        raise GahbError(f"the process layout's measurement stopped: {what}") from None
    finally:
        done.set()
        torch.set_num_threads(threads)
        for proc in procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.terminate()
    together = max(workers * steps / (max(f[0][r][1] for f in found) - min(f[0][r][0] for f in found))
                   for r in range(rounds))
    return max(alone), together, [f[1] for f in found]


def _dead(procs) -> list[tuple[int, int]]:
    """(index, exit code) of the processes that ended abnormally."""
    return [(i, proc.exitcode) for i, proc in enumerate(procs) if proc.exitcode not in (None, 0)]


def _abort_when_one_dies(procs, barrier, done) -> None:
    """Break ``barrier`` as soon as one of ``procs`` ends abnormally, so no one waits for it."""
    from multiprocessing.connection import wait

    pending = {proc.sentinel: proc for proc in procs}
    while pending and not done.is_set():
        for sentinel in wait(list(pending), timeout=0.5):
            if pending.pop(sentinel).exitcode != 0:
                barrier.abort()
                return


def _layout_worker(size: int, batch: int, steps: int, rounds: int, barrier, results) -> None:
    import threading

    try:
        torch.set_num_threads(1)
        step = _warm_step(size, batch)
        barrier.wait()
        spans = []
        for _ in range(rounds):
            barrier.wait()
            start = time.monotonic()
            for _ in range(steps):
                step()
            spans.append((start, time.monotonic()))
            barrier.wait()
        results.put((spans, torch.get_num_threads()))
    except threading.BrokenBarrierError:
        return  # another process broke it: the parent names that one
    except BaseException:
        barrier.abort()  # the parent and the other workers stop waiting for this one
        raise


def _warm_step(size: int, batch: int) -> Callable[[], None]:
    """A training step of the UNet at ``size`` on the CPU (strict float32), run once."""
    from gahb_bench.acceleration import Acceleration
    from gahb_bench.architectures.unet import build_unet

    torch.manual_seed(0)
    step, _ = _step_function(build_unet(1, size), batch, size, torch.device("cpu"), Acceleration())
    step()
    return step


def model_channels(model: torch.nn.Module) -> int:
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    return first.in_channels


def evaluation(model: torch.nn.Module, batch: int, size: int, device: torch.device) -> tuple[float, float]:
    """(seconds, FLOPs) of one forward pass of a batch without gradients."""
    model = model.to(device).eval()
    y = torch.rand(batch, model_channels(model), size, size, device=device)

    def forward():
        with torch.no_grad():
            model(y)

    forward()
    return best_time(forward, device), count_flops(forward)


def sampler_overhead(model: torch.nn.Module, batch: int, size: int, device: torch.device,
                     steps: int = 20) -> tuple[float, float]:
    """(seconds of one sampler step, seconds of one bare forward pass) on the same batch."""
    from gahb_bench.sampling import SamplerSettings, sample

    model = model.to(device).eval()
    shape = (batch, model_channels(model), size, size)
    # A fixed number of steps: σ_L unreachable, failures not raised.
    settings = SamplerSettings(sigma_final=1e-6, max_steps=steps, divergence_sigma=1e6)
    y = 0.5 + torch.randn(shape, device=device)

    def bare():
        with torch.no_grad():
            model(y)

    bare()
    forward = best_time(bare, device)
    # steps + the final f(y_T): one more forward pass than steps
    stepped = best_time(lambda: sample(model, shape, settings, seed=1, device=device, strict=False),
                        device, repeat=2, budget=0.0) / (steps + 1)
    return stepped, forward


def sampler_batching(model: torch.nn.Module, n: int, size: int, device: torch.device,
                     steps: int = 10) -> tuple[float, float]:
    """(seconds for ``n`` samples drawn one at a time, seconds for the same ``n`` as one batch)."""
    from gahb_bench.sampling import SamplerSettings, sample

    model = model.to(device).eval()
    settings = SamplerSettings(sigma_final=1e-6, max_steps=steps, divergence_sigma=1e6)
    c = model_channels(model)
    batched = best_time(lambda: sample(model, (n, c, size, size), settings, seed=2, device=device, strict=False),
                        device, repeat=1, budget=0.0)
    single = best_time(lambda: [sample(model, (1, c, size, size), settings, seed=2 + i, device=device, strict=False)
                                for i in range(n)], device, repeat=1, budget=0.0)
    return single, batched


def full_jacobian(model: torch.nn.Module, batch: int, size: int, device: torch.device,
                  rows: int = 64) -> tuple[float, float, float]:
    """(seconds of the batched Jacobian of ``batch`` images, its FLOPs (D forward passes per
    image), seconds of the row-by-row autograd loop scaled to the same Jacobians)."""
    from gahb_bench.jacobian import device_chunk_size, jacobian

    model = model.to(device).eval()
    c = model_channels(model)
    y = torch.rand(batch, c, size, size, device=device)
    dim = c * size * size
    jacobian(model, y[:1], rows=range(min(32, dim)))  # warm-up (vmap tracing, kernel selection)
    chunk = device_chunk_size(dim, device)
    seconds = best_time(lambda: jacobian(model, y, chunk_size=chunk), device, repeat=1, budget=0.0)
    flops = count_flops(lambda: model(y[:1]).sum()) * dim * batch
    point = y[:1].clone().requires_grad_(True)

    def row_loop():
        out = model(point).flatten()
        for i in range(min(rows, dim)):
            torch.autograd.grad(out[i], point, retain_graph=True)

    row_seconds = best_time(row_loop, device, repeat=2, budget=0.0) * dim / min(rows, dim) * batch
    return seconds, flops, row_seconds


def top_k(model: torch.nn.Module, size: int, k: int, device: torch.device,
          image: np.ndarray) -> tuple[float, float, float]:
    """(seconds of the matrix-free top-``k`` eigenpairs, seconds of the full Jacobian + eigh,
    the largest relative difference of the k eigenvalues) at one noisy image."""
    from gahb_bench.jacobian import device_chunk_size, eigh_descending, jacobian, top_eigenpairs

    model = model.to(device).eval()
    y = torch.as_tensor(image, dtype=torch.float32, device=device)
    out = {}

    chunk = device_chunk_size(int(np.prod(y.shape[1:])), device)

    def full():
        out["full"] = eigh_descending(jacobian(model, y, chunk_size=chunk))[0]

    def free():
        out["free"] = top_eigenpairs(model, y, k, tol=1e-4)[0]

    jacobian(model, y, rows=range(min(32, y[0].numel())))  # warm-up (vmap tracing, kernel selection) for both
    full_seconds = best_time(full, device, repeat=1, budget=0.0)
    free_seconds = best_time(free, device, repeat=1, budget=0.0)
    exact = out["full"][0, :k]
    return free_seconds, full_seconds, float(np.max(np.abs(out["free"][0] - exact) / np.abs(exact)))


def search_rates(m: int, n: int, d: int, chunk: int = 4096) -> dict[str, tuple[float, float]]:
    """{name: (achieved multiply-add rate, bare float64 matmul rate of the same shapes)} for the
    nearest-neighbour search (M·N·D multiply-adds) and the empirical optimum (two products: 2·M·N·D)."""
    from gahb_bench.references.empirical import empirical_denoise
    from gahb_bench.similarity import nearest_neighbours

    device = torch.device("cpu")
    rng = np.random.default_rng(0)
    train, queries = rng.random((n, 1, 1, d)), rng.random((m, 1, 1, d))
    q = torch.as_tensor(queries.reshape(m, -1))
    r = torch.as_tensor(train.reshape(n, -1))

    def bare():
        for start in range(0, n, chunk):
            q @ r[start:start + chunk].T

    macs = m * n * d
    matmul = macs / best_time(bare, device)
    search = macs / best_time(lambda: nearest_neighbours(queries, train, k=2, chunk=chunk), device)
    optimum = 2 * macs / best_time(lambda: empirical_denoise(train, queries, 0.1, chunk=chunk), device)
    return {"nearest neighbours": (search, matmul), "empirical optimum": (optimum, matmul)}


#: Sizes of the measurements: ``quick`` (CI, about a minute on 2 cores) and the full run.
SETTINGS = {
    True: {"size": 16, "batch": 32, "jacobian_size": 16, "jacobian_batch": 2, "topk_size": 24, "k": 8,
           "topk_steps": 100, "search": (128, 8192, 256), "sampler_n": 16, "layout_steps": 20},
    False: {"size": 32, "batch": 32, "jacobian_size": 32, "jacobian_batch": 4, "topk_size": 80, "k": 32,
            "topk_steps": 300, "search": (256, 20000, 256), "sampler_n": 64, "layout_steps": 40},
}


def measure_all(device: torch.device, quick: bool = False, flags: bool = False,
                note: Callable[[str], None] = print, size: int | None = None,
                batch: int | None = None) -> list[Measurement]:
    """Every measurement of the module docstring, in order; ``note`` reports each as it lands.
    ``flags``: also time the training step under each speed-up of :mod:`gahb_bench.acceleration`;
    ``size``, ``batch``: the training step's and evaluation's image size and training batch
    (the UNet's blocks follow the size, as in the paper's Table 1: 3 blocks at 80×80)."""
    from gahb_bench.acceleration import Acceleration
    from gahb_bench.architectures.unet import build_unet

    s = {**SETTINGS[quick], **({"size": size} if size else {}), **({"batch": batch} if batch else {})}
    out: list[Measurement] = []

    def add(m: Measurement) -> None:
        out.append(m)
        note(format_row(m))

    torch.manual_seed(0)
    strict = Acceleration()
    with strict.float_mode():
        rate = matmul_rate(device)
    add(Measurement("matmul 2048² float32", rate, "FLOP/s"))
    size, batch = s["size"], s["batch"]
    # Each row against the matmul rate of its own arithmetic: strict float32, TF32, or bf16.
    runs = [("", strict, rate, "matmul")]
    if flags:
        if device.type == "cuda":
            with Acceleration(precision="tf32").float_mode():
                tf32 = matmul_rate(device)
            add(Measurement("matmul 2048² tf32", tf32, "FLOP/s"))
            runs.append((" tf32", Acceleration(precision="tf32"), tf32, "tf32 matmul"))
        with strict.float_mode():
            bf16 = matmul_rate(device, dtype=torch.bfloat16)
        add(Measurement("matmul 2048² bfloat16", bf16, "FLOP/s"))
        runs += [(" bf16", Acceleration(precision="bf16"), bf16, "bf16 matmul"),
                 (" channels-last", Acceleration(channels_last=True), rate, "matmul"),
                 (" compile", Acceleration(compile=True), rate, "matmul")]
    for label, acceleration, reference, against in runs:
        model = build_unet(1, size)
        seconds, flops = training_step(model, batch, size, device, acceleration)
        add(Measurement(f"training step{label}, UNet {size}² ({model.blocks} blocks), batch {batch}",
                        flops / seconds, "FLOP/s", flops / seconds / reference, against,
                        "≥ 0.47" if not label else "", f"{batch / seconds:.0f} images/s, {seconds * 1e3:.1f} ms/step"))
    threads = torch.get_num_threads()
    if device.type == "cpu" and threads > 1:
        alone, together, _ = process_layout(size, batch, threads, s["layout_steps"])
        add(Measurement(f"training, {threads} processes × 1 thread, UNet {size}², batch {batch}", together,
                        "steps/s", together / alone, f"1 process × {threads} threads", "",
                        f"{alone:.2f} steps/s in one process"))
    with strict.float_mode():
        _evaluation_rows(s, device, rate, add)
    return out


def _evaluation_rows(s: dict, device: torch.device, rate: float, add: Callable[[Measurement], None]) -> None:
    """The rows after the training step, all in strict float32 (as evaluation runs)."""
    from gahb_bench.architectures.unet import build_unet

    size = s["size"]
    model = build_unet(1, size)
    seconds, flops = evaluation(model, 256, size, device)
    add(Measurement(f"evaluation, UNet {size}², batch 256", flops / seconds, "FLOP/s", flops / seconds / rate,
                    "matmul", "", f"{256 / seconds:.0f} images/s"))
    stepped, forward = sampler_overhead(model, 64, size, device)
    add(Measurement("sampler step, batch 64", stepped * 1e3, "ms", stepped / forward, "bare forward", "≤ 1.2"))
    single, batched = sampler_batching(model, s["sampler_n"], size, device)
    add(Measurement(f"{s['sampler_n']} samples one by one", single, "s", single / batched, "as one batch", "> 1"))

    jsize = s["jacobian_size"]
    model = build_unet(1, jsize, blocks=2, init="unit-gain")
    seconds, flops, rows = full_jacobian(model, s["jacobian_batch"], jsize, device)
    add(Measurement(f"full Jacobian, UNet {jsize}², {s['jacobian_batch']} images", flops / seconds, "FLOP/s",
                    flops / seconds / rate, "matmul", "≥ 0.5", f"{seconds:.2f} s"))
    add(Measurement("full Jacobian, row-by-row loop", rows, "s", rows / seconds, "batched (speed-up)", "> 1"))

    free, full, error = _top_k_trained(s, device)
    add(Measurement(f"top-{s['k']} matrix-free, UNet {s['topk_size']}²", free, "s", full / free,
                    "full Jacobian + eigh (speed-up)", "≥ 10 at 80²", f"largest eigenvalue error {error:.1e}"))

    m, n, d = s["search"]
    for name, (achieved, matmul) in search_rates(m, n, d).items():
        factor = 2  # FLOPs per multiply-add
        add(Measurement(f"{name}, M={m} N={n} D={d}", factor * achieved, "FLOP/s", achieved / matmul,
                        "float64 matmul, same shapes", "≥ 0.5"))


def _top_k_trained(s: dict, device: torch.device) -> tuple[float, float, float]:
    """:func:`top_k` on a UNet trained briefly on photographs (an untrained one is close to the
    identity: all eigenvalues near 1, the worst case of any Krylov method, not the metric's)."""
    from gahb_bench.architectures.unet import build_unet
    from gahb_bench.contracts import Training
    from gahb_bench.image_classes.photographs import PhotographsDataset
    from gahb_bench.training import train_denoiser

    size = s["topk_size"]
    model = build_unet(1, size, blocks=2, init="unit-gain")
    images = PhotographsDataset(size).train_subset(256, subset=0, seed=0)
    train_denoiser(model, images, Training(steps=s["topk_steps"], batch_size=8), 0, device)
    clean = PhotographsDataset(size).test_set(1, seed=1)
    noisy = clean + 0.1 * np.random.default_rng(0).standard_normal(clean.shape)
    return top_k(model, size, s["k"], device, noisy)


def format_row(m: Measurement) -> str:
    value = f"{m.value:.3g} {m.unit}"
    ratio = f"{m.ratio:6.2f}× {m.against}" if np.isfinite(m.ratio) else ""
    aim = f"(aim {m.aim})" if m.aim else ""
    tail = f"  {m.note}" if m.note else ""
    return f"  {m.name:<58} {value:>16}  {ratio:<38} {aim:<18}{tail}".rstrip()
