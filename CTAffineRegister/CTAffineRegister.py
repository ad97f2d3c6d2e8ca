"""CT Affine Register: the Slicer module (metadata, panel, thin logic wrapper, self-test).

This is the only file that knows Qt, and it only shows what ``CTAffineRegisterLib`` decides:
``panel.decisions`` (which fill, transform and volumes a run gets, when Apply is possible, what the
status says), ``panel.run`` (the run in the background, let go of once finished), ``mrml.volume_nodes``
(imported as ``mrml_bridge``: nodes to SimpleITK images and results back to nodes) and
``pair.register`` (the registration). Those are run by the test suite on the real MRML library; this
file is only parsed there. Registration runs in a worker thread that touches neither MRML nor Qt; its
events are queued and drained on the GUI thread, where the result nodes are created (the
SlicerSimpleFilters pattern).
"""

from __future__ import annotations

import threading
import time
from typing import Annotated, Callable, Optional

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from CTAffineRegisterLib.mrml import volume_nodes as mrml_bridge
from CTAffineRegisterLib.panel import decisions as panel_decisions
from CTAffineRegisterLib.panel import volume_findings
from CTAffineRegisterLib.panel.run import GIL_YIELD_SECONDS, PanelRun
from CTAffineRegisterLib.panel.scene_watch import SceneWatch

#
# CTAffineRegister
#


class CTAffineRegister(ScriptedLoadableModule):
    """Module metadata. Base class: https://github.com/Slicer/Slicer/blob/main/Base/Python/slicer/ScriptedLoadableModule.py"""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("CT Affine Register")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Registration")]
        self.parent.dependencies = []
        self.parent.contributors = [
            "CTAffineRegister project team (https://github.com/ctaffineregister/SlicerCTAffineRegister)"
        ]
        self.parent.helpText = _("""
Many CT scanners fill the region outside the circular reconstruction field of view with a constant
such as -3024 or -2048 that lies inside the image, so ordinary registration aligns that edge and
resampling smears it into gray rings. This module detects the padding, keeps it out of the similarity
metric, registers each moving CT affinely (or rigidly) to the fixed CT and resamples it onto the fixed
grid with the padding replaced by air. Segmentations of the moving volumes can be carried along
(hardened copies in the fixed volume's space).
See the <a href="https://github.com/ctaffineregister/SlicerCTAffineRegister">project page</a>.
""")
        self.parent.acknowledgementText = _("""
Developed by the CTAffineRegister project team. Registration uses SimpleITK; the module layout follows
the 3D Slicer scripted module template by Jean-Christophe Fillion-Robin (Kitware), Andras Lasso
(PerkLab) and Steve Pieper (Isomics).
""")


#
# CTAffineRegisterParameterNode
#


@parameterNodeWrapper
class CTAffineRegisterParameterNode:
    """
    The parameters of the module, saved with the scene.

    fixedVolume - the reference CT; results are on its grid.
    movingVolumes - the CTs to register.
    The widget binds these two to their selectors itself (no GUI connector handles node lists, and a
    scene import must not reach the parameter node through a rebuilt selector).
    transformType - rigid, similarity or affine.
    automaticFill - fill output voxels without moving data with the moving scan's own air level.
    fillValue - the fill value used when automaticFill is off.
    createMask - also create a labelmap marking where each output holds real moving data.
    carrySegmentations - also copy each segmentation whose reference geometry is a moving volume into
    the fixed volume's space (hardened), as "<segmentation name> registered".
    """

    fixedVolume: vtkMRMLScalarVolumeNode
    movingVolumes: list[vtkMRMLScalarVolumeNode]
    transformType: Annotated[str, Choice(["affine", "similarity", "rigid"])] = "affine"
    automaticFill: bool = True
    fillValue: Annotated[float, WithinRange(-32768.0, 32767.0)] = -1000.0
    createMask: bool = False
    carrySegmentations: bool = False


#
# CTAffineRegisterWidget
#


class CTAffineRegisterWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: binds the .ui to the parameter node, starts and cancels the logic, shows progress.

    The two node selectors are bound here, not by the parameter node wrapper: importing or closing a
    scene rebuilds their rows (unchecked, or back to "None"), and what they say then must not reach the
    parameter node (``CTAffineRegisterLib/panel/scene_watch.py``). The wrapper binds the other widgets, once
    per parameter node for the panel's life: in Slicer 5.8 ``connectGui`` returns no tag to disconnect
    with, and every binding adds a parameter-node observer that nothing removes.
    """

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)  # needed for parameter node observation
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._updatingSelectors = False
        self._sceneWatch = None
        self._findings = None  # the "Detected" line's analyses, off the GUI thread
        self._findingsPollScheduled = False
        self._cleanedUp = False
        # Of the running registration only IDs and names: a node held here would keep its voxels alive
        # after the scene is closed.
        self._runningFixedVolumeID = None
        self._runningNames = {}  # moving node ID -> name, for the status lines

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)

        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CTAffineRegister.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        self._uiWidget = uiWidget
        # The .ui connects mrmlSceneChanged(vtkMRMLScene*) to each selector's setMRMLScene.
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = CTAffineRegisterLogic()
        self.ui.progressBar.visible = False
        self._findings = volume_findings.VolumeFindings(mrml_bridge.image_from_volume_node)
        self._sceneWatch = SceneWatch(slicer.mrmlScene, self.onSceneSettled)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)

        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.fixedVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onFixedVolumeSelected)
        self.ui.movingVolumesSelector.connect("checkedNodesChanged()", self.onMovingVolumesChecked)

        self.initializeParameterNode()

    def cleanup(self) -> None:
        """Called when the application closes and the module widget is destroyed."""
        self._cleanedUp = True
        if self.logic is not None:
            self.logic.cancel()
            self.logic.wait()
        self.removeObservers()
        if self._sceneWatch is not None:
            self._sceneWatch.release()
        self._disconnectParameterNode()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        # The widgets stay bound to the parameter node (see the class docstring); only this panel's
        # own observer goes, until the module is shown again.
        self._observeParameterNode(False)

    def onSceneStartClose(self, caller, event) -> None:
        # A run still going is cancelled; it finishes through its poll, which then lets go of it.
        if self.logic is not None:
            self.logic.cancel()

    def onSceneSettled(self, kind: str) -> None:
        """After an import or a close, once every selector has rebuilt its rows: show the parameter node."""
        if kind == "close":
            self._findings.forget()
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        current = self._parameterNode.fixedVolume
        fixedVolume = panel_decisions.default_fixed_volume(slicer.mrmlScene, current)
        if fixedVolume is not None and fixedVolume is not current:
            self._parameterNode.fixedVolume = fixedVolume

    def setParameterNode(self, inputParameterNode: Optional[CTAffineRegisterParameterNode]) -> None:
        """Show a parameter node; binding its widgets only when it is another node than the one shown."""
        if inputParameterNode is not self._parameterNode:
            self._observeParameterNode(False)
            self._disconnectParameterNode()
            self._parameterNode = inputParameterNode
            if self._parameterNode:
                self._parameterNodeGuiTag = self._parameterNode.connectParametersToGui(self._boundWidgets())
        self._observeParameterNode(True)
        self._onParameterNodeModified()

    def _boundWidgets(self) -> dict:
        """The widgets whose "SlicerParameterName" property names a parameter (what connectGui finds)."""
        widgets = {}
        for widget in self._uiWidget.findChildren(qt.QWidget):
            name = widget.property("SlicerParameterName")
            if name:
                widgets[name] = widget
        return widgets

    def _disconnectParameterNode(self) -> None:
        if self._parameterNode and self._parameterNodeGuiTag is not None:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        self._parameterNodeGuiTag = None

    def _observeParameterNode(self, observe: bool) -> None:
        if not self._parameterNode:
            return
        event, method = vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified
        observed = self.hasObserver(self._parameterNode, event, method)
        if observe and not observed:
            self.addObserver(self._parameterNode, event, method)
        elif observed and not observe:
            self.removeObserver(self._parameterNode, event, method)

    # -- the node selectors, bound by hand -----------------------------------------------------------

    def _takesSelectorChanges(self) -> bool:
        """A selector changed by the user: not by this panel, not while a scene import or close rebuilds
        the selectors' rows, not while the module is hidden (nobody can click it then)."""
        return panel_decisions.accepts_selector_change(
            has_parameters=bool(self._parameterNode),
            updating=self._updatingSelectors,
            entered=bool(self.parent.isEntered),
            scene_busy=self._sceneWatch.busy,
        )

    def onFixedVolumeSelected(self, node) -> None:
        if self._takesSelectorChanges():
            self._parameterNode.fixedVolume = node

    def onMovingVolumesChecked(self) -> None:
        if self._takesSelectorChanges():
            self._parameterNode.movingVolumes = list(self.ui.movingVolumesSelector.checkedNodes())

    def _updateSelectors(self) -> None:
        """Parameter node → selectors: the fixed volume, and a check mark on each moving volume."""
        parameters = self._parameterNode
        fixedSelector, movingSelector = self.ui.fixedVolumeSelector, self.ui.movingVolumesSelector
        rows = [movingSelector.nodeFromIndex(index) for index in range(movingSelector.nodeCount())]
        marks = panel_decisions.moving_check_marks(rows, list(parameters.movingVolumes))
        self._updatingSelectors = True
        try:
            if _nodeID(fixedSelector.currentNode()) != _nodeID(parameters.fixedVolume):
                fixedSelector.setCurrentNode(parameters.fixedVolume)
            for node, checked in zip(rows, marks):
                state = qt.Qt.Checked if checked else qt.Qt.Unchecked
                if movingSelector.checkState(node) != state:
                    movingSelector.setCheckState(node, state)
        finally:
            self._updatingSelectors = False

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        if not self._parameterNode:
            self.ui.applyButton.enabled = False
            return
        if not self._sceneWatch.busy:  # mid-import references can name the wrong nodes; settled re-applies
            self._updateSelectors()
        self.ui.fillValueSpinBox.enabled = panel_decisions.fill_value_editable(
            self._parameterNode.automaticFill
        )
        self._updateDetectedLine()
        self._updateApplyButton()

    def _updateApplyButton(self) -> None:
        if self.logic.isRunning():
            return
        parameters = self._parameterNode
        ready = bool(parameters) and panel_decisions.ready_to_apply(
            panel_decisions.choices_from_parameters(parameters)
        )
        self.ui.applyButton.text = _("Apply")
        self.ui.applyButton.enabled = ready
        self.ui.applyButton.toolTip = (
            _("Register the checked moving volumes onto the fixed volume")
            if ready
            else _("Select a fixed volume and check at least one moving volume")
        )

    # -- the "Detected" line: analyses in a worker thread, cached per volume content ------------------

    def _updateDetectedLine(self) -> None:
        parameters = self._parameterNode
        text, working = volume_findings.detected_text(
            self._findings, parameters.fixedVolume, list(parameters.movingVolumes), self._sceneWatch.busy
        )
        self.ui.detectedLabel.text = _("Detected: ") + text
        if working:
            self._scheduleFindingsPoll()

    def _scheduleFindingsPoll(self) -> None:
        if not self._findingsPollScheduled:
            self._findingsPollScheduled = True
            qt.QTimer.singleShot(0, self._pollFindings)

    def _pollFindings(self) -> None:
        self._findingsPollScheduled = False
        if self._cleanedUp:
            return
        try:
            if self._findings.poll() and self._parameterNode:
                self._updateDetectedLine()
        finally:  # whatever went wrong, the analyses still queued get their turn
            if self._findings.working:
                time.sleep(GIL_YIELD_SECONDS)  # let the analysis thread's Python run
                self._scheduleFindingsPoll()

    # -- running -----------------------------------------------------------------------------------

    def onApplyButton(self) -> None:
        if self.logic.isRunning():
            self.logic.cancel()
            self.ui.applyButton.text = _("Cancelling...")
            self.ui.applyButton.enabled = False
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to start the registration."), waitCursor=True):
            arguments = panel_decisions.run_arguments(
                panel_decisions.choices_from_parameters(self._parameterNode)
            )
            self._runningFixedVolumeID = arguments["fixed_node"].GetID()
            self._runningNames = panel_decisions.moving_names(arguments["moving_nodes"])
            self.logic.startRun(
                arguments, onProgress=self.onProgress, onCaseDone=self.onCaseDone, onFinished=self.onFinished
            )
            self._setRunning(True)

    def _setRunning(self, running: bool) -> None:
        self.ui.inputsCollapsibleButton.enabled = not running
        self.ui.parametersCollapsibleButton.enabled = not running
        self.ui.progressBar.visible = running
        if running:
            self.ui.progressBar.value = 0
            self.ui.applyButton.text = _("Cancel")
            self.ui.applyButton.toolTip = _("Stop the registration; volumes already done are kept")
            self.ui.applyButton.enabled = True
            self.ui.statusLabel.text = _("Starting...")
        else:
            self._updateApplyButton()

    def onProgress(self, index: int, count: int, name: str, event) -> None:
        self.ui.progressBar.value = panel_decisions.progress_percent(
            index, count, getattr(event, "fraction", 0.0)
        )
        self.ui.statusLabel.text = _(
            "{name} ({number} of {count}): {stage}, level {level}, iteration {iteration}"
        ).format(**panel_decisions.progress_fields(index, count, name, event))

    def onCaseDone(self, index: int, count: int, result: mrml_bridge.NodeResult) -> None:
        self.ui.progressBar.value = panel_decisions.progress_percent(index, count, 1.0)

    def onFinished(self, results: list, error: Optional[str]) -> None:
        """Say how each volume ended: its verdict and the reason for it, or why it was not registered.
        Nothing of the run is kept afterwards (``panel.run``): only what the status label says."""
        self._setRunning(False)
        view = panel_decisions.finished_view(results, self._runningNames, error)
        fixedVolume = slicer.mrmlScene.GetNodeByID(self._runningFixedVolumeID or "")
        self._runningFixedVolumeID, self._runningNames = None, {}
        lines = list(view.lines)
        if view.error:
            lines.append(_("Stopped by an error: ") + view.error)
        self.ui.statusLabel.text = "\n".join(lines)
        if view.foreground is not None:
            slicer.util.setSliceViewerLayers(
                background=fixedVolume, foreground=view.foreground, foregroundOpacity=0.5
            )
        if view.show_error_dialog:
            slicer.util.errorDisplay(_("Registration failed.") + "\n\n" + "\n".join(lines[1:]))


