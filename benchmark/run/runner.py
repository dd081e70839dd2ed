"""The benchmark runner: for each (backbone, img_size, regime) get features, train heads, write rows.

Features come from `ensure_features`, through an executor (by default a
worker process that runs several jobs in turn, `executor.WorkerPool`). In the fine-tuned regime the job extracts the
maps below the backbone's cut and fine-tunes above it where it runs
(`ensure_finetuned`); the runner reads the scores from the cache. Every
expensive result is cached (features per split, head metrics, fine-tuned
scores), and the results table is rewritten atomically after each backbone,
so a rerun of the same command rebuilds the same table
without building any model.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout  # the builtin TimeoutError only from Python 3.11
from dataclasses import dataclass, replace

import numpy as np

import backbones

from ..core import sysinfo
from ..core.atomic import probe_writable
from ..core.data import Dataset, Split, SplitRecipe, splits_fingerprint
from ..core.datasets import canonical_data
from ..core.features import TIMING, BackboneJob, FeatureSet, cached_features, cached_meta, in_cache
from ..core.finetune import FineTuneConfig
from ..core.flops import PEAK_ENV, given_peak_gflops, matmul_peak_gflops
from ..core.heads import HEADS, HeadConfig
from ..core.keys import SCORED
from ..core.networks import ensure_head, load_finetuned
from ..core.phases import CLOCK
from ..core.progress import format_duration
from ..core.results import prediction_key, write_examples
from ..core.results_db import ResultsDB
from ..core.store import Store
from ..core.transferability import ensure_scores
from ..core.weights import weights_problem
from .config import QUICK, RunConfig, parse_executor
from .executor import InlineExecutor, JobFailed, ProcessExecutor, is_download_failure
from .plan import plan
from .rows import finetuned_row, head_row, measurement_row, timing_only_row

log = logging.getLogger("benchmark")
# Above this % of the matmul peak a row is implausible (VGG16's dense convolutions reach about 105% on an idle CPU).
DISTURBED_PCT = 130


@dataclass(frozen=True)
class Prepared:
    """A run's setup, made once by the runner: the plan, the images, the weights and the environment."""

    tasks: list  # (spec, img_size, regime): one job each
    splits: dict[str, Split]
    recipe: SplitRecipe
    data_fingerprint: str
    dataset: str  # its name, as the rows carry it
    weights: dict[str, backbones.WeightsSource]
    environment: dict
    bad_weights: dict[str, str]  # backbone -> why its weights file cannot be used


