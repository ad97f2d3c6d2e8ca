"""How good a registration is: the verdict (``verdict``), the QC picture (``picture``) and the
accuracy measures of the benchmarks and the demo (``accuracy``)."""
