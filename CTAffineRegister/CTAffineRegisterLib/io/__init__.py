"""Reading and writing: images (with their header and voxel checks), DICOM series, transform files,
output formats written atomically, and the checks of what a Python caller passes in.

Named ``io`` inside the package only: modules of the package import the standard library's ``io``
with ``import io`` as usual (absolute imports), and this one with relative imports.
"""
