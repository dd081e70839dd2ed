"""Command line: `python -m benchmark --all`, `--backbones 'mobilenet*' Xception`, `--list`."""

from __future__ import annotations

import argparse
import os
import sys
import time

import backbones

from ..core.data import DATA_ENV
from ..core.datasets import BAD_IMAGES, canonical_data, data_name
from ..core.heads import HEADS
from ..core.phases import CLOCK, breakdown_lines
from ..core.progress import format_duration
from ..core.results import REGIMES
from ..core.store import CACHE_ENV, default_cache_dir
from ..run.config import DEFAULT_IMG_SIZE, QUICK, WORKER_JOBS, WORKER_MAX_RSS_MB, RunConfig, parse_executor
from . import exit_code, start

EPILOG = f"""
examples:
  python -m benchmark --all                         every backbone, quick defaults (minutes)
  python -m benchmark --backbones 'mobilenet*' Xception --sizes 96 160 native
  python -m benchmark --backbones MobileNetV2 --full   the complete 45k/5k/10k protocol
  python -m benchmark --list                        the registry as a table
  python -m benchmark --data folder:~/photos --backbones MobileNetV2 --sizes 96
                                                    your own images: one sub-folder per class

offline: point ${DATA_ENV} (or --data-dir) at a `cifar-10-batches-py` folder and
${backbones.WEIGHTS_ENV} (or --weights-dir) at a folder of <Name>_notop_imagenet.weights.h5
files. Backbones without a weights file there are timed with random weights and
get no accuracy. Features are cached in ${CACHE_ENV} or --cache-dir
(default {default_cache_dir()}); reruns reuse them.
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _size(text: str):
    if text.lower() == "native":
        return "native"
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"a size is a pixel count or 'native', got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmark",
        description="Compare frozen ImageNet backbones from keras.applications on CIFAR-10 (or your own images, "
                    "--data): "
                    "feature-extraction speed and the accuracy of heads trained on cached features.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_argument_group("what to run")
    which.add_argument("--all", action="store_true", help="every backbone in the registry")
    which.add_argument("--backbones", nargs="+", metavar="NAME",
                       help="names or wildcards, any case, e.g. 'efficientnet*' MobileNetV2")
    which.add_argument("--exclude", nargs="+", default=[], metavar="PATTERN", help="wildcards to leave out")
    which.add_argument("--pretrained", action="store_true",
                       help="only backbones whose weights file is in the weights folder")
    which.add_argument("--sizes", nargs="+", type=_size, metavar="SIZE",
                       help=f"input sizes in pixels and/or 'native' (default: {DEFAULT_IMG_SIZE}; "
                            f"with --full: native)")
    which.add_argument("--list", action="store_true", help="print the registry and exit")
    data = p.add_argument_group("data")
    data.add_argument("--data", default="cifar10", metavar="SPEC",
                      help="the images: cifar10 (default); folder:PATH, one sub-folder of images per class (optional "
                           "train/ and test/ inside; else a fifth of each class is held out for test); npz:PATH "
                           "holding x_train, y_train, x_test, y_test and optionally class_names")
    data.add_argument("--data-size", type=_positive_int, metavar="PX",
                      help="storage size of a folder's decoded images, in pixels (default: the median image side, "
                           "at most 224); an npz is resized to it when given")
    data.add_argument("--bad-images", choices=BAD_IMAGES, default="skip",
                      help="a folder image that cannot be decoded: skip it and count it (default), or stop there")
    data.add_argument("--train-size", type=_positive_int,
                      help=f"stratified training subset (default {QUICK['n_train']}, or all of a smaller --data; "
                           f"--full: all, 45000 of CIFAR-10)")
    data.add_argument("--val-size", type=_positive_int,
                      help=f"stratified subset of the held-out validation images (default {QUICK['n_val']}, or all "
                           f"of a smaller --data)")
    data.add_argument("--test-size", type=_positive_int,
                      help=f"stratified test subset (default {QUICK['n_test']}, or all of a smaller --data; --full: "
                           f"all, 10000 of CIFAR-10)")
    data.add_argument("--val-holdout", type=_positive_int,
                      help="training images held out as the validation split (default: a tenth, 5000 for CIFAR-10)")
    data.add_argument("--full", action="store_true",
                      help="the complete protocol: every image (CIFAR-10: 45000/5000/10000)")
    data.add_argument("--data-dir", help=f"local cifar-10-batches-py folder (default ${DATA_ENV}, "
                                         f"else keras.datasets download)")
    paths = p.add_argument_group("weights, cache and output")
    paths.add_argument("--weights-dir", help=f"folder of <Name>_notop_imagenet.weights.h5 "
                                             f"(default ${backbones.WEIGHTS_ENV}, else the Keras download)")
    paths.add_argument("--cache-dir", help=f"feature cache (default ${CACHE_ENV} or {default_cache_dir()})")
    paths.add_argument("--out", default="results",
                       help="results folder (default: results); a run adds its rows to those already there")
    paths.add_argument("--fresh", action="store_true",
                       help="start the results folder anew: delete its earlier rows (results.sqlite and exports)")
    run = p.add_argument_group("run")
    run.add_argument("--batch-size", type=_positive_int, default=32, help="extraction batch size (default 32)")
    run.add_argument("--seed", type=int, default=0, help="seed of the split, heads and bootstrap (default 0)")
    run.add_argument("--time-only", action="store_true", help="time extraction only; train no heads")
    run.add_argument("--regime", nargs="+", choices=REGIMES, default=["frozen"],
                     help="frozen (default): heads on the frozen base's features; finetune: also train the base's "
                          "last stage with an mlp head on cached maps, for backbones with pretrained weights "
                          "(Kornblith et al. 2019 rank networks both ways)")
    run.add_argument("--heads", nargs="+", choices=HEADS, help=f"heads to train (default: {' '.join(HEADS)})")
    run.add_argument("--time-images", type=_positive_int, default=64,
                     help="images timed for timing-only rows (default 64)")
    run.add_argument("--no-report", action="store_true", help="do not build the HTML report at the end")
    run.add_argument("-v", "--verbose", action="store_true",
                     help="show TensorFlow's and Keras's own log lines and warnings (hidden by default)")
    run.add_argument("--report-dir", help="where the report goes (default: OUT/report; OUT/report-NAME for a "
                                          "--data set named NAME)")
    run.add_argument("--precision", choices=list(backbones.PRECISIONS), default="fp32",
                     help="compute precision of the bases: fp32 (default) or bf16 (Keras mixed_bfloat16; "
                          "features and heads stay float32). bf16 features are cached separately")
    run.add_argument("--no-isolate", action="store_true",
                     help="extract every backbone in this process instead of in worker processes (no worker "
                          "start-up at all, but peak RSS and memory then carry over between all the backbones, and a "
                          "job killed for memory takes the run with it)")
    run.add_argument("--worker-jobs", type=_positive_int, default=WORKER_JOBS, metavar="N",
                     help=f"jobs one worker process runs before a fresh one takes over (default {WORKER_JOBS}; "
                          f"1: a fresh process per job, as before). A worker is also recycled after a failure, or "
                          f"when it holds more than --worker-max-rss-mb after a job")
    run.add_argument("--worker-max-rss-mb", type=_positive_int, default=WORKER_MAX_RSS_MB, metavar="MB",
                     help=f"recycle a worker process holding more than this after a job (default {WORKER_MAX_RSS_MB})")
    run.add_argument("--executor", default="local",
                     help="where extraction jobs run: local (default: worker processes here, one job at a time), "
                          "dask-local:N (a local Dask cluster of N workers), dask-local:gpus (one worker per "
                          "visible GPU), dask://HOST:PORT or tls://HOST:PORT (a running Dask scheduler; needs "
                          "pip install -r requirements-dask.txt)")
    run.add_argument("--plan", type=_positive_int, metavar="N",
                     help="estimate the wall time of --all --full on N workers like this machine, from the "
                          "throughputs in OUT/results.csv, and exit")
    run.add_argument("--recommend", action="store_true",
                     help="answer from OUT/results.csv which backbone and size to use within --max-ms-per-img, and "
                          "which others the paired test cannot tell from it; runs nothing")
    run.add_argument("--max-ms-per-img", type=_positive_float, metavar="MS",
                     help="with --recommend: the time budget per image of the whole base, on the machine that "
                          "measured the results")
    run.add_argument("--truth", metavar="DIR",
                     help="with --recommend: a results folder of networks fine-tuned on all the training images "
                          "(--full --regime finetune --out DIR), to check the quick ranking against")
    run.add_argument("--chunk-size", type=_positive_int, default=2048,
                     help="images per saved chunk; an interrupted extraction redoes at most one (default 2048)")
    return p


def print_registry(weights_dir: str | None, echo=print) -> None:
    header = f"{'model':18s} {'family':16s} {'native':>6s} {'min':>4s} {'params':>12s} {'dim':>5s} {'top1':>5s}"
    if weights_dir:
        header += "  weights"
    echo(header)
    for name in backbones.names():
        s = backbones.get(name)
        line = (f"{s.name:18s} {s.family:16s} {s.native_size:6d} {s.min_size:4d} {s.param_count:12,d} "
                f"{s.feature_dim:5d} {s.imagenet_top1:5.1f}")
        if weights_dir:
            line += "  file" if os.path.isfile(os.path.join(weights_dir, s.weights_filename)) else "  -"
        echo(line)
    echo(f"{len(backbones.names())} backbones. Columns: native = input size (px) of the ImageNet weights; min = "
         f"smallest input size Keras accepts; params = parameters without the top; dim = width of the pooled "
         f"features; top1 = published ImageNet top-1 (%)" + ("; weights = file in the weights folder or -" if
                                                              weights_dir else "") + ".")


def check_flags(args) -> None:
    """Contradictory or repeated flags: one line naming them, before anything runs."""
    if args.list and (args.all or args.backbones):
        raise ValueError("--list prints the registry and runs nothing; drop --all/--backbones, or drop --list")
    if args.heads is not None and len(set(args.heads)) != len(args.heads):
        raise ValueError(f"--heads names a head twice ({' '.join(args.heads)}); give each once")
    if args.time_only and args.heads is not None:
        raise ValueError("--time-only trains no heads; drop --heads, or drop --time-only")
    if len(set(args.regime)) != len(args.regime):
        raise ValueError(f"--regime names a regime twice ({' '.join(args.regime)}); give each once")
    if args.time_only and args.regime != ["frozen"]:
        raise ValueError("--time-only trains nothing, so --regime finetune has nothing to do; drop one of them")
    if args.recommend and (args.all or args.backbones or args.plan):
        raise ValueError("--recommend answers from the results at hand and runs nothing; drop --all/--backbones/"
                         "--plan, or drop --recommend")
    if args.recommend and args.max_ms_per_img is None:
        raise ValueError("--recommend needs a budget: add --max-ms-per-img MS (e.g. 10)")
    if args.max_ms_per_img is not None and not args.recommend:
        raise ValueError("--max-ms-per-img is the budget of --recommend; add --recommend, or drop it")
    if args.truth is not None and not args.recommend:
        raise ValueError("--truth is what --recommend checks its answer against; add --recommend, or drop it "
                         "(the report takes it too: python -m report --truth DIR)")
    if args.report_dir and args.no_report:
        raise ValueError("--report-dir says where the report goes and --no-report says to build none; drop one")


def config_from_args(args) -> RunConfig:
    if args.all and args.backbones:
        raise ValueError("give either --all or --backbones, not both")
    if not args.all and not args.backbones:
        raise ValueError("say what to run: --all, or --backbones NAME [NAME ...] (see --list)")
    weights_dir = args.weights_dir or os.environ.get(backbones.WEIGHTS_ENV)
    if args.weights_dir and not os.path.isdir(args.weights_dir):
        raise FileNotFoundError(f"--weights-dir {args.weights_dir!r} does not exist")
    if args.pretrained and not weights_dir:
        raise ValueError(f"--pretrained needs a weights folder: pass --weights-dir or set ${backbones.WEIGHTS_ENV}")
    names = backbones.list_models(["*"] if args.all else args.backbones, exclude_filters=args.exclude,
                                  pretrained=args.pretrained, weights_dir=weights_dir if args.pretrained else None)
    if not names:
        raise ValueError("no backbone left to run after --exclude/--pretrained")
    full = args.full
    if args.executor != "local" and args.no_isolate:
        raise ValueError("--no-isolate runs every job in this process; it cannot go with --executor "
                         f"{args.executor}")
    parse_executor(args.executor)  # a bad value fails before the data is loaded
    return RunConfig(
        backbones=tuple(names),
        img_sizes=tuple(args.sizes or (["native"] if full else [DEFAULT_IMG_SIZE])),
        n_train=args.train_size or (None if full else QUICK["n_train"]),
        n_val=args.val_size or (None if full else QUICK["n_val"]),
        n_test=args.test_size or (None if full else QUICK["n_test"]),
        n_val_holdout=args.val_holdout,
        data_dir=args.data_dir,
        data=canonical_data(args.data),
        data_size=args.data_size,
        bad_images=args.bad_images,
        weights_from=args.weights_dir,
        cache_dir=args.cache_dir,
        out=args.out,
        batch_size=args.batch_size,
        seed=args.seed,
        time_only=args.time_only,
        heads=tuple(args.heads or HEADS),
        n_time_images=args.time_images * (4 if full else 1),
        chunk_size=args.chunk_size,
        precision=args.precision,
        isolate=not args.no_isolate,
        worker_jobs=args.worker_jobs,
        worker_max_rss_mb=args.worker_max_rss_mb,
        executor=args.executor,
        regimes=tuple(args.regime),
    )


# Where a run ran, not what it measured: the reader's own folders and cluster, left out of its command line.
MACHINE_SETTINGS = ("data_dir", "weights_from", "cache_dir", "executor", "worker_jobs", "worker_max_rss_mb")


def print_breakdown(seconds: dict, wall_s: float) -> None:
    """Where the run's wall time went, phase by phase (`benchmark.core.phases`); with more than one worker
    at a time (Dask), the workers' phases overlap and can sum to more than the wall time."""
    forward = seconds.get("forward", 0.0)
    print(f"Where the time went: {format_duration(wall_s)} wall"
          + (f", of which timed forward passes {forward:.1f} s: {wall_s / forward:.2f}x their time" if forward else ""))
    for line in breakdown_lines(seconds, wall_s):
        print(line)


