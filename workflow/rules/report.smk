# Reporting: the summary CSV, the paper's tables (LaTeX + HTML + CSV of mean, std, n over
# seeds; only the rows and column groups that were run) and figures, per-step curves,
# qualitative maps, the verdict on each claim of the paper and the fidelity of the runs to the
# paper (rank correlation, retention), from the runs of the grid. A table or figure reads
# only its own cells, so `snakemake table1` runs only what Table 1 shows.


localrules:
    summary,
    table,
    table_compare,
    figure,
    curves,
    qualitative,
    claims,
    fidelity,


rule summary:
    input:
        PLAN.metrics(),
    output:
        f"{RESULTS}/summary.csv",
    log:
        f"{RESULTS}/logs/summary.log",
    conda:
        "../../envs/ucd.yaml"
    threads: WF.threads_of("report")
    resources:
        **WF.resources_of("report"),
    params:
        ucd=config["ucd_command"],
        results=lambda w: RESULTS,
    shell:
        "{params.ucd} report collect --results {params.results} --out {output} > {log} 2>&1"


rule table:
    input:
        lambda w: WF.table_metrics(w.table),
    output:
        csv=f"{RESULTS}/tables/{{table}}.summary.csv",
        values=f"{RESULTS}/tables/{{table}}.csv",
        tex=f"{RESULTS}/tables/{{table}}.tex",
        html=report(
            f"{RESULTS}/tables/{{table}}.html",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}"},
        ),
    log:
        f"{RESULTS}/logs/tables/{{table}}.log",
    wildcard_constraints:
        table=r"table[1-9]",
    conda:
        "../../envs/ucd.yaml"
    threads: WF.threads_of("report")
    resources:
        **WF.resources_of("report"),
    params:
        ucd=config["ucd_command"],
        results=lambda w: RESULTS,
        embedded=WF.embedded_arg(),
        caption=lambda w: WF.table_caption(w.table),
        note=WF.note_arg(),
    shell:
        "({params.ucd} report collect --results {params.results} --out {output.csv}"
        " && {params.ucd} report table {wildcards.table} {params.embedded}"
        " --summary {output.csv} --out {output.tex} {output.html} {output.values}{params.note})"
        " > {log} 2>&1"


rule table_compare:
    input:
        csv=f"{RESULTS}/tables/{{table}}.summary.csv",
    output:
        tex=f"{RESULTS}/tables/{{table}}_compare.tex",
        html=report(
            f"{RESULTS}/tables/{{table}}_compare.html",
            caption="../report/table.rst",
            category="Tables (paper vs ours)",
            labels={"table": "{table}"},
        ),
    log:
        f"{RESULTS}/logs/tables/{{table}}_compare.log",
    wildcard_constraints:
        table=r"table[1-9]",
    conda:
        "../../envs/ucd.yaml"
    threads: WF.threads_of("report")
    resources:
        **WF.resources_of("report"),
    params:
        ucd=config["ucd_command"],
        caption=lambda w: WF.table_caption(w.table),
        note=WF.note_arg(),
    shell:
        "{params.ucd} report table {wildcards.table} --compare --summary {input.csv}"
        " --out {output.tex} {output.html}{params.note} > {log} 2>&1"