def prepare(config: RunConfig, store: Store, echo=print) -> Prepared:
    """Checks the request and the folders, loads the data and resolves every backbone's weights."""
    backbones.check_precision(config.precision)
    planned = plan(config)
    store.check_writable()
    check_writable_dir(config.out, "--out")
    weights = {spec.name: backbones.resolve_weights(spec.name, config.weights_from) for spec, _ in planned}
    specs = {spec.name: spec for spec, _ in planned}
    bad_weights = {name: problem for name, spec in specs.items()
                   if (problem := weights_problem(spec, weights[name], store))}  # before the data load
    data_spec = canonical_data(config.data)
    kind, path = data_spec.partition(":")[::2]
    echo(f"Loading {kind} {path} ..." if path else
         f"Loading CIFAR-10 from {config.data_dir or os.environ.get('CIFAR10_DIR') or 'keras.datasets'} ...")
    recipe = SplitRecipe(data=data_spec, data_size=config.data_size, bad_images=config.bad_images,
                         cache_dir=store.root, data_dir=config.data_dir)
    data = recipe.load(echo)
    check_dataset_name(config.out, data)
    recipe = replace(recipe, data_dir=data.source if data_spec == "cifar10" and data.source != "keras.datasets"
                     else None, **split_sizes(config, data, echo))
    splits = recipe.make(data)
    n = {name: len(split) for name, split in splits.items()}
    echo(f"Splits of {data.name} ({data.n_classes} classes, {splits['train'].x.shape[1]} px): train {n['train']}, "
         f"val {n['val']}, test {n['test']} (seed {config.seed})"
         + ("  [lossy JPEG copy of CIFAR-10]" if data.lossy_jpeg else ""))
    warn_mixed_protocols(config.out, data.name, n["train"], echo)
    random = sorted({name for name, w in weights.items() if not w.pretrained})
    if random and not config.time_only:
        where = config.weights_from or os.environ.get(backbones.WEIGHTS_ENV) or "the request"
        echo(f"No pretrained weights for {len(random)} of {len(weights)} backbones in {where}: "
             f"they are timed with random weights and their accuracy is left empty.")
    weights_dir = config.weights_from or os.environ.get(backbones.WEIGHTS_ENV)
    environment = {
        **sysinfo.environment(), "data_source": data.source, "data_lossy_jpeg": data.lossy_jpeg,
        "dataset": data.name, "dataset_info": data.describe(),
        "folders": {"data": data.source, "cache": store.root,
                    "weights": os.path.abspath(weights_dir) if weights_dir and os.path.isdir(weights_dir)
                    else weights_dir or "imagenet (Keras download)"},
        "config": vars(config), "heads": {kind: HeadConfig(kind=kind).as_dict() for kind in HEADS},
        "finetune": FineTuneConfig().as_dict() if "finetune" in config.regimes else None,
        "schema": "one row per (model, img_size, regime, head); see benchmark/core/results.py COLUMNS",
    }
    tasks = with_regimes(planned, config, weights)
    return Prepared(tasks, splits, recipe, splits_fingerprint(splits), data.name, weights, environment, bad_weights)


def check_dataset_name(out: str, data: Dataset) -> None:
    """Refuses a dataset whose name the results folder already gives to images from another folder or file: their
    rows, examples and report page would mix (`dataset` names them)."""
    from ..core.results_db import live_runs

    for env in live_runs(out) if data.name != "cifar10" else []:
        info = env.get("dataset_info") or {}
        if info.get("name") == data.name and info.get("source") and info["source"] != data.source:
            raise ValueError(f"{out} holds rows of a dataset named {data.name} from {info['source']}; {data.source} "
                             f"has the same name: rename one of them, or pass another --out")


def warn_mixed_protocols(out: str, dataset: str, n_train: int, echo=print) -> None:
    """Says so when `out` already holds `dataset` rows trained on another number of images: the top-scorer rule
    and the report would rank the quick subsets' rows and the full protocol's together."""
    from ..core.results import load_results, of_dataset

    try:
        earlier = of_dataset(load_results(out), dataset)["train_size"].dropna()
    except (FileNotFoundError, ValueError):  # no folder yet, or one the run will refuse with its own message
        return
    others = sorted({int(n) for n in earlier} - {n_train})
    if others:
        echo(f"Note: {out} already holds {dataset} rows trained on {', '.join(map(str, others))} images; this run's "
             f"({n_train}) will be ranked with them. To keep a full run apart (python -m report --truth DIR "
             f"compares them), pass another --out.")


def split_sizes(config: RunConfig, data: Dataset, echo=print) -> dict:
    """The recipe's image counts. The quick defaults are at most what a user's dataset has: a folder of 300
    images runs with all of them rather than failing for want of 2,000 (CIFAR-10 keeps its exact sizes)."""
    sizes = {"n_val_holdout": config.n_val_holdout, "n_train": config.n_train, "n_val": config.n_val,
             "n_test": config.n_test, "seed": config.seed}
    if canonical_data(config.data) == "cifar10":
        return sizes
    from ..core.data import default_val_holdout

    holdout = config.n_val_holdout or default_val_holdout(len(data.y_train))
    have = {"n_train": len(data.y_train) - holdout, "n_val": holdout, "n_test": len(data.y_test)}
    capped = {key: None for key, value in have.items() if sizes[key] == QUICK[key] and value <= QUICK[key]}
    if capped:
        echo(f"{data.name} has fewer images than the quick defaults: using all of them for "
             f"{', '.join(k[2:] for k in capped)}")
    return {**sizes, **capped}


