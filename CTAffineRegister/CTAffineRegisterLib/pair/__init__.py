"""One pair of scans, end to end: register (``register``), judge any transform (``check``), apply a
transform to scans and label maps (``apply``). ``cohort`` runs many pairs."""
