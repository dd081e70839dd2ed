"""The core: data, the cache store, feature extraction (`features.ensure_features`, the one
load-or-extract), heads, fine-tuning, metrics, FLOPs and the results table.

It imports only the registry (`backbones`); everything above it (run,
transfer, measure, report, cli) imports it, never the other way round.
"""
