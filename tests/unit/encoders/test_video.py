"""Video encoder on real MP4s written with PyAV: frame sampling, temporal pooling, corrupt files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from recsys.encoders.video import sample_frames, temporal_pool
from tests.unit.encoders.conftest import write_corrupt_mp4, write_mp4


def test_sample_frames_uniform_and_repeats_short_videos(tmp_path: Path):
    v = write_mp4(tmp_path / "v.mp4", n_frames=12, moving=True)
    frames = sample_frames(v, 4)
    assert len(frames) == 4 and frames[0].size == (96, 64)
    # the square slides right: sampled frames are distinct and in time order
    xs = [np.asarray(f.convert("L")).astype(float).argmin(axis=1).mean() for f in frames]
    assert all(a < b for a, b in zip(xs, xs[1:]))
    assert len(sample_frames(v, 20)) == 20  # more samples than frames: frames repeat
    # long-video path (seek per target) picks the same frames as the decode-through path
    seek = sample_frames(v, 4, seek_above_s=0.0)
    for a, b in zip(frames, seek):
        assert np.abs(np.asarray(a, float) - np.asarray(b, float)).mean() < 2.0


def test_temporal_pool_is_mean_and_motion():
    f = torch.tensor([[[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]]])  # (B=1, T=3, D=2)
    assert temporal_pool(f).tolist() == [[2.0, 1.0, 2.0, 0.0]]
    assert temporal_pool(f[:, :1]).tolist() == [[0.0, 1.0, 0.0, 0.0]]  # one frame: no motion


def test_encode_videos_shapes_motion_and_corrupt(video_encoder, tmp_path: Path, caplog):
    moving = write_mp4(tmp_path / "moving.mp4", moving=True, lossless=True)
    still = write_mp4(tmp_path / "still.mp4", moving=False, lossless=True)
    bad = write_corrupt_mp4(tmp_path / "bad.mp4")
    cut = tmp_path / "cut.mp4"  # an upload cut short: real MP4 bytes, truncated
    cut.write_bytes(moving.read_bytes()[: moving.stat().st_size // 2])
    out = video_encoder.encode_videos([moving, still, bad, tmp_path / "missing.mp4", cut])
    assert out.data.shape == (5, 2560) and out.data.dtype == np.float32
    assert out.present.tolist() == [True, True, False, False, False]
    assert not out.data[2:].any() and out.errors[3] == "missing file" and out.errors[4]
    assert "bad.mp4" in caplog.text
    motion_moving, motion_still = out.data[0, 1280:].sum(), out.data[1, 1280:].sum()
    assert motion_moving > 1.0 and motion_still < 1e-3  # identical frames -> no motion
    again = video_encoder.encode_videos([moving]).data[0]
    assert np.array_equal(again, out.data[0])


def test_display_rotation_is_applied(tmp_path: Path):
    """Phone videos store upright-ness in a display matrix; sampled frames come back upright."""
    import av

    from tests.unit.encoders.conftest import draw_image

    im = draw_image("square", "red", (96, 64), shift=20)
    path = tmp_path / "rot.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=12)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        s.options = {"qp": "0"}
        s.set_display_rotation(90)
        for _ in range(4):
            for pkt in s.encode(av.VideoFrame.from_image(im)):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    frame = sample_frames(path, 1)[0]
    upright = im.rotate(90, expand=True)
    assert frame.size == (64, 96)
    err = np.abs(np.asarray(frame, float) - np.asarray(upright, float)).mean()
    wrong = np.abs(np.asarray(frame, float) - np.asarray(im.rotate(-90, expand=True), float)).mean()
    assert err < 5.0 and err < wrong / 3
