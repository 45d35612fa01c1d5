"""`snakemake --profile slurm` on a real local SLURM cluster (workflow/scripts/local-slurm.sh).

The end-to-end test runs a tiny grid of the embedded benchmark and checks, from SLURM's own
accounting records (sacct), that every job ran as a SLURM job and in dependency order. It
needs the cluster: set UCD_SLURM_TEST=1 after `local-slurm.sh start` (CI does). The other
tests check the record checks themselves, the profile and the script, and run anywhere.
"""

import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from slurm_records import (
    SlurmRecord,
    check_records,
    dependency_edges,
    longest_chain,
    parse_sacct,
    parse_snakemake_log,
    query_sacct,
)

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "workflow" / "scripts" / "local-slurm.sh"
TINY_CONFIG = Path(__file__).with_name("tiny.yaml")
# set by tiny.yaml: every job is charged to this account, training runs in this partition
ACCOUNT, TRAIN_PARTITION, TRAIN_RULES = "ucd", "ucdtest", {"train", "train_shared"}


def require_cluster() -> None:
    """Skip unless UCD_SLURM_TEST=1; then fail clearly if the cluster is not usable."""
    if os.environ.get("UCD_SLURM_TEST") != "1":
        pytest.skip("needs a local SLURM cluster: local-slurm.sh start, then UCD_SLURM_TEST=1")
    for tool in ("sinfo", "sacct", "sbatch", "scontrol"):
        if shutil.which(tool) is None:
            pytest.fail(f"UCD_SLURM_TEST=1 but '{tool}' is not on PATH: local-slurm.sh install")
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    if "is UP" not in ping.stdout:
        pytest.fail(f"UCD_SLURM_TEST=1 but slurmctld is not up: {ping.stdout}{ping.stderr}")
    acct = subprocess.run(["sacct", "-X", "-n"], capture_output=True, text=True)
    if acct.returncode != 0:
        pytest.fail(f"sacct does not work (start the cluster with slurmdbd): {acct.stderr}")


def link_workflow(work: Path) -> None:
    """A run directory of its own that uses the repository's workflow and profiles."""
    work.mkdir()
    for name in ("Snakefile", "workflow", "config.yaml", "config", "profiles", "slurm"):
        if (REPO / name).exists():
            (work / name).symlink_to(REPO / name)


