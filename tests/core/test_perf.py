"""`gahb perf`'s counting and timing: FLOP counts of known layers, a training step's and a
Jacobian's counts as multiples of the forward pass, timings that cannot undercut the work."""

import multiprocessing
import os
import signal
import threading
import time

import pytest
import torch

from gahb_bench import perf
from gahb_bench.cli import main
from gahb_bench.errors import GahbError

CPU = torch.device("cpu")


def _conv(c_in=1, c_out=4):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                               torch.nn.Conv2d(c_out, c_in, 3, padding=1, bias=False))


def test_flops_of_a_matrix_product_and_of_convolutions_are_counted_exactly():
    a, b = torch.rand(8, 64), torch.rand(64, 32)
    assert perf.count_flops(lambda: a @ b) == 2 * 8 * 64 * 32
    model, y = _conv(), torch.rand(2, 1, 8, 8)
    per_layer = 2 * 2 * 8 * 8 * 4 * 1 * 9  # 2 FLOPs × B·H·W·C_out·C_in·3·3
    assert perf.count_flops(lambda: model(y)) == 2 * per_layer


def test_a_training_step_counts_forward_weight_and_input_gradients():
    # Forward: 2 layers. Backward: both weight gradients, and the input gradient of the second
    # layer only (the noisy input needs none): 2 + 2 + 1 = 5 layer-passes of equal cost.
    seconds, flops = perf.training_step(_conv(), batch=2, size=8, device=CPU)
    per_layer = 2 * 2 * 8 * 8 * 4 * 9
    assert flops == 5 * per_layer and seconds > 0


def test_the_full_jacobian_counts_one_forward_pass_per_pixel_of_every_image():
    seconds, flops, row_seconds = perf.full_jacobian(_conv(), batch=2, size=4, device=CPU, rows=4)
    per_image = 2 * 2 * 4 * 4 * 4 * 9  # the forward pass of one 4×4 image
    assert flops == per_image * 16 * 2 and seconds > 0 and row_seconds > 0


def test_best_time_is_never_below_the_work_and_takes_the_best_call():
    calls = []

    def work():
        calls.append(None)
        time.sleep(0.02 if len(calls) > 1 else 0.1)

    best = perf.best_time(work, CPU, repeat=3, budget=0.0)
    assert len(calls) == 3 and 0.02 <= best < 0.09


def test_the_process_layout_trains_in_single_thread_processes_side_by_side():
    alone, together, threads = perf.process_layout(size=8, batch=4, workers=2, steps=3, rounds=2)
    assert threads == [1, 1] and alone > 0 and together > 0
    with pytest.raises(ValueError, match="at least 2 workers"):
        perf.process_layout(8, 4, 1, 3)


def test_a_worker_killed_mid_measurement_stops_the_process_layout_at_once_with_its_exit_code():
    def kill_the_first_worker():
        while not multiprocessing.active_children():
            time.sleep(0.01)
        os.kill(multiprocessing.active_children()[0].pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_the_first_worker, daemon=True)
    killer.start()
    start = time.monotonic()
    # steps=10**6: without the watcher the others would wait at the barrier for 600 s
    with pytest.raises(GahbError, match=r"worker \d exited with code -9"):
        perf.process_layout(size=8, batch=4, workers=2, steps=10**6, rounds=1)
    assert time.monotonic() - start < 120
    assert not multiprocessing.active_children()


def test_perf_refuses_an_unknown_device_in_one_line(capsys):
    assert main(["perf", "--quick", "--device", "tpu"]) == 2
    assert "unknown device 'tpu'" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_perf_measures_every_ratio(capsys):
    assert main(["perf", "--quick"]) == 0
    out = capsys.readouterr().out
    for name in ("matmul", "training step", "evaluation", "sampler step", "one by one", "full Jacobian",
                 "row-by-row", "matrix-free", "nearest neighbours", "empirical optimum"):
        assert name in out
    if torch.get_num_threads() > 1:
        assert "processes × 1 thread" in out
