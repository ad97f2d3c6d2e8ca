"""Memory and GUI-thread stall of the panel's Apply (``mrml_bridge.ThreadedRegistration``) on real MRML.

Usage: python Testing/benchmarks/slicer_apply_memory.py [--moving 4] [--slices 200]

Needs the headless MRML library (``pip install slicer-core``). Builds a scene with one fixed and N
moving CT volumes of 256×256×slices int16, then runs the threaded registration the way the module
does (a polling loop on this thread) and prints:
- how long the constructor blocks the calling (GUI) thread and how much memory it adds;
- the peak resident memory during the whole run above the scene's own, in MB and in volumes;
- what stays after the run, next to the size of the registered volumes it added to the scene.
Peak memory comes from Linux's /proc/self/status (VmHWM, reset through /proc/self/clear_refs).
To compare with another checkout, run it with ``PYTHONPATH=<checkout>/CTAffineRegister``.
"""

from __future__ import annotations

import argparse
import ctypes
import time

import slicer

import CTAffineRegisterLib
from CTAffineRegisterLib import synthetic
from CTAffineRegisterLib.mrml import volume_nodes as mrml_bridge


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")


def _return_freed_memory() -> None:
    """Give freed heap pages back to the system, so later growth is not hidden by reused pages."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moving", type=int, default=4, help="number of moving volumes (default 4)")
    parser.add_argument("--slices", type=int, default=200, help="slices per volume (default 200)")
    arguments = parser.parse_args()

    pair = synthetic.make_pair(
        seed=2,
        fixed_size=(256, 256, arguments.slices),
        fixed_spacing=(1.5, 1.5, 1.5),
        moving_spacing=(1.5, 1.5, 1.5),
        moving_size=(256, 256, arguments.slices),
    )
    scene = slicer.vtkMRMLScene()
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "fixed")
    movings = [
        mrml_bridge.add_volume_node_from_image(scene, pair.moving, f"moving {index}")
        for index in range(arguments.moving)
    ]
    volume_mb = pair.moving.GetNumberOfPixels() * pair.moving.GetSizeOfPixelComponent() / 2**20
    del pair
    _return_freed_memory()

    baseline = _status_mb("VmRSS")
    _reset_peak()
    started = time.perf_counter()
    run = mrml_bridge.ThreadedRegistration(fixed, movings, transform="rigid")
    stall = time.perf_counter() - started
    after_init = _status_mb("VmRSS") - baseline
    run.start()
    while not run.poll():
        time.sleep(0.01)
    peak = _status_mb("VmHWM") - baseline
    statuses = [result.status for result in run.results]
    outputs_mb = sum(1 for result in run.results if result.volume_node is not None) * volume_mb
    del run
    _return_freed_memory()
    left = _status_mb("VmRSS") - baseline

    print(f"code: {CTAffineRegisterLib.__file__}")
    print(f"{arguments.moving} moving volumes of {volume_mb:.0f} MB each (256x256x{arguments.slices} int16)")
    print(f"constructor: {stall * 1000:.0f} ms on the calling thread, +{after_init:.0f} MB")
    print(f"peak during the run: +{peak:.0f} MB = {peak / volume_mb:.1f} volumes; results {statuses}")
    print(f"after the run: +{left:.0f} MB, of which {outputs_mb:.0f} MB are the registered volumes (scene)")


if __name__ == "__main__":
    main()
