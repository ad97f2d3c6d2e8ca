"""Scans, validity masks and label maps carried onto the fixed grid without gray rings."""
