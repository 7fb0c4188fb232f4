"""`gahb report`'s summary of an experiment with no cell done says why: failed, or not run."""

import numpy as np
import zarr

from gahb_bench import report, store


def _set_every_state(path, state):
    for name in store.experiments(path):
        for var in ("status", "pair_status", "baseline_status"):
            group = zarr.open_group(str(path / name), mode="r+")
            if var in group:
                group[var][...] = np.full(group[var].shape, state)


def test_an_experiment_whose_cells_all_failed_is_not_called_not_run(store_copy):
    _set_every_state(store_copy, store.FAILED)
    states = [zarr.open_group(str(store_copy / name), mode="r")[var]
              for name in store.experiments(store_copy) for var in ("status", "pair_status", "baseline_status")
              if var in zarr.open_group(str(store_copy / name), mode="r")]
    failed = sum(int(np.prod(s.shape)) for s in states)
    text = report.summary_table(store_copy)
    assert f"generalization: no cell done, {failed} failed (rerun to retry them)" in text
    _set_every_state(store_copy, store.PENDING)
    assert "generalization: no cell done yet (not run, or run with --experiment naming others)" in \
        report.summary_table(store_copy)
