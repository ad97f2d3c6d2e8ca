"""The Slicer side: volume nodes ↔ images and the registration of volume nodes (``volume_nodes``),
segmentations carried along (``segmentations``). The only subpackage that imports ``slicer``/``vtk``.

Nothing is imported here, so importing the package never needs Slicer until a module is asked for.
"""
