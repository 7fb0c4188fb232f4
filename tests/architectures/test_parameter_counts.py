"""Parameter counts match the paper's Table 1 and the public code."""

import pytest

from gahb_bench.architectures.bfcnn import BFCNN, build_bfcnn
from gahb_bench.architectures.layers import count_parameters
from gahb_bench.architectures.unet import UNet, auto_blocks, build_unet


@pytest.mark.parametrize("blocks, paper, exact", [(1, 360e3, 366_080), (2, 1.8e6, 1_825_024),
                                                  (3, 7.6e6, 7_659_264), (4, 31e6, 30_993_152)])
def test_unet_counts(blocks, paper, exact):
    n = count_parameters(UNet(1, blocks=blocks, width=64))
    assert n == exact
    assert abs(n - paper) / paper < 0.02


def test_bfcnn_count():
    assert count_parameters(BFCNN(1, depth=21, width=64)) == 702_784
    assert abs(count_parameters(build_bfcnn(1, 40)) - 700e3) / 700e3 < 0.02
    assert count_parameters(BFCNN(1, depth=20, width=64)) == 665_856


def test_auto_blocks_follows_table_1():
    assert [auto_blocks(s) for s in (16, 20, 24, 40, 48, 80, 96, 160)] == [1, 1, 2, 2, 3, 3, 4, 4]
    assert build_unet(1, 80).blocks == 3


def test_unet_rejects_indivisible_size():
    with pytest.raises(ValueError, match="not divisible"):
        build_unet(1, 20, blocks=3)
