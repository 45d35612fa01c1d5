# Training: one job per (dataset, task, setting, method, seed, step); step k reads the
# checkpoint of step k-1, so it waits for it and is redone when it changes. The job evaluates
# its checkpoint on the validation set (metrics.json, predictions.npz for qualitative maps):
# the evaluation settings are part of the run config, and one process instead of two saves a
# Python start-up per step (`ucd evaluate` re-evaluates a checkpoint by hand). A training shared
# by several cells (ucd.planning.plan: step 0 of plain methods, Joint) runs once under _shared/{group}/.
# The job's params hold its resolved run config (written beside the model as run.yaml), so a
# config change re-trains exactly the steps it changes and those after them.

from ucd.workflow.helpers import decoded_arg, prev_arg


rule train:
    input:
        unpack(WF.train_inputs),
    output:
        model=f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/step{{step}}/model.pt",
        metrics=f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/step{{step}}/metrics.json",
        predictions=f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/step{{step}}/predictions.npz",
        run=f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/step{{step}}/run.yaml",
    log:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/step{{step}}/train.log",
    benchmark:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/step{{step}}/train.benchmark.tsv"
    conda:
        "../../envs/ucd.yaml"
    threads: WF.threads_of("train")
    resources:
        **WF.resources_of("train"),
    params:
        ucd=WF.train_launcher(),
        prev=prev_arg,
        decoded=decoded_arg,
        run=WF.step_run_json,
    shell:
        "{params.ucd} train --run-json {params.run:q} --out {output.model} {params.prev}"
        " --metrics {output.metrics} --predictions {output.predictions} {params.decoded}"
        " > {log} 2>&1"


rule train_shared:
    input:
        unpack(WF.shared_train_inputs),
    output:
        model=f"{RESULTS}/{{dataset}}/_shared/{{group}}/seed{{seed}}/step0/model.pt",
        metrics=f"{RESULTS}/{{dataset}}/_shared/{{group}}/seed{{seed}}/step0/metrics.json",
        predictions=f"{RESULTS}/{{dataset}}/_shared/{{group}}/seed{{seed}}/step0/predictions.npz",
        run=f"{RESULTS}/{{dataset}}/_shared/{{group}}/seed{{seed}}/step0/run.yaml",
    log:
        f"{RESULTS}/{{dataset}}/_shared/{{group}}/seed{{seed}}/step0/train.log",
    benchmark:
        f"{RESULTS}/{{dataset}}/_shared/{{group}}/seed{{seed}}/step0/train.benchmark.tsv"
    conda:
        "../../envs/ucd.yaml"
    threads: WF.threads_of("train")
    resources:
        **WF.resources_of("train"),
    params:
        ucd=WF.train_launcher(),
        decoded=decoded_arg,
        run=WF.shared_run_json,
    shell:
        "{params.ucd} train --run-json {params.run:q} --out {output.model}"
        " --metrics {output.metrics} --predictions {output.predictions} {params.decoded}"
        " > {log} 2>&1"
