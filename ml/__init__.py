"""Training: read a feature mart, split out of time, fit, calibrate, evaluate, register."""