def with_regimes(planned: list, config: RunConfig, weights: dict) -> list:
    """`(spec, img_size, regime)` tasks: a frozen one per (spec, img_size) pair, and a finetune one where asked
    and possible (pretrained weights, a registry cut, not --time-only). A backbone without weights is still timed."""
    items = []
    for spec, img_size in planned:
        scored = weights[spec.name].pretrained and not config.time_only
        if "frozen" in config.regimes or not scored:
            items.append((spec, img_size, "frozen"))
        if "finetune" in config.regimes and scored and spec.finetune_cut:
            items.append((spec, img_size, "finetune"))
    return items


@dataclass
class Pending:
    """A task in flight: its job, and either the executor's future or `cached` (read when its turn comes)."""

    job: BackboneJob
    cached: bool = False
    future: object = None
    submit_s: float = 0.0  # seconds the executor's submit took (the whole job, for a synchronous one)


class Runner:
    """Runs a `RunConfig`; `run()` returns the results DataFrame.

    Jobs go to `executor` (default: from `config.executor` and `config.isolate`)
    up to its `max_pending` ahead; rows are collected and written in plan order.
    A job whose worker fails is reported and skipped (`failures`); the sweep goes on.
    """

    status_every_s = 15.0

    def __init__(self, config: RunConfig, echo=print, executor=None):
        self.config, self.echo = config, echo
        self.store = Store(config.cache_dir)
        self.executor = executor  # None: made in run(), once the images are loaded
        self.failures: list[dict] = []
        self.added = self.replaced = 0  # rows this run added to the results folder, and superseded there
        self._peak: float | None = None
        self._warned_peak = False
        self.dataset: str | None = None  # the run's dataset name, once its images are loaded

    def matmul_peak(self) -> float:
        """fp32 matmul GFLOP/s of this machine, measured once per run when first needed."""
        if self._peak is None:
            given = given_peak_gflops()
            with CLOCK.phase("matmul_peak"):
                self._peak = given or matmul_peak_gflops()
            self.echo(f"fp32 matmul peak: {self._peak:.1f} GFLOP/s ({f'from ${PEAK_ENV}' if given else 'measured'})")
        return self._peak

    def run(self):
        CLOCK.take()  # this run's phases only (a caller may run several in one process)
        with CLOCK.phase("prepare"):
            prepared = prepare(self.config, self.store, self.echo)
        self.dataset = prepared.dataset
        own = self.executor is None
        executor = make_executor(self.config, prepared.splits, self.echo) if own else self.executor
        try:
            return self.sweep(prepared, executor)
        finally:
            if own:
                executor.close()

    def sweep(self, prepared: Prepared, executor):
        tasks, window = prepared.tasks, executor.max_pending
        t_start, rows, predictions, frame, pending = time.perf_counter(), [], {}, None, {}
        work = [self.planned_work(prepared, *item) for item in tasks]
        db = ResultsDB(self.config.out)
        try:
            run_id = db.start_run({**prepared.environment, "settings": prepared.environment.get("config")})
            for i, (spec, img_size, regime) in enumerate(tasks):
                t0 = time.perf_counter()  # this task's wait (a synchronous executor extracts inside submit)
                for j in range(len(pending) + i, min(len(tasks), i + window)):  # submit ahead, up to the window
                    pending[j] = self.start(prepared, *tasks[j], self.prefix(j, tasks), executor)
                task_rows = self.collect(prepared, pending.pop(i), spec, img_size, regime, predictions, executor,
                                         t_start)
                rows.extend(task_rows)
                with CLOCK.phase("write_results"):
                    added, replaced, frame = db.add(run_id, task_rows, {
                        **prepared.environment, "hosts": _hosts(rows), "failed": self.failures,
                        "phases_s": CLOCK.snapshot()})
                    self.added, self.replaced = self.added + added, self.replaced + replaced
                    with db.locked():  # another run into the same folder merges its predictions too
                        write_examples(self.config.out, prepared.splits["test"], predictions, prepared.dataset)
                self.echo_task(self.prefix(i, tasks), task_rows, time.perf_counter() - t0,
                               self.sweep_progress(i, work, time.perf_counter() - t_start))
        except KeyboardInterrupt:
            # queued jobs never start; finished chunks stay in the cache
            executor.cancel([p.future for p in pending.values() if p.future is not None])
            raise
        finally:
            db.close()
        self.echo(f"Finished {len(tasks)} backbone/size/regime jobs in {format_duration(time.perf_counter() - t_start)}"
                  + (f", {len(self.failures)} failed" if self.failures else "")
                  + f". Results: {os.path.join(self.config.out, 'results.csv')}")
        return frame

    def prefix(self, i: int, tasks) -> str:
        spec, img_size, regime = tasks[i]
        return f"[{i + 1}/{len(tasks)}] {spec.name} @{img_size}px" + (
            f" {self.config.precision}" if self.config.precision != "fp32" else "") + (
            " finetune" if regime == "finetune" else "")

    def planned_work(self, prepared: Prepared, spec, img_size: int, regime: str = "frozen") -> float:
        """A task's expected cost, for the sweep's ETA: its images, scaled by pixels, plus a fixed
        start-up (a fresh worker costs about as much as 500 images at 128 px on the project's CPU).
        Fine-tuning is counted as one more pass over the images (a rough guess)."""
        scored = prepared.weights[spec.name].pretrained and not self.config.time_only
        n_images = sum(len(prepared.splits[name]) for name in SCORED) if scored else \
            self.config.n_time_images + self.config.batch_size
        return n_images * (img_size / 128) ** 2 * (2 if regime == "finetune" else 1) + 500

    @staticmethod
    def sweep_progress(i: int, work: list[float], elapsed: float) -> str:
        done = sum(work[: i + 1])
        eta = elapsed * (sum(work) - done) / done
        return f"sweep {i + 1}/{len(work)}, {format_duration(elapsed)} elapsed, ETA {format_duration(eta)}"

    def echo_task(self, prefix: str, task_rows: list[dict], seconds: float, progress: str) -> None:
        if not task_rows:
            return
        accs = ", ".join(f"{r['head']} {r['test_acc']:.1%}" for r in task_rows if r.get("test_acc") is not None)
        self.echo(f"{prefix}  {task_rows[0]['samples_per_sec'] or float('nan'):.1f} img/s"
                  + (f"  test acc: {accs}" if accs else "  (timing only)")
                  + f"  [{format_duration(seconds)} this task; {progress}]")

    def start(self, prepared: Prepared, spec, img_size: int, regime: str, prefix: str, executor) -> Pending:
        """The task's cached features, or its job submitted to `executor`; a failure when its weights are bad."""
        job = self.job(prepared, spec, img_size, prepared.weights[spec.name], prefix, regime)
        if spec.name in prepared.bad_weights:
            failed: Future = Future()
            failed.set_exception(JobFailed(prepared.bad_weights[spec.name], "BadWeights", socket.gethostname()))
            return Pending(job, future=failed)
        if in_cache(job, prepared.splits, self.store) and (  # read when its turn comes, not all at once ahead
                job.finetune is None or self.finetuned(job, prepared) is not None):
            return Pending(job, cached=True)
        future, submit_s = self.submit(job, executor)
        return Pending(job, future=future, submit_s=submit_s)

    def submit(self, job: BackboneJob, executor) -> tuple:
        """`(future, seconds the executor's submit took)`: a synchronous executor runs the whole job in it."""
        job = replace(job, matmul_peak_gflops=self.matmul_peak(), peak_host=socket.gethostname())
        t0 = time.perf_counter()
        future = executor.submit(job)
        return future, time.perf_counter() - t0

    def cached(self, job: BackboneJob, prepared: Prepared) -> dict:
        """The job's cache entries: features for heads to train on; for a fine-tuned job, metadata only."""
        read = cached_meta if job.finetune is not None else cached_features
        return read(job, prepared.splits, self.store)

    def finetuned(self, job: BackboneJob, prepared: Prepared) -> dict | None:
        return load_finetuned(job, prepared.splits, self.store, self.config.seed)

    def collect(self, prepared: Prepared, pending: Pending, spec, img_size: int, regime: str, predictions: dict,
                executor, t_start: float) -> list[dict]:
        """The task's rows, once its features are there; none (and a failure noted) when its job failed."""
        try:
            sets, from_cache, weights = self.finish(prepared, pending, executor, t_start)
        except JobFailed as err:
            last = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
            self.failures.append({"model": spec.name, "img_size": img_size, "regime": regime, "host": err.host,
                                  "error": last})
            self.echo(f"{pending.job.label}  FAILED: {last}")
            return []
        return self.task_rows(prepared, spec, img_size, sets, from_cache, weights, predictions, pending.job)

    def finish(self, prepared: Prepared, pending: Pending, executor, t_start: float):
        """`(sets, from_cache, weights)`. A failed ImageNet download falls back to random
        weights: the backbone is still timed, and its accuracy is left empty."""
        job, future, submit_s = pending.job, pending.future, pending.submit_s
        if pending.cached:
            with CLOCK.phase("read_features"):
                sets = self.cached(job, prepared)
            if all(found is not None for found in sets.values()):
                self.echo(f"{job.label}  {'maps and fine-tuned scores' if job.finetune else 'features'} from cache")
                return sets, True, job.weights
            future, submit_s = self.submit(job, executor)  # an entry failed verification: make it now
        try:
            self.wait(future, executor, t_start, submit_s)
        except Exception as err:
            if not (is_download_failure(err) and job.weights.kind == "imagenet"):
                raise
            log.warning("%s; timing %s with random weights, accuracy left empty. Offline, put %s in a folder and "
                        "pass --weights-dir (README: 'Offline use').", str(err).splitlines()[-1], job.backbone,
                        job.spec.weights_filename)
            job = self.job(prepared, job.spec, job.img_size, backbones.WeightsSource("random"), job.label, "frozen")
            future, submit_s = self.submit(job, executor)
            self.wait(future, executor, t_start, submit_s)
        with CLOCK.phase("read_features"):
            sets = self.cached(job, prepared)
        missing = [name for name, found in sets.items() if found is None]
        if missing:
            raise JobFailed(f"the worker for {job.backbone} @{job.img_size}px finished but the cache lacks "
                            f"{', '.join(missing)}: is {self.store.root} the same folder for the worker?")
        if job.finetune is not None and self.finetuned(job, prepared) is None:
            raise JobFailed(f"the worker for {job.backbone} @{job.img_size}px finished but the cache lacks its "
                            f"fine-tuned scores: is {self.store.root} the same folder for the worker?")
        return sets, False, job.weights

    def wait(self, future, executor, t_start: float, submit_s: float = 0.0) -> dict:
        """`future.result()`, with a sweep status line every `status_every_s` while it runs elsewhere.
        The job's phases join this process's clock; the rest of the time since its submit (`submit_s` in
        submit, then this wait) is `job_transfer`."""
        t0 = time.perf_counter()
        while True:
            try:
                report = future.result(timeout=self.status_every_s)
                break
            except (TimeoutError, FutureTimeout):
                self.echo(f"[sweep] {format_duration(time.perf_counter() - t_start)} elapsed; {executor.status()}")
        phases = report.get("phases") or {}
        CLOCK.merge(phases)
        CLOCK.add("job_transfer", max(0.0, submit_s + time.perf_counter() - t0 - sum(phases.values())))
        return report

    def task_rows(self, prepared: Prepared, spec, img_size: int, sets, from_cache: bool, weights,
                  predictions: dict, job: BackboneJob) -> list[dict]:
        """The rows of one (backbone, img_size, regime); adds its heads' test predictions to `predictions`."""
        n_images = {name: len(prepared.splits[name]) for name in SCORED}
        shared = measurement_row(spec, img_size, weights, sets, self.config, n_images, prepared.data_fingerprint,
                                 from_cache, prepared.dataset)
        self.check_peak(shared)
        if TIMING in sets:
            return [timing_only_row(shared)]
        if job.finetune is not None and weights.pretrained:
            result = self.finetuned(job, prepared)
            scored = [(finetuned_row(shared, result), result)]
        else:
            train = sets["train"]
            with CLOCK.phase("scores"):
                shared = {**shared, **ensure_scores(train.features, train.labels, train.key, self.store)}
            with CLOCK.phase("heads"):
                scored = [(head_row(shared, kind, result, spec.feature_dim), result)
                          for kind, result in ((kind, self.head(kind, sets)) for kind in self.config.heads)]
        for row, result in scored:
            predictions[prediction_key(row)] = np.asarray(result["test_pred"], np.int64)
        return [row for row, _ in scored]

    def check_peak(self, row: dict) -> None:
        """Warns once when a backbone beats the matmul peak by far: the peak was then measured on a busy machine."""
        if (row.get("pct_of_peak") or 0) > DISTURBED_PCT and not self._warned_peak:
            self._warned_peak = True
            log.warning("%s ran at %.0f%% of the measured fp32 matmul peak (%.1f GFLOP/s): the peak was probably "
                        "measured while something else used the CPU, so pct_of_peak overstates. Rerun on an idle "
                        "machine.", row["model"], row["pct_of_peak"], row["matmul_peak_gflops"])

    def job(self, prepared: Prepared, spec, img_size: int, weights, prefix: str, regime: str) -> BackboneJob:
        cfg = self.config
        scored = weights.pretrained and not cfg.time_only
        tuned = scored and regime == "finetune"
        return BackboneJob(spec.name, img_size, weights, splits=SCORED if scored else (TIMING,), data=prepared.recipe,
                          cut=spec.finetune_cut if tuned else None,
                          finetune=FineTuneConfig().as_dict() if tuned else None,
                          cache_dir=self.store.root, data_fingerprint=prepared.data_fingerprint,
                          precision=cfg.precision, batch_size=cfg.batch_size, chunk_size=cfg.chunk_size,
                          n_time_images=cfg.n_time_images, time_budget_s=cfg.time_budget_s, label=prefix)

    def head(self, kind: str, sets: dict[str, FeatureSet]) -> dict:
        """A trained head's measurements, from the store when the same features were scored before."""
        return ensure_head(kind, sets, self.store, seed=self.config.seed)


