"""The options the Slicer panel and the console pass (transform type, fill) reach the nodes made, on
both paths: ``register_volume_nodes`` (console, batch mode) and ``ThreadedRegistration`` (the panel).
Against the real MRML library (PyPI ``slicer-core``)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from support.small_pairs import TINY_PAIR

try:
    import slicer
except ImportError as error:  # slicer-core has wheels for CPython 3.10-3.13 only
    pytest.skip(
        f"the MRML library (PyPI package slicer-core) cannot be imported here: {error}",
        allow_module_level=True,
    )

from CTAffineRegisterLib import synthetic
from CTAffineRegisterLib.mrml import volume_nodes as mrml_bridge


@pytest.fixture(scope="module")
def pair():
    return synthetic.make_pair(seed=21, **TINY_PAIR)


@pytest.fixture
def scene():
    scene = slicer.vtkMRMLScene()
    yield scene
    scene.Clear(1)


def _from_parent_matrix(transform_node) -> np.ndarray:
    matrix = transform_node.GetTransformFromParent().GetMatrix()
    return np.array([[matrix.GetElement(row, column) for column in range(3)] for row in range(3)])


def _threaded(fixed, movings, **options) -> list:
    run = mrml_bridge.ThreadedRegistration(fixed, movings, create_mask=True, **options)
    run.start()
    while not run.poll():
        threading.Event().wait(0.01)
    return run.results


def _register(path: str, fixed, moving, **options):
    if path == "console":
        (result,) = mrml_bridge.register_volume_nodes(fixed, [moving], create_mask=True, **options)
    else:
        (result,) = _threaded(fixed, [moving], **options)
    return result


@pytest.mark.parametrize("path", ["console", "panel"])
def test_the_fill_asked_for_is_where_there_is_no_moving_data(scene, pair, path):
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "B")
    result = _register(path, fixed, moving, fill=-2500.0)
    assert result.status == "ok" and result.report["fill"] == -2500.0
    volume = slicer.util.arrayFromVolume(result.volume_node)
    mask = slicer.util.arrayFromVolume(result.mask_node)
    assert (mask == 0).any() and np.all(volume[mask == 0] == -2500)
    assert not np.any(volume[mask > 0] == -2500)


@pytest.mark.parametrize("path", ["console", "panel"])
def test_a_rigid_registration_makes_a_rigid_transform_node(scene, pair, path):
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "B")
    result = _register(path, fixed, moving, transform="rigid")
    assert result.status == "ok"
    matrix = _from_parent_matrix(result.transform_node)
    assert np.allclose(matrix.T @ matrix, np.eye(3), atol=1e-6)
    assert result.report["transform_type"] == "rigid"
