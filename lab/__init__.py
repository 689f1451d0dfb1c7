"""The project's test lab: servers and stacks the tests and demos start (emulators, real vendor servers)."""