def _nodeID(node) -> Optional[str]:
    return node.GetID() if node is not None else None


#
# CTAffineRegisterLogic
#


class CTAffineRegisterLogic(ScriptedLoadableModuleLogic):
    """Thin wrapper around ``CTAffineRegisterLib``: usable without the widget.

    ``process`` runs synchronously (Python console, scripts). ``start`` runs the same work in a worker
    thread (``panel.run.PanelRun``, around ``mrml_bridge.ThreadedRegistration``) and polls it from a Qt
    timer, so callbacks and node creation happen on the GUI thread; ``cancel`` stops it at the
    optimizer's next iteration. A finished run is let go of at once: the logic lives as long as the
    panel and must not keep a copy of the fixed CT or any result alive.
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self._runner = PanelRun(
            lambda poll: qt.QTimer.singleShot(0, poll), registration=mrml_bridge.ThreadedRegistration
        )
        self._parameterNodeWrapper = None

    def getParameterNode(self):
        """The parameter node's wrapper: one per parameter node, reused (each wrapper observes the node)."""
        node = super().getParameterNode()
        if self._parameterNodeWrapper is None or self._parameterNodeWrapper.parameterNode is not node:
            self._parameterNodeWrapper = CTAffineRegisterParameterNode(node)
        return self._parameterNodeWrapper

    def process(
        self,
        fixedVolume,
        movingVolumes: list,
        transformType: str = "affine",
        fill: Optional[float] = None,
        createMask: bool = False,
        progress: Optional[Callable] = None,
        cancel: Optional[threading.Event] = None,
        carrySegmentations: bool = False,
    ) -> list:
        """Register and create the result nodes now, in this thread. One ``NodeResult`` per moving volume.

        With ``carrySegmentations``, each segmentation whose reference geometry is a moving volume gets a
        hardened copy in the fixed space (``NodeResult.segmentation_nodes``); the originals stay as they are.
        """
        return mrml_bridge.register_volume_nodes(
            fixedVolume,
            movingVolumes,
            transform=transformType,
            fill=fill,
            progress=progress,
            cancel=cancel,
            create_mask=createMask,
            carry_segmentations=carrySegmentations,
        )

    def isRunning(self) -> bool:
        return self._runner.is_running()

    def cancel(self) -> None:
        self._runner.cancel()

    def wait(self) -> None:
        """Block until the worker thread has stopped (used on shutdown, after ``cancel``)."""
        self._runner.wait()

    def start(
        self,
        fixedVolume,
        movingVolumes: list,
        transformType: str = "affine",
        fill: Optional[float] = None,
        createMask: bool = False,
        onProgress: Optional[Callable] = None,
        onCaseDone: Optional[Callable] = None,
        onFinished: Optional[Callable] = None,
        carrySegmentations: bool = False,
    ) -> None:
        """Start registering in a worker thread. Call on the GUI thread; callbacks come back there.

        onProgress(index, count, name, event), onCaseDone(index, count, nodeResult) and
        onFinished(results, error) where error is None unless the run itself broke down.
        Raises ``mrml_bridge.VolumeNodeError`` at once when the fixed volume cannot be used.
        """
        self._runner.start(
            fixedVolume,
            movingVolumes,
            transform=transformType,
            fill=fill,
            create_mask=createMask,
            carry_segmentations=carrySegmentations,
            on_progress=onProgress,
            on_case_done=onCaseDone,
            on_finished=onFinished,
        )

    def startRun(
        self,
        arguments: dict,
        onProgress: Optional[Callable] = None,
        onCaseDone: Optional[Callable] = None,
        onFinished: Optional[Callable] = None,
    ) -> None:
        """``start`` with the panel's ``panel.decisions.run_arguments`` (the panel's Apply button)."""
        self._runner.start(
            **arguments, on_progress=onProgress, on_case_done=onCaseDone, on_finished=onFinished
        )


