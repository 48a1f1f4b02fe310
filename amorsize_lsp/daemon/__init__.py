"""The local sampling daemon (SQLite store, k-NN predictor, JSON-RPC); see its issue."""
