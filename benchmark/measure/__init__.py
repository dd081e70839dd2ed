"""Measurements beside the sweep: `epoch_cost`, a cached-head epoch against an end-to-end one."""
