"""The bottom floor: image morphology, affine helpers and the image pyramid.

Nothing here knows about files, padding or registration; every other subpackage may use it.
"""
