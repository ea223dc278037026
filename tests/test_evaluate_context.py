"""The words that put a checkpoint's FID and KID in context (core.evaluate.in_context)."""
from core.evaluation.evaluate import in_context


def result(name, kimg, kid, fid=50.0, n=250):
    return {"checkpoint": name, "kimg": kimg, "kid": kid, "fid": fid, "n_fake": n}


REFERENCE = {"250": {"untrained": {"kid": 0.4, "fid": 300.0}, "real_vs_real": {"kid": 0.0, "fid": 20.0}}}


def test_a_checkpoint_is_placed_between_untrained_and_real():
    lines = in_context(result("latest.pt", 40, kid=0.1), REFERENCE, [])
    assert "75% of the way to real" in lines[0]
    assert "untrained 300.0" in lines[1] and "against themselves 20.0" in lines[1]


def test_it_is_compared_with_the_latest_earlier_checkpoint_of_the_same_size():
    earlier = [result("step-00000100.pt", 10, kid=0.3), result("step-00000300.pt", 30, kid=0.2),
               result("step-00000350.pt", 35, kid=0.01, n=1000),  # other sample size: not comparable
               result("latest.pt", 40, kid=0.5)]                  # itself, evaluated before
    lines = in_context(result("latest.pt", 40, kid=0.1), REFERENCE, earlier)
    assert lines[-1].startswith("Against step-00000300.pt (30 kimg): KID 200.0 → 100.0") and "better" in lines[-1]
    worse = in_context(result("latest.pt", 40, kid=0.35), REFERENCE, earlier)[-1]
    assert "worse" in worse


def test_without_references_or_history_it_says_nothing_it_cannot_back():
    assert in_context(result("latest.pt", 40, kid=0.1), {}, []) == []
