"""`report_error` under torch's elastic launcher, without launching: the branch the 2-process tests do not reach
(a process whose mistake local rank 0 did not share) and the error file's format as torch reads it.

The launches themselves (`accelerate launch`, `torchrun`, 2 CPU processes) are in tests/test_engine_checks.py.
"""

from __future__ import annotations

from xling_align import error_exit


def test_without_a_launcher_the_line_is_printed_and_nothing_written(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    monkeypatch.setenv("TORCHELASTIC_ERROR_FILE", str(tmp_path / "error.json"))
    assert error_exit.report_error("cmd: error: bad") == 2
    assert capsys.readouterr().err == "cmd: error: bad\n"
    assert not (tmp_path / "error.json").exists()


def test_a_process_not_stopped_by_the_launcher_reports_its_own_line(monkeypatch, capsys, tmp_path):
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

    error_file = tmp_path / "attempt_0" / "1" / "error.json"
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "test")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("TORCHELASTIC_ERROR_FILE", str(error_file))
    monkeypatch.setattr(error_exit, "STOP_WAIT_SECONDS", 0.0)  # local rank 0 never fails with it
    assert error_exit.report_error("cmd: error: only on this process") == 2
    # on a line of its own, whatever another process's progress bar left on the terminal
    assert capsys.readouterr().err == "\ncmd: error: only on this process\n"
    # the launcher's report quotes the line as this process's traceback
    report = str(
        ChildFailedError("cmd", {1: ProcessFailure(local_rank=1, pid=1, exitcode=2, error_file=str(error_file))})
    )
    assert "exitcode  : 2" in report and "traceback : cmd: error: only on this process" in report