rule figure:
    input:
        lambda w: WF.table_metrics(w.figure),
    output:
        csv=f"{RESULTS}/figures/{{figure}}.summary.csv",
        pdf=f"{RESULTS}/figures/{{figure}}.pdf",
        png=report(
            f"{RESULTS}/figures/{{figure}}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
    log:
        f"{RESULTS}/logs/figures/{{figure}}.log",
    wildcard_constraints:
        figure=r"figure1[01]",
    conda:
        "../../envs/ucd.yaml"
    threads: WF.threads_of("report")
    resources:
        **WF.resources_of("report"),
    params:
        ucd=config["ucd_command"],
        results=lambda w: RESULTS,
        embedded=WF.embedded_arg(),
        caption=lambda w: WF.table_caption(w.figure),
        note=WF.note_arg(),
    shell:
        "({params.ucd} report collect --results {params.results} --out {output.csv}"
        " && {params.ucd} report figure {wildcards.figure} {params.embedded}"
        " --summary {output.csv} --out {output.pdf}{params.note}) > {log} 2>&1"


rule curves:
    input:
        summary=f"{RESULTS}/summary.csv",
    output:
        pdf=f"{RESULTS}/figures/curves/{{dataset}}/{{task}}/{{setting}}.pdf",
        png=report(
            f"{RESULTS}/figures/curves/{{dataset}}/{{task}}/{{setting}}.png",
            caption="../report/curves.rst",
            category="Per-step curves",
            labels={"benchmark": "{dataset}/{task}/{setting}"},
        ),
    log:
        f"{RESULTS}/logs/figures/curves/{{dataset}}/{{task}}/{{setting}}.log",
    conda:
        "../../envs/ucd.yaml"
    threads: WF.threads_of("report")
    resources:
        **WF.resources_of("report"),
    params:
        ucd=config["ucd_command"],
        methods=lambda w: " ".join(WF.grid_methods(w.dataset, w.task, w.setting)),
        note=WF.note_arg(),
    shell:
        "{params.ucd} report curves --summary {input.summary}"
        " --benchmark {wildcards.dataset}/{wildcards.task}/{wildcards.setting}"
        " --methods {params.methods} --out {output.pdf}{params.note} > {log} 2>&1"


rule qualitative:
    input:
        lambda w: WF.qualitative_inputs(w.dataset, w.task, w.setting).values(),
    output:
        pdf=f"{RESULTS}/figures/qualitative/{{dataset}}/{{task}}/{{setting}}.pdf",
        png=report(
            f"{RESULTS}/figures/qualitative/{{dataset}}/{{task}}/{{setting}}.png",
            caption="../report/qualitative.rst",
            category="Qualitative results",
            labels={"benchmark": "{dataset}/{task}/{setting}"},
        ),
    log:
        f"{RESULTS}/logs/figures/qualitative/{{dataset}}/{{task}}/{{setting}}.log",
    conda:
        "../../envs/ucd.yaml"
    threads: WF.threads_of("report")
    resources:
        **WF.resources_of("report"),
    params:
        ucd=config["ucd_command"],
        predictions=lambda w: WF.predictions_args(w.dataset, w.task, w.setting),
        note=WF.note_arg(),
    shell:
        "{params.ucd} report qualitative"
        " --benchmark {wildcards.dataset}/{wildcards.task}/{wildcards.setting}"
        " --predictions {params.predictions} --out {output.pdf}{params.note} > {log} 2>&1"


rule claims:
    input:
        summary=f"{RESULTS}/summary.csv",
    output:
        md=f"{RESULTS}/claims.md",
        html=report(
            f"{RESULTS}/claims.html",
            caption="../report/claims.rst",
            category="Claims of the paper",
        ),
    log:
        f"{RESULTS}/logs/claims.log",
    conda:
        "../../envs/ucd.yaml"
    threads: WF.threads_of("report")
    resources:
        **WF.resources_of("report"),
    params:
        ucd=config["ucd_command"],
        embedded=WF.embedded_arg(),
        note=WF.note_arg(),
    shell:
        "({params.ucd} report claims {params.embedded} --summary {input.summary}"
        " --out {output.md}{params.note}"
        " && {params.ucd} report claims {params.embedded} --summary {input.summary}"
        " --out {output.html}{params.note}) > {log} 2>&1"


rule fidelity:
    input:
        summary=f"{RESULTS}/summary.csv",
    output:
        md=f"{RESULTS}/fidelity.md",
        html=report(
            f"{RESULTS}/fidelity.html",
            caption="../report/fidelity.rst",
            category="Fidelity to the paper",
        ),
    log:
        f"{RESULTS}/logs/fidelity.log",
    conda:
        "../../envs/ucd.yaml"
    threads: WF.threads_of("report")
    resources:
        **WF.resources_of("report"),
    params:
        ucd=config["ucd_command"],
    shell:
        "{params.ucd} report fidelity --summary {input.summary}"
        " --out {output.md} {output.html} > {log} 2>&1"