def make_executor(config: RunConfig, splits: dict[str, Split], echo=print):
    """The executor `config` asks for; Dask is imported only here, and only when asked."""
    chosen = parse_executor(config.executor)
    if chosen["kind"] == "local":
        return ProcessExecutor(config.worker_jobs, config.worker_max_rss_mb, echo) if config.isolate \
            else InlineExecutor(splits, echo)
    try:
        from .dask_executor import DaskExecutor
    except ImportError as err:
        raise ValueError(f"--executor {config.executor} needs Dask distributed ({err}); "
                         f"pip install -r requirements-dask.txt") from None
    executor = DaskExecutor(chosen.get("address"), chosen.get("n_workers"), chosen.get("gpus", False),
                            config.worker_jobs, config.worker_max_rss_mb)
    echo(f"Dask: {len(executor.workers())} workers at {executor.client.scheduler.address}")
    return executor


def _hosts(rows: list[dict]) -> list[str]:
    return sorted({r["host"] for r in rows if r.get("host")} | {socket.gethostname()})


def check_writable_dir(path: str, flag: str) -> None:
    """Raises PermissionError naming `flag` when `path` cannot be written."""
    try:
        probe_writable(path)
    except OSError as err:
        raise PermissionError(f"{flag} folder {path!r} is not writable ({err.strerror or err}); "
                              f"pass a writable folder to {flag}.") from err
