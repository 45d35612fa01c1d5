# Data: the embedded benchmark's generation, the split files (image ids per step), computed
# once per (dataset, task, setting) and reused by every method, and the replay sets (images of
# the old classes, RECALL), built once per (dataset, task, setting, step, images per class)
# from the dataset's replay source and shared by every method that replays there. A generated
# dataset's images are also decoded once (`decode_data`) and memory-mapped by every training
# job, which would otherwise decode the same files in each job (ucd/data/decoded.py).

from ucd.workflow.checks import GENERATORS


rule generate_data:
    output:
        directory(f"{RESULTS}/data/{{dataset}}"),
    log:
        f"{RESULTS}/logs/data/{{dataset}}.log",
    wildcard_constraints:
        dataset="|".join(GENERATORS),
    conda:
        "../../envs/ucd.yaml"
    threads: WF.threads_of("data")
    resources:
        **WF.resources_of("data"),
    params:
        ucd=config["ucd_command"],
    shell:
        "{params.ucd} data generate {wildcards.dataset} --root {output} > {log} 2>&1"


rule decode_data:
    input:
        f"{RESULTS}/data/{{dataset}}",
    output:
        directory(f"{RESULTS}/decoded/{{dataset}}"),
    log:
        f"{RESULTS}/logs/decoded/{{dataset}}.log",
    wildcard_constraints:
        dataset="|".join(GENERATORS),
    conda:
        "../../envs/ucd.yaml"
    threads: WF.threads_of("data")
    resources:
        **WF.resources_of("data"),
    params:
        ucd=config["ucd_command"],
    shell:
        "{params.ucd} data decode {wildcards.dataset} --root {input} --out {output} > {log} 2>&1"


rule split:
    input:
        unpack(lambda w: WF.data_inputs(w.dataset)),
    output:
        f"{RESULTS}/splits/{{dataset}}/{{task}}/{{setting}}.json",
    log:
        f"{RESULTS}/logs/splits/{{dataset}}/{{task}}/{{setting}}.log",
    conda:
        "../../envs/ucd.yaml"
    threads: WF.threads_of("split")
    resources:
        **WF.resources_of("split"),
    params:
        ucd=config["ucd_command"],
        root=lambda w: config["datasets"][w.dataset]["root"],
    shell:
        "{params.ucd} data split {wildcards.dataset} {wildcards.task} {wildcards.setting}"
        " --root {params.root} --out {output} --workers {threads} > {log} 2>&1"


rule replay_set:
    input:
        unpack(lambda w: WF.data_inputs(w.dataset)),
    output:
        directory(
            f"{RESULTS}/replay/{{dataset}}/{{task}}/{{setting}}/step{{step}}/n{{per_class}}"
        ),
    log:
        f"{RESULTS}/logs/replay/{{dataset}}/{{task}}/{{setting}}/step{{step}}/n{{per_class}}.log",
    wildcard_constraints:
        per_class=r"[1-9][0-9]*",
    conda:
        "../../envs/ucd.yaml"
    threads: WF.threads_of("data")
    resources:
        **WF.resources_of("data"),
    params:
        ucd=config["ucd_command"],
        source=lambda w: WF.replay_args(w.dataset),
    shell:
        "{params.ucd} data replay {wildcards.dataset} {wildcards.task} --step {wildcards.step}"
        " --per-class {wildcards.per_class} --out {output} {params.source} > {log} 2>&1"
