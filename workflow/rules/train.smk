# Training: one job per (dataset, task, setting, method, seed, step); step k reads the
# checkpoint of step k-1, so it waits for it and is redone when it changes. The job evaluates
# its checkpoint on the validation set (metrics.json, predictions.npz for qualitative maps):
# the evaluation settings are part of the run config, and one process instead of two saves a
# Python start-up per step (`ucd evaluate` re-evaluates a checkpoint by hand). A training shared
# by several cells (ucd.plan: step 0 of plain methods, Joint) runs once under _shared/{group}/.
# RUN.yaml is written by a local job whose params are the resolved config, so a config change
# re-trains exactly the steps it changes and those after them.


localrules:
    run_config,
    run_config_shared,


rule run_config:
    output:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/step{{step}}/run.yaml",
    log:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/step{{step}}/run_config.log",
    params:
        run=lambda w: PLAN.run(cell_of(w), _check_step(w), int(w.seed)).to_dict(),
    run:
        write_yaml_atomic(params.run, output[0])
        write_log(log[0], f"wrote {output[0]}")


rule run_config_shared:
    output:
        f"{RESULTS}/{{dataset}}/_shared/{{group}}/seed{{seed}}/step0/run.yaml",
    log:
        f"{RESULTS}/{{dataset}}/_shared/{{group}}/seed{{seed}}/step0/run_config.log",
    params:
        run=lambda w: shared_run(w).to_dict(),
    run:
        write_yaml_atomic(params.run, output[0])
        write_log(log[0], f"wrote {output[0]}")


rule train:
    input:
        unpack(train_inputs),
    output:
        model=f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/step{{step}}/model.pt",
        metrics=f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/step{{step}}/metrics.json",
        predictions=f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/step{{step}}/predictions.npz",
    log:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/step{{step}}/train.log",
    benchmark:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/step{{step}}/train.benchmark.tsv"
    conda:
        "../../envs/ucd.yaml"
    threads: threads_of("train")
    resources:
        **resources_of("train"),
    params:
        ucd=train_launcher(),
        prev=prev_arg,
    shell:
        "{params.ucd} train --run {input.run} --out {output.model} {params.prev}"
        " --metrics {output.metrics} --predictions {output.predictions} > {log} 2>&1"


rule train_shared:
    input:
        unpack(shared_train_inputs),
    output:
        model=f"{RESULTS}/{{dataset}}/_shared/{{group}}/seed{{seed}}/step0/model.pt",
        metrics=f"{RESULTS}/{{dataset}}/_shared/{{group}}/seed{{seed}}/step0/metrics.json",
        predictions=f"{RESULTS}/{{dataset}}/_shared/{{group}}/seed{{seed}}/step0/predictions.npz",
    log:
        f"{RESULTS}/{{dataset}}/_shared/{{group}}/seed{{seed}}/step0/train.log",
    benchmark:
        f"{RESULTS}/{{dataset}}/_shared/{{group}}/seed{{seed}}/step0/train.benchmark.tsv"
    conda:
        "../../envs/ucd.yaml"
    threads: threads_of("train")
    resources:
        **resources_of("train"),
    params:
        ucd=train_launcher(),
    shell:
        "{params.ucd} train --run {input.run} --out {output.model}"
        " --metrics {output.metrics} --predictions {output.predictions} > {log} 2>&1"
