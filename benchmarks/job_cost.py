"""What a training job of the workflow costs beyond its training, and what Snakemake adds.

    python benchmarks/job_cost.py phases [--repeat 3] [--save phases.json]
    python benchmarks/job_cost.py snakemake [--scheduler ilp greedy] [--save snakemake.json]
    python benchmarks/job_cost.py estimate --phases phases.json --snakemake snakemake.json

``phases``: the real jobs of the workflow's DAG (their command lines from a Snakemake dry run
of config.yaml and config/embedded.yaml), by default the shared step 0 and MiB's step 1 of the
default run (digits 5-5 disjoint, seed 42) and MiB's step 1 of digits 5-1 (the embedded run's
short steps), each started as Snakemake starts it and timed phase by phase
(benchmarks/job_probe.py): interpreter start, imports (the top modules by cumulative time, from
``python -X importtime``), checkpoint read, model build, data set-up, image decoding,
training, evaluation, writing the outputs, and the interpreter's exit. Outputs go to a scratch
directory; the inputs (split files, the previous step's checkpoint) are built with Snakemake
first when missing. ``--via server`` also runs each job through the fork server (ucd.zygote).

``snakemake``: Snakemake's own time per job: the whole DAG of a config (default: the embedded
run, ~1,300 jobs) run from an empty results directory in a scratch working directory, every
`ucd` command replaced by a stand-in that only writes its outputs (tests/workflow/fake_ucd.py),
so the wall time is Snakemake's handling of the jobs plus a stand-in Python start per job;
the CPU time of Snakemake's own process is measured apart from the jobs'.

``estimate``: the embedded run's time as a multiple of the default run's, from the jobs of both
dry runs (iterations and validation images per training job, the number of jobs) and the
figures of the two files above; each term and its source is printed.

Timings depend on the machine and its load; state both with any figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ucd.cost.dag import Job, dry_run  # noqa: E402

FAKE = ROOT / "tests" / "workflow" / "fake_ucd.py"
DEFAULT_JOBS = [  # (config files, job name as ucd.cost.dag.Job.name() prints it, as a regex);
    # "<" + a regex: the job that trains the previous step of the job the regex names
    ([], r"<train digits/5-5/disjoint/mib/seed42/step1"),
    ([], r"train digits/5-5/disjoint/mib/seed42/step1"),
    (["config/embedded.yaml"], r"train digits/5-1/disjoint/mib/seed42/step1"),
]
# What Snakemake sets for a job of one thread (shell.py), and the fork server must match.
THREADS_ENV = {k: "1" for k in ("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                                "NUMEXPR_NUM_THREADS")}
WORK_PHASES = ("training", "evaluation", "decode (train images)", "decode (val images)")
ORDER = ["interpreter start", "imports: ucd.cli", "imports: training path", "checkpoint read",
         "model build", "data set-up", "decode (train images)", "training",
         "checkpoint write", "decode (val images)", "evaluation", "writing outputs",
         "other (CLI, config, logging)", "interpreter exit"]


# ------------------------------------------------------------------------- phases


def find_job(configs: list[str], pattern: str) -> Job:
    """The job of the all_tables dry run (whole DAG) whose name matches ``pattern`` (or, for
    "<" + pattern, the job that writes its --prev checkpoint)."""
    dag = dry_run(configs, "all_tables")
    jobs = [j for j in dag if re.fullmatch(pattern.lstrip("<"), j.name())]
    if len(jobs) != 1:
        raise SystemExit(f"{len(jobs)} jobs match {pattern!r} in the dry run of {configs}")
    if pattern.startswith("<"):
        prev = [p for p in jobs[0].input if p.endswith("model.pt")]
        jobs = [j for j in dag if prev and prev[0] in j.output]
    return jobs[0]


def ensure_inputs(job: Job, configs: list[str]) -> None:
    """Build the job's missing inputs (split file, previous checkpoint) with Snakemake."""
    missing = [p for p in job.input if not Path(p).exists()]
    if missing:
        cmd = [sys.executable, "-m", "snakemake", "-c1", *missing]
        if configs:
            cmd += ["--configfile", *configs]
        print(f"building the inputs of {job.name()}: {' '.join(cmd)}", flush=True)
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"building the inputs failed:\n{proc.stderr[-3000:]}")


