"""CT Affine Register: the Slicer module (metadata, panel, thin logic wrapper, self-test).

This is the only file that knows Qt. The work is done by ``CTAffineRegisterLib``: ``mrml_bridge``
converts nodes to SimpleITK images and results back to nodes; ``pipeline`` registers. Registration
runs in a worker thread that touches neither MRML nor Qt; its events are queued and drained on the
GUI thread, where the result nodes are created (the SlicerSimpleFilters pattern).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
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

from CTAffineRegisterLib import mrml_bridge

# The GUI thread holds Python's GIL while Qt runs, so a worker's Python code (progress callbacks,
# numpy glue) only moves while the GUI thread sleeps: each queue check ends with a short sleep
# (as SlicerSimpleFilters does), then the check is rescheduled right away.
GIL_YIELD_SECONDS = 0.01

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
        self.parent.contributors = ["CTAffineRegister team"]
        self.parent.helpText = _("""
Many CT scanners fill the region outside the circular reconstruction field of view with a constant
such as -3024 or -2048 that lies inside the image, so ordinary registration aligns that edge and
resampling smears it into gray rings. This module detects the padding, keeps it out of the similarity
metric, registers each moving CT affinely (or rigidly) to the fixed CT and resamples it onto the fixed
grid with the padding replaced by air.
See the <a href="https://github.com/ctaffineregister/CTAffineRegister">project page</a>.
""")
        self.parent.acknowledgementText = _("""
