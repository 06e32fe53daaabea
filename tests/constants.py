"""Values shared by the test plugin, fixtures, node harness and benchmarks."""

SERVICE_TOKEN = "test-service-token-0123456789abcdef"
