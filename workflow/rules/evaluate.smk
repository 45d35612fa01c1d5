# Metrics without a model: each training job evaluates its own checkpoint (train.smk); a cell
# whose step is a shared training gets its own metrics.json, the shared confusion matrix
# summarised with the cell's columns (its task's old and new classes).
# `final` marks a finished run: `snakemake RESULTS/D/T/S/METHOD/seedN/final` runs one.

from ucd.evaluation.records import final_record, write_json_atomic
from ucd.workflow.helpers import write_cell_metrics, write_log


localrules:
    metrics_from_shared,
    final,


ruleorder: metrics_from_shared > train


rule metrics_from_shared:
    input:
        WF.shared_metrics,
    output:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/step{{step}}/metrics.json",
    log:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/step{{step}}/metrics.log",
    params:
        run=WF.step_run_dict,
    run:
        write_cell_metrics(PLAN, wildcards, input[0], output[0], log[0])


rule final:
    input:
        WF.final_inputs,
    output:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/final",
    log:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/final.log",
    run:
        write_json_atomic(final_record(input), output[0])
        write_log(log[0], f"wrote {output[0]} from {input[-1]}")
