"""MP4 export: H.264 files that open, with the frames, size and rate asked for; from the Latent
Lab's interpolation and the Monitor's "watch it learn"."""
import shutil

import numpy as np
import pytest
from conftest import REPO, make_images, train_tiny_run
from streamlit.testing.v1 import AppTest

from core import video
from core.paths import CHECKPOINTS_DIR, DEMO_RUN


def read_back(data: bytes, tmp_path):
    path = tmp_path / "check.mp4"
    path.write_bytes(data)
    return video.read_frames(path)


def test_an_mp4_has_the_frames_size_and_rate_asked_for(tmp_path):
    frames = [np.full((63, 65, 3), (i * 40, 255 - i * 40, 128), np.uint8) for i in range(6)]
    meta, back = read_back(video.mp4(video.round_trip(frames), fps=8, side=130), tmp_path)
    assert meta["codec"].startswith("h264") and meta["fps"] == 8 and len(back) == 10  # 6 there, 4 back
    assert back[0].shape == (126, 130, 3)  # the longer side asked for, both even (H.264's yuv420p)
    assert np.abs(back[2].astype(int) - (80, 175, 128)).mean() < 4  # the colours survive the encoder
    with pytest.raises(ValueError, match="frames per second"):
        video.mp4(frames, fps=0)
    with pytest.raises(ValueError, match="at least one frame"):
        video.mp4([], fps=12)


def test_the_latent_lab_makes_an_mp4_of_each_interpolation(runs_root, tmp_path):
    shutil.copytree(CHECKPOINTS_DIR / DEMO_RUN, runs_root / DEMO_RUN)
    at = AppTest.from_file(str(REPO / "pages" / "2_Latent_Lab.py"), default_timeout=120).run()
    for frames, side, fps in ((8, 256, 12), (5, 128, 24)):  # changed, made again: the new one comes out
        at.slider(key="frames").set_value(frames).run()
        at.selectbox(key="video-side").set_value(side).run()
        at.slider(key="video-fps").set_value(fps).run()
        next(b for b in at.button if b.label.startswith("Make an MP4")).click().run()
        assert not at.exception
        meta, back = read_back(at.session_state["mp4"][1], tmp_path)
        assert len(back) == 2 * frames - 2 and meta["size"] == (side, side) and meta["fps"] == fps


def test_the_monitor_makes_an_mp4_of_the_grids(runs_root, tmp_path):
    run = train_tiny_run(runs_root / "learn", make_images(tmp_path / "imgs", 12), "--sample-kimg", "0.02")
    grids = len(list((run / "samples").glob("step-*.png")))
    at = AppTest.from_file(str(REPO / "pages" / "1_Training.py"), default_timeout=120).run()
    at.button(key="mp4-learn").click().run()
    assert not at.exception
    n, data = at.session_state["learn-mp4-learn"]
    meta, back = read_back(data, tmp_path)
    assert n == grids >= 3 and len(back) == grids and meta["fps"] == 4
