"""Draw the extension's screenshot: the module panel next to a registered result, without Slicer.

No Slicer application runs where this project is built, so the picture is drawn, not captured:
- the panel is the module's own .ui (CTAffineRegister/Resources/UI/CTAffineRegister.ui) loaded by Qt,
  with simple Qt stand-ins for Slicer's CTK/MRML widgets, and filled with what the module would show
  after the run below (the "Detected" line and the status lines come from the library's own functions);
- the views show a real result of this library: the fixed CT with the registered CT over it at 50%
  opacity, as the module leaves Slicer's slice views after a run.
The caption at the bottom of the picture says so.

    pip install PySide6-Essentials      # for this script only; not a dependency of the project
    python Resources/Screenshots/draw_panel_screenshot.py [--out Resources/Screenshots/panel-and-result.png]

The CT is the TotalSegmentator example torso (Apache-2.0) from ../shared/data (or $CTAR_SHARED_DATA)
when present (else the generated phantom), moved by a known affine onto another grid with -3024
padding outside a circular FOV.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import SimpleITK as sitk
from PySide6.QtCore import QFile, QPoint, QRect, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPalette, QPixmap
from PySide6.QtUiTools import QUiLoader
from PySide6.QtWidgets import QApplication, QComboBox, QFrame, QWidget

from CTAffineRegisterLib import register_pair, synthetic
from CTAffineRegisterLib.panel.result_lines import summary_lines
from CTAffineRegisterLib.panel.volume_findings import detected_line

ROOT = Path(__file__).resolve().parents[2]
UI_FILE = ROOT / "CTAffineRegister" / "Resources" / "UI" / "CTAffineRegister.ui"
SHARED_DATA = Path(os.environ.get("CTAR_SHARED_DATA", ROOT.parent / "shared" / "data"))
TORSO = SHARED_DATA / "totalsegmentator" / "example_ct.nii.gz"
WINDOW_HU = (-1000.0, 1000.0)
VIEW_PIXELS = 330
# Slice view title bar colours of Slicer's default layout: red (axial), yellow (sagittal), green (coronal).
VIEW_COLOURS = {"Red": "#c45a5a", "Yellow": "#d1c455", "Green": "#6aa05b"}
CAPTION = (
    "Drawn outside Slicer (no Slicer can run where this was made): the panel is the module's .ui with "
    "Qt stand-ins for Slicer's widgets, the views a real CTAffineRegister result (fixed CT, registered "
    "CT at 50% on top). CT: TotalSegmentator example (Apache-2.0), moved by a known affine, -3024 FOV "
    "padding added."
)


# ---------------------------------------------------------------------------------------------
# Stand-ins for the CTK/MRML widgets the .ui names (QUiLoader creates them by class name)


class ctkCollapsibleButton(QFrame):  # noqa: N801 - the class name the .ui asks for
    """A header bar with an arrow and the title above the content, like CTK's collapsible button."""

    HEADER = 26

    def __init__(self, parent=None):
        super().__init__(parent)
        self._text = ""

    def make_room_for_the_header(self) -> None:
        """Called once the .ui has given the button its layout."""
        self.layout().setContentsMargins(12, self.HEADER + 6, 6, 6)

    def getText(self) -> str:
        return self._text

    def setText(self, text: str) -> None:
        self._text = text
        self.update()

    from PySide6.QtCore import Property as _Property

    text = _Property(str, getText, setText)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        header = QRect(0, 0, self.width() - 1, self.HEADER)
        painter.setPen(QColor("#a0a0a0"))
        painter.setBrush(QColor("#e4e4e4"))
        painter.drawRoundedRect(header, 3, 3)
        painter.setPen(QColor("#202020"))
        painter.drawText(header.adjusted(8, 0, 0, 0), Qt.AlignVCenter | Qt.AlignLeft, "▾  " + self._text)
        painter.setPen(QColor("#c8c8c8"))
        painter.drawLine(QPoint(2, self.HEADER + 1), QPoint(2, self.height() - 2))
        painter.end()


class qMRMLNodeComboBox(QComboBox):  # noqa: N801
    """A combo box listing volume names."""


class qMRMLCheckableNodeComboBox(qMRMLNodeComboBox):  # noqa: N801
    """Shows the checked nodes' names, as CTK's checkable combo box does."""


class qMRMLWidget(QWidget):  # noqa: N801
    mrmlSceneChanged = Signal(object)


# ---------------------------------------------------------------------------------------------
# A real result


def _result():
    if TORSO.is_file():
        torso = sitk.ReadImage(str(TORSO))
        pair = synthetic.make_pair_from_image(torso, seed=4, moving_spacing=(2.5, 2.5, 3.5))
    else:
        print(f"{TORSO} not found: using the generated phantom", file=sys.stderr)
        pair = synthetic.make_pair(seed=4)
    result = register_pair(pair.fixed, pair.moving)
    return pair.fixed, result


# ---------------------------------------------------------------------------------------------
# Drawing


