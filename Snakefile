# ucd: class-incremental semantic segmentation (UCD, TPAMI) -- the experiment workflow.
#
# Results path scheme (RESULTS = config `results`; decided in ucd/planning/plan.py):
#   RESULTS/data/{dataset}/                          generated data (embedded benchmark)
#   RESULTS/decoded/{dataset}/                       its images decoded once, for every job
#   RESULTS/.ucd-zygote/                             fork server of a local run's trainings
#   RESULTS/splits/{dataset}/{task}/{setting}.json   images per step, shared by every method
#   RESULTS/{dataset}/{task}/{setting}/{method}/seed{seed}/step{k}/
#       run.yaml  model.pt  metrics.json  predictions.npz  train.log  eval.log
#   RESULTS/{dataset}/_shared/{group}/seed{seed}/step0/   a training shared by several cells
#       (step 0 of plain methods, Joint); such a cell's step dir holds only its metrics.json
#   RESULTS/{dataset}/{task}/{setting}/{method}/seed{seed}/final   the run's last step is done
#   RESULTS/replay/{dataset}/{task}/{setting}/step{k}/n{N}/   replay set (RECALL), N per class
#   RESULTS/summary.csv  RESULTS/claims.md  RESULTS/fidelity.md  RESULTS/tables/
#   RESULTS/figures/  RESULTS/logs/
# {method} is a method of ucd/methods/methods.yaml or a config variant `<method>-<name>`.
#
# Targets: all_tables (default), all_runs, table1..table9, figure10, figure11, or one run:
#   snakemake -c2 results/digits/5-5/disjoint/mib_ucd/seed42/final
#   snakemake all_runs --configfile config/paper.yaml --config benchmark=voc/15-1/overlapped/mib_ucd


configfile: f"{workflow.basedir}/config.yaml"


report: "workflow/report/workflow.rst"


from ucd.reporting.tables import load_tables
from ucd.workflow.checks import check_config, check_schema
from ucd.workflow.fork_server import start_fork_server, stop_fork_server
from ucd.workflow.helpers import WorkflowHelpers, ucd_command

# What the rule files use: config, RESULTS, PLAN (ucd.planning.plan), WF (ucd.workflow.helpers:
# input functions, parameters, resources) and the names imported above.
config["ucd_command"] = ucd_command(config)
check_schema(config, f"{workflow.basedir}/workflow/schemas/config.schema.yaml")
RESULTS = config["results"]
PLAN = check_config(config)
WF = WorkflowHelpers(config, PLAN)


wildcard_constraints:
    dataset="|".join(config["datasets"]),
    task=r"[A-Za-z0-9][A-Za-z0-9_.\-]*",
    setting="disjoint|overlapped",
    method=r"[a-z][a-z0-9_]*(-[A-Za-z0-9_.]+)?",
    group=r"(step0|joint)-[0-9a-f]+",
    seed=r"[0-9]+",
    step=r"[0-9]+",


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


onstart:
    start_fork_server(WF, workflow)


onsuccess:
    stop_fork_server()


onerror:
    stop_fork_server()


rule all_tables:
    default_target: True
    input:
        WF.report_targets(),


rule all_runs:
    input:
        PLAN.finals(),


for item in load_tables():  # table1..table9, figure10, figure11

    rule:
        name:
            item
        input:
            lambda w, item=item: WF.table_outputs(item),
