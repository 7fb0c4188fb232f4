"""`--param` parsing and checking against an architecture's defaults."""

import pytest

from gahb_bench.cli import parse_param
from gahb_bench.errors import ParamError
from gahb_bench.runner import resolve_params

DEFAULTS = {"width": 64, "lr_scale": 1.0, "blocks": "auto", "norm": True}


@pytest.mark.parametrize("text, expected", [("width=32", ("width", 32)), ("lr_scale=0.5", ("lr_scale", 0.5)),
                                            ("norm=false", ("norm", False)), ("blocks=auto", ("blocks", "auto")),
                                            ("blocks=2", ("blocks", 2)), ('name="a=b"', ("name", "a=b"))])
def test_parse_param(text, expected):
    assert parse_param(text) == expected


@pytest.mark.parametrize("text", ["width", "=3", ""])
def test_malformed_param(text):
    with pytest.raises(ParamError, match="key=value"):
        parse_param(text)


def test_resolve_merges_and_casts():
    out = resolve_params(DEFAULTS, {"width": 32.0, "lr_scale": 2, "blocks": 3}, "architecture 'x'")
    assert out == {"width": 32, "lr_scale": 2.0, "blocks": 3, "norm": True}
    assert type(out["width"]) is int and type(out["lr_scale"]) is float


@pytest.mark.parametrize("given, message", [
    ({"depth": 3}, r"no parameter 'depth'; accepted: width=64"),
    ({"width": "abc"}, "expects a number"),
    ({"width": 2.5}, "expects an integer"),
    ({"width": True}, "expects a number"),
    ({"norm": 1}, "expects true or false"),
])
def test_resolve_rejects(given, message):
    with pytest.raises(ParamError, match=message):
        resolve_params(DEFAULTS, given, "architecture 'x'")