def _panel(loader: QUiLoader, fixed_findings: dict, moving_findings: dict, report: dict) -> QPixmap:
    ui_file = QFile(str(UI_FILE))
    ui_file.open(QFile.ReadOnly)
    panel = loader.load(ui_file)
    ui_file.close()
    for button in panel.findChildren(ctkCollapsibleButton):
        button.make_room_for_the_header()
    find = panel.findChild
    find(QComboBox, "fixedVolumeSelector").addItem("CT A")
    find(QComboBox, "movingVolumesSelector").addItem("CT B")
    find(QWidget, "detectedLabel").setText(
        "Detected: " + detected_line(("CT A", fixed_findings), [("CT B", moving_findings)])
    )
    transform = find(QComboBox, "transformTypeComboBox")
    transform.addItems(["affine", "similarity", "rigid"])  # the Choice(...) of the parameter node
    find(QWidget, "automaticFillCheckBox").setChecked(True)
    find(QWidget, "fillValueSpinBox").setEnabled(False)
    apply = find(QWidget, "applyButton")
    apply.setEnabled(True)
    apply.setText("Apply")
    find(QWidget, "progressBar").setVisible(False)
    find(QWidget, "statusLabel").setText("\n".join(summary_lines([("CT B", report)])))
    panel.resize(400, 350)
    return panel.grab()


def _window(values: np.ndarray) -> np.ndarray:
    low, high = WINDOW_HU
    return np.clip((values.astype(np.float32) - low) / (high - low), 0.0, 1.0)


def _views(fixed: sitk.Image, registered: sitk.Image) -> list[tuple[str, np.ndarray]]:
    """Axial, sagittal and coronal planes through the fixed scan's centre: fixed in grey, registered
    at 50% on top (Slicer's background/foreground blend), oriented as Slicer's default slice views
    (vtkMRMLSliceNode: axial anterior up and patient right on the left, sagittal anterior on the left,
    coronal patient right on the left, superior up), on an isotropic LPS grid over the fixed scan."""
    spacing = min(fixed.GetSpacing())
    corners = np.array(
        [
            fixed.TransformIndexToPhysicalPoint([i * (n - 1) for i, n in zip(corner, fixed.GetSize())])
            for corner in np.ndindex(2, 2, 2)
        ]
    )
    low, high = corners.min(axis=0), corners.max(axis=0)
    reference = sitk.Image([int(round(e / spacing)) + 1 for e in high - low], sitk.sitkFloat32)
    reference.SetSpacing([spacing] * 3)
    reference.SetOrigin(low.tolist())
    grids = [
        sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, -1024.0)
        for image in (fixed, registered)
    ]
    fixed_array, registered_array = (_window(sitk.GetArrayViewFromImage(grid)) for grid in grids)
    blend = 0.5 * fixed_array + 0.5 * registered_array
    z, y, x = (n // 2 for n in blend.shape)
    return [
        ("Red", blend[z, :, :]),  # axial: rows run posterior, columns to the patient's left
        ("Yellow", blend[::-1, :, x]),  # sagittal: head up, columns run posterior
        ("Green", blend[::-1, y, :]),  # coronal: head up, columns to the patient's left
    ]


def _view_pixmap(name: str, plane: np.ndarray) -> QPixmap:
    grey = (plane * 255).astype(np.uint8)
    height, width = grey.shape
    image = QImage(grey.tobytes(), width, height, width, QImage.Format_Grayscale8).copy()
    scaled = image.scaled(VIEW_PIXELS, VIEW_PIXELS, Qt.KeepAspectRatio, Qt.SmoothTransformation)
    pixmap = QPixmap(VIEW_PIXELS, VIEW_PIXELS + 20)
    pixmap.fill(Qt.black)
    painter = QPainter(pixmap)
    painter.fillRect(0, 0, VIEW_PIXELS, 20, QColor(VIEW_COLOURS[name]))
    painter.setPen(Qt.black)
    title = f"{name[0]}   B: CT A   F: CT B registered"  # background and foreground volumes
    painter.drawText(QRect(6, 0, VIEW_PIXELS - 12, 20), Qt.AlignVCenter, title)
    painter.drawImage((VIEW_PIXELS - scaled.width()) // 2, 20 + (VIEW_PIXELS - scaled.height()) // 2, scaled)
    painter.end()
    return pixmap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "Resources" / "Screenshots" / "panel-and-result.png"))
    arguments = parser.parse_args()

    app = QApplication(sys.argv)
    app.setStyle("Fusion")
    palette = app.palette()
    palette.setColor(QPalette.Window, QColor("#f0f0f0"))
    app.setPalette(palette)
    loader = QUiLoader()
    for widget_class in (ctkCollapsibleButton, qMRMLNodeComboBox, qMRMLCheckableNodeComboBox, qMRMLWidget):
        loader.registerCustomWidget(widget_class)

    fixed, result = _result()
    panel = _panel(loader, result.report["fixed"], result.report["moving"], result.report)
    views = [_view_pixmap(name, plane) for name, plane in _views(fixed, result.registered)]

    gap, caption_height = 8, 36
    width = panel.width() + gap + len(views) * (VIEW_PIXELS + gap)
    height = max(panel.height(), VIEW_PIXELS + 20) + 2 * gap + caption_height
    canvas = QPixmap(width, height)
    canvas.fill(QColor("#f0f0f0"))
    painter = QPainter(canvas)
    painter.drawPixmap(gap // 2, gap, panel)
    for index, view in enumerate(views):  # Slicer's three slice views side by side
        painter.drawPixmap(panel.width() + gap + index * (VIEW_PIXELS + gap), gap, view)
    painter.setPen(QColor("#303030"))
    font = QFont()
    font.setPointSize(8)
    painter.setFont(font)
    caption = QRect(gap, height - caption_height - gap // 2, width - 2 * gap, caption_height)
    painter.drawText(caption, Qt.TextWordWrap | Qt.AlignLeft | Qt.AlignVCenter, CAPTION)
    painter.end()
    canvas.save(arguments.out)
    quality = result.report["quality"]
    print(f"wrote {arguments.out} ({width}x{height}); verdict {quality['verdict']}: {quality['reason']}")


if __name__ == "__main__":
    main()
