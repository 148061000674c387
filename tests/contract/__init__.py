"""Contract suites: one set of tests run against a fake and the real peer it stands in for."""
