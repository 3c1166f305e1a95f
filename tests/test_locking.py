"""One writer per run folder: a second command is refused while the first holds the folder, and a killed
holder leaves no stale lock."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from recprobe.cli import main
from recprobe.errors import RunFolderError
from recprobe.runs.layout import LOCK
from recprobe.runs.lock import run_lock


def test_a_second_command_on_a_busy_run_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    with run_lock(run, "train-sae"):
        busy = r"in use by another recprobe command \(recprobe train-sae, pid \d+\)"
        with pytest.raises(RunFolderError, match=busy), run_lock(run, "capture"):
            pass
        with pytest.raises(SystemExit) as exit_info:
            main(["capture", "--run", str(run)])
        assert exit_info.value.code == 2 and "is in use by another recprobe command" in capsys.readouterr().err
    with run_lock(run, "capture"):  # free again once the holder is done
        assert "recprobe capture" in (run / LOCK).read_text()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from recprobe.runs.lock import run_lock\n"
                               "with run_lock(sys.argv[1], 'fit'):\n print('held', flush=True); time.sleep(600)", str(run)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(RunFolderError, match="recprobe fit"), run_lock(run, "capture"):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    deadline = time.monotonic() + 10
    while True:
        try:
            with run_lock(run, "capture"):
                break
        except RunFolderError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
