# Evaluation: one job per trained step (metrics.json, predictions.npz for qualitative maps);
# a cell whose step is a shared training gets its own metrics.json, the shared confusion
# matrix summarised with the cell's columns (its task's old and new classes).
# `final` marks a finished run: `snakemake RESULTS/D/T/S/METHOD/seedN/final` runs one.


localrules:
    metrics_from_shared,
    final,


ruleorder: metrics_from_shared > evaluate


rule evaluate:
    input:
        ckpt=f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/step{{step}}/model.pt",
    output:
        metrics=f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/step{{step}}/metrics.json",
        predictions=f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/step{{step}}/predictions.npz",
    log:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/step{{step}}/eval.log",
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
        ckpt=f"{RESULTS}/{{dataset}}/_shared/{{group}}/seed{{seed}}/step0/model.pt",
    output:
        metrics=f"{RESULTS}/{{dataset}}/_shared/{{group}}/seed{{seed}}/step0/metrics.json",
        predictions=f"{RESULTS}/{{dataset}}/_shared/{{group}}/seed{{seed}}/step0/predictions.npz",
    log:
        f"{RESULTS}/{{dataset}}/_shared/{{group}}/seed{{seed}}/step0/eval.log",
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


rule metrics_from_shared:
    input:
        shared_metrics,
    output:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/step{{step}}/metrics.json",
    params:
        run=lambda w: PLAN.run(cell_of(w), int(w.step), int(w.seed)).to_dict(),
    run:
        write_json_atomic(cell_metrics(input[0], params.run), output[0])


rule final:
    input:
        final_inputs,
    output:
        f"{RESULTS}/{{dataset}}/{{task}}/{{setting}}/{{method}}/seed{{seed}}/final",
    run:
        write_json_atomic(final_record(input), output[0])
