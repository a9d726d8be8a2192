"""Plots (matplotlib, PNG/SVG) and the HTML report. Plotting never recomputes."""