Developed by the CTAffineRegister team. Registration uses SimpleITK; the module layout follows the
3D Slicer scripted module template by Jean-Christophe Fillion-Robin (Kitware), Andras Lasso (PerkLab)
and Steve Pieper (Isomics).
""")


#
# CTAffineRegisterParameterNode
#


@parameterNodeWrapper
class CTAffineRegisterParameterNode:
    """
    The parameters of the module, saved with the scene.

    fixedVolume - the reference CT; results are on its grid.
    movingVolumes - the CTs to register. No GUI connector handles node lists, so the widget binds
        this one to the checkable combo box itself.
    transformType - rigid, similarity or affine.
    automaticFill - fill output voxels without moving data with the moving scan's own air level.
    fillValue - the fill value used when automaticFill is off.
    createMask - also create a labelmap marking where each output holds real moving data.
    """

    fixedVolume: vtkMRMLScalarVolumeNode
    movingVolumes: list[vtkMRMLScalarVolumeNode]
    transformType: Annotated[str, Choice(["affine", "similarity", "rigid"])] = "affine"
    automaticFill: bool = True
    fillValue: Annotated[float, WithinRange(-32768.0, 32767.0)] = -1000.0
    createMask: bool = False


#
# CTAffineRegisterWidget
#


class CTAffineRegisterWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: binds the .ui to the parameter node, starts and cancels the logic, shows progress."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)  # needed for parameter node observation
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._updatingMovingSelector = False
        self._findings = {}  # node ID -> (image data MTime, findings dict)
        self._detectedFor = None
        self._runningFixedVolume = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)

        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CTAffineRegister.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        # The .ui connects mrmlSceneChanged(vtkMRMLScene*) to each selector's setMRMLScene.
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = CTAffineRegisterLogic()
        self.ui.progressBar.visible = False

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.movingVolumesSelector.connect("checkedNodesChanged()", self.onMovingVolumesChecked)

        self.initializeParameterNode()

    def cleanup(self) -> None:
        """Called when the application closes and the module widget is destroyed."""
        if self.logic is not None:
            self.logic.cancel()
            self.logic.wait()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(
                self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified
            )

    def onSceneStartClose(self, caller, event) -> None:
        if self.logic is not None:
            self.logic.cancel()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.fixedVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode:
                self._parameterNode.fixedVolume = firstVolumeNode

    def setParameterNode(self, inputParameterNode: Optional[CTAffineRegisterParameterNode]) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(
                self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified
            )
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            # Widgets with the "SlicerParameterName" property in the .ui are bound here.
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
        self._onParameterNodeModified()

    # -- the parts the parameter node wrapper does not bind ----------------------------------------

    def onMovingVolumesChecked(self) -> None:
        if self._updatingMovingSelector or not self._parameterNode:
            return
        self._parameterNode.movingVolumes = list(self.ui.movingVolumesSelector.checkedNodes())

    def _updateMovingSelector(self) -> None:
        wanted = {node.GetID() for node in self._parameterNode.movingVolumes if node is not None}
        selector = self.ui.movingVolumesSelector
        self._updatingMovingSelector = True
        try:
            for index in range(selector.nodeCount()):
                node = selector.nodeFromIndex(index)
                state = qt.Qt.Checked if node.GetID() in wanted else qt.Qt.Unchecked
                if selector.checkState(node) != state:
                    selector.setCheckState(node, state)
        finally:
            self._updatingMovingSelector = False

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        if not self._parameterNode:
            self.ui.applyButton.enabled = False
            return
        self._updateMovingSelector()
        self.ui.fillValueSpinBox.enabled = not self._parameterNode.automaticFill
        self._updateDetectedLine()
        self._updateApplyButton()

    def _updateApplyButton(self) -> None:
        if self.logic.isRunning():
            return
        parameters = self._parameterNode
        ready = bool(parameters and parameters.fixedVolume and any(parameters.movingVolumes))
        self.ui.applyButton.text = _("Apply")
        self.ui.applyButton.enabled = ready
        self.ui.applyButton.toolTip = (
            _("Register the checked moving volumes onto the fixed volume")
            if ready
            else _("Select a fixed volume and check at least one moving volume")
        )

    def _updateDetectedLine(self) -> None:
        """Run the background analysis of newly selected volumes (cached) and say what was found."""
        fixed = self._parameterNode.fixedVolume
        moving = [node for node in self._parameterNode.movingVolumes if node is not None]
        selection = tuple(node.GetID() for node in [fixed, *moving] if node is not None)
        if selection == self._detectedFor:
            return
        self._detectedFor = selection
        if not selection:
            self.ui.detectedLabel.text = _("Detected: select the volumes.")
            return
        try:
            with slicer.util.WaitCursor():
                fixedPart = (fixed.GetName(), self._findingsOf(fixed)) if fixed is not None else None
                movingParts = [(node.GetName(), self._findingsOf(node)) for node in moving]
            self.ui.detectedLabel.text = _("Detected: ") + mrml_bridge.detected_line(fixedPart, movingParts)
        except Exception as error:  # an unusable volume: say why here, Apply will refuse it too
            self.ui.detectedLabel.text = _("Detected: ") + str(error)

    def _findingsOf(self, volumeNode) -> dict:
        imageData = volumeNode.GetImageData()
        stamp = imageData.GetMTime() if imageData is not None else 0
        cached = self._findings.get(volumeNode.GetID())
        if cached is None or cached[0] != stamp:
            cached = (stamp, mrml_bridge.analyze_volume_node(volumeNode))
            self._findings[volumeNode.GetID()] = cached
        return cached[1]

    # -- running -----------------------------------------------------------------------------------

    def onApplyButton(self) -> None:
        if self.logic.isRunning():
            self.logic.cancel()
            self.ui.applyButton.text = _("Cancelling...")
            self.ui.applyButton.enabled = False
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to start the registration."), waitCursor=True):
            parameters = self._parameterNode
            self._runningFixedVolume = parameters.fixedVolume
            self.logic.start(
                parameters.fixedVolume,
                [node for node in parameters.movingVolumes if node is not None],
                transformType=parameters.transformType,
                fill=None if parameters.automaticFill else parameters.fillValue,
                createMask=parameters.createMask,
                onProgress=self.onProgress,
                onCaseDone=self.onCaseDone,
                onFinished=self.onFinished,
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
        fraction = min(max(float(getattr(event, "fraction", 0.0)), 0.0), 1.0)
        self.ui.progressBar.value = int(100 * (index + fraction) / max(count, 1))
        self.ui.statusLabel.text = _(
            "{name} ({number} of {count}): {stage}, level {level}, iteration {iteration}"
        ).format(
            name=name,
            number=index + 1,
            count=count,
            stage=event.stage,
            level=event.level,
            iteration=event.iteration,
        )

    def onCaseDone(self, index: int, count: int, result: mrml_bridge.NodeResult) -> None:
        self.ui.progressBar.value = int(100 * (index + 1) / max(count, 1))

    def onFinished(self, results: list, error: Optional[str]) -> None:
        self._setRunning(False)
        done = [result for result in results if result.status == "ok"]
        failed = [result for result in results if result.status == "failed"]
        cancelled = [result for result in results if result.status == "cancelled"]
        lines = [
            _("{ok} registered, {failed} failed, {cancelled} cancelled.").format(
                ok=len(done), failed=len(failed), cancelled=len(cancelled)
            )
        ]
        for result in failed:
            node = slicer.mrmlScene.GetNodeByID(result.moving_node_id)
            lines.append(f"{node.GetName() if node else result.moving_node_id}: {result.report.get('error')}")
        if error:
            lines.append(_("Stopped by an error: ") + error)
        self.ui.statusLabel.text = "\n".join(lines)
        if done:
            slicer.util.setSliceViewerLayers(
                background=self._runningFixedVolume, foreground=done[-1].volume_node, foregroundOpacity=0.5
            )
        if error or (failed and not done):
            slicer.util.errorDisplay(_("Registration failed.") + "\n\n" + "\n".join(lines[1:]))


#
# CTAffineRegisterLogic
#


class CTAffineRegisterLogic(ScriptedLoadableModuleLogic):
    """Thin wrapper around ``CTAffineRegisterLib``: usable without the widget.

    ``process`` runs synchronously (Python console, scripts). ``start`` runs the same work in a worker
    thread (``mrml_bridge.ThreadedRegistration``) and polls it from a Qt timer, so callbacks and node
    creation happen on the GUI thread; ``cancel`` stops it at the optimizer's next iteration.
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self._run = None

    def getParameterNode(self):
        return CTAffineRegisterParameterNode(super().getParameterNode())

    def process(
        self,
        fixedVolume,
        movingVolumes: list,
        transformType: str = "affine",
        fill: Optional[float] = None,
        createMask: bool = False,
        progress: Optional[Callable] = None,
        cancel: Optional[threading.Event] = None,
    ) -> list:
        """Register and create the result nodes now, in this thread. One ``NodeResult`` per moving volume."""
        return mrml_bridge.register_volume_nodes(
            fixedVolume,
            movingVolumes,
            transform=transformType,
            fill=fill,
            progress=progress,
            cancel=cancel,
            create_mask=createMask,
        )

    def isRunning(self) -> bool:
        return self._run is not None and not self._run.finished

    def cancel(self) -> None:
        if self._run is not None:
            self._run.cancel()

    def wait(self) -> None:
        """Block until the worker thread has stopped (used on shutdown, after ``cancel``)."""
        if self._run is not None:
            self._run.wait()

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
    ) -> None:
        """Start registering in a worker thread. Call on the GUI thread; callbacks come back there.

        onProgress(index, count, name, event), onCaseDone(index, count, nodeResult) and
        onFinished(results, error) where error is None unless the run itself broke down.
        Raises ``mrml_bridge.VolumeNodeError`` at once when the fixed volume cannot be used.
        """
        if self.isRunning():
            raise RuntimeError(_("A registration is already running."))
        run = mrml_bridge.ThreadedRegistration(
            fixedVolume,
            movingVolumes,
            transform=transformType,
            fill=fill,
            create_mask=createMask,
            on_progress=onProgress,
            on_case_done=onCaseDone,
            on_finished=onFinished,
        )
        self._run = run
        run.start()
        qt.QTimer.singleShot(0, lambda: self._poll(run))

    def _poll(self, run) -> None:
        try:
            if run.poll():
                if run.error_details:
                    logging.error("CTAffineRegister: %s", run.error_details)
                return
        except Exception:  # a callback failed: keep polling so the run still finishes
            logging.error("CTAffineRegister: %s", traceback.format_exc())
        time.sleep(GIL_YIELD_SECONDS)  # let the worker's Python run
        qt.QTimer.singleShot(0, lambda: self._poll(run))


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

    def _runInThread(self, logic, fixed, movingVolumes, cancelAtFirstEvent=False):
        finished = []

        def onProgress(index, count, name, event):
            if cancelAtFirstEvent:
                logic.cancel()

        logic.start(
            fixed, movingVolumes, onProgress=onProgress, onFinished=lambda r, e: finished.append((r, e))
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
