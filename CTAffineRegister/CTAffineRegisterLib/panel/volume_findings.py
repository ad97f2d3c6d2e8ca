"""The panel's "Detected" line: each selected volume's background findings, worked out off the GUI thread.

The analysis takes about half a second on a 512×512×300 CT, so the panel never runs it on the GUI
thread. ``status(node)`` answers from a cache or queues the volume; ``poll()``, called from a GUI timer,
takes in finished analyses and starts the next one: it copies the volume there (MRML is read only on
the calling thread, one copy at a time) and analyses the copy in a worker thread. Findings are cached
per node and volume content (the voxel array's modification time and the spacing), so an unchanged
volume is never analysed twice; a volume without voxels (still loading, say) is never cached.

Pure module: the node copy is a function the caller passes in (``mrml.volume_nodes.image_from_volume_node``).
"""

from __future__ import annotations

import queue
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Callable, Optional

import SimpleITK as sitk

from ..pair import register as pair_register

READY, FAILED, WAITING = "ready", "failed", "waiting"


def content_key(volume_node) -> Optional[tuple]:
    """What the findings depend on: the voxels (their modification time) and the voxel size; None
    while the node has no voxels. VTK modification times are unique across objects, so a new image
    data object never repeats an old key.

    Args:
        volume_node: a volume node.

    Returns:
        The key, or None.
    """
    image_data = volume_node.GetImageData()
    if image_data is None or image_data.GetNumberOfPoints() == 0:
        return None
    return (image_data.GetMTime(), tuple(round(float(s), 9) for s in volume_node.GetSpacing()))