def command_line(settings: dict, out: str | None = None) -> str | None:
    """The shortest `python -m benchmark` command whose `config_from_args` has a recorded run's settings
    (environment.json's "config", a RunConfig as a dict), with `--out out` when given; MACHINE_SETTINGS are
    left to the reader. Flags are left out only where the parser gives the same RunConfig without them. None
    for a run without backbones, or with a setting no flag gives (a RunConfig made in Python)."""
    import dataclasses
    import json
    import shlex

    from .commands import parse, shortest

    if not settings.get("backbones"):
        return None
    if settings.get("n_val_holdout") == 5000 and settings.get("data", "cifar10") == "cifar10":
        settings = {**settings, "n_val_holdout": None}  # recorded before the default was "a tenth": the same 5000
    parser = build_parser()
    keys = [f.name for f in dataclasses.fields(RunConfig)
            if f.name in settings and f.name not in MACHINE_SETTINGS and f.name != "out"] + (["out"] if out else [])
    wanted = json.loads(json.dumps([{**settings, "out": out}[k] for k in keys]))

    def config(tokens: list[str]) -> RunConfig | None:
        args = parse(parser, tokens)
        try:
            return None if args is None else config_from_args(args)
        except (ValueError, KeyError, FileNotFoundError):
            return None

    def outcome(tokens: list[str]) -> list | None:
        found = config(tokens)
        return None if found is None else json.loads(json.dumps([getattr(found, k) for k in keys]))

    groups = _command_groups(settings, out)
    if settings.get("n_time_images"):  # other flags scale --time-images (--full): ask the parser what 1 gives
        probe = config([token for group in groups for token in group[-1]] + ["--time-images", "1"])
        groups.insert(len(groups) - bool(out),
                      ([], ["--time-images", str(settings["n_time_images"] // (probe.n_time_images if probe else 1))]))
    command = shortest(parser.prog, groups, outcome, wanted)
    if command is None:
        return None
    try:  # the flags' own consistency rules, which config_from_args leaves to main
        check_flags(parse(parser, shlex.split(command)[3:]))
    except ValueError:
        return None
    return command


def _command_groups(s: dict, out: str | None) -> list:
    """Each recorded setting's flag as alternatives for `commands.shortest`: left out first, explicit last."""
    full = any(k in s and s[k] is None for k in ("n_train", "n_val", "n_test"))
    values = (("n_train", "--train-size"), ("n_val", "--val-size"), ("n_test", "--test-size"),
              ("n_val_holdout", "--val-holdout"), ("seed", "--seed"), ("batch_size", "--batch-size"),
              ("chunk_size", "--chunk-size"), ("precision", "--precision"), ("data", "--data"),
              ("data_size", "--data-size"), ("bad_images", "--bad-images"))
    switches = (("--time-only", bool(s.get("time_only"))), ("--no-isolate", s.get("isolate") is False))
    return [
        (["--all"], ["--backbones", *s["backbones"]]),
        *([([], ["--sizes", *(str(v) for v in s["img_sizes"])])] if s.get("img_sizes") else []),
        *([([], ["--full"])] if full else []),
        *[([], [flag, str(s[key])]) for key, flag in values if s.get(key) is not None],
        *[([], [flag]) for flag, on in switches if on],
        *[([], [flag, *s[key]]) for key, flag in (("heads", "--heads"), ("regimes", "--regime")) if s.get(key)],
        *([(["--out", out],)] if out else []),
    ]


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    start(args.verbose)

    def work() -> int:
        check_flags(args)
        if args.list:
            print_registry(args.weights_dir or os.environ.get(backbones.WEIGHTS_ENV))
            return 0
        if args.plan:
            print_plan(args.out, args.plan, args.data)
            return 0
        if args.recommend:
            print_recommendation(args.out, args.max_ms_per_img, args.data, truth_dir=args.truth)
            return 0
        config = config_from_args(args)
        from report import build_report, report_dir as default_report_dir

        report_dir = args.report_dir or default_report_dir(config.out, data_name(config.data))
        if not args.no_report:  # found now, not after the whole run (and before --fresh deletes anything)
            from ..run.runner import check_writable_dir

            check_writable_dir(report_dir, "--report-dir")

        from ..core.results_db import run_lock
        from ..run.runner import Runner

        t_run = time.perf_counter()
        runner = Runner(config)
        with run_lock(config.out, fresh=args.fresh):  # --fresh deletes the results only when no other run writes
            frame = runner.run()
        print_summary(frame, runner.dataset)
        if frame is not None:
            print(f"{len(frame)} rows in {os.path.join(config.out, 'results.csv')}: this run added {runner.added} "
                  f"and replaced {runner.replaced} (the same backbone, size, head, weights and data); earlier runs' "
                  f"rows stay (--fresh starts anew).")
        if not args.no_report and frame is not None:
            from .commands import for_report

            with CLOCK.phase("report"):
                page = build_report(config.out, report_dir, echo=lambda *_: None, commands=for_report(),
                                    dataset=runner.dataset)
            print(f"Report: {page}")
        print_breakdown(CLOCK.snapshot(), time.perf_counter() - t_run)
        for failure in runner.failures:
            print(f"failed: {failure['model']} @{failure['img_size']}px on {failure['host']}: {failure['error']}",
                  file=sys.stderr)
        if runner.failures:
            print(f"{len(runner.failures)} job(s) failed; rerun the same command to retry only those.",
                  file=sys.stderr)
        return 1 if runner.failures else 0

    return exit_code(work, "interrupted: finished backbones are in the results and cache; "
                           "rerun the same command to resume.")


def print_plan(results_dir: str, n_workers: int, data: str = "cifar10", echo=print) -> None:
    """`--plan N`: the estimated `--all --full` sweep of `data`'s images on N workers (see `estimate_sweep` for
    the assumptions). Throughputs come from every row (they do not depend on the images); the image count
    from the dataset's last recorded run."""
    from ..core.results import load_results
    from ..core.results_db import live_runs
    from ..run.plan import FULL_IMAGES, estimate_sweep

    name = data_name(data)
    n_images = FULL_IMAGES
    if name != "cifar10":
        info = [r["dataset_info"] for r in live_runs(results_dir) if (r.get("dataset_info") or {}).get("name") == name]
        if not info:
            raise ValueError(f"--plan with --data {data}: no run of {name} in {results_dir} to count its images; run "
                             f"`python -m benchmark --data {data} --backbones MobileNetV2 --out {results_dir}` first")
        n_images = int(info[-1]["n_train_pool"]) + int(info[-1]["n_test"])
    jobs, makespan, unmeasured = estimate_sweep(load_results(results_dir), n_workers, n_images=n_images)
    echo(f"{'model':18s} {'img_size':>8s} {'estimate':>10s} {'worker':>6s}")
    for job in sorted(jobs, key=lambda j: -j["est_s"]):
        echo(f"{job['model']:18s} {job['img_size']:8d} {format_duration(job['est_s']):>10s} {job['worker']:6d}")
    total = sum(job["est_s"] for job in jobs)
    echo(f"--all --full of {name} at native sizes ({n_images:,} images per backbone) on {n_workers} worker(s) "
         f"like this "
         f"machine: about {format_duration(makespan)} (one worker: {format_duration(total)}), from the "
         f"throughputs in {results_dir}/results.csv scaled by FLOPs to the native size, plus 4 s of start-up a "
         f"job, packed longest first. Heads, data loading and transfers are not counted.")
    if unmeasured:
        echo(f"Not measured, so not counted: {', '.join(unmeasured)}.")


def print_recommendation(results_dir: str, max_ms: float, data: str = "cifar10", echo=print,
                         truth_dir: str | None = None) -> None:
    """`--recommend --max-ms-per-img MS`: the best row of `data` within the budget and the rows the paired
    test cannot tell from it (`report.analysis.recommend`), from the results at hand; with `truth_dir` (a
    `--full --regime finetune` run's folder), whether the networks fine-tuned on all the images agree."""
    from report.analysis import THRESHOLD, recommend
    from report.load import truth_frame

    from ..core.results import load_examples, load_results, of_dataset

    name = data_name(data)
    frame = of_dataset(load_results(results_dir), name)
    if frame.empty:
        raise ValueError(f"no rows of {name} in {os.path.join(results_dir, 'results.csv')}; run "
                         f"python -m benchmark on it first (or pass the --out it wrote to)")
    truth = truth_frame(truth_dir, name) if truth_dir is not None else None
    try:
        _, labels, predictions = load_examples(results_dir, name)
    except FileNotFoundError:
        labels, predictions = None, {}
    found = recommend(frame, labels, predictions, max_ms, truth)
    if found["best"] is None:
        fastest = found.get("fastest_ms")
        echo(f"No scored row of {name} runs within {max_ms:g} ms per image here" +
             (f"; the fastest takes {fastest:.1f} ms. Raise --max-ms-per-img." if fastest is not None else
              " (no scored row has a timing)."))
        return
    best = found["best"]
    peak = f", fp32 matmul peak {found['matmul_peak']:.1f} GFLOP/s" if found.get("matmul_peak") else ""
    echo(f"Within {max_ms:g} ms per image (the whole base, as measured on the machine that ran it{peak}): "
         f"{found['n_within']} of {found['n_scored']} scored rows of {name}.")
    echo(f"Best: {_row_text(best)}: validation {best['val_acc']:.1%}, test {best['test_acc']:.1%} "
         f"(95% CI {best['test_ci_low']:.1%}-{best['test_ci_high']:.1%}), {best['ms_per_img']:.1f} ms/image.")
    n_test = len(labels) if labels is not None else 0
    if found["alike"]:
        echo(f"Not distinguishable from it (exact McNemar test on the same {n_test} test images, p >= {THRESHOLD}):")
        for row in found["alike"]:
            faster = best["ms_per_img"] / row["ms_per_img"]
            echo(f"  {_row_text(row)}: test {row['test_acc']:.1%}, {row['ms_per_img']:.1f} ms/image, p = "
                 f"{row['p']:.2f}" + (f"  ({faster:.1f}x faster)" if faster > 1.05 else ""))
    elif found["n_within"] > 1 and not found["untested"]:
        echo(f"The paired test tells every other row within the budget from it (p < {THRESHOLD}).")
    if found["untested"]:
        echo(f"{found['untested']} rows within the budget have no per-image predictions in {results_dir} "
             f"(examples file), so they were not tested against it.")
    echo(truth_sentence(found, truth, truth_dir))


def truth_sentence(found: dict, truth, truth_dir: str | None) -> str:
    """What the full fine-tuned truth (`report.analysis.truth_verdict`) says of a recommendation, in a line."""
    checked = found.get("truth")
    if truth_dir is None:
        return ("The ranking comes from the benchmark's own subsets; whether it holds for networks fine-tuned on "
                "all the training images is not checked (--truth DIR: a --full --regime finetune run's folder).")
    if checked is None:
        return (f"{truth_dir} has no full fine-tuned row of {found['best']['model']}, or of another backbone within "
                f"the budget, so this answer is not checked against it.")
    n_train = int(truth["train_size"].max())
    if checked["agrees"]:
        return (f"Fine-tuned on all {n_train} training images ({truth_dir}), {checked['model']} also ranks first of "
                f"the {checked['n']} backbones measured there within the budget: test {checked['test_acc']:.1%}.")
    (low, high), (best_low, best_high) = checked["test_ci"], checked["best_test_ci"]
    return (f"The quick ranking misleads here: fine-tuned on all {n_train} training images ({truth_dir}), "
            f"{checked['model']} reaches {checked['test_acc']:.1%} test (95% CI {low:.1%}-{high:.1%}) against "
            f"{checked['best_test_acc']:.1%} ({best_low:.1%}-{best_high:.1%}) for {found['best']['model']}. If you "
            f"will fine-tune on all the images, prefer {checked['model']}.")


def _row_text(row: dict) -> str:
    return f"{row['model']} @{row['img_size']}px ({row['regime']}, {row['head']} head)"


def print_summary(frame, dataset: str | None = None, echo=print) -> None:
    """`dataset`'s rows (None: all): the scored ones best first by the shared rule
    (`benchmark.core.results.ranked`), then the timed-only rows by speed, then the top scorer."""
    import pandas as pd

    from ..core.results import of_dataset, ranked, top_scorer

    frame = None if frame is None else of_dataset(frame, dataset)
    if frame is None or frame.empty:
        return
    cols = ["model", "img_size", "precision", "regime", "head", "weights", "samples_per_sec", "val_acc", "test_acc",
            "test_ci_low", "test_ci_high"]
    scored = ranked(frame)
    rest = frame.drop(index=scored.index).sort_values("samples_per_sec", ascending=False, na_position="last")
    table = pd.concat([scored, rest])[cols]
    echo("")
    echo(table.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.3f}"))
    top = top_scorer(frame)
    if top is not None:
        echo(f"\nTop scorer (best validation accuracy in either regime; ties: frozen, faster, simpler head): "
             f"{top['model']} at {int(top['img_size'])} px, {top.get('regime', 'frozen')} regime, {top['head']} "
             f"head, validation {top['val_acc']:.3f}, test "
             f"{top['test_acc']:.3f} (95% CI {top['test_ci_low']:.3f}-{top['test_ci_high']:.3f}).")
