"""The field-of-view padding finder: what a scan's background is (padding value, air level, rings)
and which voxels hold real data (``analysis``), from the padded region touching the border (``region``)."""
