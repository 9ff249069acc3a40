"""A run evicted by another session's save, between a page listing it and using it: the listing
skips it, and a download of it is written again from the run in memory."""

import shutil

from aecore.checkpoints import load_checkpoint
from app_pages import _ui as ui
from tests.app.conftest import TINY, page, use_runs_dir


def test_a_run_evicted_after_listing_is_skipped_and_its_download_still_works(
    trained_dir, tmp_path, monkeypatch
):
    folder = tmp_path / "runs"
    shutil.copytree(trained_dir, folder)
    use_runs_dir(folder, monkeypatch)
    paths = [entry.path for entry in ui.saved_runs()]
    runs = [ui.load_run(p) for p in paths]
    mine = next(c for c in runs if c is not None and c.config == TINY)
    for path in paths:  # another session's save evicts them all
        path.unlink()
    assert [ui.load_run(p) for p in paths] == [None] * len(paths)
    assert ui.saved_runs() == []
    data = ui.checkpoint_bytes(mine)
    (tmp_path / "download.pt").write_bytes(data)
    again = load_checkpoint(tmp_path / "download.pt")
    assert again.config == TINY and again.metrics == mine.metrics


def test_pages_that_list_runs_survive_their_files_vanishing(trained_dir, tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    shutil.copytree(trained_dir, folder)
    use_runs_dir(folder, monkeypatch)
    at = page("compare").run()
    assert not at.exception
    for path in folder.glob("*.pt"):
        path.unlink()
    at.run()
    assert not at.exception
