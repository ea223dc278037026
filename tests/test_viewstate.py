"""Latent Lab view state round-trips through URL query parameters."""
from core.viewstate import LabState, from_params, to_params


def test_round_trip():
    state = LabState(run="demo-emoji", ckpt="step-00001000.pt", net="G", seed=42, grid=40, psi=0.7, cls=3,
                     method="ganspace", edits={0: 1.5, 3: -2.0}, raw={5: 0.25}, user={"smiling face": 1.0},
                     keys=[1, 20, 33], mode="lerp", frames=12)
    params = to_params(state)
    assert all(isinstance(v, str) for v in params.values())
    assert from_params(params) == state


def test_defaults_make_a_short_url_and_zero_edits_are_dropped():
    assert to_params(LabState()) == {}
    assert to_params(LabState(run="r", edits={0: 0.0, 1: 2.0})) == {"run": "r", "edits": "1:2"}


def test_malformed_values_fall_back_to_defaults():
    state = from_params({"seed": "abc", "psi": "9", "net": "evil", "edits": "x:y,2:1", "keys": "5",
                         "frames": "1000", "run": "demo"})
    assert state.seed == 0 and state.psi == 2.0 and state.net == "G_ema" and state.run == "demo"
    assert state.edits == {} and state.keys == [0, 1] and state.frames == 64
