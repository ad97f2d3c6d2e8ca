"""When the scene is being imported or closed, and when it has settled again: for the module panel.

Importing a scene (loading a .mrml or .mrb into a scene that holds nodes) and closing one both end with
every node selector rebuilding its rows (Slicer's qMRMLSceneModel, at EndImport and EndClose): a
checkable selector re-inserts them unchecked and says its checked nodes changed, a plain selector falls
back to "None". A panel that copies selectors into its parameter node would lose its selection (Slicer
issue #4570). During an import the nodes also exist before their references are updated and before their
voxels are read: the parameter node can name the wrong volume, or one without voxels.

So the panel takes nothing from a selector and analyses no volume while ``busy``, and re-applies its
parameter node to the selectors when ``on_settled`` is called. That call comes from an EndImport /
EndClose observer of lower priority than the selectors' models: VTK calls the observers of an event
from the highest priority down, and the models observe at the default 0, so they have rebuilt by then.

Works on the scene object it is given (no ``slicer`` import): real MRML in Slicer and in tests.
"""

from __future__ import annotations

from typing import Callable

# Below the default priority (0) at which Slicer's scene models observe the scene.
SETTLED_PRIORITY = -10.0


class SceneWatch:
    """``busy`` while the scene is imported or closed; ``on_settled("import" | "close")`` afterwards."""

    def __init__(self, scene, on_settled: Callable[[str], None]):
        self._scene = scene
        self._on_settled = on_settled
        self._busy = False
        self._tags = [
            scene.AddObserver(scene.StartImportEvent, self._started),
            scene.AddObserver(scene.StartCloseEvent, self._started),
            scene.AddObserver(scene.EndImportEvent, self._imported, SETTLED_PRIORITY),
            scene.AddObserver(scene.EndCloseEvent, self._closed, SETTLED_PRIORITY),
        ]

    @property
    def busy(self) -> bool:
        """True from the start of an import or close until every selector has rebuilt its rows."""
        return self._busy or bool(self._scene.IsImporting()) or bool(self._scene.IsClosing())

    def release(self) -> None:
        """Stop watching (the panel is destroyed)."""
        for tag in self._tags:
            self._scene.RemoveObserver(tag)
        self._tags = []

    def _started(self, caller=None, event=None) -> None:
        self._busy = True

    def _imported(self, caller=None, event=None) -> None:
        self._settle("import")

    def _closed(self, caller=None, event=None) -> None:
        self._settle("close")

    def _settle(self, kind: str) -> None:
        self._busy = False
        self._on_settled(kind)
