"""The commands that regenerate the page: each live run's `python -m benchmark`, the final model's
`python 0-transfer.py` and `python -m report`, all from the command lines' own builders (`Commands`)."""

from __future__ import annotations

from ..doc import Doc
from ..html import esc


def reproduction(doc: Doc) -> str:
    if doc.commands is None:
        return ("<h2>Reproduction</h2>\n<p class=muted>This page was built by a library call without the command "
                "lines, so it names no commands; <code>python -m report</code> builds it with them.</p>")
    lines = _benchmark_lines(doc)
    if doc.transfer:
        command = doc.commands.transfer(doc.transfer)
        lines.append(f"{command}    # writes transfer.json and transfer.npz beside cifar10.h5: copy them into "
                     f"{doc.results.results_dir}" if command else
                     "# the final model: no 0-transfer.py command gives the settings in transfer.json")
    flag = doc.results.dataset_flag  # passed only when needed: a command line built before --dataset still works
    truth = doc.env.get("truth_dir")
    for run in doc.env.get("truth_runs") or []:  # the truth folder's runs, into their own folder
        command = doc.commands.benchmark(run["settings"], truth) if run["settings"] else None
        if command:
            lines.append(f"{command}    # at git {run.get('git_sha') or 'unknown'}")
    lines.append(doc.commands.report(doc.results.results_dir, doc.out_dir, *([flag] if flag else []),
                                     **({"truth": truth} if truth else {})))
    return ("<h2>Reproduction</h2>\n<p>With the data and weights folders of the README's offline setup, these "
            "commands, each from a clone at the commit named beside it, regenerate every table and figure (runs "
            "into the same --out folder add their rows):</p><pre>" + esc("\n".join(lines)) + "</pre>")


def _benchmark_lines(doc: Doc) -> list[str]:
    """One line per run whose rows the folder still holds (a run recorded without settings, e.g. an import of
    an older results.csv, has none), each command once."""
    env = doc.env
    runs = env.get("runs") or [{"settings": env.get("config") or {}, "git_sha": env.get("git_sha")}]
    lines, seen = [], set()
    for run in runs:
        if not run["settings"]:
            continue
        sha = run.get("git_sha") or "unknown"
        command = doc.commands.benchmark(run["settings"], doc.results.results_dir)
        line = (f"{command}    # at git {sha}" if command else
                f"# the run at git {sha}: no python -m benchmark command gives its settings (started from Python?)")
        if line not in seen:
            seen.add(line)
            lines.append(line)
    return lines
