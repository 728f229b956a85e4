"""Local training: data on the device, TinyJit steps, metrics, and the hooks collaborative schemes plug into."""
