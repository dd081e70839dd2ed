"""The final model behind `0-transfer.py`, as a library (`final.make_final_model(FinalRun(), preprocess_data)`).

config (the settings and their measured defaults) -> select (which backbone,
at which img_size: the benchmark's top scorer) -> train (the core pipeline:
frozen features -> head, then fine-tuned above the cut on cached maps) ->
model_file (the memoised steps: main network, optional head-only ensemble
members, test-time mirroring, each kept by its rule) -> evaluate (the
grader's check, JPEG robustness) -> final (transfer.json). One saved Keras
file whose first layer upscales 32x32 images.
"""
