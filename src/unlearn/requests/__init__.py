"""Deletion requests as an operation: the inbox (what arrives), the ledger (what happened to each request),
ingestion (inbox -> ledger -> the cumulative accepted forget list) and lineage/audit over registry tags.

No MLflow and no Prefect here: the flow in ``flows/deletion_requests.py`` and ``unlearn.cli_ops`` wire these
functions to the registry and the scheduler.
"""