class VolumeFindings:
    """Background findings of volume nodes, analysed one at a time in a worker thread and cached."""

    def __init__(
        self,
        copy_volume: Callable[[Any], sitk.Image],
        analyze: Callable[[sitk.Image], dict] = pair_register.analyze,
    ):
        self._copy_volume = copy_volume
        self._analyze = analyze
        self._cache: dict[str, tuple[tuple, tuple[str, Any]]] = {}  # node ID -> (key, (state, value))
        self._queued: OrderedDict[str, Any] = OrderedDict()  # node ID -> node, oldest first
        self._running: Optional[str] = None
        self._results: queue.Queue = queue.Queue()
        self.analyses = 0  # how many analyses were started (each unchanged volume once)

    def status(self, volume_node) -> tuple[str, Any]:
        """(READY, findings), (FAILED, message) or (WAITING, None); WAITING queues the volume.

        Args:
            volume_node: a volume node.

        Returns:
            (state, findings or message).
        """
        key = content_key(volume_node)
        if key is None:
            return FAILED, f"'{volume_node.GetName()}' has no voxels"
        node_id = volume_node.GetID()
        cached = self._cache.get(node_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        if node_id != self._running:
            self._queued[node_id] = volume_node
        return WAITING, None

    @property
    def working(self) -> bool:
        """An analysis is running or queued: keep calling ``poll``."""
        return self._running is not None or bool(self._queued)

    def poll(self) -> bool:
        """Calling (GUI) thread: take in finished analyses and start the next; True if one finished."""
        finished = False
        while True:
            try:
                node_id, key, outcome = self._results.get_nowait()
            except queue.Empty:
                break
            self._cache[node_id] = (key, outcome)
            self._running = None
            finished = True
        if self._running is None:
            finished = self._start_next() or finished
        return finished

    def forget(self) -> None:
        """Drop every cached finding (a new scene: node IDs start again)."""
        self._cache.clear()
        self._queued.clear()

    def _start_next(self) -> bool:
        """Copy the next queued volume that still needs it and analyse it in a worker thread.
        True when a volume failed at once (its copy could not be made)."""
        while self._queued:
            node_id, node = self._queued.popitem(last=False)
            key = content_key(node)
            cached = self._cache.get(node_id)
            if node.GetScene() is None or key is None or (cached is not None and cached[0] == key):
                continue
            try:
                image = self._copy_volume(node)
            except Exception as error:  # VolumeNodeError says why; MemoryError & co. fail this volume only
                self._cache[node_id] = (key, (FAILED, str(error) or type(error).__name__))
                return True
            self._running = node_id
            self.analyses += 1
            threading.Thread(
                target=self._work, args=(node_id, key, image), name="CTAffineRegister findings", daemon=True
            ).start()
            return False
        return False

    def _work(self, node_id: str, key: tuple, image: sitk.Image) -> None:
        """Worker thread: SimpleITK and numpy only."""
        try:
            outcome = (READY, self._analyze(image))
        except Exception as error:  # an image the analysis refuses: say why on the line
            outcome = (FAILED, str(error) or type(error).__name__)
        self._results.put((node_id, key, outcome))


# ---------------------------------------------------------------------------------------------
# The line itself


def detected_text(findings: VolumeFindings, fixed_node, moving_nodes, scene_busy: bool) -> tuple[str, bool]:
    """The "Detected" line for the selection, and whether analyses are still running (poll again).

    Nothing is analysed while the scene is imported or closed: the nodes may not hold their voxels or
    final references yet, and an answer made then would be cached for the wrong content.

    Args:
        findings: the panel's ``VolumeFindings``.
        fixed_node: the selected fixed volume, or None.
        moving_nodes: the selected moving volumes.
        scene_busy: the scene is being imported or closed.

    Returns:
        (line, still running).
    """
    if scene_busy:
        return "waiting for the scene to finish loading.", False
    selection = ([("fixed", fixed_node)] if fixed_node is not None else []) + [
        ("moving", node) for node in moving_nodes if node is not None
    ]
    if not selection:
        return "select the volumes.", False
    fixed, moving, problems, waiting = None, [], [], []
    for role, node in selection:
        state, value = findings.status(node)
        if state == READY and role == "fixed":
            fixed = (node.GetName(), value)
        elif state == READY:
            moving.append((node.GetName(), value))
        elif state == FAILED:
            problems.append(f"{node.GetName()}: {value}" if node.GetName() not in value else value)
        else:
            waiting.append(node.GetName())
    if waiting:
        return f"analysing {', '.join(waiting)}…", True
    return "; ".join(part for part in [detected_line(fixed, moving), *problems] if part), False


def describe_findings(findings: dict, role: str = "moving") -> str:
    """A few words on one volume's background; padding of a moving volume is what gets replaced.

    Args:
        findings: one volume's findings (``analyze``).
        role: "fixed" or "moving".

    Returns:
        The words.
    """
    kind = findings.get("kind")
    padding = findings.get("padding_value")
    if kind == "fov-padding" and padding is not None:
        fate = "replaced" if role == "moving" else "ignored by the metric"
        return f"FOV padding {padding:g} → {fate}"
    if kind == "fov-padding-equals-air" and padding is not None:
        return f"FOV padding {padding:g} (equals air, kept)"
    if kind == "air-background":
        return f"air {findings.get('air_value', 0):g}"
    if kind == "no-background":
        return "no background (cropped)"
    return str(findings.get("summary") or kind or "unknown")


def detected_line(fixed: Optional[tuple[str, dict]], moving: Sequence[tuple[str, dict]]) -> str:
    """The panel's "detected" line, e.g. "fixed: air -1024; CT B: FOV padding -3024 → replaced".

    Args:
        fixed: (name, findings) of the fixed volume, or None.
        moving: (name, findings) of each moving volume.

    Returns:
        The line.
    """
    parts = []
    if fixed is not None:
        parts.append(f"fixed: {describe_findings(fixed[1], 'fixed')}")
    label = "moving" if len(moving) == 1 else None
    for name, findings in moving:
        parts.append(f"{label or name}: {describe_findings(findings, 'moving')}")
    return "; ".join(parts)
