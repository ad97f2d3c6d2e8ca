"""Which voxels are real data, which are field-of-view padding, and what is air here.

Pure module (SimpleITK + numpy). CONTRACT (implementation in progress):

    corner_median(image) -> float
        Slicer's background value: sorted(8 corner voxels)[3].
    analyze_background(image, dicom_padding=None, name=None) -> BackgroundAnalysis

BackgroundAnalysis fields:
    corner_median: float
    padding_value: float | None        HU value of the detected FOV padding (None: no padding)
    padding_fraction: float            fraction of voxels that are padding (0..1)
    fov: FieldOfView | None            shape "circle"/"irregular", radius_mm, center (x, y) in mm
    air_value: float                   air level of this image (HU), -1024 when it has no air
    kind: str                          "fov-padding" | "fov-padding-equals-air" | "air-background" |
                                       "no-background" | "not-ct"
    summary: str                       e.g. "fov-padding (-3024, 21% of voxels, circular FOV r=250 mm)"
    valid_mask: sitk.Image (UInt8)     1 = real data, 0 = padding; same grid as the image
    body_mask: sitk.Image (UInt8)      1 = body (tissue, table excluded where practical)
    padding_is_air: bool               padding equals the air level: nothing to replace
    .to_dict() -> JSON-able dict without the masks
"""
