"""Measurements beside the sweep: `epoch_ratio`, a cached-head epoch against an end-to-end one."""
