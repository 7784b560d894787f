"""Pipeline stages: thin glue that reads params and files, calls the library, writes outputs atomically.

Each stage is ``python -m unlearn.stages.<name> [paths]``; dvc.yaml is the one place that names the paths.
"""
