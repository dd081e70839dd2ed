"""backbone-bench runner: cached frozen-feature extraction and head accuracy on CIFAR-10."""
