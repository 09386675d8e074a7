"""The gRPC server: servicers that translate, one error interceptor, settings, the CLI."""
