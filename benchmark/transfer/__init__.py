"""The final model behind `0-transfer.py`, as a library.

select (which backbone, at which img_size: the benchmark's top scorer) ->
train (frozen features -> head, then the last block fine-tuned on cached
maps) -> ensemble (head-only members, weighted on validation) -> one saved
Keras file whose first layer upscales 32x32 images.
"""