#
# CTAffineRegisterTest
#


class CTAffineRegisterTest(ScriptedLoadableModuleTest):
    """Self-test on a generated torso phantom pair (no download): padding in, no padding out."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_CTAffineRegister_console()
        self.setUp()
        self.test_CTAffineRegister_worker_thread()
        self.setUp()
        self.test_CTAffineRegister_cancel()
        self.setUp()
        self.test_CTAffineRegister_parameter_node()
        self.setUp()
        self.test_CTAffineRegister_scene_import()
        self.setUp()
        self.test_CTAffineRegister_module_visits()
        self.setUp()
        self.test_CTAffineRegister_segmentations()

    def _makeInputs(self):
        from CTAffineRegisterLib import synthetic

        pair = synthetic.make_pair(
            seed=3, fixed_size=(64, 64, 48), fixed_spacing=(4.0, 4.0, 5.0), moving_spacing=(4.6, 4.6, 5.75)
        )
        fixed = mrml_bridge.add_volume_node_from_image(slicer.mrmlScene, pair.fixed, "Phantom A")
        moving = mrml_bridge.add_volume_node_from_image(slicer.mrmlScene, pair.moving, "Phantom B")
        return pair, fixed, moving

    def _assertAligned(self, fixed, result):
        import numpy as np

        self.assertEqual(result.status, "ok", result.report.get("error"))
        self.assertTrue(
            np.array_equal(mrml_bridge.ijk_to_ras(result.volume_node), mrml_bridge.ijk_to_ras(fixed))
        )
        voxels = slicer.util.arrayFromVolume(result.volume_node)
        self.assertGreater(int(voxels.min()), -1100, "FOV padding reached the registered volume")
        self.assertIsNotNone(result.transform_node)
        self.assertIsNotNone(result.volume_node.GetDisplayNode())

    def test_CTAffineRegister_console(self):
        self.delayDisplay("Registering a padded phantom pair (synchronous)")
        import numpy as np

        pair, fixed, moving = self._makeInputs()
        movingBefore = np.array(slicer.util.arrayFromVolume(moving))
        logic = CTAffineRegisterLogic()
        results = logic.process(fixed, [moving], createMask=True)
        self.assertEqual(len(results), 1)
        self._assertAligned(fixed, results[0])
        self.assertEqual(results[0].volume_node.GetName(), "Phantom B registered")
        self.assertTrue(results[0].mask_node.IsA("vtkMRMLLabelMapVolumeNode"))
        self.assertTrue(np.array_equal(slicer.util.arrayFromVolume(moving), movingBefore))
        # the transform node sends fixed RAS points where the true transform does
        fromParent = results[0].transform_node.GetTransformFromParent()
        errors = []
        for lps in pair.body_points[:200]:
            ras = [-lps[0], -lps[1], lps[2]]
            truth = pair.true_transform.TransformPoint([float(v) for v in lps])
            mapped = fromParent.TransformPoint(ras)
            errors.append(np.linalg.norm(np.array([-mapped[0], -mapped[1], mapped[2]]) - np.array(truth)))
        self.assertLess(float(np.mean(errors)), 4.0)
        self.delayDisplay("Test passed")

    def _runInThread(self, logic, fixed, movingVolumes, cancelAtFirstEvent=False, **options):
        finished = []

        def onProgress(index, count, name, event):
            if cancelAtFirstEvent:
                logic.cancel()

        logic.start(
            fixed,
            movingVolumes,
            onProgress=onProgress,
            onFinished=lambda r, e: finished.append((r, e)),
            **options,
        )
        self.assertTrue(logic.isRunning())
        deadline = time.time() + 600  # a safety net against a hung run, not a timing requirement
        while not finished and time.time() < deadline:
            slicer.app.processEvents()
            time.sleep(0.02)
        self.assertTrue(finished, "the worker never finished")
        self.assertFalse(logic.isRunning())
        return finished[0]

    def test_CTAffineRegister_worker_thread(self):
        self.delayDisplay("Registering in the worker thread; one moving volume is blank")
        import numpy as np

        pair, fixed, moving = self._makeInputs()
        blank = slicer.util.addVolumeFromArray(np.full((30, 40, 40), -1000, dtype=np.int16), name="Blank")
        nodeCount = slicer.mrmlScene.GetNumberOfNodes()
        results, error = self._runInThread(CTAffineRegisterLogic(), fixed, [blank, moving])
        self.assertIsNone(error)
        self.assertEqual([result.status for result in results], ["failed", "ok"])
        self.assertTrue(results[0].report["error"])
        self.assertIsNone(results[0].volume_node)
        self._assertAligned(fixed, results[1])
        # volume + transform, each with its display node; nothing from the failed case
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), nodeCount + 4)
        self.delayDisplay("Test passed")

    def test_CTAffineRegister_cancel(self):
        self.delayDisplay("Cancelling a running registration")
        pair, fixed, moving = self._makeInputs()
        nodeCount = slicer.mrmlScene.GetNumberOfNodes()
        results, error = self._runInThread(
            CTAffineRegisterLogic(), fixed, [moving, moving], cancelAtFirstEvent=True
        )
        self.assertIsNone(error)
        self.assertEqual([result.status for result in results], ["cancelled", "cancelled"])
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), nodeCount)
        self.delayDisplay("Test passed")

    def test_CTAffineRegister_parameter_node(self):
        self.delayDisplay("Parameter node holds several moving volumes")
        pair, fixed, moving = self._makeInputs()
        parameters = CTAffineRegisterLogic().getParameterNode()
        parameters.fixedVolume = fixed
        parameters.movingVolumes = [moving, fixed]
        self.assertEqual([node.GetID() for node in parameters.movingVolumes], [moving.GetID(), fixed.GetID()])
        self.assertEqual(parameters.transformType, "affine")
        self.assertTrue(parameters.automaticFill)
        self.delayDisplay("Test passed")

    # -- the panel (needs Slicer's main window, as in "Reload and Test" and the ctest run) -----------

    def _panel(self):
        """Show the module and return its widget; None without a main window (the panel cannot show)."""
        if slicer.util.mainWindow() is None:
            self.delayDisplay("Skipped: the panel needs Slicer's main window")
            return None
        slicer.util.selectModule("CTAffineRegister")
        slicer.app.processEvents()
        return slicer.util.getModuleWidget("CTAffineRegister")

    @staticmethod
    def _checkedIDs(widget) -> list:
        return sorted(node.GetID() for node in widget.ui.movingVolumesSelector.checkedNodes())

    def _waitForDetectedLine(self, widget) -> str:
        deadline = time.time() + 120  # a safety net against a hung analysis, not a timing requirement
        while "analysing" in widget.ui.detectedLabel.text and time.time() < deadline:
            slicer.app.processEvents()
            time.sleep(0.02)
        return widget.ui.detectedLabel.text

    def test_CTAffineRegister_scene_import(self):
        self.delayDisplay("Importing a scene keeps the selection, with the module shown or hidden")
        import os
        import tempfile

        pair, fixed, moving = self._makeInputs()
        other = mrml_bridge.add_volume_node_from_image(slicer.mrmlScene, pair.moving, "Phantom C")
        widget = self._panel()
        if widget is None:
            return
        parameters = widget.logic.getParameterNode()
        parameters.fixedVolume = fixed
        parameters.movingVolumes = [moving, other]
        self.assertEqual(self._checkedIDs(widget), sorted([moving.GetID(), other.GetID()]))
        sceneFile = os.path.join(tempfile.mkdtemp(), "CTAffineRegisterSelfTest.mrb")
        self.assertTrue(slicer.util.saveScene(sceneFile))

        for shown in (True, False):
            slicer.util.selectModule("CTAffineRegister" if shown else "Data")
            before = [node.GetID() for node in parameters.movingVolumes]
            slicer.util.loadScene(sceneFile)  # into the current scene: an import
            slicer.app.processEvents()
            # the saved parameter node now names the imported copies; nothing cleared it
            imported = sorted(node.GetID() for node in parameters.movingVolumes if node is not None)
            self.assertEqual(len(imported), 2, "the import cleared the moving volumes")
            self.assertNotEqual(imported, sorted(before))
            widget = self._panel()
            self.assertEqual(self._checkedIDs(widget), imported, "check marks differ from the parameter node")
            self.assertEqual(
                widget.ui.fixedVolumeSelector.currentNode().GetID(), parameters.fixedVolume.GetID()
            )
            line = self._waitForDetectedLine(widget)
            self.assertNotIn("no voxels", line)
            self.assertIn("FOV padding -3024", line)
        self.delayDisplay("Test passed")

    def test_CTAffineRegister_module_visits(self):
        self.delayDisplay("Showing the module again adds no parameter node wrapper and no observer")
        self._makeInputs()
        widget = self._panel()
        if widget is None:
            return
        wrapper = widget.logic.getParameterNode()
        counts = []
        for _visit in range(4):
            slicer.util.selectModule("Data")
            slicer.util.selectModule("CTAffineRegister")
            counts.append(_observerCount(wrapper.parameterNode))
        self.assertIs(widget.logic.getParameterNode(), wrapper)
        self.assertEqual(len(set(counts)), 1, f"parameter node observers grow with each visit: {counts}")
        # the one binding still works both ways
        widget.ui.automaticFillCheckBox.checked = False
        self.assertFalse(wrapper.automaticFill)
        wrapper.automaticFill = True
        self.assertTrue(widget.ui.automaticFillCheckBox.checked)
        widget.ui.carrySegmentationsCheckBox.checked = True
        self.assertTrue(wrapper.carrySegmentations)
        wrapper.carrySegmentations = False
        self.assertFalse(widget.ui.carrySegmentationsCheckBox.checked)
        self.delayDisplay("Test passed")

    def test_CTAffineRegister_segmentations(self):
        """The headless part is also in Testing/test_mrml_segmentations.py; this one runs with Slicer's
        own Segmentations module loaded (converter rules, display) and through the worker thread."""
        self.delayDisplay("Carrying the moving volume's segmentation into the fixed space")
        import numpy as np
        import SimpleITK as sitk
        from vtk.util import numpy_support

        pair, fixed, moving = self._makeInputs()
        boneHU = 300
        bone = slicer.util.arrayFromVolume(moving) > boneHU
        labelmap = slicer.vtkOrientedImageData()
        labelmap.SetDimensions(bone.shape[2], bone.shape[1], bone.shape[0])
        labelmap.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
        labelmap.GetPointData().GetScalars().DeepCopy(
            numpy_support.numpy_to_vtk(bone.astype(np.uint8).ravel())
        )
        ijkToRas = vtk.vtkMatrix4x4()
        moving.GetIJKToRASMatrix(ijkToRas)
        labelmap.SetGeometryFromImageToWorldMatrix(ijkToRas)
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Phantom B bones")
        segmentation.CreateDefaultDisplayNodes()
        segmentation.SetReferenceImageGeometryParameterFromVolumeNode(moving)
        segmentID = segmentation.AddSegmentFromBinaryLabelmapRepresentation(labelmap, "bone")
        segmentation.CreateClosedSurfaceRepresentation()
        original = self._segmentLabelmap(segmentation, segmentID)

        results, error = self._runInThread(CTAffineRegisterLogic(), fixed, [moving], carrySegmentations=True)
        self.assertIsNone(error)
        self._assertAligned(fixed, results[0])
        (copy,) = results[0].segmentation_nodes
        self.assertEqual(copy.GetName(), "Phantom B bones registered")
        self.assertIs(copy.GetNodeReference(copy.GetReferenceImageGeometryReferenceRole()), fixed)
        self.assertIsNone(copy.GetParentTransformNode())
        self.assertIsNotNone(copy.GetDisplayNode())
        # the original is untouched; the copy has the same voxels, moved by the transform node's "to parent"
        again = self._segmentLabelmap(segmentation, segmentID)
        self.assertTrue(np.array_equal(again[0], original[0]) and np.array_equal(again[1], original[1]))
        self.assertIs(
            segmentation.GetNodeReference(segmentation.GetReferenceImageGeometryReferenceRole()), moving
        )
        voxels, imageToWorld, extent = self._segmentLabelmap(copy, segmentID)
        toParent = vtk.vtkMatrix4x4()
        results[0].transform_node.GetMatrixTransformToParent(toParent)
        toParent = np.array([[toParent.GetElement(r, c) for c in range(4)] for r in range(4)])
        self.assertTrue(np.array_equal(voxels, original[0]))
        self.assertTrue(np.allclose(imageToWorld, toParent @ original[1], atol=1e-9))
        # at the fixed volume's voxels the carried bone lies where the pair's known transform puts it
        truth = sitk.Resample(
            sitk.Cast(pair.moving > boneHU, sitk.sitkUInt8),
            pair.fixed,
            pair.true_transform,
            sitk.sitkNearestNeighbor,
        )
        trueBone = sitk.GetArrayFromImage(truth) > 0
        fixedIjkToRas = vtk.vtkMatrix4x4()
        fixed.GetIJKToRASMatrix(fixedIjkToRas)
        fixedIjkToRas = np.array([[fixedIjkToRas.GetElement(r, c) for c in range(4)] for r in range(4)])
        k, j, i = np.indices(trueBone.shape).reshape(3, -1)
        index = np.rint(np.linalg.solve(imageToWorld, fixedIjkToRas @ np.vstack([i, j, k, np.ones_like(i)])))
        index = index[:3].astype(int) - np.array(extent[::2])[:, None]
        inside = np.all((index >= 0) & (index < np.array(voxels.shape[::-1])[:, None]), axis=0)
        carriedBone = np.zeros(index.shape[1], bool)
        carriedBone[inside] = voxels[index[2, inside], index[1, inside], index[0, inside]] > 0
        carriedBone = carriedBone.reshape(trueBone.shape)
        dice = 2.0 * np.count_nonzero(carriedBone & trueBone) / (carriedBone.sum() + trueBone.sum())
        self.assertGreater(dice, 0.85)
        self.delayDisplay("Test passed")

    @staticmethod
    def _segmentLabelmap(segmentation, segmentID):
        """(voxels k, j, i; image-to-world matrix; extent) of one segment's binary labelmap."""
        import numpy as np
        from vtk.util import numpy_support

        image = slicer.vtkOrientedImageData()
        segmentation.GetBinaryLabelmapRepresentation(segmentID, image)
        extent = image.GetExtent()
        shape = (extent[5] - extent[4] + 1, extent[3] - extent[2] + 1, extent[1] - extent[0] + 1)
        voxels = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(shape).copy()
        matrix = vtk.vtkMatrix4x4()
        image.GetImageToWorldMatrix(matrix)
        return voxels, np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)]), extent


def _observerCount(vtkObject) -> int:
    """How many observers an object has (tags are handed out in order: every live one is below a new one)."""
    probe = vtkObject.AddObserver(vtk.vtkCommand.UserEvent, lambda caller, event: None)
    vtkObject.RemoveObserver(probe)
    return sum(1 for tag in range(probe) if vtkObject.GetCommand(tag) is not None)
