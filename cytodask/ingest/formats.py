"""What :func:`~cytodask.ingest.sources.open_source` reads, in words (no imports: the CLI's ``--help`` shows it)."""

from __future__ import annotations

SUPPORTED = (
    ".h5ad file; 10x Cell Ranger matrix directory (matrix.mtx[.gz], features.tsv[.gz] or genes.tsv, "
    "barcodes.tsv[.gz]) or filtered_feature_bc_matrix.h5; .loom file; remote .h5ad URL (http://, https://, "
    "s3://, gs://); census:[VERSION][?QUERY] (CELLxGENE Census); synthetic:ATLAS[?size=unit&cells=N&seed=S&dir=DIR] "
    "(an atlas of the synthetic world: cima, inflammation or scatlas, generated on first use)"
)
