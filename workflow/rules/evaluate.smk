# Evaluation: one job per trained step (metrics.json, predictions.npz for qualitative maps);
# a method reusing a shared step 0 gets a relabelled copy of the shared step-0 metrics.
# `final` marks a finished run: `snakemake results/D/T/S/METHOD/final` runs one benchmark.


localrules:
    step0_from_shared,
    final,


ruleorder: step0_from_shared > evaluate


rule evaluate:
    input:
        ckpt=f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/step{{step}}/model.pt",
    output:
        metrics=f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/step{{step}}/metrics.json",
        predictions=f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/step{{step}}/predictions.npz",
    log:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/step{{step}}/eval.log",
    conda:
        "../../envs/ucd.yaml"
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        ucd=config["ucd_command"],
    shell:
        "{params.ucd} evaluate --ckpt {input.ckpt} --out {output.metrics}"
        " --predictions {output.predictions} > {log} 2>&1"


rule evaluate_shared:
    input:
        ckpt=f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/_shared/{{group}}/step0/model.pt",
    output:
        metrics=f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/_shared/{{group}}/step0/metrics.json",
        predictions=f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/_shared/{{group}}/step0/predictions.npz",
    log:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/_shared/{{group}}/step0/eval.log",
    conda:
        "../../envs/ucd.yaml"
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        ucd=config["ucd_command"],
    shell:
        "{params.ucd} evaluate --ckpt {input.ckpt} --out {output.metrics}"
        " --predictions {output.predictions} > {log} 2>&1"


rule step0_from_shared:
    input:
        shared_step0_metrics,
    output:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/step0/metrics.json",
    log:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/step0/copy.log",
    conda:
        "../../envs/ucd.yaml"
    params:
        base=lambda w: resolve_method_name(config, w.method)[0],
    script:
        "../scripts/step0_metrics.py"


rule final:
    input:
        final_inputs,
    output:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/final",
    log:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/final.log",
    conda:
        "../../envs/ucd.yaml"
    script:
        "../scripts/write_final.py"