def ucd_argv(job: Job, scratch: Path) -> list[str]:
    """The job's `ucd` arguments (from its shell command), its outputs moved into ``scratch``."""
    words = shlex.split(job.shell)
    words = words[words.index("ucd") + 1: words.index(">")]
    for opt in ("--out", "--metrics", "--predictions"):
        if opt in words:
            i = words.index(opt) + 1
            words[i] = str(scratch / Path(words[i]).name)
    return words


def run_probe(argv: list[str], scratch: Path, importtime: bool) -> tuple[dict, float, str]:
    """One job in a fresh interpreter under the probe: (its record, wall s, stderr)."""
    out = scratch / "probe.json"
    # -m from the repository root, as `python -m ucd` runs: the checkout's ucd comes first
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m",
           "benchmarks.job_probe", str(out), "--", *argv]
    env = {**os.environ, **THREADS_ENV, "JOB_COST_LAUNCH": repr(time.time())}
    env.pop("UCD_ZYGOTE", None)  # a fresh interpreter, as without a fork server
    before = children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    total_cpu = children_cpu() - before
    if proc.returncode != 0:
        raise SystemExit(f"the job failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    record = json.loads(out.read_text())
    if not Path(record["ucd"]).resolve().is_relative_to(ROOT.resolve()):
        raise SystemExit(f"the job ran {record['ucd']}, not this checkout's ucd")
    record["exit"] = time.time() - record["end"]
    record["cpu"].update({
        "interpreter start": record["first_cpu"], "imports: ucd.cli": record["import_cli_cpu"],
        "imports: training path": record["import_training_cpu"],
        "interpreter exit": total_cpu - record["end_cpu"]})
    record["total_cpu"] = total_cpu
    return record, wall, proc.stderr


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def phase_times(record: dict) -> dict[str, float]:
    """Wall seconds of every phase of a probe record (ORDER's names)."""
    out = {"interpreter start": record["first"] - record["launch"],
           "imports: ucd.cli": record["import_cli"],
           "imports: training path": record["import_training"], **record["wall"],
           "interpreter exit": record["exit"]}
    return out


def importtime_table(stderr: str, lazy: list[str], top: int = 12) -> list[str]:
    """`python -X importtime` summarised: top-level imports by cumulative time, self time per
    top-level package, and what the job imported while it ran (lazy imports)."""
    rows = []
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if m:
            rows.append((int(m[1]) / 1e6, int(m[2]) / 1e6, len(m[3]) // 2, m[4]))
    roots = sorted((r for r in rows if r[2] == 0), key=lambda r: -r[1])
    per_pkg: dict[str, float] = {}
    for own, _, _, name in rows:
        per_pkg[name.split(".")[0]] = per_pkg.get(name.split(".")[0], 0.0) + own
    lazy_set = set(lazy)
    lazy_s = sum(r[1] for r in roots if r[3] in lazy_set)
    lines = [f"    imports: {len(rows)} modules, {sum(r[0] for r in rows):.2f} s in total"
             " (-X importtime's own overhead included)",
             "    top-level imports by cumulative time: " + ", ".join(
                 f"{n} {c:.2f}" for _, c, _, n in roots[:top])]
    pkgs = sorted(per_pkg.items(), key=lambda kv: -kv[1])[:8]
    lines.append("    self time per package: " + ", ".join(f"{k} {v:.2f}" for k, v in pkgs))
    lines.append(f"    imported while the job ran (lazy): {lazy_s:.2f} s: " + ", ".join(
        f"{n} {c:.2f}" for _, c, _, n in roots if n in lazy_set and c > 0.005))
    return lines


def via_server(argv: list[str], scratch: Path, server) -> tuple[dict, float]:
    """The job launched as the workflow launches it, with a fork server up whose jobs run
    under the probe (its --entry): (the record, wall s). CPU: the client's, and the job's
    from the fork on (the server's log)."""
    out = scratch / "probe.json"
    before, served = children_cpu(), server.served()
    launch = time.time()
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ucd", "train", "--probe", str(out),
                           repr(launch), "--", *argv], cwd=ROOT, env=server.env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    client_cpu = children_cpu() - before
    if proc.returncode != 0 or server.served() != served + 1:
        raise SystemExit(f"the job failed or did not go through the server:\n"
                         f"{proc.stderr[-3000:]}\n{server.log()[-2000:]}")
    record = json.loads(out.read_text())
    record["exit"] = time.time() - record["end"]
    deadline = time.monotonic() + 30
    while server.log().count(" ended: ") <= served and time.monotonic() < deadline:
        time.sleep(0.05)  # the server logs the job's end just after the client has its status
    job_cpu = float(re.findall(r" ended: exit status 0 after \S+ s, (\S+) CPU-s",
                               server.log())[-1])
    record["cpu"].update({
        "interpreter start": client_cpu + record["first_cpu"],
        "imports: ucd.cli": record["import_cli_cpu"],
        "imports: training path": record["import_training_cpu"],
        "interpreter exit": job_cpu - record["end_cpu"]})
    record["total_cpu"] = client_cpu + job_cpu
    return record, wall


def profile_job(configs: list[str], pattern: str, repeat: int, via: str) -> dict:
    """Median phase times of ``repeat`` runs of one job in fresh interpreters (and through
    a fork server), plus one run under -X importtime."""
    job = find_job(configs, pattern)
    ensure_inputs(job, configs)
    with tempfile.TemporaryDirectory(prefix="job_cost-") as tmp:
        argv = ucd_argv(job, Path(tmp))
        runs = [run_probe(argv, Path(tmp), importtime=False) for _ in range(repeat)]
        record, _, stderr = run_probe(argv, Path(tmp), importtime=True)
        metrics = json.loads((Path(tmp) / "metrics.json").read_text())
        served = server_runs(argv, Path(tmp), repeat) if via == "server" else []
    return {"job": job.name(), "configs": configs, "images": step_images_of(argv),
            **medians([(r, w) for r, w, _ in runs]),
            "server": medians(served) if served else None,
            "iterations": metrics.get("iterations"), "val_images": metrics.get("n_val_images"),
            "importtime": importtime_table(stderr, record["lazy_modules"])}


def step_images_of(argv: list[str]) -> int:
    """Training images of the job's step (from its --run-json)."""
    from ucd.cost.counts import step_images
    from ucd.facts.config import RunConfig
    from ucd.methods import get_method

    run = RunConfig.from_dict(json.loads(argv[argv.index("--run-json") + 1]))
    return step_images(run, get_method(run.base_method).joint).images or 0


def server_runs(argv: list[str], scratch: Path, repeat: int) -> list[tuple[dict, float]]:
    """``repeat`` launches of the job through a fork server started here."""
    from ucd.zygote.control import Server

    server = Server.start(scratch / "zygote", env={**os.environ, **THREADS_ENV}, cwd=ROOT,
                          entry="benchmarks.job_probe:served")
    try:
        server.wait_ready(timeout=300)
        return [via_server(argv, scratch, server) for _ in range(repeat)]
    finally:
        server.stop()


def medians(runs: list[tuple[dict, float]]) -> dict:
    """Median wall and CPU seconds per phase, and of the totals, over runs."""
    return {
        "phases": {k: statistics.median(phase_times(r).get(k, 0.0) for r, _ in runs)
                   for k in ORDER},
        "cpu": {k: statistics.median(r["cpu"].get(k, 0.0) for r, _ in runs) for k in ORDER},
        "wall": statistics.median(w for _, w in runs),
        "total_cpu": statistics.median(r["total_cpu"] for r, _ in runs),
    }


def _fixed(res: dict) -> tuple[float, float]:
    """(wall, CPU) seconds of a job that are not its work (training, evaluation, decoding)."""
    return (res["wall"] - sum(res["phases"][k] for k in WORK_PHASES),
            res["total_cpu"] - sum(res["cpu"][k] for k in WORK_PHASES))


def print_job(res: dict) -> None:
    runs = [("fresh interpreter", res)] + ([("fork server", res["server"])]
                                           if res["server"] else [])
    print(f"\n{res['job']} ({' '.join(res['configs']) or 'config.yaml'}): "
          f"{res['iterations']} iterations, {res['images']} training images, "
          f"{res['val_images']} validation images")
    print(f"    {'':30s}" + "".join(f"{name:>20s}" for name, _ in runs))
    print(f"    {'phase':30s}" + f"{'wall s':>10s}{'CPU s':>10s}" * len(runs))
    for k in ORDER + ["total (launch to exit)", "fixed cost (not work)"]:
        cells = []
        for _, r in runs:
            if k == "total (launch to exit)":
                w, c = r["wall"], r["total_cpu"]
            elif k == "fixed cost (not work)":
                w, c = _fixed(r)
            else:
                w, c = r["phases"][k], r["cpu"][k]
            cells.append(f"{w:10.3f}{c:10.3f}")
        print(f"    {k:30s}" + "".join(cells))
    print("\n".join(res["importtime"]))


def cmd_phases(args: argparse.Namespace) -> int:
    jobs = [(c, p) for c, p in DEFAULT_JOBS]
    if args.job:
        jobs = [(args.config or [], p) for p in args.job]
    print(f"per job, median of {args.repeat} runs; load average before: {os.getloadavg()}")
    results = [profile_job(c, p, args.repeat, args.via) for c, p in jobs]
    for res in results:
        print_job(res)
    print(f"load average after: {os.getloadavg()}")
    if args.save:
        Path(args.save).write_text(json.dumps(results, indent=1))
    return 0


# ------------------------------------------------------------------------- Snakemake's own time

SELF_CPU = """import atexit, resource, sys
def _report():
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"SNAKEMAKE_SELF_CPU {r.ru_utime + r.ru_stime}", file=sys.stderr, flush=True)
    print(f"SNAKEMAKE_CHILDREN_CPU {c.ru_utime + c.ru_stime}", file=sys.stderr, flush=True)
atexit.register(_report)
from snakemake.cli import main
sys.argv[0] = "snakemake"
main()
"""


def standin_cost(n: int = 10) -> float:
    """Wall seconds of one stand-in call (a Python start and its imports), run alone."""
    start = time.perf_counter()
    for _ in range(n):
        subprocess.run([sys.executable, str(FAKE), "report", "collect", "--out", os.devnull],
                       check=True, cwd=tempfile.gettempdir(), capture_output=True)
    return (time.perf_counter() - start) / n


def run_standin_dag(configs: list[str], scheduler: str, cores: int, extra: list[str]) -> dict:
    """The whole DAG of ``configs`` with the stand-in for every `ucd` command, from empty."""
    with tempfile.TemporaryDirectory(prefix="job_cost-smk-") as work:
        fake = Path(work) / "standin.yaml"
        fake.write_text(f"ucd_command: {shlex.quote(sys.executable)} {FAKE}\n")
        cmd = [sys.executable, "-c", SELF_CPU, "-s", str(ROOT / "Snakefile"), "-d", work,
               f"-c{cores}", "--scheduler", scheduler, *extra, "all_tables", "--configfile",
               *[str(ROOT / c) for c in configs], str(fake)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"snakemake failed:\n{out[-3000:]}")
    jobs = int(re.findall(r"(\d+) of \d+ steps \(100%\) done", out)[-1])
    self_cpu = float(re.findall(r"SNAKEMAKE_SELF_CPU (\S+)", out)[-1])
    children_cpu = float(re.findall(r"SNAKEMAKE_CHILDREN_CPU (\S+)", out)[-1])
    shell_jobs = len(re.findall(r"^Shell command: ", out, re.M))
    return {"configs": configs, "scheduler": scheduler, "cores": cores, "extra": extra,
            "jobs": jobs, "wall": wall, "self_cpu": self_cpu, "children_cpu": children_cpu,
            "shell_jobs": shell_jobs, "selections": out.count("Select jobs to execute")}


def cmd_snakemake(args: argparse.Namespace) -> int:
    configs = args.config if args.config is not None else ["config/embedded.yaml"]
    standin = standin_cost()
    print(f"stand-in `ucd` call alone: {standin:.3f} s (a Python start and its imports); "
          f"load average before: {os.getloadavg()}")
    results = []
    for scheduler in args.scheduler:
        r = run_standin_dag(configs, scheduler, args.cores, shlex.split(args.extra))
        r["standin_s"] = standin
        results.append(r)
        print(f"{' '.join(configs) or 'config.yaml'}, --scheduler {scheduler} -c{args.cores} "
              f"{args.extra}: {r['jobs']} jobs in {r['wall']:.1f} s "
              f"({r['wall'] / r['jobs']:.3f} s per job of wall time); Snakemake's own "
              f"process {r['self_cpu']:.1f} CPU-s ({r['self_cpu'] / r['jobs']:.3f} per job); "
              f"its child processes {r['children_cpu']:.1f} CPU-s ({r['shell_jobs']} stand-in "
              f"calls; {r['selections']} job selections by the scheduler)", flush=True)
    print(f"load average after: {os.getloadavg()}")
    if args.save:
        Path(args.save).write_text(json.dumps(results, indent=1))
    return 0


# ------------------------------------------------------------------------- the estimate


def training_jobs(configs: list[str]) -> tuple[list[dict], int]:
    """Per training job of the whole DAG: iterations, step images, validation images, kind;
    and the number of jobs of the DAG."""
    from ucd.cost.counts import iterations, set_size, step_images
    from ucd.cost.estimate import run_of
    from ucd.methods import get_method
    from ucd.planning.plan import Plan

    config = merged_config(configs)
    plan = Plan(config)
    shared = plan.shared_trainings()
    jobs = dry_run(configs, "all_tables")
    out = []
    for job in jobs:
        if job.rule not in ("train", "train_shared"):
            continue
        run = run_of(plan, shared, job)
        method = get_method(run.base_method)
        images = step_images(run, method.joint).images or 0
        out.append({"name": job.name(), "iterations": iterations(run, images),
                    "images": images,
                    "val_images": set_size(run.dataset, run.data.root, "val").images or 0,
                    "kind": "old model" if method.needs_old_model(run.step) else "plain"})
    return out, len(jobs)


def merged_config(configs: list[str]) -> dict:
    from ucd.facts.config import deep_merge, load_yaml

    config: dict = {}
    for path in ["config.yaml", *configs]:
        config = deep_merge(config, load_yaml(ROOT / path) or {})
    return config


def rates(phases: list[dict], fixed_from: str) -> dict[str, float]:
    """CPU-seconds per iteration (plain; with a frozen old model), per validation image
    (evaluation and its decoding), per decoded training image, and the fixed cost per job
    (everything else, launched fresh or through the fork server), from the profiled jobs."""
    def med(values):
        return statistics.median(list(values))

    runs = [p["server"] if fixed_from == "server" else p for p in phases]
    plain = [(p, r) for p, r in zip(phases, runs) if "step0" in p["job"]]
    old = [(p, r) for p, r in zip(phases, runs) if "step0" not in p["job"]]
    return {
        "plain": med(r["cpu"]["training"] / p["iterations"] for p, r in plain),
        "old model": med(r["cpu"]["training"] / p["iterations"] for p, r in old),
        "eval": med((r["cpu"]["evaluation"] + r["cpu"]["decode (val images)"])
                    / p["val_images"] for p, r in zip(phases, runs)),
        "decode": med(r["cpu"]["decode (train images)"] / p["images"]
                      for p, r in zip(phases, runs)),
        "fixed": med(_fixed(r)[1] for r in runs),
    }


def config_seconds(jobs: list[dict], r: dict[str, float]) -> dict[str, float]:
    """CPU-seconds of a config's training jobs, by part."""
    return {
        "training": sum(j["iterations"] * r[j["kind"]] for j in jobs),
        "evaluation": sum(j["val_images"] * r["eval"] for j in jobs),
        "decoding": sum(j["images"] * r["decode"] for j in jobs),
        "fixed": len(jobs) * r["fixed"],
    }


def cmd_estimate(args: argparse.Namespace) -> int:
    phases = json.loads(Path(args.phases).read_text())
    r = rates(phases, args.fixed_from)
    if args.work_phases:  # training and evaluation rates of another run (same work, less noise)
        work = rates(json.loads(Path(args.work_phases).read_text()), "fresh")
        r.update({k: work[k] for k in ("plain", "old model", "eval")})
    smk = {tuple(s["configs"]): s for s in json.loads(Path(args.snakemake).read_text())}
    totals, floors = {}, {}
    for configs in ([], ["config/embedded.yaml"]):
        jobs, n_jobs = training_jobs(configs)
        secs = config_seconds(jobs, r)
        s = smk.get(tuple(configs))
        secs["snakemake"] = s["self_cpu"] if s else float("nan")
        totals[tuple(configs)] = sum(secs.values())
        floors[tuple(configs)] = secs["training"] + secs["evaluation"]
        name = " ".join(configs) or "config.yaml"
        print(f"{name}: {len(jobs)} training jobs ({sum(j['iterations'] for j in jobs)} "
              f"iterations) of {n_jobs} jobs: " + ", ".join(
                  f"{k} {v / 60:.1f} min" for k, v in secs.items()) +
              f"; total {totals[tuple(configs)] / 60:.1f} CPU-min")
    key = ("config/embedded.yaml",)
    print("rates: " + ", ".join(f"{k} {v:.4f} s" for k, v in r.items()) +
          f" (fixed cost from the {'fork server' if args.fixed_from == 'server' else 'fresh'}"
          " launches)")
    print(f"embedded / default: {totals[key] / totals[()]:.1f}x (CPU-seconds of the training "
          "jobs and of Snakemake's process; data, split, replay and report jobs not counted); "
          f"training and evaluation alone: {floors[key] / floors[()]:.1f}x")
    return 0


# ------------------------------------------------------------------------- decoding, shared?


def cmd_decode(args: argparse.Namespace) -> int:
    """CPU-s per image of decoding the PNGs as a job does, against reading the same pixels
    from the arrays `ucd data decode` writes once (memory-mapped, each sample's files checked
    against the index), and what that saves per run."""
    from ucd.data.base import get_reader
    from ucd.data.decoded import Decoded, write_decoded

    root = ROOT / merged_config([])["datasets"]["digits"]["root"]
    reader = get_reader("digits", root)
    splits = [(split, s) for split in ("train", "val") for s in reader.samples(split)]
    t = time.process_time()
    for _, s in splits:
        reader.read_image(s.image), reader.read_label(s.label, strict=True)
    png = (time.process_time() - t) / len(splits)
    with tempfile.TemporaryDirectory() as tmp:
        write_decoded("digits", root, tmp)
        t = time.process_time()
        arrays = Decoded(Path(tmp), get_reader("digits", root))
        for split, s in splits:
            arrays.get(split, s)
        mapped = (time.process_time() - t) / len(splits)
    print(f"{len(splits)} digits images: PNG decoding {1e3 * png:.3f} ms CPU per image (image "
          f"and label), from the decoded arrays {1e3 * mapped:.3f} ms")
    for configs in ([], ["config/embedded.yaml"]):
        jobs, _ = training_jobs(configs)
        n = sum(j["images"] + j["val_images"] for j in jobs)
        print(f"{' '.join(configs) or 'config.yaml'}: {len(jobs)} training jobs decode {n} "
              f"images: {n * png / 60:.1f} CPU-min; from arrays {n * mapped / 60:.1f} CPU-min")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    ph = sub.add_parser("phases", help="phase by phase, a few jobs of the DAG")
    ph.add_argument("--job", nargs="*", help="job name regexes (default: the three above)")
    ph.add_argument("--config", nargs="*", help="config files the --job names are from")
    ph.add_argument("--repeat", type=int, default=3)
    ph.add_argument("--via", choices=("fresh", "server"), default="fresh")
    ph.add_argument("--save")
    ph.set_defaults(func=cmd_phases)
    sm = sub.add_parser("snakemake", help="Snakemake's own time per job, with a stand-in ucd")
    sm.add_argument("--config", nargs="*", help="default: config/embedded.yaml")
    sm.add_argument("--scheduler", nargs="+", default=["ilp"])
    sm.add_argument("--cores", type=int, default=2)
    sm.add_argument("--extra", default="", help="more Snakemake options, one string")
    sm.add_argument("--save")
    sm.set_defaults(func=cmd_snakemake)
    es = sub.add_parser("estimate", help="the embedded run as a multiple of the default run")
    es.add_argument("--phases", required=True)
    es.add_argument("--snakemake", required=True)
    es.add_argument("--fixed-from", choices=("fresh", "server"), default="fresh")
    es.add_argument("--work-phases", help="take the training and evaluation rates from this "
                    "phases file (compare fixed costs at equal work)")
    es.set_defaults(func=cmd_estimate)
    de = sub.add_parser("decode", help="what decoding the images costs, and would save")
    de.set_defaults(func=cmd_decode)
    args = p.parse_args(argv)
    os.chdir(ROOT)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
