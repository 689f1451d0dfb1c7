"""Tools for testing and measuring secret-origin against real servers (not shipped in the images)."""
