"""Parse a Snakemake run's log and SLURM's accounting records, and check the one against
the other: used by the SLURM end-to-end test (test_slurm_cluster.py)."""

import re
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

SACCT_FIELDS = "JobIDRaw,State,ExitCode,Comment,Partition,Account,Submit,Start,End,WorkDir"


@dataclass
class SnakemakeJob:
    """One job of a Snakemake run as its log reports it."""

    jobid: int
    rule: str
    local: bool
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    wildcards: list[str] = field(default_factory=list)  # values, in the rule's order
    slurm_id: str | None = None

    @property
    def slurm_comment(self) -> str:
        """The --comment the SLURM executor gives this job's sbatch call."""
        if not self.wildcards:
            return f"rule_{self.rule}"
        return f"rule_{self.rule}_wildcards_" + "_".join(self.wildcards).replace("/", "_")


@dataclass
class SlurmRecord:
    """One job as SLURM's accounting (sacct) records it."""

    job_id: str
    state: str
    exit_code: str
    comment: str
    partition: str
    account: str
    submit: datetime | None
    start: datetime | None
    end: datetime | None
    workdir: str


_HEADER = re.compile(r"^(local)?(?:rule|checkpoint) (\S+):$")
_SUBMITTED = re.compile(r"^Job (\d+) has been submitted with SLURM jobid (\d+)\b")


def parse_snakemake_log(text: str) -> dict[int, SnakemakeJob]:
    """Jobs (by Snakemake job id) with rule, files, wildcards and SLURM job id from a run's log."""
    jobs: dict[int, SnakemakeJob] = {}
    block: dict | None = None

    def close() -> None:
        if block is not None:
            if "jobid" not in block:
                raise ValueError(f"job block of rule {block['rule']} has no 'jobid:' line")
            jobs[int(block["jobid"])] = SnakemakeJob(
                jobid=int(block["jobid"]),
                rule=block["rule"],
                local=block["local"],
                inputs=_split_list(block.get("input", "")),
                outputs=_split_list(block.get("output", "")),
                wildcards=[kv.split("=", 1)[1] for kv in _split_list(block.get("wildcards", ""))],
            )

    for line in text.splitlines():
        if block is not None and line.startswith("    ") and ": " in line:
            key, value = line.strip().split(": ", 1)
            block.setdefault(key, value)
            continue
        close()
        block = None
        if m := _HEADER.match(line):
            block = {"rule": m.group(2), "local": bool(m.group(1))}
        elif m := _SUBMITTED.match(line):
            jobid = int(m.group(1))
            if jobid not in jobs:
                raise ValueError(f"SLURM submission of unknown Snakemake job {jobid}")
            jobs[jobid].slurm_id = m.group(2)
    close()
    return jobs


def _split_list(value: str) -> list[str]:
    return [item for item in value.split(", ") if item]


def dependency_edges(jobs: dict[int, SnakemakeJob]) -> list[tuple[int, int]]:
    """(producer, consumer) job ids: the consumer reads a file the producer writes."""
    producer = {out: job.jobid for job in jobs.values() for out in job.outputs}
    return sorted(
        {(producer[f], job.jobid) for job in jobs.values() for f in job.inputs if f in producer}
    )


def _time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:  # Unknown, None: not (yet) started or ended
        return None


def parse_sacct(text: str) -> dict[str, SlurmRecord]:
    """Records of `sacct -X -P -n -o SACCT_FIELDS`, by job id."""
    records = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != 10:
            raise ValueError(f"expected 10 '|'-separated sacct fields, got: {line!r}")
        jid, state, code, comment, part, account, submit, start, end, workdir = parts
        records[jid] = SlurmRecord(
            jid, state, code, comment, part, account,
            _time(submit), _time(start), _time(end), workdir,
        )  # fmt: skip
    return records


def check_records(jobs: dict[int, SnakemakeJob], records: dict[str, SlurmRecord]) -> list[str]:
    """Every way SLURM's records contradict 'each non-local job ran, in dependency order'."""
    problems = []
    remote = {j.jobid: j for j in jobs.values() if not j.local}
    for job in remote.values():
        rec = records.get(job.slurm_id or "")
        if rec is None:
            problems.append(f"job {job.jobid} ({job.rule}) has no SLURM record")
            continue
        if rec.state != "COMPLETED" or rec.exit_code != "0:0":
            problems.append(f"SLURM job {rec.job_id} ({job.rule}): {rec.state} {rec.exit_code}")
        if rec.comment != job.slurm_comment:
            problems.append(
                f"SLURM job {rec.job_id}: comment {rec.comment!r}, expected {job.slurm_comment!r}"
            )
    extra = set(records) - {j.slurm_id for j in remote.values()}
    if extra:
        problems.append(f"SLURM jobs not submitted by this run: {sorted(extra)}")
    for before, after in dependency_edges(jobs):
        a, b = remote.get(before), remote.get(after)
        if a is None or b is None or a.slurm_id not in records or b.slurm_id not in records:
            continue
        ra, rb = records[a.slurm_id], records[b.slurm_id]
        if ra.end is None or rb.start is None or rb.start < ra.end:
            problems.append(
                f"{b.rule} (SLURM {rb.job_id}, start {rb.start}) needs {a.rule} "
                f"(SLURM {ra.job_id}, end {ra.end}) but did not start after it ended"
            )
    return problems


def longest_chain(jobs: dict[int, SnakemakeJob]) -> int:
    """Number of jobs on the longest dependency path between non-local jobs."""
    remote = {j.jobid for j in jobs.values() if not j.local}
    edges = [(a, b) for a, b in dependency_edges(jobs) if a in remote and b in remote]
    depth = dict.fromkeys(remote, 1)
    for _ in remote:  # Bellman-Ford style relaxation; the DAG has no cycle
        for a, b in edges:
            depth[b] = max(depth[b], depth[a] + 1)
    return max(depth.values(), default=0)


def query_sacct(since: datetime, workdir: Path) -> dict[str, SlurmRecord]:
    """SLURM's records of the jobs that ran in workdir since the given time."""
    out = subprocess.run(
        ["sacct", "-X", "-P", "-n", "--allusers", "-o", SACCT_FIELDS,
         "--starttime", since.strftime("%Y-%m-%dT%H:%M:%S"), "--endtime", "now"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {k: r for k, r in parse_sacct(out).items() if r.workdir == str(workdir)}
