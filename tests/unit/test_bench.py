"""bench/speed.py in its quick mode: the harness runs end to end and writes sane numbers."""

import json
import math

from bench import speed


def test_quick_speed_run_writes_a_row_per_model(tmp_path, capsys):
    out = tmp_path / "speed.json"
    assert speed.main(["--quick", "--models", "dense", "conv_same", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert set(rows) == {"dense", "conv_same"}
    for row in rows.values():
        assert row["ours_samples_per_s"] > 0 and row["reference_samples_per_s"] > 0
        assert row["ours_images"] == row["reference_images"]  # same training images
        assert math.isfinite(row["ours_test_loss"]) and math.isfinite(row["reference_test_loss"])
        assert row["encode_decode_test_s"] > 0 and row["grid64_png_s"] > 0
    table = capsys.readouterr().out
    assert "conv_same" in table and "images/s ours" in table
