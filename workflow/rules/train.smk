# Training: one job per (dataset, task, setting, method, step); step k reads the checkpoint
# of step k-1, so it waits for it and is redone when it changes. Step 0 of the methods that
# add nothing at step 0 is trained once per benchmark under _shared/{group}/ (see
# ucd.config.step0_group). RUN.yaml is written by a local job whose params are the resolved
# config, so a config change re-trains exactly the steps it changes and those after them.


localrules:
    run_config,
    run_config_shared,


rule run_config:
    output:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/step{{step}}/run.yaml",
    log:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/step{{step}}/run_config.log",
    conda:
        "../../envs/ucd.yaml"
    params:
        run=lambda w: step_config(w.dataset, w.task, w.setting, w.method, int(w.step)),
    script:
        "../scripts/write_run_config.py"


rule run_config_shared:
    output:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/_shared/{{group}}/step0/run.yaml",
    log:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/_shared/{{group}}/step0/run_config.log",
    conda:
        "../../envs/ucd.yaml"
    params:
        run=lambda w: shared_config(w.dataset, w.task, w.setting, w.group),
    script:
        "../scripts/write_run_config.py"


rule train:
    input:
        unpack(train_inputs),
    output:
        model=f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/step{{step}}/model.pt",
    log:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/step{{step}}/train.log",
    benchmark:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/step{{step}}/train.benchmark.tsv"
    conda:
        "../../envs/ucd.yaml"
    threads: threads_of("train")
    resources:
        **resources_of("train"),
    params:
        ucd=train_launcher(),
        prev=prev_arg,
    shell:
        "{params.ucd} train --run {input.run} --out {output.model} {params.prev} > {log} 2>&1"


rule train_shared:
    input:
        unpack(shared_train_inputs),
    output:
        model=f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/_shared/{{group}}/step0/model.pt",
    log:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/_shared/{{group}}/step0/train.log",
    benchmark:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/_shared/{{group}}/step0/train.benchmark.tsv"
    conda:
        "../../envs/ucd.yaml"
    threads: threads_of("train")
    resources:
        **resources_of("train"),
    params:
        ucd=train_launcher(),
    shell:
        "{params.ucd} train --run {input.run} --out {output.model} > {log} 2>&1"
