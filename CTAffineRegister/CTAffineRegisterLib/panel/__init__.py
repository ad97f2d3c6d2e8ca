"""What the Slicer module panel needs without Qt: scene import/close watching, the "Detected" line
computed off the GUI thread, and the status lines of finished runs. Works on the MRML objects it is given."""
