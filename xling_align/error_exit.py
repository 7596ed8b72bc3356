"""How a command ends on a user's mistake: one `error:` line, exit status 2, and once under a launcher.

`xling-align train` (and `lm_eval` / `xling-eval` on bad benchmark data) stop a mistake with one line on stderr
and exit status 2. Under `accelerate launch` or `torchrun` every process runs the same checks, so each would print
the line, and the launcher then adds its `ChildFailedError` report, which ends with "To enable traceback see: ...".
Under those launchers (torch's elastic agent, which sets `TORCHELASTIC_RUN_ID` in every process) `report_error`
therefore:

- prints the line in the process of local rank 0 only (once per machine: each machine's launcher shows its own
  output), writes it into the error file the agent reads (`TORCHELASTIC_ERROR_FILE`), and exits with status 2;
- in the other processes, waits to be stopped: when local rank 0 fails the agent sends them SIGTERM, and they
  exit 0, so the launcher's report lists one failure (`<NO_OTHER_FAILURES>`), whose `traceback` line is the
  message itself. A process whose mistake local rank 0 did not share (it is not stopped within
  `STOP_WAIT_SECONDS`) prints its own line and exits 2 as well, so no message is lost.

What a user sees, e.g. `accelerate launch --config_file recipes/accelerate/fsdp.yaml ... train` on a CPU: the
line once, then the launcher's report ending with `exitcode : 2` and `traceback : xling-align train: error: ...`;
the launcher's own exit status is 1 (accelerate and torchrun exit 1 when any process fails; the report names the
processes' 2). `accelerate launch --quiet` leaves out accelerate's own traceback above the report. The launcher's
report itself is printed by torch whenever a process exits non-zero: it cannot be turned off from inside.

Example (no launcher):
    >>> report_error("xling-align train: error: no such recipe")
    2
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

EXIT_STATUS = 2
# how long a process other than local rank 0 waits for the launcher to stop it (it stops it within a second of
# local rank 0 failing; the margin covers a loaded machine where local rank 0 reaches the same check later)
STOP_WAIT_SECONDS = 30.0


def under_elastic_launcher() -> bool:
    """Whether torch's elastic agent started this process (`torchrun`, `accelerate launch` with several processes)."""
    return "TORCHELASTIC_RUN_ID" in os.environ


def _local_rank() -> int:
    try:
        return int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        return 0


def record_for_launcher(line: str) -> None:
    """Write `line` into the error file of torch's elastic agent, which its failure report quotes."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    # the format of torch.distributed.elastic's ErrorHandler (message + timestamp); there is no traceback to record
    data = {"message": {"message": line, "extraInfo": {"timestamp": str(int(time.time()))}}}
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
    except OSError:
        pass  # the report then says less; the line is still printed


def _exit_when_stopped(signum, frame) -> None:
    # the launcher stops this process because another one failed: that failure is the one to report
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # no interpreter teardown: a half-joined process group must not hang the exit


def report_error(line: str) -> int:
    """Print `line` (`<command>: error: <what is wrong and the fix>`) once per launch; return the exit status (2).

    See the module docstring for what happens under `torchrun` / `accelerate launch`.
    """
    if under_elastic_launcher() and _local_rank() != 0:
        previous = signal.signal(signal.SIGTERM, _exit_when_stopped)
        try:
            time.sleep(STOP_WAIT_SECONDS)
        finally:
            signal.signal(signal.SIGTERM, previous)
    # under a launcher another process's progress bar may have left stderr mid-line: start the message on its own
    print(("\n" if under_elastic_launcher() else "") + line, file=sys.stderr, flush=True)
    if under_elastic_launcher():
        record_for_launcher(line)
    return EXIT_STATUS
