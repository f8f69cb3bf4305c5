"""cytodask.demo: a deterministic synthetic single-cell atlas (the embedded demo atlas and test truth).

The atlas has donors (one sample each) that are healthy or diseased, with age,
BMI and sex; a three-level cell-type hierarchy (L1 ⊃ L2 ⊃ L3) whose proportions
vary per donor; and negative-binomial UMI counts in which chosen cytokine
responses, built from the real CytoSig signature, are planted in disease
samples. Everything is a pure function of :class:`SyntheticAtlasSpec`: any block
of cells comes out the same whatever block boundaries are asked for, on any
machine.

Expression model
----------------
For cell ``c`` of L3 type ``k`` (L2 type ``l``) in sample/donor ``d`` and gene
``g`` the count is ``X_cg ~ NB(mean mu_cg, inverse dispersion r_g)`` with

.. math::

    \\mu_{cg} = L \\, \\lambda_l \\, s_c \\, \\pi_{kg} \\, e^{\\delta_{dg}}
               \\, 2^{\\beta_{dlg}}, \\qquad
    \\pi_{kg} = \\frac{w_g \\, 2^{\\,m_{kg}}}{\\sum_h w_h \\, 2^{\\,m_{kh}}}

- ``log w_g ~ N(0, 1.5²) + 1{g in CytoSig}``: log-normal baseline over genes,
  CytoSig (response) genes e-fold higher; at 20,000 genes this gives ~92 %
  zeros, ~1,600 detected genes and a median ~2,400 UMIs per cell (fewer
  zeros with fewer genes: ~81 % at 6,000);
- ``m_kg``: cell-type programmes, the sum of the log2 fold changes of the
  L1, L2 and L3 types of ``k``; each type up-regulates ``N_MARKERS[level]``
  random genes by ``Uniform(0.5, 3)`` log2 units;
- ``L = 2,300`` UMIs, ``lambda_l`` a per-L2 depth multiplier (monocytes deeper
  than lymphocytes), ``s_c = exp(0.25 z)`` a per-cell library size factor;
- ``delta_dg ~ N(0, DONOR_SD²)``: per-donor gene noise;
- ``r_g = exp(Uniform(log 1, log 20))``: gene-wise inverse dispersion;
- planted responses: for each ``(cytokine, cell_type_l2, strength)`` in
  ``spec.planted`` and each *disease* donor ``d``,
  ``beta_dlg = strength * a_d * 2 * S_g / max_h |S_h|`` for cells of that L2
  type, where ``S`` is the CytoSig column of the cytokine (0 for non-CytoSig
  genes) and ``a_d ~ Uniform(0.6, 1.4)`` the donor's response magnitude. The
  strongest responder gene moves by ``2 * strength`` log2 units on average;
  healthy donors and other cell types get ``beta = 0``.

Counts are drawn tile by tile (``spec.tile_cells`` cells) with the exact sparse
NB sampler of :mod:`cytodask.demo._nb`.

Random streams
--------------
Every stream is ``np.random.default_rng(np.random.SeedSequence(spec.seed,
spawn_key=(stream, index)))``: genes, donors, per-donor gene noise
(index = donor), cell labels per tile and counts per tile (index = tile). A tile
is always generated whole, so a block's values never depend on how it was cut.

Modules
-------
- :mod:`~cytodask.demo.spec`: :class:`SyntheticAtlasSpec`, the model constants, the random streams;
- :mod:`~cytodask.demo.truth`: gene and donor parameters, planted responses
  (:func:`gene_table`, :func:`donor_table`, :func:`planted_truth`);
- :mod:`~cytodask.demo.cells`: cell labels and ``obs`` (:func:`cell_metadata`);
- :mod:`~cytodask.demo.counts`: counts per tile and per block (:func:`generate_block`, :func:`iter_blocks`);
- :mod:`~cytodask.demo.h5ad`: the ``.h5ad`` writer (:func:`write_h5ad`);
- :mod:`~cytodask.demo.run`: ``cytodask demo``.
"""

from __future__ import annotations

from cytodask.demo.cells import cell_metadata
from cytodask.demo.counts import generate_block, iter_blocks
from cytodask.demo.h5ad import write_h5ad
from cytodask.demo.spec import SyntheticAtlasSpec
from cytodask.demo.truth import donor_table, gene_table, planted_truth

__all__ = [
    "SyntheticAtlasSpec",
    "cell_metadata",
    "donor_table",
    "gene_table",
    "generate_block",
    "iter_blocks",
    "planted_truth",
    "write_h5ad",
]
