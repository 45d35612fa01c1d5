# Data: the embedded benchmark's generation and the split files (image ids per step),
# computed once per (dataset, task, setting) and reused by every method.


rule generate_data:
    output:
        directory(f"{RESULTS}/data/{{dataset}}"),
    log:
        f"{RESULTS}/logs/data/{{dataset}}.log",
    wildcard_constraints:
        dataset="|".join(GENERATORS),
    conda:
        "../../envs/ucd.yaml"
    threads: threads_of("data")
    resources:
        **resources_of("data"),
    params:
        ucd=config["ucd_command"],
    shell:
        "{params.ucd} data generate {wildcards.dataset} --root {output} > {log} 2>&1"


rule split:
    input:
        unpack(lambda w: data_inputs(w.dataset)),
    output:
        f"{RESULTS}/splits/{{dataset}}/{{task}}/{{setting}}.json",
    log:
        f"{RESULTS}/logs/splits/{{dataset}}/{{task}}/{{setting}}.log",
    conda:
        "../../envs/ucd.yaml"
    threads: threads_of("split")
    resources:
        **resources_of("split"),
    params:
        ucd=config["ucd_command"],
        root=lambda w: config["datasets"][w.dataset]["root"],
    shell:
        "{params.ucd} data split {wildcards.dataset} {wildcards.task} {wildcards.setting}"
        " --root {params.root} --out {output} --workers {threads} > {log} 2>&1"
