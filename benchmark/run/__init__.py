"""The sweep: plan (backbone, img_size) jobs, hand each to an executor, train heads, write rows.

config (RunConfig) -> plan -> executor (worker per job, or in process) -> runner (heads, rows)
"""
