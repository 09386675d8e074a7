"""Generated protobuf and gRPC modules of the vectord v1 API (see proto/generate.py)."""
