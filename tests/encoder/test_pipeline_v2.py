"""pipeline.py --v2: one command that reproduces the shipped model, resumed run by run on a CPU.

The steps themselves are tested elsewhere (test_label_job.py, test_twin.py, test_export_parity.py);
here they are stand-ins that record their arguments and write what the real ones write, so that the
pipeline's decisions are pinned: train the shipped schedule (--steps), resume a run that ran out of
time, export and evaluate only once every step is done, and never train again after that.
"""
import json

import pytest

from encoder.training import common, pipeline


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "WORK", tmp_path)
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "texts.txt").write_text("corpus\n")
    (tmp_path / "v2-pack").mkdir()
    (tmp_path / "v2-pack" / "teacher.npz").write_bytes(b"packed")
    calls = []
    reach = {"per_run": 0}

    def job(argv):
        calls.append(("job", argv))
        out = tmp_path / "v2-job"
        out.mkdir(exist_ok=True)
        steps = int(argv[argv.index("--steps") + 1]) if "--steps" in argv else reach["per_run"]
        start = 0
        if "--resume" in argv:
            start = json.loads((out / "student.json").read_text())["checkpoint_step"]
        end = min(steps, start + reach["per_run"])
        (out / "student.json").write_text(json.dumps({"checkpoint_step": end, "seconds": 1.0}))

    monkeypatch.setattr("encoder.training.gpu_job.main", job)
    monkeypatch.setattr("encoder.training.export.main", lambda argv: calls.append(("export", argv)))
    monkeypatch.setattr("encoder.training.evaluate.main", lambda argv: calls.append(("eval", argv)))
    return tmp_path, calls, reach


def test_a_run_out_of_time_is_resumed_by_the_same_command_then_exported(work):
    root, calls, reach = work
    reach["per_run"] = 3000  # steps one run manages before its --seconds are spent
    out = root / "models" / "vectord-gru-base"
    pipeline.main(["--v2", "--out", str(out)])
    (kind, argv), = calls
    assert kind == "job" and argv[argv.index("--steps") + 1] == str(pipeline.V2_STEPS) and "--resume" not in argv
    calls.clear()
    pipeline.main(["--v2", "--out", str(out)])  # the same command again: resumes, finishes, exports
    assert [c[0] for c in calls] == ["job", "export", "eval"]
    assert calls[0][1][calls[0][1].index("--resume") + 1] == str(root / "v2-job" / "student.npz")
    assert "--name" in calls[1][1] and "vectord-gru-base" in calls[1][1]
    calls.clear()
    pipeline.main(["--v2", "--out", str(out)])  # done: no training again, only export and eval
    assert [c[0] for c in calls] == ["export", "eval"]


def test_a_job_killed_before_its_final_save_is_run_again(work):
    """Without --v2-steps the schedule is fitted to --seconds: a run killed after a checkpoint (no
    "seconds" in student.json) starts again rather than exporting half-trained weights."""
    root, calls, reach = work
    (root / "v2-job").mkdir()
    (root / "v2-job" / "student.json").write_text(json.dumps({"checkpoint_step": 700}))  # a checkpoint only
    reach["per_run"] = 9000
    pipeline.main(["--v2", "--out", str(root / "m"), "--v2-steps", "0"])
    assert [c[0] for c in calls] == ["job", "export", "eval"]
    assert "--steps" not in calls[0][1] and "--resume" not in calls[0][1]