def run_under_slurm(work: Path, target: str, *configfiles: str) -> datetime:
    """`snakemake --profile slurm TARGET` in a run directory of its own (`work`) with these
    config files; fails the test with Snakemake's output unless it succeeds. Returns a time
    just before the run (for sacct)."""
    link_workflow(work)
    since = datetime.now() - timedelta(seconds=5)
    cmd = [
        sys.executable, "-m", "snakemake", "--profile", "slurm", target,
        "--configfile", *configfiles,
        # poll every 2 s (the plugin's defaults, 40 s then +10 s, suit a busy real cluster)
        "--slurm-init-seconds-before-status-checks", "2",
    ]  # fmt: skip
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    proc = subprocess.run(
        cmd, cwd=work, env={**os.environ, "PYTHONPATH": pythonpath},
        capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    assert proc.returncode == 0, f"snakemake failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return since


@pytest.mark.slurm
@pytest.mark.slow
def test_tiny_grid_runs_as_slurm_jobs_in_dependency_order(tmp_path: Path) -> None:
    require_cluster()
    work = tmp_path / "run"
    since = run_under_slurm(work, "all_runs", str(TINY_CONFIG))

    log = sorted((work / ".snakemake" / "log").glob("*.snakemake.log"))[-1]
    jobs = parse_snakemake_log(log.read_text())
    remote = [j for j in jobs.values() if not j.local]
    assert remote and all(j.slurm_id for j in remote), "some job did not go to SLURM"
    assert {"generate_data", "split", "train_shared", "train"} <= {j.rule for j in remote}
    # each SLURM job runs in its own interpreter: no fork server was pointed at or started
    assert not (work / "results" / ".ucd-zygote").exists()
    assert longest_chain(jobs) >= 4, "data, split, shared step 0 and step 1 form a chain"
    records = query_sacct(since, work)
    assert check_records(jobs, records) == []
    for job in remote:  # the config's per-rule partition and account reached sbatch
        rec = records[job.slurm_id]
        assert rec.account == ACCOUNT, (job.rule, rec.account)
        in_train_partition = rec.partition == TRAIN_PARTITION
        assert in_train_partition == (job.rule in TRAIN_RULES), (job.rule, rec.partition)


# --------------------------------------------- the checks on hand-made records

LOG = """\
Job stats:
[Sat Nov 28 07:31:40 2026]
rule make:
    output: data/p.txt
    jobid: 2
    reason: Missing output files: data/p.txt
    wildcards: name=p
    resources: tmpdir=<TBD>, runtime=5, mem_mb=500
Shell command: sleep 1
Job 2 has been submitted with SLURM jobid 7 (log: /w/.snakemake/slurm_logs/rule_make/p/7.log).
[Sat Nov 28 07:31:54 2026]
rule use:
    input: data/p.txt, extra.txt
    output: out/p/a.txt
    jobid: 1
    wildcards: name=p, sub=x/y
Job 1 has been submitted with SLURM jobid 9 (log: /w/.snakemake/slurm_logs/rule_use/p_x_y/9.log).
[Sat Nov 28 07:32:10 2026]
localrule all:
    input: out/p/a.txt
    jobid: 0
"""


def record(job_id: str, comment: str, start: str, end: str, state="COMPLETED") -> SlurmRecord:
    def t(hms: str) -> datetime:
        return datetime(2026, 11, 28, *map(int, hms.split(":")))

    return SlurmRecord(job_id, state, "0:0", comment, "debug", "ucd", t(start), t(start),
                       t(end), "/w")  # fmt: skip


GOOD = {
    "7": record("7", "rule_make_wildcards_p", "07:31:41", "07:31:45"),
    "9": record("9", "rule_use_wildcards_p_x_y", "07:31:55", "07:31:58"),
}


def test_parse_snakemake_log_reads_jobs_files_and_slurm_ids() -> None:
    jobs = parse_snakemake_log(LOG)
    assert sorted(jobs) == [0, 1, 2]
    make, use, all_ = jobs[2], jobs[1], jobs[0]
    assert (make.rule, make.local, make.outputs) == ("make", False, ["data/p.txt"])
    assert make.slurm_id == "7"
    assert use.inputs == ["data/p.txt", "extra.txt"] and use.slurm_id == "9"
    assert use.wildcards == ["p", "x/y"]
    # the executor's comment: wildcard values joined by '_', '/' replaced
    assert use.slurm_comment == "rule_use_wildcards_p_x_y"
    assert (all_.rule, all_.local, all_.slurm_id) == ("all", True, None)
    assert dependency_edges(jobs) == [(1, 0), (2, 1)]
    assert longest_chain(jobs) == 2  # the local rule does not count


def test_parse_snakemake_log_rejects_submission_of_unknown_job() -> None:
    with pytest.raises(ValueError, match="SLURM submission of unknown Snakemake job 5"):
        parse_snakemake_log("Job 5 has been submitted with SLURM jobid 3 (log: x).")


def test_parse_sacct_reads_fields_and_unknown_times() -> None:
    text = (
        "12|COMPLETED|0:0|rule_a|debug|ucd|2026-11-28T07:28:20|2026-11-28T07:28:21"
        "|2026-11-28T07:28:26|/tmp/w\n"
        "13|PENDING|0:0|rule_b|debug|ucd|2026-11-28T07:28:30|Unknown|Unknown|/tmp/w\n"
    )
    recs = parse_sacct(text)
    assert recs["12"].end - recs["12"].start == timedelta(seconds=5)
    assert recs["13"].state == "PENDING" and recs["13"].start is None
    with pytest.raises(ValueError, match="expected 10 '|'-separated sacct fields"):
        parse_sacct("12|COMPLETED\n")


def test_check_records_accepts_a_run_in_order() -> None:
    assert check_records(parse_snakemake_log(LOG), GOOD) == []
    # the same second for the end of one and the start of the next is in order
    touching = {**GOOD, "9": record("9", "rule_use_wildcards_p_x_y", "07:31:45", "07:31:50")}
    assert check_records(parse_snakemake_log(LOG), touching) == []


@pytest.mark.parametrize(
    "change, message",
    [
        ({"9": record("9", "rule_use_wildcards_p_x_y", "07:31:44", "07:31:50")},
         "use (SLURM 9, start 2026-11-28 07:31:44) needs make (SLURM 7, end 2026-11-28 07:31:45)"),
        ({"9": record("9", "rule_use_wildcards_p_x_y", "07:31:55", "07:31:58", "FAILED")},
         "SLURM job 9 (use): FAILED 0:0"),
        ({"9": None}, "job 1 (use) has no SLURM record"),
        ({"11": record("11", "rule_x", "07:31:41", "07:31:42")},
         "SLURM jobs not submitted by this run: ['11']"),
        ({"7": record("7", "rule_make", "07:31:41", "07:31:45")},
         "SLURM job 7: comment 'rule_make', expected 'rule_make_wildcards_p'"),
    ],
)  # fmt: skip
def test_check_records_reports_each_contradiction(change: dict, message: str) -> None:
    records = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    problems = check_records(parse_snakemake_log(LOG), records)
    assert any(message in p for p in problems), problems


# ------------------------------------------------------- profile and script


def test_slurm_profile_is_accepted_by_snakemake(tmp_path: Path) -> None:
    """Every key of slurm/config.yaml is a valid Snakemake or SLURM-executor option."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    (tmp_path / "Snakefile").write_text(
        'rule all:\n    input: "b"\n\nrule b:\n    output: "b"\n    shell: "touch {output}"\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", str(REPO / "slurm"), "-n"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"^b\s+1$", proc.stdout + proc.stderr, re.M), proc.stdout[-2000:]


def run_script(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env={**os.environ, **env},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def test_script_names_a_bad_accounting_mode() -> None:
    proc = run_script("start", UCD_SLURM_ACCOUNTING="mysql")
    assert proc.returncode == 1
    assert "UCD_SLURM_ACCOUNTING must be 'slurmdbd' or 'none', got 'mysql'" in proc.stderr


def test_script_prints_usage_for_an_unknown_command() -> None:
    proc = run_script("restart")
    assert proc.returncode == 2 and "usage:" in proc.stderr and "install|start|stop" in proc.stderr


@pytest.mark.parametrize("path", ["relative/dir", "/", "/etc"])
def test_script_refuses_a_state_dir_it_could_not_wipe_safely(path: str) -> None:
    proc = run_script("start", UCD_SLURM_DIR=path)
    assert proc.returncode == 1
    assert f"UCD_SLURM_DIR must be an absolute path at least two levels deep, got '{path}'" in (
        proc.stderr
    )


def test_script_refuses_a_foreign_non_empty_state_dir(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    proc = run_script("start", UCD_SLURM_DIR=str(tmp_path))
    assert proc.returncode == 1
    assert f"UCD_SLURM_DIR {tmp_path} is not empty and was not made by this script" in proc.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
